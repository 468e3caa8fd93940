"""What the answer is built from: one record per retrieved paper (`citations.Source`),
measured once per question, plus the two question-wide signals abstention reads.
Focus (assistant/focus.py), abstention (assistant/abstain.py) and verification
(assistant/citations.py) read these records; nothing measures a paper twice."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from assistant.citations import Source
from assistant.focus import (COMPARE, Pick, asks_for_list, asks_for_recent, focus, introduced, introducer,
                             ranked_sentences, side_names)
from assistant.rerank import question_parts
from assistant.retrieve import Index, Ranking
from assistant.words import WordSupport


@dataclass(frozen=True)
class Evidence:
    """The numbered sources of one answer, and what abstention reads of the question as a whole."""

    sources: list[Source]
    paper_similarity: float = 0.0  # best whole-paper vector similarity of any paper
    keyword_top: float = 0.0  # best BM25 score of any paper
    # Abstention judged the first source (a question in a language the model reads):
    # it is cited even below the similarity floor, rather than a lower-ranked paper
    # nothing judged ("what is bffg?" quoted a paper on steps-per-second).
    judged: bool = False
    # Sides of a comparison no paper of the corpus is named by ("DDIM" in "Compare
    # DPM-Solver and DDIM"): the answer quotes abstracts that mention them and says so.
    unnamed: tuple[str, ...] = ()
    # The sources are every paper of a date range, not what a search found ("Which
    # papers were published in 2024?"): each is cited, with its best sentence.
    listing: bool = False

    @property
    def named(self) -> list[int]:
        """Source numbers of the papers the question names."""
        return [s.n for s in self.sources if s.named]

    def focus(self, question: str) -> list[Pick]:
        """The sources that answer and their sentences, best first (assistant/focus.py);
        a list of the latest papers on a subject puts the newest first (undated last)."""
        if self.listing:
            return [Pick(s.n, ranked_sentences(question, s)[:1]) for s in self.sources if s.sentences]
        picks = focus(question, self.sources, self.judged, self.unnamed)
        if asks_for_recent(question) and asks_for_list(question, len(self.named)):
            dates = {s.n: s.paper.published or "" for s in self.sources}
            picks.sort(key=lambda p: dates[p.n], reverse=True)
        return picks


def question_vector(index: Index, ranking: Ranking, query: str) -> np.ndarray:
    """The question's vector: dense retrieval's, or (keyword-only retrieval, which has
    none) embedded here, since similarities still need it."""
    return ranking.query_vector if ranking.query_vector is not None else index.dense.embed_query(query)


def gather(index: Index, ranking: Ranking, query: str, top_k: int, vector: np.ndarray | None = None) -> Evidence:
    """The records of the first `top_k` papers, reusing what retrieval read (sentence
    vectors, word support, part vectors) and measuring the rest. `vector`: the
    question's, when the caller has it already."""
    vector = question_vector(index, ranking, query) if vector is None else vector
    hits = ranking.hits[:top_k]
    wanted = [h.paper_id for h in hits]
    vectors = ranking.sentence_vectors
    if not all(pid in vectors for pid in wanted):
        vectors = index.dense.sentence_vectors(wanted)
    support = _word_support(index, query, ranking, wanted)
    parts = _part_similarities(index, query, ranking, {pid: vectors[pid] for pid in wanted})
    sources = [Source(n=n, paper=index.papers[h.paper_id], sentences=index.sentences[h.paper_id],
                      vectors=vectors[h.paper_id], similarities=(vectors[h.paper_id] @ vector).tolist(),
                      part_similarities=parts.get(h.paper_id, []), support=support[h.paper_id],
                      keyword=h.keyword, score=h.score, named=h.paper_id in ranking.named)
               for n, h in enumerate(hits, 1)]
    similarity = ranking.paper_similarity
    if similarity is None:  # keyword-only retrieval: one more Chroma query
        similarity = index.dense.paper_similarity(vector)
    return Evidence(sources, similarity, ranking.keyword_top, unnamed=_unnamed_sides(index, query, sources))


def _unnamed_sides(index: Index, query: str, sources: list[Source]) -> tuple[str, ...]:
    """The sides of a comparison that no paper of the corpus is named by and no source
    introduces (`Evidence.unnamed`); none for other questions."""
    names = side_names(query)
    if not names:
        return ()
    titles, sentences = {s.n: s.paper.title for s in sources}, {s.n: s.sentences for s in sources}
    return tuple(name for name in names if not index.named_papers(name)
                 and introducer(name, titles, sentences) is None and not introduced(name, sources))


def _word_support(index: Index, query: str, ranking: Ranking, paper_ids: list[str]) -> Mapping[str, WordSupport]:
    """Each paper's word support (assistant/words.py): what re-ranking computed, the rest
    (no re-ranking: keyword-only retrieval, a named paper) computed here."""
    missing = [index.papers[pid] for pid in paper_ids if pid not in ranking.word_support]
    if not missing:
        return ranking.word_support
    return {**ranking.word_support, **dict(zip((p.paper_id for p in missing), index.words.support(query, missing)))}


def _part_similarities(index: Index, query: str, ranking: Ranking,
                       vectors: Mapping[str, np.ndarray]) -> dict[str, list[float]]:
    """Each paper's best sentence similarity to each part of a comparison; none for
    other questions (only comparisons read them, assistant/focus.py)."""
    parts = question_parts(query)
    if len(parts) < 2 or not COMPARE.search(query):
        return {}
    part_vectors = ranking.part_vectors if ranking.part_vectors is not None else index.dense.encode(parts)
    return {pid: (rows @ part_vectors.T).max(axis=0).tolist() for pid, rows in vectors.items() if len(rows)}
