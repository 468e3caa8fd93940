"""The re-rankers and question parts (assistant/rerank.py), on hand-made hits: no index."""

from __future__ import annotations

import numpy as np

from assistant.config import Settings
from assistant.models import Hit
from assistant.rerank import RERANK_DEPTH, WORD_RERANK_DEPTH, by_parts, by_words, question_parts
from assistant.words import WordSupport


def test_question_parts_are_its_clauses_that_say_something() -> None:
    question = ("For vision-language assistants with many images in the prompt, which method shrinks the "
                "stored attention state by favouring text entries and merging evicted pairs back in?")
    assert question_parts(question) == [
        "For vision-language assistants",
        "many images in the prompt",
        "method shrinks the stored attention state",
        "favouring text entries",
        "merging evicted pairs back in",
    ]
    # One part (the common case for short questions): nothing to re-rank by.
    assert question_parts("How can diffusion models be quantized to low bit widths?") == [
        "How can diffusion models be quantized to low bit widths"]
    assert question_parts("Spiking nets, or SNNs?") == []  # fragments under three words say nothing


def hits(n: int) -> list[Hit]:
    return [Hit(paper_id=f"p{i}", title=f"Paper {i}", score=1.0 - 0.01 * i) for i in range(n)]


def test_part_coverage_lifts_the_paper_whose_weakest_part_is_best_covered() -> None:
    ranked = hits(RERANK_DEPTH + 5)
    parts = np.eye(2, dtype=np.float32)  # two parts, orthogonal
    # p0 matches part one only; p3 has a sentence for each part.
    vectors = {h.paper_id: np.zeros((1, 2), dtype=np.float32) for h in ranked[:RERANK_DEPTH]}
    vectors["p0"] = np.array([[1.0, 0.0]], dtype=np.float32)
    vectors["p3"] = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    out = by_parts(ranked, vectors, parts, weight=0.5)
    assert out[0].paper_id == "p3" and out[0].score == ranked[3].score + 0.5
    assert [h.paper_id for h in out[RERANK_DEPTH:]] == [h.paper_id for h in ranked[RERANK_DEPTH:]]  # the tail stays
    assert ranked[3].score == 1.0 - 0.03 and [h.paper_id for h in ranked][:2] == ["p0", "p1"]  # input untouched


def test_word_support_re_orders_the_top_twenty_only() -> None:
    ranked = hits(WORD_RERANK_DEPTH + 3)
    config = Settings(word_support_weight=1.0, word_support_min_share=0.5).ranking
    support = {h.paper_id: WordSupport(0.0, 0.0, {}) for h in ranked[:WORD_RERANK_DEPTH]}
    support["p19"] = WordSupport(1.0, 1.0, {})  # last of the head: +1 x (1 + 0.5 x 1) = +1.5
    out = by_words(ranked, support, config)
    assert out[0].paper_id == "p19" and abs(out[0].score - (ranked[19].score + 1.5)) < 1e-12
    assert [h.paper_id for h in out[1:WORD_RERANK_DEPTH]] == [f"p{i}" for i in range(19)]  # ties keep their order
    assert out[WORD_RERANK_DEPTH:] == ranked[WORD_RERANK_DEPTH:]
