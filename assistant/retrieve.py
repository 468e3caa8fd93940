"""Ranking papers for a question: dense retrieval (assistant/dense.py, sentence and
paper units) and keyword retrieval (BM25, assistant/keyword.py) fused, aggregated to
papers, named papers first, filters, then the head re-ranked (assistant/rerank.py),
with the signals abstention and answering need.

Fusion is weighted reciprocal rank fusion over the *full* paper rankings of both
retrievers (llama-index's QueryFusionRetriever fuses each retriever's top k
units, which loses papers whose evidence is spread over several sentences;
evals/reports compares the two).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import numpy as np

from assistant import rerank
from assistant.config import IndexConfig, Settings
from assistant.dense import DenseRetriever, DenseScores
from assistant.embed import model_words
from assistant.index import Store
from assistant.index_files import IndexFiles
from assistant.keyword import KeywordIndex
from assistant.models import Hit, Paper
from assistant.names import Abbreviations, NameMatcher
from assistant.rerank import RERANK_DEPTH, WORD_RERANK_DEPTH, question_parts
from assistant.words import WordSupport, WordVectors

RetrieverName = Literal["hybrid", "dense", "bm25"]

NAME_BONUS = 1.0  # larger than any fused score: a named paper goes first


@dataclass
class Filters:
    date_from: str | None = None  # ISO date, inclusive; papers without a known year are excluded
    date_to: str | None = None
    source_file: str | None = None
    exclude: tuple[str, ...] = ()  # papers whose title or abstract mention one of these are left out

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
        return self.dated() or bool(self.source_file) or bool(self.exclude)

    def dated(self) -> bool:
        """Whether a date bound is set (only papers whose listing gives a year pass it)."""
        return bool(self.date_from or self.date_to)

    def accepts(self, paper: Paper) -> bool:
        if self.source_file and not any(self.source_file in o.file for o in paper.occurrences):
            return False
        if self.exclude and any(mentions(paper, term) for term in self.exclude):
            return False
        if self.dated():
            if not paper.published:
                return False
            # a library may date a paper by year or month alone: compare at its precision
            n = len(paper.published)
            if self.date_from and paper.published < self.date_from[:n]:
                return False
            if self.date_to and paper.published > self.date_to[:n]:
                return False
        return True


_YEAR = r"((?:19|20)\d\d)"
# "published in 2024", "from 2023", "since 2022", "after 2021", "before 2024", "between
# 2022 and 2024", "from 2022 to 2024": a year after a word that makes it a date bound.
# "at NeurIPS 2023" or "IMO 2022" name an event, not when a paper appeared.
_YEAR_PHRASE = re.compile(
    rf"(?:\b(?:published|released|written|appeared|came out|dated)\s+)?\b(?P<op>between|from|since|after|before|until|in|"
    rf"during)\s+(?:the\s+year\s+)?{_YEAR}(?:\s*(?:and|to|-|–)\s*{_YEAR})?\b"
    r"(?!\s+(?:benchmarks?|competitions?|challenges?|editions?|versions?|datasets?|olympiads?|problems?|shared))", re.I)


@dataclass(frozen=True)
class DatePhrase:
    """A date bound a question states ("papers on diffusion from 2023"): the filter it
    means, the question without it (what is searched), and the words as typed."""

    filters: Filters
    rest: str
    said: str


def date_phrase(question: str) -> DatePhrase | None:
    """The first year phrase of a question as a date filter (`_YEAR_PHRASE`), or None."""
    m = _YEAR_PHRASE.search(question)
    if m is None:
        return None
    op, first, last = m.group("op").lower(), int(m.group(2)), m.group(3)
    if last is not None:
        low, high = (first, int(last)) if op in ("between", "from") else (None, None)
    else:
        low, high = {"since": (first, None), "after": (first + 1, None), "before": (None, first - 1),
                     "until": (None, first)}.get(op, (first, first))
    if low is None and high is None:
        return None
    filters = Filters(f"{low}-01-01" if low else None, f"{high}-12-31" if high else None)
    return DatePhrase(filters, _without(question, m.start(), m.end()), m.group(0).strip())


def _without(question: str, start: int, end: int) -> str:
    """The question less the words it states a filter with: what is searched."""
    return re.sub(r"\s+([?.!,])", r"\1", re.sub(r"\s{2,}", " ", question[:start] + question[end:])).strip()


def date_notice(dated: DatePhrase, papers: Iterable[Paper]) -> str:
    """What a date read from the question does: only dated papers can pass it, and the
    corpus's listings date few of them."""
    papers = list(papers)
    in_range = sum(dated.filters.accepts(p) for p in papers)
    have = sum(bool(p.published) for p in papers)
    return (f"Read “{dated.said}” as a date filter: {in_range} of the {len(papers)} papers are dated within it "
            f"(the listings date {have}; undated papers are left out).")


# "Which diffusion papers don't use transformers?": the papers that never mention the
# thing, not those that use it most. The subject must be papers or methods, so a
# question describing one method ("so that developers do not have to configure ...")
# keeps its words; "instead of" and "rather than" describe, and are left alone, and so
# do "need" and "require": a method that needs no training data says so in its abstract.
_STOP_WHAT = r"(?:for|in|on|to|and|or|with|as|but|while|that|which|at|from|by|of)"
_EXCLUSION = re.compile(
    r"\b(?P<subject>papers|works|studies|methods|approaches|models|ones)\s+(?P<clause>(?:that\s+|which\s+)?"
    r"(?P<neg>don't|do\s+not|doesn't|does\s+not|never)\s+(?:use|rely\s+on|involve|build\s+on)\s+"
    r"(?:any\s+|a\s+|an\s+|the\s+)?)(?P<what>[\w-]+(?:\s+(?!" + _STOP_WHAT + r"\b)[\w-]+){0,2})", re.I)


@dataclass(frozen=True)
class Exclusion:
    """A thing a question asks papers not to use: the term, the question without the
    clause (what is searched), and the words as typed."""

    what: str
    rest: str
    said: str


def exclusion_phrase(question: str, known: Callable[[str], bool] = lambda term: True) -> Exclusion | None:
    """"... papers that don't use transformers" as an exclusion (`_EXCLUSION`), or
    None. The term is the longest run of up to three words after the verb that
    `known` accepts (a phrase the corpus uses: "reinforcement learning", but
    "attention" alone in "papers that do not use attention model long sequences")."""
    m = _EXCLUSION.search(question)
    if m is None:
        return None
    words = m.group("what").split()
    what = next((" ".join(words[:n]) for n in range(len(words), 1, -1) if known(" ".join(words[:n]))), words[0])
    end = m.start("what") + len(what)
    return Exclusion(what, _without(question, m.start("clause"), end), question[m.start("neg"):end])


def mentions(paper: Paper, term: str) -> bool:
    """Whether a paper's title or abstract uses a term, its plural or a compound of it
    ("Transformer-based")."""
    return _mention_pattern(term).search(f"{paper.title} {paper.abstract}") is not None


@lru_cache(maxsize=256)  # an exclusion's term is read against every paper, several times per question
def _mention_pattern(term: str) -> re.Pattern[str]:
    pattern = r"(?<![\w-])" + r"\s+".join(map(re.escape, term.split())).removesuffix("s") + r"s?(?![a-z])"
    return re.compile(pattern, re.IGNORECASE)


def exclusion_notice(excluded: Exclusion, papers: Iterable[Paper]) -> str:
    """What an exclusion read from the question does, and how many papers it leaves out."""
    papers = list(papers)
    out = sum(mentions(p, excluded.what) for p in papers)
    return (f"Read “{excluded.said}” as leaving out the papers that mention “{excluded.what}”: "
            f"{out} of the {len(papers)} do.")


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


@dataclass(frozen=True, eq=False)
class Ranking:
    """Retrieval output, read-only: ranked hits plus what retrieval measured on the way,
    which abstention and answering reuse rather than measure again."""

    hits: list[Hit]
    query_vector: np.ndarray | None  # None: keyword-only retrieval embeds nothing
    named: list[str] = field(default_factory=list)  # paper ids the question names
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    paper_similarity: float | None = None  # best whole-paper vector similarity (None: dense was not run)
    keyword_top: float = 0.0  # best BM25 score of any paper, whichever retriever ranked
    sentence_top: float | None = None  # best sentence similarity of any paper (None: dense was not run)
    sentence_vectors: Mapping[str, np.ndarray] = field(default_factory=dict)  # read for re-ranking by parts
    part_vectors: np.ndarray | None = None  # the question's parts (question_parts), when it has two or more
    word_support: Mapping[str, WordSupport] = field(default_factory=dict)  # of the papers re-ranked by it


class Index:
    """A loaded index, one per `IndexConfig` in a process (`open_index`): its files,
    dense and keyword retrieval, name matching, and the ranking that fuses and
    re-ranks them (`search`)."""

    def __init__(self, config: IndexConfig) -> None:
        self.config = config
        self.files = IndexFiles(config.store, lambda texts: self.dense.encode(texts))
        self.manifest, self.papers, self.sentences = self.files.manifest, self.files.papers, self.files.sentences
        self.words: WordVectors = self.files.words
        self.store = Store(config.store, create=False)
        self.dense = DenseRetriever(self.store, config.store, config.ranking, self.papers, self.sentences)
        self._names = NameMatcher(self.papers, model_words(config.store.embed_model_path))
        self.abbreviations = Abbreviations(self.papers.values())

    @property
    def keyword(self) -> KeywordIndex:
        return self.files.keyword

    def keyword_scores(self, query: str, n: int) -> dict[str, float]:
        """Keyword retrieval: per paper, its best BM25 unit score among the top `n` units
        (assistant/keyword.py)."""
        return self.keyword.best_per_paper(query, n)

    def named_papers(self, query: str) -> list[str]:
        """Papers the question names (assistant/names.py), longest name first."""
        return self._names.named(query)

    def search(self, query: str, k: int = 10, retriever: RetrieverName = "hybrid",
               filters: Filters | None = None) -> Ranking:
        """The first `k` papers: dense and keyword scores fused, named papers first, the
        filters applied, then (no paper named) the head re-ranked by question-part
        coverage and word support. What was measured on the way comes with them."""
        t0, r = time.perf_counter(), self.config.ranking
        filters = filters or Filters()
        pool = r.dense_candidates * (3 if filters.active() else 1)
        timings: dict[str, float] = {}
        vector: np.ndarray | None = None
        part_vectors: np.ndarray | None = None
        dense: DenseScores | None = None
        if retriever in ("hybrid", "dense"):
            vector, part_vectors = self._embed(query)
            timings["embed"] = (time.perf_counter() - t0) * 1000
            dense = self.dense.scores(vector, pool)
            timings["dense"] = (time.perf_counter() - t0) * 1000 - timings["embed"]
        # Keyword scores are computed for every retriever (about 1 ms): abstention reads
        # the best of them whichever ranking is used.
        t1 = time.perf_counter()
        keyword = own = self.keyword_scores(query, pool)
        if (expanded := self.abbreviations.expand(query)) != query:
            # ranked with both spellings of its acronyms; abstention reads the question's
            # own words (the long forms' extra terms lifted near misses past it)
            keyword = self.keyword_scores(expanded, pool)
        timings["keyword"] = (time.perf_counter() - t1) * 1000
        named = [pid for pid in self.named_papers(query) if pid in self.papers]
        fused = fuse(dense.scores if dense else {}, keyword, retriever, r.keyword_weight, r.rrf_k)
        for rank, pid in enumerate(named):
            fused[pid] = fused.get(pid, 0.0) + NAME_BONUS - 0.01 * rank
        hits = self._hits(fused, dense, keyword, filters, max(k, WORD_RERANK_DEPTH))
        vectors: dict[str, np.ndarray] = {}
        support: dict[str, WordSupport] = {}
        if not named:
            hits, vectors, support = self._rerank(query, hits, part_vectors, retriever != "bm25", timings)
        timings["total"] = (time.perf_counter() - t0) * 1000
        return Ranking(hits=hits[:k], query_vector=vector, named=named, timings_ms=timings,
                       paper_similarity=dense.paper_similarity if dense else None,
                       keyword_top=max(own.values(), default=0.0),
                       sentence_top=dense.sentence_similarity if dense else None,
                       sentence_vectors=vectors, part_vectors=part_vectors, word_support=support)

    def _embed(self, query: str) -> tuple[np.ndarray, np.ndarray | None]:
        """The question's vector, and its parts' when part coverage re-ranks it (one model call)."""
        parts = question_parts(query) if self.config.ranking.part_coverage_weight > 0 else []
        if len(parts) >= 2:
            encoded = self.dense.encode([query] + parts)
            return encoded[0], encoded[1:]
        return self.dense.embed_query(query), None

    def _hits(self, fused: dict[str, float], dense: DenseScores | None, keyword: dict[str, float],
              filters: Filters, n: int) -> list[Hit]:
        """The best `n` papers by fused score that pass the filters."""
        sent = dense.sentences if dense else {}
        hits: list[Hit] = []
        for pid in sorted(fused, key=lambda pid: -fused[pid]):
            paper = self.papers.get(pid)
            if paper is None or not filters.accepts(paper):
                continue
            best = sent.get(pid, [])
            hits.append(Hit(paper_id=pid, title=paper.title, score=fused[pid], dense=best[0][1] if best else 0.0,
                            keyword=keyword.get(pid, 0.0), best_sentences=best[:5]))
            if len(hits) >= n:
                break
        return hits

    def _rerank(self, query: str, hits: list[Hit], part_vectors: np.ndarray | None, by_words: bool,
                timings: dict[str, float]) -> tuple[list[Hit], dict[str, np.ndarray], dict[str, WordSupport]]:
        """The hits re-ranked (assistant/rerank.py), with the sentence vectors and the word
        support that took, which answering reuses."""
        r = self.config.ranking
        vectors: dict[str, np.ndarray] = {}
        support: dict[str, WordSupport] = {}
        if part_vectors is not None:
            t1 = time.perf_counter()
            vectors = self.dense.sentence_vectors([h.paper_id for h in hits[:RERANK_DEPTH]])
            hits = rerank.by_parts(hits, vectors, part_vectors, r.part_coverage_weight)
            timings["rerank"] = (time.perf_counter() - t1) * 1000
        if by_words and r.word_support_weight > 0:
            t1 = time.perf_counter()
            head = hits[:WORD_RERANK_DEPTH]
            support = dict(zip((h.paper_id for h in head), self.words.support(query, [self.papers[h.paper_id] for h in head])))
            hits = rerank.by_words(hits, support, r)
            timings["words"] = (time.perf_counter() - t1) * 1000
        return hits, vectors, support


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


# Bound: one Index per index configuration (a server holds one; its largest parts are
# the word vectors, 12 MB, and the Chroma client); `reload` replaces it.
_indexes: dict[IndexConfig, Index] = {}
_indexes_lock = threading.Lock()


def open_index(settings: Settings, reload: bool = False) -> Index:
    """One loaded index per `IndexConfig` (what an index reads: its files and its
    ranking knobs) in a process; `reload` after a re-index."""
    key = settings.index_config
    with _indexes_lock:
        if reload or key not in _indexes:
            _indexes[key] = Index(key)
        return _indexes[key]
