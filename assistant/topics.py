"""The corpus map: where each paper sits, which topic it belongs to and what each
topic is called. Computed once per index (the cache `<index_dir>/topics.json` is
keyed by the manifest's corpus fingerprint, the embedding model and the collection,
so it is recomputed exactly when papers change) and read by the map tab,
`GET /api/topics` and `assistant stats`.

Layout. A 2-D PCA keeps the corpus's broad directions but puts unrelated papers on
top of each other (its 10 nearest neighbours are poorly kept); t-SNE keeps them
(docs/scale/README.md, "Corpus map", has the measured trustworthiness and times).
Above `TSNE_MAX_PAPERS` t-SNE's cost grows past what an index build should pay, so
it is fitted on a fixed random sample and every other paper is put at the
similarity-weighted mean of its nearest sampled papers.

Topics. k-means on the 2-D layout, so a topic is one region of the map and its
colour is never scattered over other regions; every paper gets a topic (HDBSCAN
would leave "noise" papers without one). Each topic is named by class-based
TF-IDF (as BERTopic does) over titles and abstracts: terms that many of the topic's
papers use and few papers elsewhere do. Counting papers rather than occurrences
keeps one paper that repeats its own acronym from naming a whole topic.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.config import Settings
from assistant.models import Paper
from assistant.text import TERM, URL
from assistant.text import words as text_words

log = logging.getLogger(__name__)

TOPICS_FILE = "topics.json"
TOPICS_VERSION = 2  # bump when the layout, clustering or naming changes: caches are recomputed
RANDOM_STATE = 0
PERPLEXITY = 30.0
TSNE_ITERATIONS = 1000  # sklearn's default, while it is cheap ...
TSNE_ITERATIONS_LARGE = 500  # ... and above this many papers, where it keeps neighbours as well in half the time
TSNE_LARGE = 2_000
TSNE_MAX_PAPERS = 10_000  # above: t-SNE on a sample of this size, the rest placed by their neighbours
PLACE_NEIGHBOURS = 10
LABEL_TERMS = 3
TERMS_KEPT = 10
TRUST_MAX_PAPERS = 3_000  # trustworthiness is O(n^2) in memory; measured only up to here
NAME_MAX_PAPERS = 5_000  # topics are named from a fixed random sample of this many papers above it

# Words every topic of an ML corpus uses: alone they name no topic in particular.
# The nouns may still end or start a phrase ("language models", "learning rate");
# the rest ("proposed", "remains", "significantly") never make part of one.
GENERIC_NOUNS = frozenset("""
    approach approaches benchmark benchmarks challenge challenges code data experiment experiments framework learning
    method methods model models performance problem problems result results scale set solution study task tasks
    training work
""".split())
GENERIC_OTHER = frozenset("""
    abstract achieve achieves achieving address arxiv available based com compared comprehensive demo demonstrate
    demonstrates designed different effective effectively efficient existing experimental extensive github http https
    improve improved improves improving introduce introduces io key large learn leverage leverages new novel open
    outperform outperforms page paper point predefined previous project propose proposed proposes provide reduce
    reduced release released remain remains show shows significant significantly simple state superior terms tested
    use used uses using various way works www yields
""".split())
GENERIC_WORDS = GENERIC_NOUNS | GENERIC_OTHER
_CLAUSE = re.compile(r"[.;:,!?()\[\]]")  # phrases never span these

_lock = threading.Lock()


@dataclass
class Topic:
    id: int
    label: str  # the top terms joined, as shown on the map
    terms: list[str]  # the most distinctive terms, best first
    size: int
    paper_ids: list[str]  # nearest the topic's centre first
    x: float  # where the label goes: the topic's densest point, not its mean (which may fall outside)
    y: float

    @property
    def query(self) -> str:
        """The label as a search: what the Papers tab and the chat are given for "this topic"."""
        return " ".join(self.terms[:LABEL_TERMS])


@dataclass
class CorpusMap:
    points: list[dict[str, Any]]  # paper_id, title, date, x, y, topic (index into topics)
    topics: list[Topic]
    method: dict[str, Any] = field(default_factory=dict)  # how it was made and what it cost

    def topic_of(self, paper_id: str) -> Topic | None:
        for p in self.points:
            if p["paper_id"] == paper_id:
                topic: Topic = self.topics[p["topic"]]
                return topic
        return None

    def to_json(self) -> dict[str, Any]:
        return {"points": self.points, "topics": [asdict(t) for t in self.topics], "method": self.method}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CorpusMap:
        """Raises (KeyError, TypeError, ValueError) on anything malformed: a damaged
        cache is recomputed by the caller."""
        topics = [Topic(**t) for t in data["topics"]]
        points = data["points"]
        for p in points:
            if not (isinstance(p["paper_id"], str) and 0 <= int(p["topic"]) < len(topics)):
                raise ValueError("bad point")
            float(p["x"]), float(p["y"])
        if sum(t.size for t in topics) != len(points):
            raise ValueError("topic sizes do not add up to the papers")
        return cls(points=points, topics=topics, method=dict(data.get("method") or {}))


# ---------------------------------------------------------------- layout


def layout_2d(vectors: np.ndarray, random_state: int = RANDOM_STATE) -> tuple[np.ndarray, dict[str, Any]]:
    """2-D positions that keep each paper's nearest neighbours (cosine), and how they were made."""
    from sklearn.manifold import TSNE

    n = len(vectors)
    if n < 5:  # t-SNE needs perplexity < n; a handful of papers is drawn on a line by PCA
        return pca(vectors), {"layout": "pca", "sampled": None}
    if n <= TSNE_MAX_PAPERS:
        sample = np.arange(n)
    else:
        sample = np.sort(np.random.default_rng(random_state).choice(n, TSNE_MAX_PAPERS, replace=False))
    tsne = TSNE(n_components=2, perplexity=min(PERPLEXITY, (len(sample) - 1) / 3.0), metric="cosine", init="pca",
                max_iter=TSNE_ITERATIONS if len(sample) <= TSNE_LARGE else TSNE_ITERATIONS_LARGE,
                random_state=random_state, n_jobs=1)
    xy_sample = tsne.fit_transform(vectors[sample]).astype(np.float64)
    if len(sample) == n:
        return xy_sample, {"layout": "t-SNE", "perplexity": tsne.perplexity, "iterations": tsne.max_iter,
                           "sampled": None}
    xy = np.empty((n, 2))
    xy[sample] = xy_sample
    rest = np.setdiff1d(np.arange(n), sample)
    xy[rest] = place_by_neighbours(vectors[sample], xy_sample, vectors[rest])
    return xy, {"layout": "t-SNE", "perplexity": tsne.perplexity, "iterations": tsne.max_iter,
                "sampled": int(len(sample))}


def place_by_neighbours(ref_vectors: np.ndarray, ref_xy: np.ndarray, vectors: np.ndarray,
                        k: int = PLACE_NEIGHBOURS, chunk: int = 4096) -> np.ndarray:
    """Positions of papers left out of t-SNE: the mean of their k most similar placed
    papers' positions, weighted by similarity (openTSNE's initial placement for new points)."""
    ref = _unit(ref_vectors)
    out = np.empty((len(vectors), 2))
    for start in range(0, len(vectors), chunk):
        sims = _unit(vectors[start:start + chunk]) @ ref.T
        idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        w = np.clip(np.take_along_axis(sims, idx, axis=1), 1e-6, None)
        out[start:start + chunk] = (w[:, :, None] * ref_xy[idx]).sum(axis=1) / w.sum(axis=1, keepdims=True)
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    unit: np.ndarray = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return unit


def pca(vectors: np.ndarray) -> np.ndarray:
    """First two principal components (signs fixed, so reruns give the same picture)."""
    centered = vectors - vectors.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    axes = np.zeros((2, vectors.shape[1]))
    axes[: len(vt[:2])] = vt[:2]
    signs = np.sign(axes[np.arange(2), np.abs(axes).argmax(axis=1)])
    signs[signs == 0] = 1
    components: np.ndarray = centered @ (axes * signs[:, None]).T
    return components


def trustworthiness_at(vectors: np.ndarray, xy: np.ndarray, k: int = 10) -> float | None:
    """sklearn's trustworthiness (cosine): 1.0 when every paper's k map neighbours are
    among its nearest in the embedding. None where it cannot be computed cheaply."""
    from sklearn.manifold import trustworthiness

    n = len(vectors)
    if n > TRUST_MAX_PAPERS or k >= n / 2:
        return None
    return float(trustworthiness(vectors, xy, n_neighbors=k, metric="cosine"))


# ---------------------------------------------------------------- topics


def n_topics(n_papers: int) -> int:
    """About one topic per 25 papers for a small corpus, at most 30 (more labels than a
    reader can take in on one screen), at least 2."""
    return int(min(30, max(2, round(math.sqrt(n_papers / 2)))))


def cluster(xy: np.ndarray, k: int, random_state: int = RANDOM_STATE) -> np.ndarray:
    """k-means on the map; topics numbered by size (0 = largest), ties by position."""
    from sklearn.cluster import KMeans

    k = max(1, min(k, len(xy)))
    labels = KMeans(n_clusters=k, n_init=10, random_state=random_state).fit_predict(xy)
    sizes = np.bincount(labels, minlength=k)
    order = sorted(range(k), key=lambda c: (-sizes[c], *xy[labels == c].mean(axis=0).round(6)))
    remap = np.empty(k, dtype=int)
    remap[order] = np.arange(k)
    relabelled: np.ndarray = remap[labels]
    return relabelled


def paper_text(paper: Paper) -> str:
    """Title and abstract, without links (their host names would name every topic)."""
    return URL.sub(" ", f"{paper.title}. {paper.abstract}")


def terms_of(text: str) -> list[str]:
    """Words and phrases of two or three words of a text, lower-cased. A word on its
    own counts unless it is an English stop word or generic; a phrase counts unless it
    crosses punctuation, holds a stop word or a generic non-noun, or is all generic nouns."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    out: list[str] = []
    for clause in _CLAUSE.split(text):
        words = text_words(clause, TERM)
        usable = [len(w) > 1 and w not in ENGLISH_STOP_WORDS and w not in GENERIC_OTHER for w in words]
        for i, w in enumerate(words):
            if usable[i] and w not in GENERIC_NOUNS:
                out.append(w)
            for n in (2, 3):
                if i + n <= len(words) and all(usable[i:i + n]) and any(
                        v not in GENERIC_WORDS for v in words[i:i + n]):
                    out.append(" ".join(words[i:i + n]))
    return out


def topic_terms(texts: list[str], labels: np.ndarray, k: int | None = None,
                keep: int = TERMS_KEPT) -> list[list[str]]:
    """The most distinctive terms (words and two-word phrases) of each topic, by a
    class-based TF-IDF over papers: p_t * log(p_t / p_all), where p_t is the share of
    the topic's papers using the term and p_all the share of all papers. BERTopic's
    idf, log(1 + A / f), is too mild at this size: its labels were "training",
    "language", "data" for half the topics (docs/scale/README.md, "Corpus map")."""
    from sklearn.feature_extraction.text import CountVectorizer

    k = k if k is not None else (int(labels.max()) + 1 if len(labels) else 0)
    vectorizer = CountVectorizer(analyzer=terms_of, binary=True, min_df=2 if len(texts) >= 20 else 1,
                                 dtype=np.float32)
    try:
        docs = vectorizer.fit_transform(texts)
    except ValueError:  # no term left (tiny or empty corpus)
        return [[] for _ in range(k)]
    vocab = vectorizer.get_feature_names_out()
    per_topic = np.zeros((k, docs.shape[1]))  # papers of each topic using each term
    for c in range(k):
        if (labels == c).any():
            per_topic[c] = np.asarray(docs[np.flatnonzero(labels == c)].sum(axis=0)).ravel()
    sizes = np.bincount(labels, minlength=k).astype(np.float64)
    share = per_topic / np.maximum(sizes, 1)[:, None]
    share_all = per_topic.sum(axis=0) / len(labels)
    weight = share * np.log(np.maximum(share, 1e-12) / np.maximum(share_all, 1e-12))
    weight[per_topic < np.minimum(2, sizes)[:, None]] = 0  # a term of one paper does not name a topic
    home = weight.argmax(axis=0)  # the topic each term describes best
    out = []
    for c in range(k):
        best = [int(i) for i in np.argsort(-weight[c], kind="stable")[: keep * 8] if weight[c, i] > 0]
        scores = {vocab[i]: float(weight[c, i]) for i in best}
        ranked = _prefer_phrases([vocab[i] for i in best], scores)
        own = _distinct([t for t in ranked if home[vectorizer.vocabulary_[t]] == c], LABEL_TERMS)
        rest = _distinct(own + [t for t in ranked if t not in own], keep)
        out.append(rest if len(own) < LABEL_TERMS else own + [t for t in rest if t not in own])
    return out


def _prefer_phrases(ranked: list[str], scores: dict[str, float], share: float = 0.5) -> list[str]:
    """A word is replaced by the best phrase containing it that scores at least half as
    high ("learning rate" for "rate"), since the phrase says more."""
    out: list[str] = []
    for term in ranked:
        if " " not in term:
            phrases = [t for t in ranked if " " in t and term in t.split() and scores[t] >= share * scores[term]]
            if phrases:  # the longest of those nearly as good as the best ("spiking neural networks")
                top = max(scores[t] for t in phrases)
                term = max((t for t in phrases if scores[t] >= 0.8 * top), key=lambda t: (len(t.split()), scores[t]))
        if term not in out:
            out.append(term)
    return out


def _stem(word: str) -> str:
    """Plural folded, so "video" and "videos" count as one word."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _distinct(ranked: list[str], keep: int) -> list[str]:
    """Drops terms that repeat a word of a better-ranked term ("diffusion" after
    "diffusion models", "videos" after "video"), so a label says different things."""
    chosen: list[str] = []
    seen: set[str] = set()
    for term in ranked:
        words = {_stem(w) for w in term.split()} - {_stem(w) for w in GENERIC_WORDS}
        if not words or words & seen:
            continue
        chosen.append(term)
        seen |= words
        if len(chosen) == keep:
            break
    return chosen


def surface_forms(terms: list[str], texts: list[str]) -> list[str]:
    """Each term as the papers write it most often ("LLMs", "3D", "ViT"), not lower-cased."""
    out = []
    for term in terms:
        pattern = re.compile(r"\b" + r"\s+".join(map(re.escape, term.split())) + r"\b", re.IGNORECASE)
        forms = Counter(" ".join(m.group(0).split()) for text in texts for m in pattern.finditer(text))
        out.append(forms.most_common(1)[0][0] if forms else term)
    return out


def build_map(paper_ids: list[str], vectors: np.ndarray, papers: dict[str, Paper],
              random_state: int = RANDOM_STATE) -> CorpusMap:
    """Layout, topics and names for these papers (ids sorted, so the result is
    reproducible whatever order the store returns them in). Runs on one thread:
    t-SNE's and k-means' OpenMP threads spin while they wait for a busy core, and on
    a shared machine (a server answering questions, other jobs) that made t-SNE
    several times slower than one thread alone (docs/scale/README.md)."""
    import sklearn.cluster  # noqa: F401  loaded first: threadpoolctl limits only libraries already loaded
    import sklearn.manifold  # noqa: F401
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _build_map(paper_ids, vectors, papers, random_state)


def _build_map(paper_ids: list[str], vectors: np.ndarray, papers: dict[str, Paper], random_state: int) -> CorpusMap:
    order = np.argsort(np.asarray(paper_ids, dtype=object), kind="stable")
    paper_ids = [paper_ids[i] for i in order]
    vectors = np.asarray(vectors, dtype=np.float64)[order]
    n = len(paper_ids)
    if n == 0:
        return CorpusMap(points=[], topics=[], method={"papers": 0})
    timings: dict[str, float] = {}
    cpu0 = time.process_time()  # all threads: on idle cores the wall time is at most this
    t0 = time.perf_counter()
    xy, method = layout_2d(vectors, random_state)
    xy = _normalise(xy)
    timings["layout_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    labels = cluster(xy, n_topics(n), random_state)
    timings["cluster_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    named = np.arange(n)
    if n > NAME_MAX_PAPERS:  # shares of papers using a term are estimated as well from a sample
        named = np.sort(np.random.default_rng(random_state).choice(n, NAME_MAX_PAPERS, replace=False))
    texts = {int(i): paper_text(papers[paper_ids[i]]) for i in named}
    terms = topic_terms([texts[int(i)] for i in named], labels[named], k=int(labels.max()) + 1)
    topics = []
    for c, words in enumerate(terms):
        members = np.flatnonzero(labels == c)
        shown = surface_forms(words, [texts[int(i)] for i in members if int(i) in texts])
        centre = xy[members].mean(axis=0)
        by_distance = members[np.argsort(np.linalg.norm(xy[members] - centre, axis=1), kind="stable")]
        anchor = xy[by_distance[0]]
        topics.append(Topic(id=c, label=" · ".join(shown[:LABEL_TERMS]) or f"topic {c + 1}", terms=shown,
                            size=len(members), paper_ids=[paper_ids[i] for i in by_distance],
                            x=round(float(anchor[0]), 4), y=round(float(anchor[1]), 4)))
    timings["label_s"] = time.perf_counter() - t0
    timings["cpu_s"] = time.process_time() - cpu0
    t0 = time.perf_counter()
    trust = trustworthiness_at(vectors, xy)
    timings["trust_s"] = time.perf_counter() - t0
    points = []
    for i, pid in enumerate(paper_ids):
        paper = papers[pid]
        points.append({"paper_id": pid, "title": paper.title, "date": paper.published or paper.date or "",
                       "x": round(float(xy[i, 0]), 4), "y": round(float(xy[i, 1]), 4), "topic": int(labels[i])})
    method.update(papers=n, topics=len(topics), clustering="k-means on the layout",
                  naming="class-based TF-IDF over titles and abstracts", trustworthiness_at_10=trust,
                  **{k: round(v, 3) for k, v in timings.items()})
    return CorpusMap(points=points, topics=topics, method=method)


def _normalise(xy: np.ndarray) -> np.ndarray:
    """Centred and scaled to [-1, 1], so cached coordinates and label offsets look the
    same whatever t-SNE's arbitrary scale was."""
    xy = xy - xy.mean(axis=0, keepdims=True)
    return xy / max(float(np.abs(xy).max()), 1e-12)


# ---------------------------------------------------------------- cache


def _cache_key(manifest: dict[str, Any]) -> dict[str, Any]:
    return {"version": TOPICS_VERSION, "corpus_fingerprint": manifest.get("corpus_fingerprint"),
            "embed_model": manifest.get("embed_model"), "collections": manifest.get("collections")}


def read_cached(settings: Settings, manifest: dict[str, Any]) -> CorpusMap | None:
    """The cached map when it belongs to this index and is readable; else None."""
    try:
        data = json.loads((Path(settings.index_dir) / TOPICS_FILE).read_text(encoding="utf-8"))
        if data.get("key") != _cache_key(manifest):
            return None
        return CorpusMap.from_json(data["map"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        if not isinstance(exc, FileNotFoundError):
            log.warning("corpus map cache unreadable (%s); recomputing", type(exc).__name__)
        return None


def paper_vectors_from_store(store: Any, page: int = 5000) -> tuple[list[str], np.ndarray]:
    """Every paper vector in the store, read in pages (one response per 5,000 papers)."""
    ids: list[str] = []
    rows: list[np.ndarray] = []
    offset = 0
    while True:
        got = store.papers.get(include=["embeddings", "metadatas"], limit=page, offset=offset)
        ids.extend(m["paper_id"] for m in got["metadatas"])
        if len(got["metadatas"]):
            rows.append(np.asarray(got["embeddings"], dtype=np.float32))
        if len(got["metadatas"]) < page:
            break
        offset += page
    return ids, (np.concatenate(rows) if rows else np.zeros((0, 0), dtype=np.float32))


def load_map(settings: Settings, papers: dict[str, Paper] | None = None, store: Any | None = None) -> CorpusMap:
    """The index's corpus map: from the cache when it matches the index, else computed
    and cached. `papers` and `store` spare re-reading what the caller has loaded.
    Raises IndexMissing when there is no index."""
    from assistant.index import IndexMissing, Store, read_manifest, read_snapshot

    manifest = read_manifest(settings.index_dir)
    if manifest is None:
        raise IndexMissing(f"No index found in {settings.index_dir}. Build it with `assistant index`.")
    cached = read_cached(settings, manifest)
    if cached is not None:
        return cached
    with _lock:  # the UI and the API may ask at once; compute once
        cached = read_cached(settings, manifest)
        if cached is not None:
            return cached
        t0 = time.perf_counter()
        store = store or Store(settings.store_config, create=False)
        papers = papers if papers is not None else {p.paper_id: p for p in read_snapshot(settings.index_dir)}
        ids, vectors = paper_vectors_from_store(store)
        keep = [i for i, pid in enumerate(ids) if pid in papers]
        read_s = time.perf_counter() - t0
        corpus_map = build_map([ids[i] for i in keep], vectors[keep] if keep else vectors, papers)
        corpus_map.method["read_s"] = round(read_s, 3)
        corpus_map.method["total_s"] = round(time.perf_counter() - t0, 3)
        _write(Path(settings.index_dir) / TOPICS_FILE, {"key": _cache_key(manifest), "map": corpus_map.to_json()})
        return corpus_map


def _write(path: Path, data: dict[str, Any]) -> None:
    from assistant.files import atomic_write_json

    try:
        atomic_write_json(path, data)
    except OSError:  # a read-only index folder still gets a map, just not a cached one
        log.warning("could not write the corpus map cache %s; it will be recomputed next time", path)
