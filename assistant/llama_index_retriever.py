"""The assistant's retrieval as a llama-index retriever, for llama-index users who
want its ranking (hybrid dense + BM25 with the re-ranking, filters and name
matching) inside their own query engines and agents:

    from assistant.llama_index_retriever import AssistantRetriever
    engine = RetrieverQueryEngine.from_args(AssistantRetriever(), llm=...)

Each node is one paper: the text is its title and abstract, the metadata its id,
title, date, link and the abstract sentence that best supports the query (what the
assistant would quote). Needs the `llama-index` extra; nothing else in the runtime
imports llama-index."""

from __future__ import annotations

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from assistant.config import Settings
from assistant.evidence import gather
from assistant.pipeline import Assistant
from assistant.retrieve import Filters, RetrieverName


class AssistantRetriever(BaseRetriever):
    """`top_k` papers per query, scored by the assistant's fused ranking."""

    def __init__(self, assistant: Assistant | None = None, settings: Settings | None = None, top_k: int = 5,
                 retriever: RetrieverName | None = None, filters: Filters | None = None) -> None:
        super().__init__()
        self.assistant = assistant or Assistant(settings)
        self.top_k = top_k
        self.retriever = retriever
        self.filters = filters

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        query = self.assistant.clean_question(query_bundle.query_str)
        index = self.assistant.index
        ranking = index.search(query, k=max(self.top_k, 10), retriever=self.retriever or self.assistant.settings.retriever,
                               filters=self.filters)
        evidence = gather(index, ranking, query, self.top_k)
        nodes = []
        for source, hit in zip(evidence.sources, ranking.hits):
            sims = source.similarities
            best = max(range(len(sims)), key=sims.__getitem__) if sims else None
            paper = source.paper
            metadata = {"paper_id": paper.paper_id, "title": paper.title, "date": paper.published or paper.date,
                        "url": paper.url, "supporting_sentence": source.sentences[best] if best is not None else None}
            node = TextNode(id_=paper.paper_id, text=f"{paper.title}\n\n{paper.abstract}", metadata=metadata,
                            excluded_embed_metadata_keys=list(metadata), excluded_llm_metadata_keys=["paper_id", "url"])
            nodes.append(NodeWithScore(node=node, score=hit.score))
        return nodes
