"""Dense retrieval: the question's vector against Chroma's two collections (sentences
and whole papers), the stored vectors answering reuses, and related papers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from assistant.config import RankingConfig, StoreConfig
from assistant.embed import Embedder, get_embedder, model_dim
from assistant.index import Store
from assistant.models import Hit, Paper


@dataclass(frozen=True)
class DenseScores:
    """Per paper: a dense score and its sentences ranked by similarity (index in the
    abstract, similarity); plus the best whole-paper similarity, an abstention signal."""

    scores: dict[str, float]
    sentences: dict[str, list[tuple[int, float]]]
    paper_similarity: float
    sentence_similarity: float = 0.0  # best sentence similarity of any paper


class DenseRetriever:
    """The embedder and the Chroma collections, as the query path reads them."""

    def __init__(self, store: Store, config: StoreConfig, ranking: RankingConfig,
                 papers: Mapping[str, Paper], sentences: Mapping[str, list[str]]) -> None:
        self.store, self.config, self.ranking = store, config, ranking
        self.papers, self.sentences = papers, sentences
        self.width = model_dim(config.embed_model_path)  # a stored vector's length

    @cached_property
    def embedder(self) -> Embedder:
        c = self.config
        return get_embedder(c.embed_model_path, c.embed_max_tokens, c.embed_batch_size)

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.embedder.encode(texts)

    def embed_query(self, query: str) -> np.ndarray:
        vector: np.ndarray = self.embedder.encode([query])[0]
        return vector

    def scores(self, vector: np.ndarray, n: int) -> DenseScores:
        """A paper's dense score is its best sentence's similarity plus shares (settings)
        of the second best and of the paper vector's similarity."""
        r = self.ranking
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
            scores[pid] = best + r.second_sentence_share * second + r.paper_unit_share * whole.get(pid, floor)
        return DenseScores(scores, sent, max(whole.values(), default=0.0),
                           max((ranked[0][1] for ranked in sent.values()), default=0.0))

    def paper_similarity(self, vector: np.ndarray) -> float:
        """Best whole-paper vector similarity, for rankings made without dense retrieval."""
        res = self.store.papers.query(query_embeddings=[vector], n_results=1, include=["distances"])
        return max((1.0 - float(d) for d in res["distances"][0]), default=0.0)

    def sentence_vectors(self, paper_ids: list[str]) -> dict[str, np.ndarray]:
        """Stored sentence embeddings of some papers (one Chroma read), rows in abstract
        order; a sentence missing from the store reads as a zero vector."""
        ids = [f"{pid}#s{i}" for pid in paper_ids for i in range(len(self.sentences.get(pid, [])))]
        if not ids:
            return {}
        got = self.store.sentences.get(ids=ids, include=["embeddings"])
        by_id = dict(zip(got["ids"], got["embeddings"]))
        out: dict[str, np.ndarray] = {}
        for pid in paper_ids:
            n = len(self.sentences.get(pid, []))
            rows = [by_id.get(f"{pid}#s{i}") for i in range(n)]
            out[pid] = np.array([r if r is not None else np.zeros(self.width, dtype=np.float32) for r in rows],
                                dtype=np.float32).reshape(n, -1)
        return out

    def paper_vector(self, paper_id: str) -> np.ndarray | None:
        got = self.store.papers.get(ids=[f"{paper_id}#p"], include=["embeddings"])
        return np.asarray(got["embeddings"][0]) if got["ids"] else None

    def related(self, paper_id: str, k: int = 5) -> list[Hit]:
        """The papers whose whole-paper vectors are nearest this one's."""
        vector = self.paper_vector(paper_id)
        if vector is None:
            return []
        res = self.store.papers.query(query_embeddings=[vector], n_results=min(k + 1, len(self.papers)),
                                      include=["metadatas", "distances"])
        out = []
        for meta, dist in zip(res["metadatas"][0], res["distances"][0]):
            pid = meta["paper_id"]
            if pid != paper_id and pid in self.papers:
                out.append(Hit(paper_id=pid, title=self.papers[pid].title, score=1.0 - float(dist), dense=1.0 - float(dist)))
        return out[:k]
