"""Our BM25 scoring against the library's: `retrieve.bm25_scores` replaces bm25s's
scoring loop for speed (docs/scale/README.md), so it must rank exactly as bm25s
does, on every evaluation question, over the real index."""

from __future__ import annotations

import json

import numpy as np
import pytest
from llama_index.core.schema import QueryBundle

from assistant.config import PROJECT_ROOT, Settings
from assistant.retrieve import bm25_scores, open_index

pytestmark = pytest.mark.slow

QUESTION_FILES = ["core.jsonl", "hard.jsonl", "heldout.jsonl"]


def questions() -> list[str]:
    folder = PROJECT_ROOT / "evals" / "questions"
    return [json.loads(line)["question"] for name in QUESTION_FILES
            for line in (folder / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def test_unit_scores_equal_bm25s(full_index: Settings) -> None:
    import bm25s

    retriever = open_index(full_index).bm25
    for q in questions()[:60]:
        tokens = bm25s.tokenize(q, stemmer=retriever.stemmer, token_pattern=retriever.token_pattern,
                                return_ids=False, show_progress=False)[0]
        ids = retriever.bm25.get_tokens_ids(tokens)
        if ids:
            assert np.allclose(bm25_scores(retriever.bm25, ids), retriever.bm25.get_scores_from_ids(ids), atol=1e-5), q


def test_keyword_ranking_matches_the_llama_index_retriever(full_index: Settings) -> None:
    """Same papers with the same scores as BM25Retriever's top 200 units; the only
    allowed difference is which of several units tied at the cut gets in."""
    index = open_index(full_index)
    for q in questions():
        index.bm25.similarity_top_k = 200
        nodes = index.bm25.retrieve(QueryBundle(q))
        theirs: dict[str, float] = {}
        for node in nodes:
            pid = node.node.metadata["paper_id"]
            theirs[pid] = max(theirs.get(pid, 0.0), float(node.score or 0.0))
        theirs = {pid: s for pid, s in theirs.items() if s > 0}
        cut = min((float(n.score or 0.0) for n in nodes), default=0.0)
        ours = index.keyword_scores(q, 200)
        assert ours == index.keyword_scores(q, 200), "deterministic"
        for pid in set(ours) & set(theirs):
            assert ours[pid] == pytest.approx(theirs[pid], abs=1e-5), q
        for pid in set(ours) ^ set(theirs):
            assert ours.get(pid, theirs.get(pid)) == pytest.approx(cut, abs=1e-5), f"{q}: {pid} is not a tie at the cut"


def test_a_query_with_no_known_word_has_no_keyword_scores(full_index: Settings) -> None:
    assert open_index(full_index).keyword_scores("zxqv wqpj", 200) == {}
