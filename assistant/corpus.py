"""Parsing the paper-listing scrapes into `Paper` records.

Three layouts exist (see data/corpus/README.md): A (blank-separated entries),
B (A plus a metadata block after each abstract) and C (no blank lines at all,
with the `Subscribe` chrome glued onto the first title). One line-based parser
handles all three: it drops page chrome, recognises metadata blocks by their
`·` separator line, and takes a title to be a short line followed by a long
one. Anything else is reported with its file and line, never turned into a paper.

Beside the listings, the folder holds reference-library exports (BibTeX, RIS,
CSL-JSON, JSON Lines; assistant/library.py reads them). Listings are read first,
so a library entry for a listing paper (same DOI or arXiv id, else the same
normalised title) enriches that paper (authors, venue, DOI) and never replaces
its abstract; `also_in` remembers every source.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from assistant.files import atomic_path
from assistant.library import (
    LIBRARY_SUFFIXES,
    LibraryEntry,
    LibraryError,
    checked_bytes,
    is_library_file,
    parse_library,
)
from assistant.models import Occurrence, Paper
from assistant.text import URL

log = logging.getLogger(__name__)

HEADER_MARK = "Get trending papers in your email inbox"
CHROME = {
    "new",
    "Get trending papers in your email inbox!",
    "Get trending papers in your email inbox once a day!",
    "Subscribe",
    "Daily Papers",
    "byAK and the research community",
}
MAX_TITLE_CHARS = 300  # titles are 19-126 chars, abstracts 921-1918: any cut in between separates them
MIN_ABSTRACT_CHARS = 300
MAX_FILE_BYTES = 50_000_000

MONTHS = {m: i for i, m in enumerate(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1)}
AUTHORS_RE = re.compile(r"^\s*•\s*(\d+)\s+authors?\s*$")
# "Oct 10, 2024 2" / "Nov 25 2" / "Feb 18": the trailing integer is a counter, never a year.
DATE_RE = re.compile(r"^(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (?P<day>\d{1,2})(?:, (?P<year>\d{4}))?(?: (?P<counter>\d{1,3}))?$")
PAGE_DATE_RE = re.compile(r"^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{1,2}$")


class CorpusError(ValueError):
    """A corpus file that cannot be read as a listing; the message names file and line."""


@dataclass
class Entry:
    """One listing entry as it appears in one file, before duplicates are merged."""

    title: str
    abstract: str
    file: str
    line: int
    authors_count: int | None = None
    org: str | None = None
    date: str | None = None
    published: str | None = None
    counter: int | None = None
    page_date: str | None = None
    library: LibraryEntry | None = None  # what a reference library gave beside title and abstract


@dataclass
class ParsedFile:
    path: Path
    layout: str  # A, B, C for a listing; bibtex, ris, csl-json or jsonl for a library
    entries: list[Entry]
    warnings: list[str] = field(default_factory=list)


@dataclass
class Corpus:
    papers: list[Paper]
    files: list[ParsedFile]
    errors: list[str]  # files skipped as a whole, each message naming the file
    no_abstract: list[str] = field(default_factory=list)  # library entries not indexed: "file:line 'title'"

    @property
    def entry_count(self) -> int:
        return sum(len(f.entries) for f in self.files)

    @property
    def warnings(self) -> list[str]:
        return [w for f in self.files for w in f.warnings]

    def fingerprint(self) -> str:
        """Identifies the parsed content, so an index built from other data is detected."""
        digest = hashlib.sha256()
        for paper in sorted(self.papers, key=lambda p: p.paper_id):
            digest.update(f"{paper.paper_id}:{paper.content_hash()}\n".encode())
        return digest.hexdigest()[:16]


def normalize_ws(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").split())


def normalize_title(title: str) -> str:
    """Case-, accent- and punctuation-blind form of a title, used for ids and gold matching."""
    text = unicodedata.normalize("NFKD", title)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def paper_id_for(title: str) -> str:
    """Readable and stable: a slug of the first words plus a hash of the normalized title."""
    norm = normalize_title(title)
    slug = "-".join(norm.split()[:4])[:32].strip("-") or "paper"
    return f"{slug}-{hashlib.sha1(norm.encode()).hexdigest()[:6]}"


def extract_urls(text: str) -> list[str]:
    """URLs in an abstract, repaired: `https: //`, scheme-less github.com, trailing
    punctuation and braces, `.git` endings, and `x/{x/}` doubles collapse to one."""
    urls: list[str] = []
    for match in URL.finditer(text):
        url = re.sub(r"^(https?)\s*:\s*//", r"\1://", match.group(0), flags=re.IGNORECASE)
        if not url.lower().startswith("http"):
            url = "https://" + url
        url = url.rstrip(".,;:)]}'\"")
        while url.count("(") < url.count(")") and url.endswith(")"):
            url = url[:-1]
        if url.endswith(".git"):
            url = url[: -len(".git")]
        url = url.rstrip(".,;:")
        key = url.rstrip("/")
        if len(key) > len("https://") and key not in {u.rstrip("/") for u in urls}:
            urls.append(url)
    return urls


def _parse_date(match: re.Match[str]) -> tuple[str, str | None, int | None]:
    shown = f"{match['mon']} {match['day']}" + (f", {match['year']}" if match["year"] else "")
    published = None
    if match["year"]:
        try:
            published = dt.date(int(match["year"]), MONTHS[match["mon"]], int(match["day"])).isoformat()
        except ValueError:
            published = None
    counter = int(match["counter"]) if match["counter"] else None
    return shown, published, counter


def _read_lines(path: Path) -> list[str]:
    data = checked_bytes(path, MAX_FILE_BYTES, "a text listing", CorpusError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CorpusError(f"{path}:{line}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    if not text.strip():
        raise CorpusError(f"{path}: empty file")
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")


def detect_layout(lines: list[str], path: Path) -> str:
    """A, B or C (see module docstring); a file without the listing header is foreign."""
    head = [ln.strip() for ln in lines[:20]]
    if not any(ln.startswith(HEADER_MARK) for ln in head):
        first = next((i for i, ln in enumerate(lines, 1) if ln.strip()), 1)
        raise CorpusError(
            f"{path}:{first}: unrecognised layout: expected the listing header "
            f"'{HEADER_MARK}...' in the first lines"
        )
    if not any(not ln.strip() for ln in lines[:-1]):
        return "C"
    return "B" if any(ln.strip() == "·" for ln in lines) or "Daily Papers" in head else "A"


def parse_file(path: Path) -> ParsedFile:
    """Entries of one listing file. Raises CorpusError for an unreadable or foreign
    file; stray lines inside a recognised file become warnings with their line."""
    lines = _read_lines(path)
    layout = detect_layout(lines, path)
    name = path.name
    rows = [(i, ln.strip()) for i, ln in enumerate(lines, 1) if ln.strip()]
    parsed = ParsedFile(path=path, layout=layout, entries=[])
    page_date: str | None = None
    pos = 0
    while pos < len(rows):
        lineno, text = rows[pos]
        if text.startswith("Subscribe") and text != "Subscribe":
            text = text[len("Subscribe"):].strip()  # layout C glues the chrome onto the first title
        elif text in CHROME:
            pos += 1
            continue
        if not parsed.entries and page_date is None and PAGE_DATE_RE.match(text):
            page_date = text
            pos += 1
            continue
        if text == "·" or AUTHORS_RE.match(text) or (pos + 1 < len(rows) and rows[pos + 1][1] == "·"):
            pos = _parse_metadata(rows, pos, parsed)
            continue
        nxt = rows[pos + 1][1] if pos + 1 < len(rows) else ""
        if len(text) <= MAX_TITLE_CHARS and len(nxt) >= MIN_ABSTRACT_CHARS:
            parsed.entries.append(
                Entry(title=normalize_ws(text), abstract=normalize_ws(nxt), file=name, line=lineno, page_date=page_date)
            )
            pos += 2
            continue
        what = "title without an abstract after it" if len(text) <= MAX_TITLE_CHARS else "long line without a title"
        parsed.warnings.append(f"{path}:{lineno}: skipped {what}: {text[:60]!r}")
        pos += 1
    if not parsed.entries:
        raise CorpusError(f"{path}:1: no paper entries found in a {layout} layout file")
    return parsed


def _parse_metadata(rows: list[tuple[int, str]], pos: int, parsed: ParsedFile) -> int:
    """Reads an `authors-or-org / · / date` block and attaches it to the entry before it."""
    start_line = rows[pos][0]
    block: list[str] = []
    if rows[pos][1] != "·":
        block.append(rows[pos][1])  # authors count or organisation
        pos += 1
    if pos < len(rows) and rows[pos][1] == "·":
        pos += 1
        if pos < len(rows) and DATE_RE.match(rows[pos][1]):
            block.append(rows[pos][1])
            pos += 1
    if not parsed.entries:
        parsed.warnings.append(f"{parsed.path}:{start_line}: metadata block before any entry, skipped")
        return pos
    entry = parsed.entries[-1]
    for text in block:
        if m := AUTHORS_RE.match(text):
            entry.authors_count = int(m.group(1))
        elif m := DATE_RE.match(text):
            entry.date, entry.published, entry.counter = _parse_date(m)
        elif len(text) <= 80:
            entry.org = text
        else:
            parsed.warnings.append(f"{parsed.path}:{start_line}: unreadable metadata line {text[:60]!r}")
    return pos


def merge(entries: Iterable[Entry], no_abstract: list[str] | None = None) -> list[Paper]:
    """Duplicates become one paper that remembers every place; metadata missing from
    the first copy is taken from a later one. Listing copies match by normalised
    title; a library entry also by DOI or arXiv id. A library entry without an
    abstract only enriches a paper it matches; otherwise it is listed in `no_abstract`."""
    papers: dict[str, Paper] = {}
    keys: dict[str, str] = {}  # "doi:..." / "arxiv:..." -> paper id
    for e in entries:
        pid = paper_id_for(e.title)
        found = papers.get(pid) or papers.get(next((keys[k] for k in _match_keys(e) if k in keys), ""))
        if found is None and not e.abstract:
            if no_abstract is not None:
                no_abstract.append(f"{e.file}:{e.line} {e.title[:80]!r}")
            continue
        if found is None:
            found = papers[pid] = _new_paper(pid, e)
        else:
            _add_copy(found, e)
        _enrich(found, e.library)
        keys.update({k: found.paper_id for k in _match_keys(e)})
    return list(papers.values())


def _match_keys(e: Entry) -> list[str]:
    lib = e.library
    return [k for k in (lib and lib.doi and f"doi:{lib.doi}", lib and lib.arxiv_id and f"arxiv:{lib.arxiv_id}") if k]


def _new_paper(pid: str, e: Entry) -> Paper:
    lib_url = [e.library.url] if e.library and e.library.url else []
    return Paper(paper_id=pid, title=e.title, abstract=e.abstract, occurrences=[Occurrence(file=e.file, line=e.line)],
                 authors_count=e.authors_count, date=e.date, published=e.published, counter=e.counter, org=e.org,
                 page_date=e.page_date, urls=_unique(extract_urls(e.abstract) + lib_url))


def _add_copy(found: Paper, e: Entry) -> None:
    found.occurrences.append(Occurrence(file=e.file, line=e.line))
    found.also_in.append(f"{e.file}:{e.line}")
    if e.abstract and e.abstract != found.abstract and e.library is None:
        log.warning("%s:%d: duplicate of %r with a different abstract; keeping the first", e.file, e.line, e.title)
    for attr in ("authors_count", "date", "published", "counter", "org", "page_date"):
        if getattr(found, attr) is None and getattr(e, attr) is not None:
            setattr(found, attr, getattr(e, attr))


def _enrich(paper: Paper, lib: LibraryEntry | None) -> None:
    """Fills what the paper lacks from a library entry; what it has is kept."""
    if lib is None:
        return
    if not paper.authors and lib.authors:
        paper.authors = list(lib.authors)
        paper.authors_count = paper.authors_count or len(lib.authors)
    for attr, value in (("venue", lib.venue), ("doi", lib.doi), ("arxiv_id", lib.arxiv_id),
                        ("cite_key", lib.key), ("entry_type", lib.entry_type)):
        if getattr(paper, attr) is None and value:
            setattr(paper, attr, value)
    if lib.url and lib.url.rstrip("/") not in {u.rstrip("/") for u in paper.urls}:
        paper.urls.append(lib.url)


def _unique(urls: list[str]) -> list[str]:
    return list(dict.fromkeys(urls))


def corpus_files(corpus_dir: Path) -> list[Path]:
    """The files load_corpus reads, in its order: listings (*.txt) by name, then
    library files by name, so a library entry enriches a listing paper rather than
    the other way round."""
    listings = sorted(corpus_dir.glob("*.txt"))
    libraries = sorted(p for p in corpus_dir.iterdir() if p.is_file() and is_library_file(p))
    return listings + libraries


def library_file(path: Path) -> ParsedFile:
    """A library file as corpus entries. Raises CorpusError when it is refused."""
    try:
        parsed = parse_library(path)
    except LibraryError as exc:
        raise CorpusError(str(exc)) from exc
    entries = [Entry(title=e.title, abstract=e.abstract, file=path.name, line=e.line, published=e.published,
                     date=e.published, authors_count=len(e.authors) or None, library=e) for e in parsed.entries]
    return ParsedFile(path=path, layout=parsed.format, entries=entries, warnings=parsed.warnings)


def read_file(path: Path) -> ParsedFile:
    """Any corpus file: a listing by its .txt suffix, a library by its own."""
    if is_library_file(path):
        return library_file(path)
    if path.suffix.lower() == ".txt":
        return parse_file(path)
    raise CorpusError(f"{path}: unknown format {path.suffix or '(no suffix)'}; the corpus takes listings (.txt) "
                      f"and libraries ({', '.join(LIBRARY_SUFFIXES)}: BibTeX, RIS, CSL-JSON, JSON Lines)")


def add_files(paths: list[Path], corpus_dir: Path) -> list[str]:
    """Copies listing or library files into the corpus folder, each one atomically,
    after every one of them was read without error (CorpusError otherwise, and
    nothing is copied). A file already there with the same bytes is left alone; one
    with the same name and other bytes is replaced (a fresh export of the library);
    the unchanged one is not parsed here, so a no-op re-add parses it once, in the sync.
    Returns one line per file saying what happened."""
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        raise CorpusError("two of the files have the same name; the corpus folder holds one file per name")
    same = {p for p in paths if (corpus_dir / p.name).is_file() and (corpus_dir / p.name).read_bytes() == p.read_bytes()}
    parsed = {p: read_file(p) for p in paths if p not in same}  # raises before anything is copied
    corpus_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for path in paths:
        if path in same:  # read by the sync that follows, as every corpus file is
            done.append(f"{path.name}: already in the corpus, unchanged")
            continue
        target, one = corpus_dir / path.name, parsed[path]
        verb = "replaced" if target.exists() else "added"
        with atomic_path(target) as tmp:
            tmp.write_bytes(path.read_bytes())
        skipped = f", {len(one.warnings)} records skipped" if one.warnings else ""
        done.append(f"{path.name}: {verb}; {len(one.entries)} entries ({one.layout}){skipped}")
    return done


def load_corpus(corpus_dir: Path) -> Corpus:
    """Every listing and library file in the folder (`corpus_files`). A file that
    cannot be parsed is skipped with an error message rather than stopping the whole corpus."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: corpus folder not found (set ASSISTANT_CORPUS_DIR)")
    files: list[ParsedFile] = []
    errors: list[str] = []
    for path in corpus_files(corpus_dir):
        try:
            files.append(read_file(path))
        except CorpusError as exc:
            errors.append(str(exc))
            log.warning("skipping %s", exc)
    no_abstract: list[str] = []
    papers = merge((e for f in files for e in f.entries), no_abstract)
    return Corpus(papers=papers, files=files, errors=errors, no_abstract=no_abstract)
