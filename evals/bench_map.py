"""Measures the corpus map (`assistant/topics.py`): how well PCA and our layout keep
each paper's 10 nearest neighbours (sklearn's trustworthiness, cosine), and what the
layout, the topics and their names cost, on the real corpus and on larger corpora
recombined from it. Run: `python -m evals.bench_map [--sizes 356,10000] [--json FILE]`.
Figures go to docs/scale/README.md ("Corpus map").

The larger corpora are made without the embedding model (embedding 10k papers would
take ~7 min on 2 cores and measure the model, not the map): each generated paper takes
an anchor paper and its four nearest neighbours, its sentence i is the sentence at
the same relative position of a random one of those five (text and stored vector),
and its vector is built as the index builds one: title vector + mean of its sentence
vectors, normalised. The anchor's title vector is recovered exactly from its stored
paper vector. So a generated corpus has the real corpus's neighbourhood structure
and vocabulary, repeated; only cost and neighbour keeping are meaningful on it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from assistant.config import Settings
from assistant.index import Store, read_snapshot
from assistant.models import Occurrence, Paper
from assistant.text import split_sentences
from assistant.topics import build_map, paper_vectors_from_store, pca

TRUST_SAMPLE = 3000  # above this many papers, trustworthiness is measured on a random subset of them


def real_corpus(settings: Settings) -> tuple[list[str], np.ndarray, dict[str, Paper], dict[str, np.ndarray]]:
    """Paper ids, paper vectors, papers and each paper's sentence vectors, from the index."""
    store = Store(settings.store_config, create=False)
    papers = {p.paper_id: p for p in read_snapshot(settings.index_dir)}
    ids, vectors = paper_vectors_from_store(store)
    keep = [i for i, pid in enumerate(ids) if pid in papers]
    ids, vectors = [ids[i] for i in keep], vectors[keep].astype(np.float64)
    got = store.sentences.get(include=["embeddings", "metadatas"])
    rows: dict[str, dict[int, np.ndarray]] = {}
    for meta, emb in zip(got["metadatas"], got["embeddings"]):
        rows.setdefault(meta["paper_id"], {})[int(meta["index"])] = np.asarray(emb, dtype=np.float64)
    sentences = {pid: np.stack([r[i] for i in sorted(r)]) for pid, r in rows.items() if pid in papers}
    return ids, vectors, papers, sentences


def title_vectors(vectors: np.ndarray, mean_sentences: np.ndarray) -> np.ndarray:
    """The unit title vector t with p = (t + m) / |t + m|: t = s p - m, |t| = 1."""
    pm = (vectors * mean_sentences).sum(axis=1)
    s = pm + np.sqrt(np.maximum(pm ** 2 - (mean_sentences ** 2).sum(axis=1) + 1.0, 0.0))
    return s[:, None] * vectors - mean_sentences


def recombined(n: int, ids: list[str], vectors: np.ndarray, papers: dict[str, Paper],
               sentences: dict[str, np.ndarray], seed: int = 0) -> tuple[list[str], np.ndarray, dict[str, Paper]]:
    """n generated papers (see the module docstring)."""
    rng = np.random.default_rng(seed)
    usable = [i for i, pid in enumerate(ids) if pid in sentences]
    ids = [ids[i] for i in usable]
    vectors = vectors[usable]
    means = np.stack([sentences[pid].mean(axis=0) for pid in ids])
    titles = title_vectors(vectors, means)
    near = np.argsort(-(vectors @ vectors.T), axis=1)[:, :5]  # itself and its four nearest
    texts = {pid: split_sentences(papers[pid].abstract) for pid in ids}
    out_ids, out_vectors, out_papers = [], np.empty((n, vectors.shape[1])), {}
    for k in range(n):
        a = int(rng.integers(len(ids)))
        chosen_vectors, chosen_text = [], []
        m = len(sentences[ids[a]])
        for j in range(m):
            d = ids[int(near[a, rng.integers(5)])]
            pos = min(int(round(j / max(m - 1, 1) * (len(sentences[d]) - 1))), len(sentences[d]) - 1)
            chosen_vectors.append(sentences[d][pos])
            chosen_text.append(texts[d][pos] if pos < len(texts[d]) else "")
        v = titles[a] + np.mean(chosen_vectors, axis=0)
        pid = f"gen-{k:06d}"
        out_ids.append(pid)
        out_vectors[k] = v / np.linalg.norm(v)
        out_papers[pid] = Paper(paper_id=pid, title=f"{papers[ids[a]].title} ({k})", abstract=" ".join(chosen_text),
                                occurrences=[Occurrence(file="generated.txt", line=k + 1)])
    return out_ids, out_vectors, out_papers


def trust(vectors: np.ndarray, xy: np.ndarray, seed: int = 0) -> tuple[float, int]:
    """Trustworthiness@10, on a random subset of TRUST_SAMPLE papers when there are more
    (its memory is n^2; the subset's neighbours are sparser, so it reads a little lower)."""
    from sklearn.manifold import trustworthiness

    if len(vectors) > TRUST_SAMPLE:
        pick = np.random.default_rng(seed).choice(len(vectors), TRUST_SAMPLE, replace=False)
        vectors, xy = vectors[pick], xy[pick]
    return float(trustworthiness(vectors, xy, n_neighbors=10, metric="cosine")), len(vectors)


def measure(name: str, ids: list[str], vectors: np.ndarray, papers: dict[str, Paper]) -> dict[str, Any]:
    t0 = time.perf_counter()
    pca_xy = pca(vectors)
    pca_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    corpus_map = build_map(ids, vectors, papers)
    total_s = time.perf_counter() - t0
    order = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    xy = np.array([[p["x"], p["y"]] for p in corpus_map.points])
    v = vectors[order]
    trust_ours, on = trust(v, xy)
    trust_pca, _ = trust(v, pca_xy[order])
    m = corpus_map.method
    return {"corpus": name, "papers": len(ids), "pca_trustworthiness_at_10": round(trust_pca, 4),
            "trustworthiness_at_10": round(trust_ours, 4), "trust_measured_on": on, "layout": m["layout"],
            "sampled": m.get("sampled"), "pca_s": round(pca_s, 3), "layout_s": m["layout_s"],
            "cluster_s": m["cluster_s"], "label_s": m["label_s"], "map_s": round(total_s - m["trust_s"], 2),
            "map_cpu_s": m["cpu_s"],
            "topics": len(corpus_map.topics), "labels": [f"{t.label} ({t.size})" for t in corpus_map.topics]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="356,10000", help="356 = the real corpus; others are recombined.")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    settings = Settings()
    ids, vectors, papers, sentences = real_corpus(settings)
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        if size == len(ids):
            row = measure("real", ids, vectors, papers)
        else:
            t0 = time.perf_counter()
            g_ids, g_vectors, g_papers = recombined(size, ids, vectors, papers, sentences)
            generate_s = time.perf_counter() - t0
            row = measure("recombined", g_ids, g_vectors, g_papers)
            row["generate_s"] = round(generate_s, 1)
        results.append(row)
        print(f"{row['papers']:>7} {row['corpus']:<10} trustworthiness@10: PCA {row['pca_trustworthiness_at_10']:.3f}, "
              f"{row['layout']} {row['trustworthiness_at_10']:.3f} (on {row['trust_measured_on']} papers)"
              + (f", t-SNE on a sample of {row['sampled']}" if row["sampled"] else ""), flush=True)
        print(f"        time: layout {row['layout_s']:.1f} s + topics {row['cluster_s']:.1f} s + names "
              f"{row['label_s']:.1f} s = {row['map_s']:.1f} s wall, {row['map_cpu_s']:.1f} s CPU "
              f"(PCA alone {row['pca_s']:.2f} s); "
              f"{row['topics']} topics", flush=True)
        for label in row["labels"]:
            print(f"          {label}")
    machine = {"cpus": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2), "python": platform.python_version()}
    print(f"machine: {machine}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
