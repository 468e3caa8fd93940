"""Ranking papers for a question: dense (Chroma, sentence and paper units), keyword
(BM25) and their fusion, aggregated to papers, with name/acronym matching,
filters, and the signals abstention needs.

Fusion is weighted reciprocal rank fusion over the *full* paper rankings of both
retrievers (llama-index's QueryFusionRetriever fuses each retriever's top k
units, which loses papers whose evidence is spread over several sentences;
evals/reports compares the two).

The top 10 are then re-ordered by how well each paper covers every part of a long
question ("which quantized denoiser ... also stores ... and picks ..."): the
weakest part's best sentence similarity, so a paper that matches one clause
strongly but ignores another drops below one that matches them all. Last, the top
20 are re-ordered by word support (assistant/words.py): a paraphrase's words
("event-driven", "tap locations") have near neighbours among the words of the one
paper that does what was asked, not among its cluster's.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

from assistant.config import Settings
from assistant.corpus import corpus_files, load_corpus
from assistant.embed import Embedder, model_fingerprint
from assistant.index import (
    KEYWORD_DIR,
    IndexMissing,
    IndexProblem,
    Store,
    corpus_fingerprint,
    read_manifest,
    read_snapshot,
)
from assistant.keyword import KEYWORD_FORMAT, KeywordIndex
from assistant.models import Hit, Paper
from assistant.names import NameMatcher
from assistant.text import split_sentences
from assistant.words import WORDS_FILE, WordVectors

RetrieverName = Literal["hybrid", "dense", "bm25"]

NAME_BONUS = 1.0  # larger than any fused score: a named paper goes first
RERANK_DEPTH = 10  # papers re-ordered by question-part coverage
WORD_RERANK_DEPTH = 20  # papers re-ordered by word support (no store read: deeper is cheap)

# Where a question splits into parts: punctuation and the words that start a clause.
_PART_BREAK = re.compile(
    r"[,;:?!.()]|\s(?:and then|and|but|while|without|which|that|so that|by|using|with|where|whose|"
    r"instead of|rather than|then)\s",
    re.IGNORECASE,
)


def question_parts(query: str) -> list[str]:
    """The clauses of a question that say something (three words or more). One part
    means there is nothing to re-rank by."""
    return [part.strip() for part in _PART_BREAK.split(query) if part and len(part.split()) >= 3]


@dataclass
class Filters:
    date_from: str | None = None  # ISO date, inclusive; papers without a known year are excluded
    date_to: str | None = None
    source_file: str | None = None

    @classmethod
    def parse(cls, date_from: str | None = None, date_to: str | None = None,
              source_file: str | None = None) -> Filters | None:
        """What a user types in the CLI, the UI or the API: "2024", "2024-06" or
        "2024-06-01" mean the first day of that period as a lower bound and its last
        as an upper one. None when nothing is set; ValueError names a bad date."""
        lower, upper = _date_bound(date_from, "-01-01"), _date_bound(date_to, "-12-31")
        source = (source_file or "").strip() or None
        return cls(lower, upper, source) if (lower or upper or source) else None

    def active(self) -> bool:
        return bool(self.date_from or self.date_to or self.source_file)

    def accepts(self, paper: Paper) -> bool:
        if self.source_file and not any(self.source_file in o.file for o in paper.occurrences):
            return False
        if self.date_from or self.date_to:
            if not paper.published:
                return False
            # a library may date a paper by year or month alone: compare at its precision
            n = len(paper.published)
            if self.date_from and paper.published < self.date_from[:n]:
                return False
            if self.date_to and paper.published > self.date_to[:n]:
                return False
        return True


_DATE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")


def _date_bound(value: str | None, fill: str) -> str | None:
    """An ISO date from a year, month or day, completed with `fill` ("-12-31" is an
    upper bound for any month since dates compare as strings)."""
    text = (value or "").strip()
    if not text:
        return None
    if not _DATE.match(text):
        raise ValueError(f"The date {text!r} is not a date; use YYYY, YYYY-MM or YYYY-MM-DD.")
    return text + fill[len(text) - 4:] if len(text) < 10 else text


@dataclass
class Ranking:
    """Retrieval output: ranked hits plus the raw signals abstention and answering use."""

    hits: list[Hit]
    query_vector: np.ndarray | None
    named: list[str] = field(default_factory=list)  # paper ids the question names
    timings_ms: dict[str, float] = field(default_factory=dict)
    paper_similarity: float | None = None  # best whole-paper vector similarity (None: dense was not run)
    keyword_top: float = 0.0  # best BM25 score of any paper, whichever retriever ranked
    sentence_vectors: dict[str, np.ndarray] = field(default_factory=dict)  # fetched for re-ranking; reused by answering
    part_vectors: np.ndarray | None = None  # the question's parts (question_parts), when it has two or more
    # paper id -> (weakest, idf-weighted) word support, for the papers re-ranked by it; reused by answering
    word_support: dict[str, tuple[float, float]] = field(default_factory=dict)


def _damaged(settings: Settings, part: str, exc: BaseException) -> IndexProblem:
    state = "missing (built by an older version?)" if isinstance(exc, FileNotFoundError) else f"damaged ({type(exc).__name__})"
    return IndexProblem(f"The {part} in {settings.index_dir} is {state}. "
                        "Run `assistant index` to repair it (no paper is re-embedded).")


class Sentences(Mapping[str, list[str]]):
    """Each paper's abstract sentences, split when first asked for: splitting every
    abstract when the index opens took most of the opening time at 100k papers
    (docs/scale/README.md), and a question reads a few dozen papers."""

    def __init__(self, papers: dict[str, Paper]) -> None:
        self._papers = papers
        self._split: dict[str, list[str]] = {}  # bound: one entry per paper, about the abstracts' size

    def __getitem__(self, paper_id: str) -> list[str]:
        found = self._split.get(paper_id)
        if found is None:
            found = self._split[paper_id] = split_sentences(self._papers[paper_id].abstract)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._papers)

    def __len__(self) -> int:
        return len(self._papers)


class Index:
    """Everything the query path reads, loaded once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        manifest = read_manifest(settings.index_dir)
        if manifest is None or not (settings.index_dir / KEYWORD_DIR).is_dir():
            raise IndexMissing(
                f"No index found in {settings.index_dir}. Build it with `assistant index` "
                "(about a minute and a half on 2 cores)."
            )
        expected = model_fingerprint(settings.embed_model_path)
        if manifest.get("embed_model") != expected:
            raise IndexProblem(
                f"The index in {settings.index_dir} was built with {manifest.get('embed_model')}, "
                f"but the configured model is {expected}. Run `assistant index` to rebuild it."
            )
        if manifest.get("keyword_format") != KEYWORD_FORMAT:
            raise IndexProblem(
                f"The keyword index in {settings.index_dir} was written by an older version of the assistant. "
                "Run `assistant index` to rebuild it (no paper is re-embedded)."
            )
        self.manifest = manifest
        try:
            self.papers: dict[str, Paper] = {p.paper_id: p for p in read_snapshot(settings.index_dir)}
        except (OSError, ValueError, KeyError) as exc:
            raise _damaged(settings, "paper snapshot", exc) from exc
        self.sentences = Sentences(self.papers)
        try:  # vocabulary vectors for word support and the language check (assistant/words.py)
            self.words = WordVectors(settings.index_dir / WORDS_FILE, lambda texts: self.embedder.encode(texts))
        except Exception as exc:  # numpy's reader raises what it hits (BadZipFile on a truncated file)
            raise _damaged(settings, "word vectors file", exc) from exc
        self.store = Store(settings, create=False)
        self._names = NameMatcher(self.papers)
        self._corpus_stamp: tuple[tuple[str, int, int], ...] | None = None
        self._stale = False

    @cached_property
    def keyword(self) -> KeywordIndex:
        try:
            return KeywordIndex(self.settings.index_dir / KEYWORD_DIR)
        except Exception as exc:  # bm25s raises whatever its reader hits on a damaged file
            raise _damaged(self.settings, "keyword index", exc) from exc

    @cached_property
    def embedder(self) -> Embedder:
        from assistant.embed import get_embedder

        s = self.settings
        return get_embedder(s.embed_model_path, s.embed_max_tokens, s.embed_batch_size)

    def stale_notice(self) -> str | None:
        """Says so when the corpus on disk no longer matches what was indexed. The
        corpus is re-parsed only when a corpus file's size or mtime changed."""
        folder = self.settings.corpus_dir
        try:
            stamp = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in corpus_files(folder))
        except OSError:
            return None
        if stamp != self._corpus_stamp:
            try:
                current = corpus_fingerprint(load_corpus(folder).papers)
            except Exception:
                current = None
            self._corpus_stamp = stamp
            self._stale = current is not None and current != self.manifest.get("corpus_fingerprint")
        if self._stale:
            return "The corpus changed since the index was built; run `assistant index` to include the changes."
        return None

    # ------------------------------------------------------------ signals

    def named_papers(self, query: str) -> list[str]:
        """Papers the question names (assistant/names.py), longest name first."""
        return self._names.named(query)

    def embed_query(self, query: str) -> np.ndarray:
        vector: np.ndarray = self.embedder.encode([query])[0]
        return vector

    def rerank_by_parts(self, hits: list[Hit], part_vectors: np.ndarray) -> dict[str, np.ndarray]:
        """Re-orders the first RERANK_DEPTH hits by fused score + weight x coverage, where
        coverage is the lowest, over the question's parts, of the part's best sentence
        similarity in that paper. Tuned on evals core + hard tune (evals/README.md).
        Returns the sentence vectors it read, which answering reuses."""
        head = hits[:RERANK_DEPTH]
        vectors = self.sentence_vectors([h.paper_id for h in head])
        for hit in head:
            rows = vectors.get(hit.paper_id)
            if rows is not None and len(rows):
                hit.score += self.settings.part_coverage_weight * float((rows @ part_vectors.T).max(axis=0).min())
        head.sort(key=lambda h: -h.score)
        hits[: len(head)] = head
        return vectors

    def rerank_by_words(self, hits: list[Hit], query: str) -> dict[str, tuple[float, float]]:
        """Re-orders the first WORD_RERANK_DEPTH hits by fused score + weight x word support
        (assistant/words.py): each question word's nearest word in the paper, so the one
        paper of a cluster that speaks of every thing asked about rises above neighbours
        that share the cluster's sentences. Tuned on evals core + hard tune (evals/README.md).
        Returns the support it computed, by paper id, which answering reuses."""
        s = self.settings
        head = hits[:WORD_RERANK_DEPTH]
        support = dict(zip((h.paper_id for h in head), self.words.support(query, [self.papers[h.paper_id] for h in head])))
        for hit in head:
            weakest, weighted = support[hit.paper_id]
            hit.score += s.word_support_weight * (weighted + s.word_support_min_share * weakest)
        head.sort(key=lambda h: -h.score)
        hits[: len(head)] = head
        return support

    def dense_scores(self, vector: np.ndarray, n: int) -> tuple[dict[str, float], dict[str, list[tuple[int, float]]], float]:
        """Per paper: a dense score (best sentence, a share of the second best and of
        the paper vector's similarity; the shares are settings) and its sentences ranked
        by similarity; plus the best paper-vector similarity, an abstention signal."""
        s = self.settings
        # No count() to cap n_results: Chroma returns fewer hits when a collection is
        # smaller, and count() scans the collection (13 ms at 10k papers, linear in size).
        res = self.store.sentences.query(query_embeddings=[vector], n_results=n, include=["metadatas", "distances"])
        sent: dict[str, list[tuple[int, float]]] = {}
        for meta, dist in zip(res["metadatas"][0], res["distances"][0]):
            sent.setdefault(meta["paper_id"], []).append((int(meta["index"]), 1.0 - float(dist)))
        res = self.store.papers.query(query_embeddings=[vector], n_results=max(n // 2, 50), include=["metadatas", "distances"])
        whole = {m["paper_id"]: 1.0 - float(d) for m, d in zip(res["metadatas"][0], res["distances"][0])}
        floor = min(whole.values(), default=0.0)
        scores: dict[str, float] = {}
        for pid in set(sent) | set(whole):
            ranked = sent.get(pid, [])
            best = ranked[0][1] if ranked else 0.0
            second = ranked[1][1] if len(ranked) > 1 else best - 0.1
            scores[pid] = best + s.second_sentence_share * second + s.paper_unit_share * whole.get(pid, floor)
        return scores, sent, max(whole.values(), default=0.0)

    def paper_similarity(self, vector: np.ndarray) -> float:
        """Best whole-paper vector similarity, for rankings made without dense retrieval."""
        res = self.store.papers.query(query_embeddings=[vector], n_results=1, include=["distances"])
        return max((1.0 - float(d) for d in res["distances"][0]), default=0.0)

    def keyword_scores(self, query: str, n: int) -> dict[str, float]:
        """Per paper: its best BM25 unit score among the top `n` units (assistant/keyword.py)."""
        return self.keyword.best_per_paper(query, n)

    def sentence_vectors(self, paper_ids: list[str]) -> dict[str, np.ndarray]:
        """Stored sentence embeddings of some papers (one Chroma read), rows in abstract order."""
        ids = [f"{pid}#s{i}" for pid in paper_ids for i in range(len(self.sentences.get(pid, [])))]
        if not ids:
            return {}
        got = self.store.sentences.get(ids=ids, include=["embeddings"])
        by_id = dict(zip(got["ids"], got["embeddings"]))
        out: dict[str, np.ndarray] = {}
        for pid in paper_ids:
            n = len(self.sentences.get(pid, []))
            rows = [by_id.get(f"{pid}#s{i}") for i in range(n)]
            out[pid] = np.array([r if r is not None else np.zeros(384, dtype=np.float32) for r in rows], dtype=np.float32).reshape(n, -1)
        return out

    def paper_vector(self, paper_id: str) -> np.ndarray | None:
        got = self.store.papers.get(ids=[f"{paper_id}#p"], include=["embeddings"])
        return np.asarray(got["embeddings"][0]) if got["ids"] else None

    # ------------------------------------------------------------ ranking

    def search(self, query: str, k: int = 10, retriever: RetrieverName = "hybrid",
               filters: Filters | None = None) -> Ranking:
        t0 = time.perf_counter()
        filters = filters or Filters()
        pool = self.settings.dense_candidates * (3 if filters.active() else 1)
        dense: dict[str, float] = {}
        sent: dict[str, list[tuple[int, float]]] = {}
        vector = None
        paper_similarity = None
        timings: dict[str, float] = {}
        parts = question_parts(query) if self.settings.part_coverage_weight > 0 and retriever != "bm25" else []
        part_vectors = None
        if retriever in ("hybrid", "dense"):
            if len(parts) >= 2:  # one model call for the question and its parts
                encoded = self.embedder.encode([query] + parts)
                vector, part_vectors = encoded[0], encoded[1:]
            else:
                vector = self.embed_query(query)
            timings["embed"] = (time.perf_counter() - t0) * 1000
            dense, sent, paper_similarity = self.dense_scores(vector, pool)
            timings["dense"] = (time.perf_counter() - t0) * 1000 - timings["embed"]
        # Keyword scores are computed for every retriever (about 1 ms): abstention reads
        # the best of them whichever ranking is used.
        t1 = time.perf_counter()
        keyword = self.keyword_scores(query, pool)
        timings["keyword"] = (time.perf_counter() - t1) * 1000
        named = [pid for pid in self.named_papers(query) if pid in self.papers]
        fused = fuse(dense, keyword, retriever, self.settings.keyword_weight, self.settings.rrf_k)
        for rank, pid in enumerate(named):
            fused[pid] = fused.get(pid, 0.0) + NAME_BONUS - 0.01 * rank
        hits = self._hits(fused, sent, keyword, filters, max(k, WORD_RERANK_DEPTH))
        vectors: dict[str, np.ndarray] = {}
        if part_vectors is not None and not named:
            t1 = time.perf_counter()
            vectors = self.rerank_by_parts(hits, part_vectors)
            timings["rerank"] = (time.perf_counter() - t1) * 1000
        word_support: dict[str, tuple[float, float]] = {}
        if retriever != "bm25" and self.settings.word_support_weight > 0 and not named:
            t1 = time.perf_counter()
            word_support = self.rerank_by_words(hits, query)
            timings["words"] = (time.perf_counter() - t1) * 1000
        hits = hits[:k]
        timings["total"] = (time.perf_counter() - t0) * 1000
        return Ranking(hits=hits, query_vector=vector, named=named, timings_ms=timings,
                       paper_similarity=paper_similarity, keyword_top=max(keyword.values(), default=0.0),
                       sentence_vectors=vectors, part_vectors=part_vectors, word_support=word_support)

    def _hits(self, fused: dict[str, float], sent: dict[str, list[tuple[int, float]]], keyword: dict[str, float],
              filters: Filters, limit: int) -> list[Hit]:
        """The best `limit` papers by fused score that pass the filters, as hits."""
        hits: list[Hit] = []
        for pid in sorted(fused, key=lambda pid: -fused[pid]):
            paper = self.papers.get(pid)
            if paper is None or not filters.accepts(paper):
                continue
            best = sent.get(pid, [])
            hits.append(Hit(paper_id=pid, title=paper.title, score=fused[pid], dense=best[0][1] if best else 0.0,
                            keyword=keyword.get(pid, 0.0), best_sentences=best[:5]))
            if len(hits) >= limit:
                break
        return hits

    def related(self, paper_id: str, k: int = 5) -> list[Hit]:
        vector = self.paper_vector(paper_id)
        if vector is None:
            return []
        res = self.store.papers.query(query_embeddings=[vector], n_results=min(k + 1, len(self.papers)), include=["metadatas", "distances"])
        out = []
        for meta, dist in zip(res["metadatas"][0], res["distances"][0]):
            pid = meta["paper_id"]
            if pid != paper_id and pid in self.papers:
                out.append(Hit(paper_id=pid, title=self.papers[pid].title, score=1.0 - float(dist), dense=1.0 - float(dist)))
        return out[:k]


def fuse(dense: dict[str, float], keyword: dict[str, float], retriever: RetrieverName,
         keyword_weight: float = 0.4, rrf_k: int = 60) -> dict[str, float]:
    """Weighted reciprocal rank fusion over complete paper rankings (not each retriever's
    top k: a paper ranked 30th by both still gets credit from both)."""
    if retriever == "dense":
        return dict(dense)
    if retriever == "bm25":
        return dict(keyword)
    fused: dict[str, float] = {}
    for scores, weight in ((dense, 1.0), (keyword, keyword_weight)):
        for rank, pid in enumerate(sorted(scores, key=lambda p: -scores[p]), 1):
            fused[pid] = fused.get(pid, 0.0) + weight / (rrf_k + rank)
    return fused


# Bound: one Index per index folder and ranking settings (a server holds one; its
# largest parts are the word vectors, 12 MB, and the Chroma client); `reload` replaces it.
_indexes: dict[str, Index] = {}
_indexes_lock = threading.Lock()
# Settings the Index never reads. Every other setting is part of the cache key, so
# a new ranking setting gets its own Index without anyone remembering to add it.
_NOT_READ_BY_INDEX = frozenset({
    "top_k", "retriever", "abstain_model", "abstain_threshold", "support_threshold", "max_question_chars",
    "mode", "llm_base_url", "llm_api_key", "llm_model", "llm_timeout", "llm_retries", "llm_temperature",
    "llm_max_tokens", "llm_context_tokens", "host", "port", "auth", "concurrency", "shutdown_timeout",
    "malloc_arenas", "malloc_trim_interval",
})


def open_index(settings: Settings, reload: bool = False) -> Index:
    """One loaded index per (folder, store, ranking settings) in a process; `reload` after a re-index."""
    key = settings.model_dump_json(exclude=set(_NOT_READ_BY_INDEX))
    with _indexes_lock:
        if reload or key not in _indexes:
            _indexes[key] = Index(settings)
        return _indexes[key]

