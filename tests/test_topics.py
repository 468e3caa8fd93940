"""The corpus map's layout, topics and names (`assistant/topics.py`), its cache, the
figure the map tab draws (`ui/corpus_map.py`), and the same topics through
`GET /api/topics` and `assistant stats` on the real index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import assistant.topics as topics
from assistant.config import Settings
from assistant.models import Occurrence, Paper
from assistant.topics import (TOPICS_FILE, CorpusMap, build_map, layout_2d, load_map, place_by_neighbours,
                              topic_terms, trustworthiness_at)
from ui.corpus_map import figure_json, highlight_json

SUBJECTS = {  # three subjects, each with its own words, all sharing the generic phrasing of abstracts
    "diffusion": ["diffusion models", "denoising", "image generation", "noise schedule", "sampling steps"],
    "rl": ["reinforcement learning", "policy", "reward", "robotic control", "agent"],
    "speech": ["speech recognition", "audio", "acoustic", "speaker", "phoneme"],
}


def blobs(n_per: int = 60, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around len(SUBJECTS) well-separated centres, with some spread."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(SUBJECTS), dim)) * 3
    x = np.concatenate([c + rng.normal(size=(n_per, dim)) for c in centres])
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.repeat(np.arange(len(SUBJECTS)), n_per)


def fake_papers(truth: np.ndarray, seed: int = 0) -> dict[str, Paper]:
    """One paper per vector; its abstract uses two of its subject's words amid generic phrasing and a code link."""
    rng = np.random.default_rng(seed)
    names = list(SUBJECTS)
    papers = {}
    for i, subject in enumerate(truth):
        words = rng.choice(SUBJECTS[names[subject]], size=2, replace=False)
        abstract = (f"We propose a novel method for {words[0]}. Extensive experiments show that our approach "
                    f"outperforms existing models on {words[1]} benchmarks. Code: https://github.com/lab/p{i}")
        pid = f"p{i:03d}"
        papers[pid] = Paper(paper_id=pid, title=f"A study of {words[0]}", abstract=abstract,
                            occurrences=[Occurrence(file="x.txt", line=i)], published=f"2024-01-{1 + i % 28:02d}")
    return papers


def test_layout_keeps_neighbours_better_than_pca_and_is_deterministic() -> None:
    x, _ = blobs()
    xy, method = layout_2d(x)
    assert method["layout"] == "t-SNE" and xy.shape == (len(x), 2) and np.isfinite(xy).all()
    trust, trust_pca = trustworthiness_at(x, xy), trustworthiness_at(x, topics.pca(x))
    assert trust is not None and trust_pca is not None and trust >= 0.9 and trust > trust_pca
    assert np.array_equal(xy, layout_2d(x)[0])  # same papers, same picture


def test_above_the_tsne_limit_a_sample_is_laid_out_and_the_rest_placed_by_neighbours(monkeypatch) -> None:
    x, truth = blobs(n_per=80)
    monkeypatch.setattr(topics, "TSNE_MAX_PAPERS", 90)
    xy, method = layout_2d(x)
    assert method["sampled"] == 90 and xy.shape == (240, 2) and np.isfinite(xy).all()
    # every paper, sampled or placed, lands nearer its own subject's centre than any other's
    centres = np.stack([xy[truth == s].mean(axis=0) for s in range(3)])
    nearest = np.linalg.norm(xy[:, None, :] - centres[None], axis=2).argmin(axis=1)
    assert (nearest == truth).mean() > 0.97


def test_a_paper_identical_to_a_laid_out_one_is_placed_on_it() -> None:
    ref = np.eye(4)
    ref_xy = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    out = place_by_neighbours(ref, ref_xy, np.array([[0.0, 0.0, 1.0, 0.0]]), k=1)
    assert np.allclose(out, [[0.0, 1.0]])


def test_topics_are_named_by_their_own_words_not_generic_ones() -> None:
    x, truth = blobs()
    papers = fake_papers(truth)
    texts = [topics.paper_text(papers[f"p{i:03d}"]) for i in range(len(truth))]
    names = topic_terms(texts, truth)
    for subject, terms in zip(SUBJECTS, names):
        assert terms, subject
        own = " ".join(SUBJECTS[subject])
        assert all(any(w in own for w in t.split()) for t in terms[:3]), (subject, terms)
    every = {w for terms in names for t in terms for w in t.split()}
    assert not every & {"novel", "method", "propose", "experiments", "github", "com", "code", "outperforms"}


def test_build_map_places_every_paper_once_with_named_topics() -> None:
    x, truth = blobs()
    papers = fake_papers(truth)
    ids = sorted(papers)[::-1]  # the store's order must not matter
    m = build_map(ids, x[::-1], papers)
    assert sorted(p["paper_id"] for p in m.points) == sorted(papers)
    assert sum(t.size for t in m.topics) == len(papers)
    assert sorted(pid for t in m.topics for pid in t.paper_ids) == sorted(papers)
    assert all(t.label and t.terms and t.query for t in m.topics)
    assert [t.size for t in m.topics] == sorted((t.size for t in m.topics), reverse=True)
    # a topic is one subject: the map's regions follow the papers' meaning
    for t in m.topics:
        subjects = {int(p[1:]) // 60 for p in t.paper_ids}
        assert len(subjects) == 1, t.label
    assert m.method["trustworthiness_at_10"] >= 0.9
    assert same_map(build_map(ids, x[::-1], papers), m)  # deterministic


def same_map(a: CorpusMap, b: CorpusMap) -> bool:
    """Same places, topics and names (the timings in `method` differ run to run)."""
    return (a.to_json()["points"], a.to_json()["topics"]) == (b.to_json()["points"], b.to_json()["topics"])


class FakeStore:
    """What load_map reads from Chroma: the paper vectors, in pages; counts the reads."""

    def __init__(self, ids: list[str], vectors: np.ndarray) -> None:
        self.ids, self.vectors, self.reads = ids, vectors, 0
        self.papers = self

    def get(self, include: list[str], limit: int, offset: int) -> dict[str, Any]:
        self.reads += 1
        sl = slice(offset, offset + limit)
        return {"metadatas": [{"paper_id": p} for p in self.ids[sl]], "embeddings": self.vectors[sl].tolist()}


@pytest.fixture
def fake_index(tmp_path: Path) -> tuple[Settings, dict[str, Paper], FakeStore]:
    x, truth = blobs(n_per=30)
    papers = fake_papers(truth)
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    settings.index_dir.mkdir()
    (settings.index_dir / "manifest.json").write_text(json.dumps(
        {"corpus_fingerprint": "f1", "embed_model": "m", "collections": ["a-papers", "a-sentences"]}))
    return settings, papers, FakeStore(sorted(papers), x)


def test_map_is_cached_per_index_and_recomputed_when_papers_change(fake_index) -> None:
    settings, papers, store = fake_index
    first = load_map(settings, papers=papers, store=store)
    reads = store.reads
    assert (settings.index_dir / TOPICS_FILE).exists()
    again = load_map(settings, papers=papers, store=store)
    assert store.reads == reads and again.to_json() == first.to_json()  # from the cache, no store read
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())
    manifest["corpus_fingerprint"] = "f2"  # papers changed
    (settings.index_dir / "manifest.json").write_text(json.dumps(manifest))
    load_map(settings, papers=papers, store=store)
    assert store.reads > reads


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong-shape", "bad-topic"])
def test_a_damaged_cache_is_recomputed_not_a_crash(fake_index, damage: str) -> None:
    settings, papers, store = fake_index
    good = load_map(settings, papers=papers, store=store)
    path = settings.index_dir / TOPICS_FILE
    data = json.loads(path.read_text())
    if damage == "truncate":
        path.write_text(path.read_text()[: len(path.read_text()) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00\xff not json")
    elif damage == "wrong-shape":
        data["map"]["topics"] = "nothing"
        path.write_text(json.dumps(data))
    else:
        data["map"]["points"][0]["topic"] = 99
        path.write_text(json.dumps(data))
    reads = store.reads
    again = load_map(settings, papers=papers, store=store)
    assert store.reads > reads and same_map(again, good)
    assert same_map(CorpusMap.from_json(json.loads(path.read_text())["map"]), good)  # the cache is repaired


def test_map_figure_colours_topics_names_them_and_numbers_the_retrieved_papers() -> None:
    x, truth = blobs(n_per=20)
    papers = fake_papers(truth)
    papers["p000"] = papers["p000"].model_copy(update={"title": "T<0>"})
    m = build_map(sorted(papers), x, papers)
    fig = json.loads(figure_json(m, ["p030", "p001"]))
    *topic_traces, top = fig["data"]
    assert [t["meta"] for t in topic_traces] == [t.id for t in m.topics]
    assert [t["name"] for t in topic_traces] == [f"{t.label} ({t.size})" for t in m.topics]
    assert len({t["marker"]["color"] for t in topic_traces}) == len(m.topics)
    assert top["customdata"] == ["p030", "p001"] and top["text"] == ["1", "2"]
    hovers = [h for t in topic_traces for h in t["hovertext"]]
    assert any(h.startswith("T&lt;0&gt;<br>2024-01-01") for h in hovers)  # title escaped, then the date
    labels = fig["layout"]["annotations"]
    assert len(labels) == len(m.topics) and all(a["captureevents"] for a in labels)
    assert len(json.loads(figure_json(m))["data"]) == len(m.topics)  # no question yet: no highlight trace


def test_an_answer_sends_only_what_it_changes_on_the_map() -> None:
    """The whole figure goes to the browser once; each answer sends its ringed papers and
    the topic names' places (at 100k papers the figure is about 19 MB)."""
    x, truth = blobs(n_per=20)
    papers = fake_papers(truth)
    m = build_map(sorted(papers), x, papers)
    full = json.loads(figure_json(m, ["p030", "p001"]))
    over = json.loads(highlight_json(m, ["p030", "p001"]))
    assert over["highlight"] == full["data"][-1] and over["annotations"] == full["layout"]["annotations"]
    assert json.loads(highlight_json(m))["highlight"] is None
    assert len(highlight_json(m, ["p030", "p001"])) * 5 < len(figure_json(m, ["p030", "p001"]))


def test_a_topic_name_moves_off_the_retrieved_papers_it_would_cover() -> None:
    x, truth = blobs(n_per=20)
    papers = fake_papers(truth)
    m = build_map(sorted(papers), x, papers)
    topic = m.topics[0]
    central = topic.paper_ids[0]  # the name sits on this paper until it is retrieved
    before = json.loads(figure_json(m, []))["layout"]["annotations"][0]
    after = json.loads(figure_json(m, [central]))["layout"]["annotations"][0]
    assert (before["x"], before["y"]) == (topic.x, topic.y)
    top_of_region = max(p["y"] for p in m.points if p["topic"] == topic.id)
    assert after["y"] > top_of_region and after["yanchor"] == "bottom"


# ---------------------------------------------------------------- the real corpus


@pytest.mark.slow
def test_real_corpus_map_keeps_neighbours_and_names_recognisable_topics(assistant) -> None:
    index = assistant.index
    m = load_map(assistant.settings, papers=index.papers, store=index.store)
    assert len(m.points) == len(index.papers) == 356  # every paper placed
    assert m.method["layout"] == "t-SNE" and m.method["trustworthiness_at_10"] >= 0.9
    assert 8 <= len(m.topics) <= 30
    labels = " | ".join(t.label for t in m.topics).lower()
    for words in ("diffusion", "video", "reinforcement learning", "reasoning"):
        assert words in labels, labels
    adamp = m.topic_of("adamp-slowing-down-the-d344cb")
    assert adamp is not None and any(w in adamp.label.lower() for w in ("optimiz", "scaling", "gradient", "rate"))


@pytest.mark.slow
def test_topics_api_and_stats_agree(assistant, full_index: Settings) -> None:
    import os
    import subprocess
    import sys

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from assistant.config import PROJECT_ROOT
    from ui.api import Api

    app = FastAPI()
    app.include_router(Api(assistant).router())
    body = TestClient(app).get("/api/topics").json()
    assert body["papers"] == 356 and body["method"]["layout"] == "t-SNE"
    assert sum(t["size"] for t in body["topics"]) == 356
    assert all(len(t["paper_ids"]) == t["size"] and t["label"] and t["query"] for t in body["topics"])
    env = {**os.environ, "ASSISTANT_INDEX_DIR": str(full_index.index_dir),
           "ASSISTANT_COLLECTION_PREFIX": full_index.collection_prefix}
    run = subprocess.run([sys.executable, "-m", "assistant", "stats", "--json"], capture_output=True, text=True,
                         cwd=PROJECT_ROOT, env=env, timeout=300)
    stats = json.loads(run.stdout)["topics"]
    assert [(t["label"], t["size"], t["paper_ids"]) for t in stats["topics"]] == \
        [(t["label"], t["size"], t["paper_ids"]) for t in body["topics"]]
