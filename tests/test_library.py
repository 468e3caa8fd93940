"""Reference libraries in the corpus (assistant/library.py, corpus.py) and citation
export (assistant/cite.py), without an index: parsing each format, merging with
the shipped listings, bad input, round trips. The test libraries are described in
tests/data/library/README.md."""

from __future__ import annotations

import json
import shutil
import tracemalloc
from pathlib import Path

import bibtexparser
import pytest
import rispy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.cite import cite, cite_key, to_bibtex, to_csl_json, to_ris
from assistant.corpus import Corpus, CorpusError, add_files, load_corpus, paper_id_for
from assistant.focus import listing_note
from assistant.library import LibraryError, parse_library
from assistant.models import Paper
from assistant.retrieve import Filters
from tests.conftest import CORPUS

LIBRARY = Path(__file__).parent / "data" / "library"
FILES = {fmt: LIBRARY / f"library.{fmt}" for fmt in ("bib", "ris", "json", "jsonl")}
ADAMP = "adamp-slowing-down-the-d344cb"
TIMESNET = "timesnet-temporal-2d-variation-c4b8e0"
QUOKKA = paper_id_for("Quokka: Sparse Attention for Long-Read Genome Assembly")


def by_id(corpus: Corpus) -> dict[str, Paper]:
    return {p.paper_id: p for p in corpus.papers}


@pytest.fixture
def corpus_with(tmp_path: Path):
    """A copy of the shipped listings plus the named library files."""
    def make(*names: str) -> Path:
        folder = tmp_path / "corpus"
        shutil.copytree(CORPUS, folder, dirs_exist_ok=True)
        for name in names:
            shutil.copy(FILES[name], folder / FILES[name].name)
        return folder
    return make


# ---------------------------------------------------------------- parsing each format


def test_bibtex_entries_authors_venue_and_skipped_entry_with_its_line() -> None:
    parsed = parse_library(FILES["bib"])
    by_key = {e.key: e for e in parsed.entries}
    assert set(by_key) == {"heo2021adamp", "wu2023timesnet", "lindqvist2024quokka", "okafor2023lantern",
                           "nobody2022noabstract", "after2021broken"}
    quokka = by_key["lindqvist2024quokka"]
    assert quokka.authors == ["Lindqvist, Astrid", "Müller, Jonas", "O'Neil, Maeve"]  # M{\"u}ller decoded
    assert (quokka.venue, quokka.published, quokka.doi) == ("Journal of Invented Bioinformatics", "2024-05",
                                                           "10.5555/quokka.2024.17")
    assert quokka.abstract.endswith("Our code & data: 100% open source.")  # a bare % is not a LaTeX comment here
    assert by_key["heo2021adamp"].title.startswith("AdamP: Slowing")  # {AdamP} braces dropped
    assert by_key["heo2021adamp"].arxiv_id == "2006.08217" and by_key["wu2023timesnet"].arxiv_id == "2210.02186"
    assert len(parsed.warnings) == 1
    assert parsed.warnings[0].startswith(f"{FILES['bib']}:48: skipped: malformed BibTeX entry")
    assert by_key["after2021broken"].title.startswith("Heron")  # the entry after the broken one imports


def test_ris_records_are_cut_by_ty_er_and_broken_ones_named_by_line() -> None:
    parsed = parse_library(FILES["ris"])
    assert [e.key for e in parsed.entries] == ["chen2023tempme", "quokka-extended", "mbeki2022kestrel"]
    assert parsed.warnings == [f"{FILES['ris']}:23: skipped: RIS record not closed by 'ER  -' before the next 'TY  -'",
                               f"{FILES['ris']}:29: skipped: no title"]
    kestrel = parsed.entries[2]
    assert kestrel.published == "2022-03-09" and kestrel.authors == ["Mbeki, Thandi", "Larsen, Ole"]
    assert parsed.entries[1].doi == "10.5555/quokka.2024.17"  # from a https://doi.org/ URL, case folded
    assert parsed.entries[0].arxiv_id == "2310.19324"


def test_csl_json_and_jsonl() -> None:
    csl = parse_library(FILES["json"])
    assert [e.key for e in csl.entries] == ["pan2023gflownets", "ferreira2024marmot", "no-abstract-csl"]
    assert csl.entries[1].authors == ["Ferreira, Lucia", "The Marmot Consortium"]
    assert csl.entries[1].published == "2024-02-29" and csl.entries[0].arxiv_id == "2302.01687"
    assert csl.warnings == [f"{FILES['json']}:3: skipped: item 3 is a JSON str, not an object"]
    lines = parse_library(FILES["jsonl"])
    assert [e.line for e in lines.entries] == [1, 2, 3]
    assert lines.entries[1].arxiv_id == "2210.02186"  # "arXiv:2210.02186v3": prefix and version dropped
    assert [w.split(": skipped: ")[0] for w in lines.warnings] == [f"{FILES['jsonl']}:{n}" for n in (4, 5, 6)]
    assert "not valid JSON" in lines.warnings[0] and "no title" in lines.warnings[2]


# ---------------------------------------------------------------- merging with the listings


def test_matching_entries_enrich_listing_papers_and_new_ones_are_added(corpus_with) -> None:
    corpus = load_corpus(corpus_with("bib", "ris", "json", "jsonl"))
    papers = by_id(corpus)
    assert len(papers) == 356 + 6  # Quokka, Lantern, Heron, Kestrel, Marmot, Pangolin
    adamp = papers[ADAMP]
    assert adamp.abstract == by_id(load_corpus(CORPUS))[ADAMP].abstract  # the listing's abstract is kept
    assert adamp.authors[0] == "Heo, Byeongho" and adamp.venue.startswith("International Conference")
    assert adamp.arxiv_id == "2006.08217" and adamp.also_in == ["library.bib:5"]
    # TimesNet: by title from the .bib, by arXiv id (another title) from the .jsonl
    assert papers[TIMESNET].also_in == ["library.bib:14", "library.jsonl:2"]
    # Quokka: new from the .bib, its RIS copy (another title, DOI as a URL) found by DOI
    quokka = papers[QUOKKA]
    assert quokka.also_in == ["library.ris:11"] and quokka.abstract.startswith("Assembling a genome")
    timo = papers["timo-towards-better-temporal-757f53"]
    assert len(timo.authors) == 7 and timo.also_in == ["003_e9ba834958631419.txt:85", "library.jsonl:1"]


def test_entries_without_an_abstract_are_counted_never_dropped_silently(corpus_with) -> None:
    corpus = load_corpus(corpus_with("bib", "json"))
    # AdamP's entry has no abstract either, but it enriches a listing paper, so it is not "skipped"
    assert corpus.no_abstract == ["library.bib:42 'A Library Entry That Has No Abstract'",
                                  "library.json:4 'A CSL Item Without Abstract'"]
    assert paper_id_for("A Library Entry That Has No Abstract") not in by_id(corpus)


def test_listing_papers_keep_their_content_hash() -> None:
    """The hashes of the shipped papers, computed before library fields existed: an
    upgrade must not re-embed anyone's corpus."""
    before = json.loads((LIBRARY / "listing_hashes.json").read_text())
    now = {p.paper_id: p.content_hash() for p in load_corpus(CORPUS).papers}
    assert now == before


def test_enriched_papers_change_hash_and_nothing_else_does(corpus_with) -> None:
    before = json.loads((LIBRARY / "listing_hashes.json").read_text())
    now = {p.paper_id: p.content_hash() for p in load_corpus(corpus_with("bib")).papers}
    changed = {pid for pid in before if now[pid] != before[pid]}
    assert changed == {ADAMP, TIMESNET}


def test_source_file_filter_and_year_only_dates(corpus_with) -> None:
    papers = by_id(load_corpus(corpus_with("bib")))
    only_bib = Filters.parse(source_file="library.bib")
    assert only_bib is not None
    assert {pid for pid, p in papers.items() if only_bib.accepts(p)} == {
        ADAMP, TIMESNET, QUOKKA, paper_id_for("Lantern: Calibrated Uncertainty for Sonar Depth Maps"),
        paper_id_for("Heron: Counting Migratory Birds from Weather Radar")}
    lantern = papers[paper_id_for("Lantern: Calibrated Uncertainty for Sonar Depth Maps")]
    assert lantern.published == "2023"
    assert Filters.parse("2023", "2023").accepts(lantern)  # a year-only date is inside its year
    assert Filters.parse("2024-05", "2024-05").accepts(papers[QUOKKA])  # "2024-05" is in May 2024,
    assert not Filters.parse("2024-06").accepts(papers[QUOKKA])  # before June
    assert not Filters.parse(None, "2024-04").accepts(papers[QUOKKA])  # and after April


def test_listing_notice_names_the_authors_a_library_gave(corpus_with) -> None:
    papers = by_id(load_corpus(corpus_with("bib")))
    note = listing_note("Who wrote AdamP?", papers[ADAMP], "AdamP")
    assert note is not None and "Heo, Byeongho; Chun, Sanghyuk" in note and "International Conference" in note
    plain = listing_note("Who wrote AdamP?", by_id(load_corpus(CORPUS))[ADAMP], "AdamP")
    assert plain is not None and "without author names" in plain


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(("name", "content", "message"), [
    ("refs.enw", b"%0 Journal Article\n%T A title\n", "unknown format .enw"),
    ("empty.bib", b"", "empty file"),
    ("blank.ris", b"\n\n   \n", "empty file"),
    ("none.bib", b"@comment{nothing here}\n% just a comment\n", "no usable bibtex entry"),
    ("untitled.jsonl", b'{"abstract": "x"}\n', "no usable jsonl entry"),
    ("object.json", b'{"title": "not an array"}', "expected a CSL-JSON array"),
    ("broken.json", b'[{"title": "x",\n  oops}]', "broken.json:2: not valid JSON"),
    ("binary.bib", b"@article{x,\x00\x00\x01}", "binary data"),
])
def test_refused_files_change_nothing(tmp_path: Path, corpus_with, name: str, content: bytes, message: str) -> None:
    corpus = corpus_with()
    before = sorted(p.name for p in corpus.iterdir())
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(CorpusError, match=message):
        add_files([FILES["bib"], bad], corpus)  # a good file beside a bad one: neither is copied
    assert sorted(p.name for p in corpus.iterdir()) == before


def test_latin1_file_is_read_with_the_detected_encoding(tmp_path: Path) -> None:
    text = ("@article{k, title = {Étude of Schrödinger Bridges for Café Recommendation Systems}, author = {Müller, Jürgen "
            "and Åström, Karl}, year = {2021}, abstract = {Une étude détaillée des ponts de Schrödinger appliqués "
            "aux systèmes de recommandation pour cafés, avec des expériences à grande échelle.}}\n")
    path = tmp_path / "latin1.bib"
    path.write_bytes(text.encode("latin-1"))
    entry = parse_library(path).entries[0]
    assert entry.title.startswith("Étude of Schrödinger") and entry.authors == ["Müller, Jürgen", "Åström, Karl"]


def test_undetectable_encoding_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "noise.ris"
    path.write_bytes(bytes(range(0x80, 0x100)) * 4 + b"\xff\xfe\xfd")
    with pytest.raises(LibraryError, match=r"noise\.ris.*(not UTF-8|no usable)"):
        parse_library(path)


def test_duplicate_bibtex_key_is_skipped_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.bib"
    path.write_text("@misc{a, title={First}, abstract={One.}}\n\n@misc{a, title={Second}, abstract={Two.}}\n")
    parsed = parse_library(path)
    assert [e.title for e in parsed.entries] == ["First"]
    assert parsed.warnings == [f"{path}:3: skipped: malformed BibTeX entry: Duplicate entry key 'a'"]


@pytest.mark.slow
def test_ten_thousand_entries_cost_one_parse_of_memory(tmp_path: Path) -> None:
    """The library's own objects are dropped once entries are taken out: importing
    peaks at most 1.5 times bibtexparser's parse of the same text alone."""
    entries = [f"@article{{k{i},\n  title = {{Paper number {i} on topic {i % 97}}},\n  author = {{Doe, Jane and Roe, "
               f"Richard}},\n  journal = {{Journal {i % 13}}},\n  year = {{{2000 + i % 25}}},\n  abstract = {{We study "
               f"problem {i} and show that method {i % 31} solves it on {i % 7 + 2} benchmarks.}}\n}}\n"
               for i in range(10_000)]
    path = tmp_path / "big.bib"
    path.write_text("\n".join(entries))
    del entries
    tracemalloc.start()
    parsed = parse_library(path)
    _, ours = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(parsed.entries) == 10_000 and not parsed.warnings
    del parsed
    text = path.read_text()
    tracemalloc.start()
    library = bibtexparser.parse_string(text)
    _, theirs = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(library.entries) == 10_000
    assert ours <= 1.5 * theirs, (ours, theirs)


# ---------------------------------------------------------------- adding files


def test_add_copies_then_a_second_add_is_a_no_op(corpus_with) -> None:
    corpus = corpus_with()
    first = add_files([FILES["bib"], FILES["ris"]], corpus)
    assert first == ["library.bib: added; 6 entries (bibtex), 1 records skipped",
                     "library.ris: added; 3 entries (ris), 2 records skipped"]
    assert (corpus / "library.bib").read_bytes() == FILES["bib"].read_bytes()
    assert add_files([FILES["bib"]], corpus) == ["library.bib: already in the corpus, unchanged"]
    assert not [p for p in corpus.iterdir() if ".tmp" in p.name]


# ---------------------------------------------------------------- export and round trips


def _library_papers(corpus_with, *names: str):
    corpus = load_corpus(corpus_with(*names))
    sources = {f"library.{n}" for n in names}
    return [p for p in corpus.papers if p.occurrences[0].file in sources or set(a.split(":")[0] for a in p.also_in) & sources]


def _shared(papers) -> list[tuple[str, list[str], str | None, str | None]]:
    """Title, authors, year and month (BibTeX has no day), DOI."""
    return sorted((p.title, p.authors, p.published[:7] if p.published else None, p.doi) for p in papers)


@pytest.mark.parametrize("source", ["bib", "ris", "json", "jsonl"])
@pytest.mark.parametrize(("fmt", "suffix"), [("bibtex", "bib"), ("ris", "ris"), ("csl-json", "json")])
def test_round_trip_keeps_title_authors_year_doi(tmp_path: Path, corpus_with, source: str, fmt: str,
                                                 suffix: str) -> None:
    papers = [p for p in _library_papers(corpus_with, source) if p.occurrences[0].file == f"library.{source}"]
    assert papers
    exported = tmp_path / f"export.{suffix}"
    exported.write_text(cite(papers, fmt), encoding="utf-8")
    back = parse_library(exported)
    assert not back.warnings
    again = back.entries
    assert _shared(again) == _shared(papers)
    assert sorted(e.key for e in again) == sorted(cite_key(p) for p in papers)
    assert sorted(e.abstract for e in again) == sorted(p.abstract for p in papers)


def test_listing_papers_export_as_misc_with_a_note_and_stable_keys() -> None:
    adamp = by_id(load_corpus(CORPUS))[ADAMP]
    text = to_bibtex([adamp])
    entry = bibtexparser.parse_string(text).entries[0]
    assert (entry.entry_type, entry.key) == ("misc", ADAMP)
    fields = {k: f.value for k, f in entry.fields_dict.items()}
    assert fields["year"] == "2020" and fields["url"] == "https://github.com/clovaai/AdamP"
    assert fields["organization"] == "naver-ai NAVER AI Lab"
    assert fields["note"].startswith("From a paper-listing page: authors, venue and DOI unknown")
    assert "author" not in fields
    assert to_bibtex([adamp]) == text  # same key and text every time
    ris = rispy.loads(to_ris([adamp]))[0]
    assert ris["type_of_reference"] == "GEN" and ris["id"] == ADAMP
    csl = json.loads(to_csl_json([adamp]))[0]
    assert csl["id"] == ADAMP and "note" in csl and "author" not in csl


def test_latex_specials_are_escaped_for_latex_and_restored_on_import(corpus_with) -> None:
    quokka = by_id(load_corpus(corpus_with("bib")))[QUOKKA]
    text = to_bibtex([quokka])
    assert r"Our code \& data: 100\% open source." in text
    entry = bibtexparser.parse_string(text).entries[0]
    assert entry.entry_type == "article" and entry.key == "lindqvist2024quokka"


def test_unknown_citation_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown citation format 'endnote'"):
        cite([], "endnote")  # type: ignore[arg-type]


# ---------------------------------------------------------------- fuzzing


def _parse_or_refuse(data: bytes, suffix: str) -> None:
    """Either entries, each with a title, or a LibraryError naming the file: never another exception."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            parsed = parse_library(path)
        except LibraryError as exc:
            assert str(path) in str(exc)
            return
        assert parsed.entries and all(e.title.strip() for e in parsed.entries)


@pytest.mark.slow
@settings(max_examples=200, deadline=2000, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=3000), suffix=st.sampled_from([".bib", ".ris", ".json", ".jsonl"]))
def test_random_bytes_parse_or_are_refused(data: bytes, suffix: str) -> None:
    _parse_or_refuse(data, suffix)


@pytest.mark.slow
@settings(max_examples=200, deadline=3000, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(FILES)), cuts=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 40),
                                                                     st.text(max_size=5)), max_size=6))
def test_mutated_libraries_parse_or_are_refused(name: str, cuts: list[tuple[int, int, str]]) -> None:
    text = FILES[name].read_text(encoding="utf-8")
    for at, length, insert in cuts:
        at %= max(1, len(text))
        text = text[:at] + insert + text[at + length:]
    _parse_or_refuse(text.encode("utf-8"), FILES[name].suffix)


def test_ui_shows_library_metadata_and_a_bibtex_button(corpus_with) -> None:
    import html

    from assistant.models import Citation
    from ui.format import citation_text, paper_html, paper_meta, source_card

    quokka = by_id(load_corpus(corpus_with("bib")))[QUOKKA]
    assert paper_meta(quokka) == "2024-05 · Lindqvist, Müller, O&#x27;Neil · Journal of Invented Bioinformatics"
    card = source_card(Citation(n=1, paper_id=QUOKKA, title=quokka.title, quote="We present Quokka"), quokka, 1)
    assert '<button type="button" class="copy-bibtex"' in card
    assert 'href="https://doi.org/10.5555/quokka.2024.17"' in card
    entry = card.split('<pre class="bibtex">')[1].split("</pre>")[0]
    assert bibtexparser.parse_string(html.unescape(entry)).entries[0].key == "lindqvist2024quokka"
    assert "Authors: Lindqvist, Astrid; Müller, Jonas; O&#x27;Neil, Maeve" in paper_html(quokka)
    assert citation_text(quokka) == ("Lindqvist, Müller, O'Neil. Quokka: Sparse Attention for Long-Read Genome Assembly "
                                     "(2024-05). Journal of Invented Bioinformatics. https://doi.org/10.5555/quokka.2024.17")
