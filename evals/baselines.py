"""llama-index out-of-the-box retrievers over the same papers, as baselines for
`assistant eval --retriever li-vector,li-bm25,li-fusion`.

What a user gets by following llama-index's starter docs, with no tuning:

- `li-vector`: one `Document` per paper (title + abstract, the title also in
  metadata), the default node parser, `VectorStoreIndex` in memory, embedded with
  the same packaged all-MiniLM-L6-v2 through `HuggingFaceEmbedding`. The default
  metadata mode embeds "title: ..." along with the text; that is the default, kept.
- `li-bm25`: `BM25Retriever.from_defaults` over those same nodes.
- `li-fusion`: `QueryFusionRetriever([vector, bm25], mode="reciprocal_rerank",
  num_queries=1, use_async=False)`.

The only departure from the defaults is `similarity_top_k=10` (the default is 2),
since the metrics look at the top 10. The vector index is built from the nodes
the default parser makes, which is what `VectorStoreIndex.from_documents` does
internally; building the nodes once lets `li-bm25` skip embedding. Retrieved nodes
map back to papers through their source document id (= paper id).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.config import Settings
from assistant.models import Hit, Paper

if TYPE_CHECKING:
    from assistant.pipeline import Assistant

NAMES = ("li-vector", "li-bm25", "li-fusion")
TOP_K = 10


def _offline_env() -> None:
    """llama-index fetches tokenizer and NLTK data on first use unless pointed at its bundled copies."""
    import llama_index.core

    static = Path(llama_index.core.__file__).parent / "_static"
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(static / "tiktoken_cache"))
    os.environ.setdefault("NLTK_DATA", str(static / "nltk_cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


class Baselines:
    """Builds each baseline on first use (the vector one embeds every paper, ~15-30 s on 2 cores)."""

    def __init__(self, settings: Settings, papers: list[Paper]) -> None:
        _offline_env()
        self.settings = settings
        self.papers = {p.paper_id: p for p in sorted(papers, key=lambda p: p.paper_id)}
        self._nodes: list[Any] | None = None
        self._retrievers: dict[str, Any] = {}
        self.build_seconds: dict[str, float] = {}

    def documents(self) -> list[Any]:
        from llama_index.core import Document

        return [Document(id_=p.paper_id, text=f"{p.title}\n\n{p.abstract}", metadata={"title": p.title})
                for p in self.papers.values()]

    @property
    def nodes(self) -> list[Any]:
        """The default node parser's output, shared by the vector and BM25 baselines."""
        if self._nodes is None:
            from llama_index.core import Settings as LISettings

            self._nodes = LISettings.node_parser.get_nodes_from_documents(self.documents())
        return self._nodes

    def _vector(self) -> Any:
        from llama_index.core import Settings as LISettings
        from llama_index.core import VectorStoreIndex
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding

        LISettings.llm = None
        LISettings.embed_model = HuggingFaceEmbedding(model_name=str(self.settings.embed_model_path), device="cpu")
        index = VectorStoreIndex(self.nodes)
        return index.as_retriever(similarity_top_k=TOP_K)

    def _bm25(self) -> Any:
        from llama_index.retrievers.bm25 import BM25Retriever

        return BM25Retriever.from_defaults(nodes=self.nodes, similarity_top_k=TOP_K)

    def _fusion(self) -> Any:
        from llama_index.core import Settings as LISettings
        from llama_index.core.retrievers import QueryFusionRetriever

        LISettings.llm = None
        return QueryFusionRetriever([self.retriever("li-vector"), self.retriever("li-bm25")],
                                    mode="reciprocal_rerank", num_queries=1, use_async=False, similarity_top_k=TOP_K)

    def retriever(self, name: str) -> Any:
        if name not in self._retrievers:
            build = {"li-vector": self._vector, "li-bm25": self._bm25, "li-fusion": self._fusion}.get(name)
            if build is None:
                raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(NAMES)}")
            t0 = time.perf_counter()
            self._retrievers[name] = build()
            self.build_seconds[name] = round(time.perf_counter() - t0, 1)
        return self._retrievers[name]

    def search(self, name: str, query: str, k: int = TOP_K) -> list[tuple[str, str, float]]:
        """(paper_id, title, score) of the top papers, a paper counted once at its best node."""
        results = self.retriever(name).retrieve(query)
        out: list[tuple[str, str, float]] = []
        seen: set[str] = set()
        for hit in results:
            pid = hit.node.ref_doc_id
            if pid in self.papers and pid not in seen:
                seen.add(pid)
                out.append((pid, self.papers[pid].title, float(hit.score or 0.0)))
        return out[:k]

    def describe(self) -> dict[str, Any]:
        """Recorded in the report so the baseline is reproducible."""
        return {"papers": len(self.papers), "nodes": len(self._nodes or []), "similarity_top_k": TOP_K,
                "document": "title\\n\\nabstract, metadata {title}", "node_parser": "llama-index default",
                "built": sorted(self._retrievers), "build_seconds": self.build_seconds}


def naive_answer(assistant: Assistant, question: str, papers: int = 2) -> tuple[str, list[Hit], list[Hit]]:
    """The answer a first attempt would give, as a baseline for the answer metrics:
    the same hybrid ranking as the assistant, then for each of the top `papers`
    papers the abstract sentence sharing the most stemmed content words with the
    question, each cited; never refuses. Returns (text, retrieved hits, cited hits)."""
    from assistant.focus import stems

    index = assistant.index
    hits = index.search(question, k=10).hits
    asked = stems(question)
    lines = []
    for n, hit in enumerate(hits[:papers], 1):
        sentences = index.sentences[hit.paper_id]
        best = max(sentences, key=lambda s: len(asked & stems(s)), default="")
        lines.append(f"{best} [{n}]")
    return " ".join(lines), hits, hits[:papers]
