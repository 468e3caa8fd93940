"""The per-paper records of one answer (assistant/evidence.py), gathered on the real
index: what retrieval measured is reused, the rest measured once, the ranking left as it was."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import numpy as np
import pytest

from assistant.evidence import gather
from assistant.pipeline import Assistant

LONG_QUESTION = ("For vision-language assistants with many images in the prompt, which method shrinks the stored "
                 "attention state by favouring text entries and merging evicted pairs back in?")


@pytest.mark.slow
def test_the_records_reuse_what_retrieval_read(assistant: Assistant, monkeypatch) -> None:
    index = assistant.index
    ranking = index.search(LONG_QUESTION, k=10)
    assert ranking.sentence_vectors and ranking.word_support and ranking.query_vector is not None

    def no_second_read(*args, **kwargs):
        raise AssertionError("measured twice")

    monkeypatch.setattr(index.dense, "sentence_vectors", no_second_read)
    monkeypatch.setattr(index.words, "support", no_second_read)
    evidence = gather(index, ranking, LONG_QUESTION, 5)
    assert [s.n for s in evidence.sources] == [1, 2, 3, 4, 5]
    for source, hit in zip(evidence.sources, ranking.hits):
        assert source.paper.paper_id == hit.paper_id and (source.score, source.keyword) == (hit.score, hit.keyword)
        assert source.vectors is ranking.sentence_vectors[hit.paper_id]
        assert source.similarities == pytest.approx((source.vectors @ ranking.query_vector).tolist())
        assert source.support is ranking.word_support[hit.paper_id]
        assert not source.named and not source.part_similarities  # not a comparison
    assert evidence.paper_similarity == ranking.paper_similarity and evidence.keyword_top == ranking.keyword_top


@pytest.mark.slow
def test_keyword_only_retrieval_gets_its_question_vector_without_changing_the_ranking(assistant: Assistant) -> None:
    index = assistant.index
    question = "Which optimizer removes the radial component of the momentum update?"
    ranking = index.search(question, k=10, retriever="bm25")
    assert ranking.query_vector is None and ranking.paper_similarity is None and not ranking.word_support
    evidence = gather(index, ranking, question, 3)
    top = evidence.sources[0]
    assert len(top.similarities) == len(top.sentences) and top.best > 0.3
    assert top.support is not None and set(top.support.per_word) >= {"optimizer", "radial"}
    assert 0.3 < evidence.paper_similarity <= 1.0
    assert ranking.query_vector is None  # the ranking is read, never written
    with pytest.raises(FrozenInstanceError):
        ranking.query_vector = np.zeros(3)


@pytest.mark.slow
def test_a_comparison_measures_each_part_for_every_paper(assistant: Assistant) -> None:
    question = "How do ReMax and RTO differ in how they optimize language models from human feedback?"
    index = assistant.index
    ranking = index.search(question, k=10)
    evidence = gather(index, ranking, question, 5)
    assert all(len(s.part_similarities) >= 2 for s in evidence.sources if len(s.sentences))
