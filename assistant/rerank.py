"""The two re-rankers that re-order the head of a fused ranking (assistant/retrieve.py).

The top 10 are re-ordered by how well each paper covers every part of a long
question ("which quantized denoiser ... also stores ... and picks ..."): the
weakest part's best sentence similarity, so a paper that matches one clause
strongly but ignores another drops below one that matches them all. Then the top
20 are re-ordered by word support (assistant/words.py): a paraphrase's words
("event-driven", "tap locations") have near neighbours among the words of the one
paper that does what was asked, not among its cluster's. Both weights were tuned on
evals core + hard tune (evals/README.md).

Each takes the hits and what was measured of their papers and returns new hits; the
measurements stay with the caller, which answering reuses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from assistant.config import RankingConfig
from assistant.models import Hit
from assistant.words import WordSupport

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


def _reordered(hits: list[Hit], depth: int, bonus: Mapping[str, float]) -> list[Hit]:
    """The first `depth` hits with their bonus added to the score, re-sorted (ties keep
    their order); the rest as they were."""
    head = [h.model_copy(update={"score": h.score + bonus[h.paper_id]}) if h.paper_id in bonus else h
            for h in hits[:depth]]
    return sorted(head, key=lambda h: -h.score) + hits[depth:]


def by_parts(hits: list[Hit], vectors: Mapping[str, np.ndarray], part_vectors: np.ndarray,
             weight: float) -> list[Hit]:
    """Fused score + weight x coverage for the first RERANK_DEPTH hits, where coverage is
    the lowest, over the question's parts, of the part's best sentence similarity in
    that paper (`vectors`: each paper's stored sentence vectors)."""
    bonus = {pid: weight * float((rows @ part_vectors.T).max(axis=0).min())
             for pid, rows in vectors.items() if len(rows)}
    return _reordered(hits, RERANK_DEPTH, bonus)


def by_words(hits: list[Hit], support: Mapping[str, WordSupport], config: RankingConfig) -> list[Hit]:
    """Fused score + weight x word support for the first WORD_RERANK_DEPTH hits: each
    question word's nearest word in the paper, so the one paper of a cluster that
    speaks of every thing asked about rises above neighbours that share the cluster's
    sentences."""
    bonus = {pid: config.word_support_weight * (s.weighted + config.word_support_min_share * s.weakest)
             for pid, s in support.items()}
    return _reordered(hits, WORD_RERANK_DEPTH, bonus)
