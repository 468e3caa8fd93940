"""The assistant's retrieval as a llama-index retriever: used inside a real
llama-index query engine, its nodes are the papers our ranking puts first, with id,
title and the sentence that supports the query."""

from __future__ import annotations

import pytest
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import QueryBundle

from assistant.llama_index_retriever import AssistantRetriever

pytestmark = pytest.mark.slow


def test_nodes_are_our_ranking_with_the_supporting_sentence(assistant) -> None:
    question = "What does AdamP change in the optimizer step?"
    nodes = AssistantRetriever(assistant, top_k=3).retrieve(QueryBundle(question))
    ours = assistant.index.search(question, k=10).hits
    assert [n.node.metadata["paper_id"] for n in nodes] == [h.paper_id for h in ours[:3]]
    first = nodes[0].node
    paper = assistant.index.papers[first.metadata["paper_id"]]
    assert first.metadata["title"] == paper.title and paper.abstract in first.get_content()
    assert "radial component" in first.metadata["supporting_sentence"]
    assert first.metadata["supporting_sentence"] in paper.abstract
    assert nodes[0].score == pytest.approx(ours[0].score)


def test_inside_a_llama_index_query_engine(assistant) -> None:
    engine = RetrieverQueryEngine.from_args(AssistantRetriever(assistant, top_k=2), llm=MockLLM(max_tokens=16))
    response = engine.query("How can diffusion models be quantized to low bit widths?")
    assert len(response.source_nodes) == 2
    assert all("quantiz" in n.node.metadata["title"].lower() or "quantiz" in n.node.get_content().lower()
               for n in response.source_nodes)
    assert all(n.node.metadata["supporting_sentence"] for n in response.source_nodes)
    assert str(response)  # the mock model wrote something from the retrieved context


def test_bad_queries_get_the_assistants_message(assistant) -> None:
    from assistant.pipeline import QuestionError

    with pytest.raises(QuestionError, match="empty"):
        AssistantRetriever(assistant).retrieve(QueryBundle("   "))
