"""Reading a reference manager's export: BibTeX (`.bib`, bibtexparser 2), RIS
(`.ris`, rispy), CSL-JSON (`.json`, what Zotero and Mendeley write) and JSON Lines
(`.jsonl`, one `{title, abstract, url?, date?, authors?, venue?, doi?, arxiv_id?}`
per line).

Each format's parser turns its records into `LibraryEntry` values and nothing
else: corpus.py merges them with the listing papers. A record that cannot be read
(a BibTeX entry with a syntax error, an RIS record never closed by `ER`, a JSON
line that is not an object) is skipped with its line number and the reason, and
the rest of the file imports. A file that cannot be read at all (unknown format,
empty, no usable entry, an encoding that cannot be detected) raises LibraryError
naming the file, and the caller changes nothing.

Memory. A file is decoded once, parsed once, and the parser's own objects are
dropped as soon as the entries are taken out of them, so a 10,000-entry library
costs one parse, not several (tests/test_library.py measures it)."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

LIBRARY_SUFFIXES = (".bib", ".ris", ".json", ".jsonl")
MAX_LIBRARY_BYTES = 200_000_000
RECORD_NUMBER = re.compile(r"^\d+\.?$")
RIS_TAG = re.compile(r"^([A-Z][A-Z0-9])  -( (.*))?$")
ARXIV_ID = re.compile(r"(?:arxiv\.org/(?:abs|pdf)/|arxiv[:.]\s*|10\.48550/arxiv\.)(\d{4}\.\d{4,5}|[a-z-]+(?:\.[A-Z]{2})?/\d{7})",
                      re.IGNORECASE)
BARE_ARXIV_ID = re.compile(r"^(\d{4}\.\d{4,5}|[a-z-]+(?:\.[A-Z]{2})?/\d{7})(v\d+)?$", re.IGNORECASE)
DOI = re.compile(r"\b(10\.\d{4,9}/\S+)", re.IGNORECASE)
YEAR = re.compile(r"\b(1[89]\d{2}|20\d{2})\b")
RAW_LATEX_FIELDS = {"abstract", "annote", "note"}
VERBATIM_FIELDS = {"url", "doi", "eprint", "file", "pdf", "arxivid", "howpublished_url"}
_LATEX_MARKUP = re.compile(r"[\\{}$%&~]")
_BARE_SPECIAL = re.compile(r"(?<!\\)([%&])")
_NEEDS_DECODER = re.compile(r"\\[A-Za-z\"'`^=.]|(?<!\\)\$")  # a command, an accent or math
_SIMPLE_LATEX = re.compile(r"\\([&%#$_{}])|[{}~]")


class LibraryError(ValueError):
    """A library file refused as a whole; the message names the file (and line)."""


@dataclass
class LibraryEntry:
    """One record of a library file, as the reference manager gave it."""

    title: str
    abstract: str
    line: int  # 1-based line where the record starts (the entry's index for CSL-JSON)
    key: str | None = None  # the citation key (BibTeX key, RIS ID, CSL id)
    authors: list[str] = field(default_factory=list)  # "Family, Given" where the format separates them
    venue: str | None = None
    published: str | None = None  # ISO date, as precise as the record: "2023", "2023-05" or "2023-05-17"
    doi: str | None = None
    arxiv_id: str | None = None
    url: str | None = None
    entry_type: str | None = None  # @article, JOUR, article-journal ... as written


@dataclass
class ParsedLibrary:
    path: Path
    format: str  # bibtex, ris, csl-json, jsonl
    entries: list[LibraryEntry]
    warnings: list[str] = field(default_factory=list)  # skipped records, each with its line and reason


def is_library_file(path: Path) -> bool:
    return path.suffix.lower() in LIBRARY_SUFFIXES


def clean(text: Any) -> str:
    """One line of text: LaTeX braces that only protect capitals dropped, whitespace collapsed."""
    return " ".join(str(text or "").replace("{", "").replace("}", "").split())


def normalize_doi(value: Any) -> str | None:
    found = DOI.search(str(value or ""))
    return found.group(1).rstrip(".,;").lower() if found else None


def find_arxiv_id(*values: Any) -> str | None:
    """The arXiv id in an eprint field, a DOI (10.48550/arXiv.X), a URL or a journal
    line ("arXiv preprint arXiv:2401.01234"), without its version."""
    for value in values:
        text = str(value or "").strip()
        if bare := BARE_ARXIV_ID.match(text):
            return bare.group(1)
        if found := ARXIV_ID.search(text):
            return found.group(1)
    return None


def iso_date(year: Any, month: Any = None, day: Any = None) -> str | None:
    """"2023", "2023-05" or "2023-05-17" from whatever the record gives (month names too)."""
    found = YEAR.search(str(year or ""))
    if not found:
        return None
    out = found.group(1)
    month_no = _month(month)
    if month_no:
        out += f"-{month_no:02d}"
        if str(day or "").strip().isdigit() and 1 <= int(str(day).strip()) <= 31:
            out += f"-{int(str(day).strip()):02d}"
    return out


def _month(value: Any) -> int | None:
    text = str(value or "").strip().lower()[:3]
    if text.isdigit():
        return int(text) if 1 <= int(text) <= 12 else None
    names = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    return names.index(text) + 1 if text in names else None


# ---------------------------------------------------------------- reading the file


def checked_bytes(path: Path, limit: int, kind: str, error: type[ValueError] = LibraryError) -> bytes:
    """The bytes of a corpus file (listing or library) once it is known to be
    readable, not empty, not over `limit` and not binary; `error` names the file."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from exc
    if size == 0:
        raise error(f"{path}: empty file")
    if size > limit:
        raise error(f"{path}: {size} bytes is larger than {kind} can be ({limit})")
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise error(f"{path}:1: binary data (NUL bytes), not {kind}")
    return data


def read_text(path: Path) -> str:
    """The file's text: UTF-8 (a BOM is dropped), else the encoding charset-normalizer
    detects (Latin-1 and Windows-1252 exports are common); refused when none fits."""
    data = checked_bytes(path, MAX_LIBRARY_BYTES, f"a {path.suffix} library")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = _detected(path, data, exc)
    if not text.strip():
        raise LibraryError(f"{path}: empty file")
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _detected(path: Path, data: bytes, error: UnicodeDecodeError) -> str:
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        line = data[: error.start].count(b"\n") + 1
        raise LibraryError(f"{path}:{line}: not UTF-8 ({error.reason} at byte {error.start}) and no other "
                           "encoding fits; export the library as UTF-8")
    return str(best)


def parse_library(path: Path) -> ParsedLibrary:
    """The entries of one library file, by its suffix. Raises LibraryError when the
    file is refused as a whole (see the module docstring)."""
    parsers = {".bib": ("bibtex", parse_bibtex), ".ris": ("ris", parse_ris),
               ".json": ("csl-json", parse_csl_json), ".jsonl": ("jsonl", parse_jsonl)}
    suffix = path.suffix.lower()
    if suffix not in parsers:
        raise LibraryError(f"{path}: unknown format {suffix or '(no suffix)'}; a library file is one of "
                           f"{', '.join(LIBRARY_SUFFIXES)} (BibTeX, RIS, CSL-JSON, JSON Lines)")
    name, parse = parsers[suffix]
    parsed = ParsedLibrary(path=path, format=name, entries=[])
    parse(read_text(path), parsed)
    if not parsed.entries:
        reasons = f" ({len(parsed.warnings)} records skipped: {parsed.warnings[0]})" if parsed.warnings else ""
        raise LibraryError(f"{path}: no usable {name} entry (each needs a title){reasons}")
    return parsed


def _skip(parsed: ParsedLibrary, line: int, reason: str) -> None:
    parsed.warnings.append(f"{parsed.path}:{line}: skipped: {reason}")


def _entry(parsed: ParsedLibrary, line: int, title: Any, **fields: Any) -> None:
    """Adds an entry when it has a title; a record without one is skipped with its line."""
    text = clean(title)
    if not text:
        _skip(parsed, line, "no title")
        return
    fields["abstract"] = clean(fields.get("abstract"))
    fields["authors"] = [clean(a) for a in fields.get("authors") or [] if clean(a)]
    for name in ("venue", "url", "key", "entry_type"):
        fields[name] = clean(fields.get(name)) or None
    parsed.entries.append(LibraryEntry(title=text, line=line, **fields))


# ---------------------------------------------------------------- BibTeX


def parse_bibtex(text: str, parsed: ParsedLibrary) -> None:
    """bibtexparser 2, authors split on `and`; LaTeX decoded field by field (`latex_text`).
    Its failed blocks (syntax errors, duplicate keys) become warnings."""
    from bibtexparser import middlewares
    from bibtexparser.entrypoint import parse_string

    # its splitter logs every broken block; they are reported once, as warnings, below
    logging.getLogger("bibtexparser").setLevel(logging.CRITICAL)
    library = parse_string(text, append_middleware=[middlewares.SeparateCoAuthors()])
    del text
    for block in library.failed_blocks:
        error = block.error
        reason = getattr(error, "abort_reason", None) or str(error).strip() or type(error).__name__
        _skip(parsed, (block.start_line or 0) + 1, f"malformed BibTeX entry: {_first_line(reason)}")
    for entry in library.entries:
        values = {k.lower(): latex_text(k.lower(), f.value) for k, f in entry.fields_dict.items()}
        authors = values.get("author") or values.get("editor") or []
        _entry(parsed, (entry.start_line or 0) + 1, values.get("title"), key=entry.key, entry_type=entry.entry_type,
               abstract=values.get("abstract"), authors=authors if isinstance(authors, list) else [authors],
               venue=values.get("journal") or values.get("booktitle") or values.get("publisher"),
               published=iso_date(values.get("year") or values.get("date"), values.get("month")),
               doi=normalize_doi(values.get("doi")), url=values.get("url"),
               arxiv_id=find_arxiv_id(values.get("eprint"), values.get("doi"), values.get("url"),
                                      values.get("journal"), values.get("arxivid")))


def latex_text(name: str, value: Any) -> Any:
    """A BibTeX value as plain text: `M{\\"u}ller` -> `Müller`, `\\&` -> `&`. A bare `%`
    or `&` is taken literally (exports write "100% open"; LaTeX would read a comment);
    links and identifiers are kept verbatim (`~` and `%20` are part of a URL)."""
    if isinstance(value, list):
        return [latex_text(name, v) for v in value]
    if not isinstance(value, str) or name in VERBATIM_FIELDS or not _LATEX_MARKUP.search(value):
        return value
    # Escapes and protective braces only, or an abstract: a regex. pylatexenc reads a
    # character at a time (~30 ms per abstract), and abstracts keep their LaTeX as the
    # listing abstracts do ("$\\alpha$", "T\\"ULU"), which search and quoting read as is.
    if name in RAW_LATEX_FIELDS or not _NEEDS_DECODER.search(value):
        return _SIMPLE_LATEX.sub(lambda m: m.group(1) or (" " if m.group(0) == "~" else ""), value)
    return _latex_decoder().latex_to_text(_BARE_SPECIAL.sub(r"\\\1", value))


@lru_cache(maxsize=1)  # bound: one decoder (~0.6 MB measured with tracemalloc)
def _latex_decoder() -> Any:
    from pylatexenc.latex2text import LatexNodes2Text

    return LatexNodes2Text()


def _first_line(text: str) -> str:
    return " ".join(text.split())[:200]


# ---------------------------------------------------------------- RIS


def parse_ris(text: str, parsed: ParsedLibrary) -> None:
    """Records are cut at `TY  -` / `ER  -` here, so that a broken one is skipped with
    its line (rispy drops a record without `ER` silently); each record is read by rispy."""
    import rispy

    start, record = 0, list[str]()
    for lineno, line in enumerate(text.split("\n"), 1):
        tag = RIS_TAG.match(line.rstrip())
        if tag and tag.group(1) == "TY":
            if record:
                _skip(parsed, start, "RIS record not closed by 'ER  -' before the next 'TY  -'")
            start, record = lineno, [line]
        elif tag and tag.group(1) == "ER":
            if not record:
                _skip(parsed, lineno, "'ER  -' without a 'TY  -' record before it")
                continue
            _ris_record(rispy.loads("\n".join([*record, "ER  - "])), parsed, start)
            record = []
        elif record:
            record.append(line)
        elif line.strip() and not RECORD_NUMBER.match(line.strip()):  # rispy writes "1." before each record
            _skip(parsed, lineno, f"text outside a 'TY  -' ... 'ER  -' record: {line.strip()[:60]!r}")
    if record:
        _skip(parsed, start, "RIS record not closed by 'ER  -' at the end of the file")


def _ris_record(records: list[dict[str, Any]], parsed: ParsedLibrary, line: int) -> None:
    if not records:
        _skip(parsed, line, "RIS record rispy cannot read")
        return
    r = records[0]
    urls = r.get("urls") or []
    date = str(r.get("date") or "").split("/")
    _entry(parsed, line, r.get("title") or r.get("primary_title") or r.get("translated_title"),
           key=r.get("id"), entry_type=r.get("type_of_reference"),
           abstract=r.get("abstract") or r.get("notes_abstract"),
           authors=(r.get("authors") or []) + (r.get("first_authors") or []),
           venue=r.get("secondary_title") or r.get("journal_name") or r.get("alternate_title3"),
           published=iso_date(r.get("year") or r.get("publication_year") or date[0], *date[1:3]),
           doi=normalize_doi(r.get("doi")), url=urls[0] if urls else None,
           arxiv_id=find_arxiv_id(r.get("doi"), *urls, r.get("journal_name"), *(r.get("notes") or [])))


# ---------------------------------------------------------------- CSL-JSON and JSON Lines


def parse_csl_json(text: str, parsed: ParsedLibrary) -> None:
    """A JSON array of CSL items (Zotero's and Mendeley's "CSL JSON" export)."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LibraryError(f"{parsed.path}:{exc.lineno}: not valid JSON ({exc.msg})") from exc
    if isinstance(items, dict) and isinstance(items.get("items"), list):
        items = items["items"]
    if not isinstance(items, list):
        raise LibraryError(f"{parsed.path}: expected a CSL-JSON array of items, found a JSON {type(items).__name__}")
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            _skip(parsed, i, f"item {i} is a JSON {type(item).__name__}, not an object")
            continue
        parts = ((item.get("issued") or {}).get("date-parts") or [[]]) if isinstance(item.get("issued"), dict) else [[]]
        first = parts[0] if parts and isinstance(parts[0], list) else []
        _entry(parsed, i, item.get("title"), key=item.get("id"), entry_type=item.get("type"),
               abstract=item.get("abstract"), authors=[_csl_name(a) for a in item.get("author") or []],
               venue=item.get("container-title"), published=iso_date(*first[:3]) if first else None,
               doi=normalize_doi(item.get("DOI")), url=item.get("URL"),
               arxiv_id=find_arxiv_id(item.get("DOI"), item.get("URL"), item.get("number")))


def _csl_name(name: Any) -> str:
    if not isinstance(name, dict):
        return str(name)
    if name.get("family"):
        return f"{name['family']}, {name['given']}" if name.get("given") else str(name["family"])
    return str(name.get("literal") or "")


def parse_jsonl(text: str, parsed: ParsedLibrary) -> None:
    """One object per line; a line that is not one is skipped with its number."""
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            _skip(parsed, lineno, f"not valid JSON ({exc.msg})")
            continue
        if not isinstance(item, dict):
            _skip(parsed, lineno, f"a JSON {type(item).__name__}, not an object")
            continue
        authors = item.get("authors") or []
        _entry(parsed, lineno, item.get("title"), key=item.get("id"), abstract=item.get("abstract"),
               authors=[authors] if isinstance(authors, str) else [_csl_name(a) for a in authors],
               venue=item.get("venue"), published=iso_date(*str(item.get("date") or item.get("year") or "").split("-")[:3]),
               doi=normalize_doi(item.get("doi")), url=item.get("url"),
               arxiv_id=find_arxiv_id(item.get("arxiv_id"), item.get("doi"), item.get("url")))
