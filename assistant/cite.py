"""Citations a user can paste into their own paper: BibTeX (bibtexparser 2), RIS
(rispy) and CSL-JSON, for the papers an answer cites or any paper by id.

A paper from a reference library is written with what the library gave (authors,
venue, DOI, arXiv id, its own citation key). A paper known only from a listing
page has no authors, venue or DOI: it is written as `@misc` (RIS `GEN`, CSL
`article`) with its title, year, link and organisation, and a note saying where it
came from, so nobody mistakes it for a checked reference. Keys are the library's
key, else the paper id: the same on every run and every machine."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Literal

from assistant.models import Paper

Format = Literal["bibtex", "ris", "csl-json"]
FORMATS: tuple[Format, ...] = ("bibtex", "ris", "csl-json")
LISTING_NOTE = "From a paper-listing page: authors, venue and DOI unknown"
_KEY_CHARS = re.compile(r"[^\w:.+-]+")
_LATEX_SPECIAL = re.compile(r"(?<!\\)([&%#])")

# entry types between the formats (what the library wrote is kept when it is BibTeX's own)
BIBTEX_TYPES = {"article", "inproceedings", "incollection", "book", "misc", "phdthesis", "mastersthesis",
                "techreport", "unpublished", "inbook", "proceedings", "online", "report", "thesis"}
FROM_OTHER = {"jour": "article", "jfull": "article", "conf": "inproceedings", "cpaper": "inproceedings",
              "chap": "incollection", "book": "book", "thes": "phdthesis", "rprt": "techreport", "unpb": "unpublished",
              "article-journal": "article", "paper-conference": "inproceedings", "chapter": "incollection",
              "report": "techreport", "thesis": "phdthesis", "manuscript": "unpublished"}
RIS_TYPES = {"article": "JOUR", "inproceedings": "CPAPER", "incollection": "CHAP", "book": "BOOK",
             "phdthesis": "THES", "mastersthesis": "THES", "techreport": "RPRT", "unpublished": "UNPB"}
CSL_TYPES = {"article": "article-journal", "inproceedings": "paper-conference", "incollection": "chapter",
             "book": "book", "phdthesis": "thesis", "mastersthesis": "thesis", "techreport": "report",
             "unpublished": "manuscript"}


def cite_key(paper: Paper) -> str:
    """The library's key (characters BibTeX cannot take removed), else the paper id."""
    key = _KEY_CHARS.sub("", paper.cite_key or "")
    return key or paper.paper_id


def from_listing(paper: Paper) -> bool:
    """True when no library gave this paper's bibliographic data."""
    return not (paper.authors or paper.venue or paper.doi or paper.arxiv_id)


def bibtex_type(paper: Paper) -> str:
    if from_listing(paper):
        return "misc"
    given = (paper.entry_type or "").lower()
    if given in BIBTEX_TYPES:
        return given
    return FROM_OTHER.get(given) or ("article" if paper.venue else "misc")


def year(paper: Paper) -> str | None:
    return paper.published[:4] if paper.published else None


def listing_note(paper: Paper) -> str:
    counted = f"; {paper.authors_count} authors" if paper.authors_count and not paper.authors else ""
    return f"{LISTING_NOTE}{counted} (listed in {', '.join(sorted({o.file for o in paper.occurrences}))})"


# ---------------------------------------------------------------- BibTeX


def _latex(text: str) -> str:
    """&, % and # would break a LaTeX run; the reader (bibtexparser's LaTeX decoding) restores them."""
    return _LATEX_SPECIAL.sub(r"\\\1", text)


def bibtex_fields(paper: Paper) -> dict[str, str]:
    kind = bibtex_type(paper)
    fields = {"title": _latex(paper.title), "author": " and ".join(paper.authors)}
    venue_field = {"article": "journal", "inproceedings": "booktitle", "incollection": "booktitle"}.get(kind, "howpublished")
    fields[venue_field] = _latex(paper.venue or "")
    fields["year"] = year(paper) or ""
    if paper.published and len(paper.published) >= 7:
        fields["month"] = str(int(paper.published[5:7]))
    fields["doi"] = paper.doi or ""
    if paper.arxiv_id:
        fields.update(eprint=paper.arxiv_id, archiveprefix="arXiv")
    fields["url"] = paper.url or ""
    if from_listing(paper):
        fields["organization"] = _latex(paper.org or "")
        fields["note"] = _latex(listing_note(paper))
    fields["abstract"] = _latex(paper.abstract)
    return {k: v for k, v in fields.items() if v}


def to_bibtex(papers: Iterable[Paper]) -> str:
    from bibtexparser.entrypoint import write_string
    from bibtexparser.library import Library
    from bibtexparser.model import Block, Entry, Field

    entries: list[Block] = [Entry(bibtex_type(p), cite_key(p), [Field(k, v) for k, v in bibtex_fields(p).items()])
                            for p in _unique(papers)]
    return write_string(Library(entries))


# ---------------------------------------------------------------- RIS and CSL-JSON


def ris_record(paper: Paper) -> dict[str, object]:
    record: dict[str, object] = {"type_of_reference": RIS_TYPES.get(bibtex_type(paper), "GEN"), "id": cite_key(paper),
                                 "title": paper.title}
    if paper.authors:
        record["authors"] = list(paper.authors)
    values = {"secondary_title": paper.venue, "year": year(paper), "doi": paper.doi, "abstract": paper.abstract,
              "publisher": paper.org if from_listing(paper) else None}
    if paper.published and len(paper.published) >= 7:
        values["date"] = paper.published.replace("-", "/")
    record.update({k: v for k, v in values.items() if v})
    if paper.urls:
        record["urls"] = list(paper.urls[:1])
    if paper.arxiv_id:
        record["notes"] = [f"arXiv:{paper.arxiv_id}"]
    if from_listing(paper):
        record["notes"] = [listing_note(paper)]
    return record


def to_ris(papers: Iterable[Paper]) -> str:
    import rispy

    return str(rispy.dumps([ris_record(p) for p in _unique(papers)]))


def csl_item(paper: Paper) -> dict[str, object]:
    item: dict[str, object] = {"id": cite_key(paper), "type": CSL_TYPES.get(bibtex_type(paper), "article"),
                               "title": paper.title}
    if paper.authors:
        item["author"] = [_csl_name(a) for a in paper.authors]
    if paper.published:
        item["issued"] = {"date-parts": [[int(x) for x in paper.published.split("-")]]}
    values = {"container-title": paper.venue, "DOI": paper.doi, "URL": paper.url, "abstract": paper.abstract,
              "number": f"arXiv:{paper.arxiv_id}" if paper.arxiv_id else None,
              "publisher": paper.org if from_listing(paper) else None,
              "note": listing_note(paper) if from_listing(paper) else None}
    item.update({k: v for k, v in values.items() if v})
    return item


def _csl_name(name: str) -> dict[str, str]:
    family, _, given = name.partition(",")
    return {"family": family.strip(), "given": given.strip()} if given.strip() else {"literal": name}


def to_csl_json(papers: Iterable[Paper]) -> str:
    return json.dumps([csl_item(p) for p in _unique(papers)], ensure_ascii=False, indent=2) + "\n"


def cite(papers: Iterable[Paper], fmt: Format = "bibtex") -> str:
    """`papers` in the chosen format; each paper once, in the order given."""
    writers = {"bibtex": to_bibtex, "ris": to_ris, "csl-json": to_csl_json}
    if fmt not in writers:
        raise ValueError(f"unknown citation format {fmt!r}; use one of {', '.join(FORMATS)}")
    return writers[fmt](papers)


def media_type(fmt: Format) -> str:
    return {"bibtex": "application/x-bibtex", "ris": "application/x-research-info-systems",
            "csl-json": "application/vnd.citationstyles.csl+json"}[fmt]


def _unique(papers: Iterable[Paper]) -> list[Paper]:
    return list({p.paper_id: p for p in papers}.values())
