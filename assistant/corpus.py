"""Parsing the paper-listing scrapes into `Paper` records.

Three layouts exist (see data/corpus/README.md): A (blank-separated entries),
B (A plus a metadata block after each abstract) and C (no blank lines at all,
with the `Subscribe` chrome glued onto the first title). One line-based parser
handles all three: it drops page chrome, recognises metadata blocks by their
`·` separator line, and takes a title to be a short line followed by a long
one. Anything else is reported with its file and line, never turned into a paper.
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

from assistant.models import Occurrence, Paper

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


@dataclass
class ParsedFile:
    path: Path
    layout: str
    entries: list[Entry]
    warnings: list[str] = field(default_factory=list)


@dataclass
class Corpus:
    papers: list[Paper]
    files: list[ParsedFile]
    errors: list[str]  # files skipped as a whole, each message naming the file

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


URL_RE = re.compile(r"https?\s*:\s*//[^\s{}]+|(?<![\w/.@-])github\.com/[^\s{}]+", re.IGNORECASE)


def extract_urls(text: str) -> list[str]:
    """URLs in an abstract, repaired: `https: //`, scheme-less github.com, trailing
    punctuation and braces, `.git` endings, and `x/{x/}` doubles collapse to one."""
    urls: list[str] = []
    for match in URL_RE.finditer(text):
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
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read: {exc.strerror}") from exc
    if size == 0:
        raise CorpusError(f"{path}: empty file")
    if size > MAX_FILE_BYTES:
        raise CorpusError(f"{path}: {size} bytes is larger than a listing file can be ({MAX_FILE_BYTES})")
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise CorpusError(f"{path}:1: binary data (NUL bytes), not a text listing")
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


def merge(entries: Iterable[Entry]) -> list[Paper]:
    """Duplicates (same normalized title) become one paper that remembers every place;
    metadata missing from the first copy is taken from a later one."""
    papers: dict[str, Paper] = {}
    for e in entries:
        pid = paper_id_for(e.title)
        found = papers.get(pid)
        if found is None:
            papers[pid] = Paper(
                paper_id=pid,
                title=e.title,
                abstract=e.abstract,
                occurrences=[Occurrence(file=e.file, line=e.line)],
                authors_count=e.authors_count,
                date=e.date,
                published=e.published,
                counter=e.counter,
                org=e.org,
                page_date=e.page_date,
                urls=extract_urls(e.abstract),
            )
            continue
        found.occurrences.append(Occurrence(file=e.file, line=e.line))
        if e.abstract != found.abstract:
            log.warning("%s:%d: duplicate of %r with a different abstract; keeping the first", e.file, e.line, e.title)
        for attr in ("authors_count", "date", "published", "counter", "org", "page_date"):
            if getattr(found, attr) is None and getattr(e, attr) is not None:
                setattr(found, attr, getattr(e, attr))
    return list(papers.values())


def load_corpus(corpus_dir: Path) -> Corpus:
    """Every *.txt listing in the folder, in name order. A file that cannot be parsed
    is skipped with an error message rather than stopping the whole corpus."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"{corpus_dir}: corpus folder not found (set ASSISTANT_CORPUS_DIR)")
    files: list[ParsedFile] = []
    errors: list[str] = []
    for path in sorted(corpus_dir.glob("*.txt")):
        try:
            files.append(parse_file(path))
        except CorpusError as exc:
            errors.append(str(exc))
            log.warning("skipping %s", exc)
    papers = merge(e for f in files for e in f.entries)
    return Corpus(papers=papers, files=files, errors=errors)
