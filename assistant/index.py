"""The index: embedded units in Chroma, a BM25 keyword index and a manifest,
kept in sync with the corpus incrementally and safely.

Units. Every paper gives one unit per abstract sentence, so every sentence is
embedded and answers can quote the sentence that supports it, and one paper unit
(title + abstract). MiniLM reads only 256 tokens and 341 of 356 abstracts are
longer, so the paper vector is not the truncated abstract: it is the normalised
sum of the title's embedding and the mean of all sentence embeddings, which
covers the whole abstract and costs one short title encode instead of a
256-token one (the cold build embeds ~40% fewer tokens).

Crash safety. A paper's sentence units are written before its paper unit, and
the paper unit carries the content hash, so "paper unit present with the right
hash" means "paper complete". A sync killed mid-way leaves complete papers
answerable; the next sync deletes the orphaned sentences of incomplete papers
and redoes them. Local files (paper snapshot, keyword index, manifest) are
replaced atomically by rename, so readers see the old or the new, never half.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.config import Settings, StoreConfig
from assistant.corpus import Corpus, load_corpus
from assistant.embed import Embedder, get_embedder, model_dim, model_fingerprint
from assistant.files import atomic_write_json
from assistant.keyword import KEYWORD_FORMAT, build_keyword_index
from assistant.models import Paper
from assistant.text import split_sentences
from assistant.words import WORDS_FILE, build_word_vectors

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
UNITS_VERSION = 3  # bump when units_for/text.split_sentences change: every paper is re-embedded
MANIFEST = "manifest.json"
SNAPSHOT = "papers.json"
KEYWORD_DIR = "keyword"

@dataclass
class Unit:
    id: str
    paper_id: str
    kind: str  # "paper" or "sentence"
    index: int  # sentence index within the abstract; -1 for the paper unit
    text: str  # what is shown and quoted
    embed_text: str  # what is embedded

    def metadata(self, paper: Paper, content_hash: str) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "paper_id": self.paper_id,
            "kind": self.kind,
            "index": self.index,
            "title": paper.title,
            "date": paper.published or paper.date or "",
            "urls": " ".join(paper.urls),
            "files": ",".join(sorted({o.file for o in paper.occurrences})),
        }
        if self.kind == "paper":
            meta["content_hash"] = content_hash
        return meta


def units_for(paper: Paper) -> list[Unit]:
    sentences = split_sentences(paper.abstract)
    units = [
        Unit(f"{paper.paper_id}#s{i}", paper.paper_id, "sentence", i, s, s) for i, s in enumerate(sentences)
    ]
    units.append(Unit(f"{paper.paper_id}#p", paper.paper_id, "paper", -1, f"{paper.title}. {paper.abstract}", paper.title))
    return units


def paper_vectors(units: list[Unit], vectors: np.ndarray) -> np.ndarray:
    """Replaces each paper unit's (title) vector by title + mean of its sentences, normalised."""
    out = vectors.copy()
    sentence_rows = [i for i, u in enumerate(units) if u.kind == "sentence"]
    for i, unit in enumerate(units):
        if unit.kind == "paper" and sentence_rows:
            combined = vectors[i] + vectors[sentence_rows].mean(axis=0)
            out[i] = combined / max(float(np.linalg.norm(combined)), 1e-9)
    return out


class IndexProblem(RuntimeError):
    """Raised with a message that tells the user what to run."""


class IndexMissing(IndexProblem):
    pass


class IndexBusy(IndexProblem):
    pass


class StoreUnavailable(IndexProblem):
    """The Chroma server cannot be reached; the next call tries again."""


def _connection_error(exc: BaseException) -> bool:
    import httpx

    return isinstance(exc, (httpx.TransportError, ConnectionError))


def _unavailable(url: str, exc: BaseException) -> StoreUnavailable:
    return StoreUnavailable(f"The Chroma server at {url} is not reachable ({type(exc).__name__}: {str(exc)[:120]}). "
                            "Start it (`chroma run ...`) and try again.")


class _ServerCollection:
    """A collection of a Chroma server whose connection failures raise StoreUnavailable
    (a clear message, a 503 from the API) instead of a raw httpx error. The client
    reconnects by itself, so the first call after the server is back succeeds."""

    def __init__(self, collection: Any, url: str) -> None:
        self._collection, self._url = collection, url

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._collection, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except Exception as exc:
                if _connection_error(exc):
                    raise _unavailable(self._url, exc) from exc
                raise

        return call


# ---------------------------------------------------------------- Chroma


def chroma_client(settings: StoreConfig) -> Any:
    """Embedded on disk by default; a Chroma server when ASSISTANT_CHROMA_URL is set."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        from urllib.parse import urlparse

        url = urlparse(settings.chroma_url if "://" in settings.chroma_url else f"http://{settings.chroma_url}")
        try:
            return chromadb.HttpClient(
                host=url.hostname or "127.0.0.1",
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
        except Exception as exc:  # chromadb raises plain ValueError/ConnectError variants
            raise IndexProblem(f"Chroma server at {settings.chroma_url} is not reachable: {exc}") from exc
    path = settings.index_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


class Store:
    """The two Chroma collections (papers, sentences), created without an embedding
    function: Chroma's default one downloads a model, and we always pass vectors."""

    def __init__(self, settings: StoreConfig, create: bool = True) -> None:
        self.client = chroma_client(settings)
        self.model = model_fingerprint(settings.embed_model_path)
        self.names = (f"{settings.collection_prefix}-papers", f"{settings.collection_prefix}-sentences")
        self.rebuilt_reason: str | None = None
        if create:
            self.papers, self.sentences = (self._collection(n) for n in self.names)
        else:
            try:
                self.papers, self.sentences = (
                    self.client.get_collection(n, embedding_function=None) for n in self.names
                )
            except Exception as exc:
                if settings.chroma_url and _connection_error(exc):
                    raise _unavailable(settings.chroma_url, exc) from exc
                raise IndexMissing(
                    f"The vector store has no collections {self.names}. Run `assistant index` first."
                ) from exc
        if settings.chroma_url:
            self.papers, self.sentences = (_ServerCollection(c, settings.chroma_url) for c in (self.papers, self.sentences))

    def _collection(self, name: str) -> Any:
        meta = {"embed_model": self.model, "schema": SCHEMA_VERSION}
        col = self.client.get_or_create_collection(
            name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}, metadata=meta
        )
        found = {k: (col.metadata or {}).get(k) for k in meta}
        if found != meta:
            # Vectors from another model (or layout) must never be mixed with ours.
            self.rebuilt_reason = f"collection {name} was built with {found}, expected {meta}"
            log.warning("rebuilding: %s", self.rebuilt_reason)
            self.client.delete_collection(name)
            col = self.client.create_collection(
                name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}, metadata=meta
            )
        return col

    def _all(self, col: Any, include: list[str]) -> dict[str, list[Any]]:
        """Paged `get`, so a large collection is never fetched in one response."""
        out: dict[str, list[Any]] = {"ids": [], "metadatas": []}
        offset, page = 0, 5000
        while True:
            got = col.get(include=include, limit=page, offset=offset)
            out["ids"].extend(got["ids"])
            out["metadatas"].extend(got.get("metadatas") or [])
            if len(got["ids"]) < page:
                return out
            offset += page

    def complete_papers(self) -> dict[str, dict[str, Any]]:
        got = self._all(self.papers, ["metadatas"])
        return {m["paper_id"]: m for m in got["metadatas"]}

    def sentence_paper_ids(self) -> set[str]:
        got = self._all(self.sentences, ["metadatas"])
        return {m["paper_id"] for m in got["metadatas"]}

    def delete_papers(self, paper_ids: list[str]) -> None:
        for start in range(0, len(paper_ids), 200):
            chunk = paper_ids[start : start + 200]
            where = {"paper_id": {"$in": chunk}}
            self.papers.delete(where=where)  # paper unit first: the paper stops counting as complete
            self.sentences.delete(where=where)

    def write(self, batch: list[tuple[Paper, str, list[Unit]]], vectors: Any) -> None:
        """Writes a batch of papers: all sentence units first, then the paper units
        that mark each paper complete (see the module docstring)."""
        rows: dict[str, list[tuple[Unit, Any, dict[str, Any]]]] = {"sentence": [], "paper": []}
        offset = 0
        for paper, content_hash, units in batch:
            for unit, vector in zip(units, vectors[offset : offset + len(units)]):
                rows[unit.kind].append((unit, vector, unit.metadata(paper, content_hash)))
            offset += len(units)
        for kind, col in (("sentence", self.sentences), ("paper", self.papers)):
            if rows[kind]:
                col.upsert(
                    ids=[u.id for u, _, _ in rows[kind]],
                    embeddings=[v for _, v, _ in rows[kind]],  # texts live in the paper snapshot, not here
                    metadatas=[m for _, _, m in rows[kind]],
                )

    def counts(self) -> tuple[int, int]:
        return self.papers.count(), self.sentences.count()


# ---------------------------------------------------------------- local files


def read_manifest(index_dir: Path) -> dict[str, Any] | None:
    path = index_dir / MANIFEST
    if not path.exists():
        return None
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return manifest
    except (OSError, ValueError):
        return None  # a damaged manifest means "rebuild the local files", never a crash


def read_snapshot(index_dir: Path) -> list[Paper]:
    data = json.loads((index_dir / SNAPSHOT).read_text(encoding="utf-8"))
    return [Paper.model_validate(p) for p in data["papers"]]


@contextlib.contextmanager
def index_lock(index_dir: Path, wait: float = 600.0, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """One writer at a time: a second `assistant index` waits (up to `wait` s), then refuses."""
    index_dir.mkdir(parents=True, exist_ok=True)
    path = index_dir / ".lock"
    with open(path, "a+") as fh:
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and on_wait:
                    fh.seek(0)
                    on_wait(f"another `assistant index` (pid {fh.read().strip() or '?'}) is running; waiting for it")
                    told = True
                if time.monotonic() > deadline:
                    raise IndexBusy(f"the index at {index_dir} stayed locked for {wait:.0f} s; try again later") from None
                time.sleep(0.2)
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ---------------------------------------------------------------- sync


@dataclass
class SyncReport:
    papers: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # orphaned sentences of interrupted papers
    kept_from_bad_files: list[str] = field(default_factory=list)
    units_embedded: int = 0
    keyword_rebuilt: bool = False
    rebuilt_reason: str | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    no_abstract: list[str] = field(default_factory=list)  # library entries not indexed, "file:line 'title'"
    seconds: float = 0.0
    embed_seconds: float = 0.0
    store_seconds: float = 0.0  # Chroma deletes and writes
    keyword_seconds: float = 0.0  # BM25 build (tokenize, index, persist)
    words_embedded: int = 0  # vocabulary words embedded for word support (assistant/words.py)
    words_seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.deleted or self.repaired or self.keyword_rebuilt)


ProgressFactory = Callable[[int, str], Any]


def sync(settings: Settings, progress: ProgressFactory | None = None, rebuild: bool = False,
         on_wait: Callable[[str], None] | None = None, embedder: Embedder | None = None) -> SyncReport:
    """Brings Chroma, the keyword index and the manifest in line with the corpus,
    embedding only papers whose content hash changed. `embedder` (anything with
    `name` and `encode`) replaces the configured model; only the scale benchmark
    passes one (a cache in front of the same model, see evals/bench/scale.py)."""
    start = time.perf_counter()
    with index_lock(settings.index_dir, on_wait=on_wait):
        report = _sync_locked(settings, progress, rebuild, embedder)
    report.seconds = time.perf_counter() - start
    return report


def _open_store(settings: Settings, rebuild: bool) -> Store:
    if rebuild:
        _drop_store(settings)
    try:
        return Store(settings.store_config)
    except IndexProblem:
        raise
    except Exception as exc:
        if settings.chroma_url:
            raise IndexProblem(f"Chroma server at {settings.chroma_url} failed: {exc}") from exc
        # The embedded store cannot be opened: keep the damaged copy aside and rebuild from the corpus.
        damaged = settings.index_dir / f"chroma.damaged-{int(time.time())}"
        log.warning("embedded Chroma at %s cannot be opened (%s); moved to %s and rebuilding", settings.index_dir / "chroma", exc, damaged)
        os.replace(settings.index_dir / "chroma", damaged)
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient.clear_system_cache()  # chromadb caches the broken client per path
        store = Store(settings.store_config)
        store.rebuilt_reason = f"damaged store moved to {damaged.name}: {exc}"
        return store


def _drop_store(settings: Settings) -> None:
    if settings.chroma_url:
        client = chroma_client(settings.store_config)
        for name in (f"{settings.collection_prefix}-papers", f"{settings.collection_prefix}-sentences"):
            with contextlib.suppress(Exception):
                client.delete_collection(name)
    else:
        shutil.rmtree(settings.index_dir / "chroma", ignore_errors=True)


def _sync_locked(settings: Settings, progress: ProgressFactory | None, rebuild: bool,
                 embedder: Embedder | None = None) -> SyncReport:
    report = SyncReport()
    store = _open_store(settings, rebuild)
    report.rebuilt_reason = store.rebuilt_reason
    todo, hashes, fingerprint = _plan(settings, store, report, progress, embedder)
    t0 = time.perf_counter()
    store.delete_papers(report.deleted + report.updated + report.repaired)
    report.store_seconds += time.perf_counter() - t0
    if todo:
        _embed_and_write(settings, store, todo, hashes, report, progress, embedder)

    n_papers, n_sentences = store.counts()
    report.papers = n_papers
    atomic_write_json(
        settings.index_dir / MANIFEST,
        {
            "schema": SCHEMA_VERSION,
            "keyword_format": KEYWORD_FORMAT,
            "embed_model": store.model,
            "dim": model_dim(settings.embed_model_path),
            "corpus_fingerprint": fingerprint,
            "papers": n_papers,
            "sentences": n_sentences,
            "store": settings.chroma_url or str(settings.index_dir / "chroma"),
            "collections": list(store.names),
            "skipped_files": report.errors,
            "local_files": _local_digests(settings.index_dir),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )
    return report


def _plan(settings: Settings, store: Store, report: SyncReport, progress: ProgressFactory | None,
          embedder: Embedder | None) -> tuple[list[Paper], dict[str, str], str]:
    """Compares the corpus with the store (into `report`), rewrites the local files if
    anything changed, and returns only what embedding needs: the papers to embed, their
    content hashes and the corpus fingerprint. The rest of the parsed corpus is freed
    here, before Chroma's in-memory vector index grows."""
    corpus = load_corpus(settings.corpus_dir)
    report.errors = list(corpus.errors)
    report.warnings = corpus.warnings
    report.no_abstract = list(corpus.no_abstract)
    desired = {p.paper_id: p for p in corpus.papers}
    hashes = {pid: f"{p.content_hash()}-u{UNITS_VERSION}" for pid, p in desired.items()}
    complete = store.complete_papers()
    bad_files = {Path(e.split(":", 1)[0]).name for e in corpus.errors}

    # Papers whose every source file failed to parse this time are kept, not deleted:
    # a damaged file must never silently drop indexed papers.
    kept = {
        pid
        for pid, meta in complete.items()
        if pid not in desired and bad_files and set(meta.get("files", "").split(",")) <= bad_files
    }
    report.kept_from_bad_files = sorted(kept)
    report.deleted = sorted(pid for pid in complete if pid not in desired and pid not in kept)
    report.updated = sorted(pid for pid, meta in complete.items() if pid in desired and meta.get("content_hash") != hashes[pid])
    report.added = sorted(pid for pid in desired if pid not in complete)
    report.repaired = sorted(store.sentence_paper_ids() - set(complete))

    old_snapshot = _old_snapshot(settings.index_dir) if kept else {}
    papers = list(desired.values()) + [old_snapshot[pid] for pid in sorted(kept) if pid in old_snapshot]
    papers.sort(key=lambda p: (p.occurrences[0].file, p.occurrences[0].line))
    fingerprint = corpus_fingerprint(papers)
    # The local files (snapshot, keyword index, word vectors) come from the corpus alone,
    # so they are written before Chroma is touched: the keyword build then never shares
    # the process's memory with an embedded Chroma's in-memory vector index (docs/scale).
    # A sync stopped while embedding leaves papers that BM25 finds and Chroma does not
    # yet hold; retrieval reads them from the snapshot, and the next sync redoes both.
    if report.changed or not _local_files_current(settings.index_dir, fingerprint):
        _write_local_files(settings, store, papers, report, progress, embedder)
    todo = report.updated + report.added
    return [desired[pid] for pid in todo], {pid: hashes[pid] for pid in todo}, fingerprint


def _local_files_current(index_dir: Path, fingerprint: str) -> bool:
    """True when the snapshot, keyword index and word vectors on disk are the ones the
    manifest vouches for and describe this corpus."""
    manifest = read_manifest(index_dir)
    if manifest is None or manifest.get("corpus_fingerprint") != fingerprint:
        return False
    if manifest.get("keyword_format") != KEYWORD_FORMAT:
        return False
    if not all((index_dir / name).exists() for name in (KEYWORD_DIR, SNAPSHOT, WORDS_FILE)):
        return False
    # older manifests have no digests; a truncated, edited or missing file changes them
    return "local_files" not in manifest or manifest["local_files"] == _local_digests(index_dir)


def _write_local_files(settings: Settings, store: Store, papers: list[Paper], report: SyncReport,
                       progress: ProgressFactory | None, embedder: Embedder | None) -> None:
    atomic_write_json(settings.index_dir / SNAPSHOT, {"papers": [p.model_dump() for p in papers]})
    report.keyword_rebuilt = True
    t0 = time.perf_counter()
    build_keyword_index(((u.paper_id, _keyword_text(p, u)) for p in papers for u in units_for(p)),
                        settings.index_dir / KEYWORD_DIR)
    report.keyword_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    embedder = embedder or get_embedder(settings.embed_model_path, settings.embed_max_tokens,
                                        settings.embed_batch_size)
    report.words_embedded = build_word_vectors(papers, embedder.encode, store.model,
                                               settings.index_dir / WORDS_FILE, progress)
    report.words_seconds = time.perf_counter() - t0


def _keyword_text(paper: Paper, unit: Unit) -> str:
    """BM25 reads each sentence, and for the paper unit the title twice and the
    abstract (a title word weighs like a repeated abstract word)."""
    return f"{paper.title}. {paper.title}. {paper.abstract}" if unit.kind == "paper" else unit.text


def _local_digests(index_dir: Path) -> dict[str, str]:
    """Digests of the paper snapshot, the word vectors and every keyword-index file, kept
    in the manifest so that a damaged local file is found and rebuilt by the next sync."""
    files = [index_dir / SNAPSHOT, index_dir / WORDS_FILE, *sorted((index_dir / KEYWORD_DIR).glob("*"))]
    return {p.relative_to(index_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
            for p in files if p.is_file()}


def corpus_fingerprint(papers: list[Paper]) -> str:
    """What the manifest records to tell a changed corpus (retrieve.py compares it)."""
    return Corpus(papers=papers, files=[], errors=[]).fingerprint()


def _old_snapshot(index_dir: Path) -> dict[str, Paper]:
    try:
        return {p.paper_id: p for p in read_snapshot(index_dir)}
    except (OSError, ValueError, KeyError):
        return {}


def _embed_and_write(settings: Settings, store: Store, todo: list[Paper], hashes: dict[str, str],
                     report: SyncReport, progress: ProgressFactory | None, embedder: Embedder | None = None) -> None:
    """Embeds and writes `todo` in rounds, emptying the list as it goes."""
    if embedder is None:
        embedder = get_embedder(settings.embed_model_path, settings.embed_max_tokens, settings.embed_batch_size)
    if embedder.name != store.model:
        raise IndexProblem(f"embedding model changed while indexing ({embedder.name} != {store.model})")
    bar = progress(len(todo), "Embedding papers") if progress else None
    todo.reverse()  # taken from the end as written, so each paper is freed once it is in Chroma
    while todo:
        batch = [todo.pop() for _ in range(min(settings.index_round_papers, len(todo)))]
        units = [units_for(p) for p in batch]
        t0 = time.perf_counter()
        flat = embedder.encode([u.embed_text for us in units for u in us])
        report.embed_seconds += time.perf_counter() - t0
        report.units_embedded += len(flat)
        parts, offset = [], 0
        for us in units:
            parts.append(paper_vectors(us, flat[offset : offset + len(us)]))
            offset += len(us)
        vectors = np.concatenate(parts)
        t0 = time.perf_counter()
        store.write([(p, hashes[p.paper_id], us) for p, us in zip(batch, units)], vectors)
        report.store_seconds += time.perf_counter() - t0
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
