"""The scale corpus generator, the vector cache, and the scale benchmark end to end."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from assistant.corpus import CHROME, load_corpus, normalize_title, parse_file
from assistant.text import split_sentences
from evals.bench.synth import (
    CachedEmbedder,
    VectorCache,
    generate_corpus,
    generate_papers,
    real_sentences,
)
from tests.conftest import CORPUS

# The slow test's size: a 10k run with reused vectors takes ~4.5 min on the quiet
# 2-core machine (index ~3.5 min, queries ~1 min); see docs/scale/README.md.
CI_SIZE = 10_000


@pytest.fixture(scope="module")
def source():
    return load_corpus(CORPUS).papers


@pytest.fixture(scope="module")
def real(source):
    return set(real_sentences(source))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.txt"))}


def test_same_seed_same_bytes_other_seed_other_corpus(source, tmp_path: Path) -> None:
    a = generate_corpus(source, 400, tmp_path / "a", seed=7, papers_per_file=150)
    b = generate_corpus(source, 400, tmp_path / "b", seed=7, papers_per_file=150)
    generate_corpus(source, 400, tmp_path / "c", seed=8, papers_per_file=150)
    assert len(a.files) == 3 and _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a") != _files(tmp_path / "c")
    assert a.retries == b.retries


@pytest.mark.parametrize("n", [1, 37, 1200])
def test_parses_back_to_exactly_n_unique_papers(source, tmp_path: Path, n: int) -> None:
    report = generate_corpus(source, n, tmp_path / "gen", seed=1, papers_per_file=500)
    corpus = load_corpus(tmp_path / "gen")
    assert corpus.errors == [] and corpus.warnings == []
    assert corpus.entry_count == n and len(corpus.papers) == n
    assert len({p.paper_id for p in corpus.papers}) == n
    assert len({normalize_title(p.title) for p in corpus.papers}) == n
    assert {f.layout for f in corpus.files} == {"A"}
    assert len(report.files) == -(-n // 500)
    assert all(parse_file(f).warnings == [] for f in report.files)


def test_every_sentence_is_a_real_sentence_and_nothing_else_is_there(source, real, tmp_path: Path) -> None:
    generate_corpus(source, 1500, tmp_path / "gen", seed=3)
    papers = load_corpus(tmp_path / "gen").papers
    real_words = {x for p in source for w in p.title.split() for x in (w, w.rstrip(" .,:;-"))}
    for paper in papers:
        sentences = split_sentences(paper.abstract)
        assert sentences and set(sentences) <= real, paper.title
        assert len(set(sentences)) == len(sentences)  # no sentence twice in one abstract
        assert 300 <= len(paper.abstract) <= 4000
        # title: real title words, then the counter
        *words, counter = paper.title.split()
        assert counter.isdigit() and words and set(words) <= real_words, paper.title
        assert paper.title not in CHROME and not paper.title.startswith("Subscribe")
        assert "\n" not in paper.abstract and not re.search(r"\s{2,}", paper.abstract)
        assert paper.date is None and paper.authors_count is None  # layout A carries no metadata
    counters = sorted(int(p.title.split()[-1]) for p in papers)
    assert counters == list(range(1, len(papers) + 1))
    # recombined, not copied: no generated abstract is a real one
    assert not {p.abstract for p in papers} & {p.abstract for p in source}


def test_sentences_keep_their_place_and_come_from_one_topic(source) -> None:
    papers, _ = generate_papers(source, 300, seed=5)
    by_sentence = {}
    for i, p in enumerate(sorted(source, key=lambda p: p.paper_id)):
        for s in split_sentences(p.abstract):
            by_sentence.setdefault(s, set()).add(i)
    from evals.bench.synth import topic_neighbours

    near = topic_neighbours(source)
    for g in papers:
        donors = {g.anchor, *near[g.anchor].tolist()}
        assert all(by_sentence[s] & donors for s in g.sentences)


def test_vector_cache_round_trip_and_cached_embedder(tmp_path: Path) -> None:
    class Fake:
        name, dim = "fake-model", 4

        def __init__(self) -> None:
            self.seen: list[str] = []

        def encode(self, texts: list[str]) -> np.ndarray:
            self.seen += texts
            return np.array([[len(t), 1, 0, 0] for t in texts], dtype=np.float32)

    fake = Fake()
    cache = VectorCache.build(fake, ["one sentence.", "two sentences.", "one sentence."])
    assert len(cache) == 2
    cache.save(tmp_path / "v.npz")
    loaded = VectorCache.load(tmp_path / "v.npz")
    assert loaded.model == "fake-model" and np.array_equal(loaded.get("two sentences."), cache.get("two sentences."))
    fake.seen.clear()
    cached = CachedEmbedder(fake, loaded)
    out = cached.encode(["two sentences.", "A new title 3", "one sentence."])
    assert fake.seen == ["A new title 3"]  # only the miss reaches the model
    assert (cached.hits, cached.misses) == (2, 1)
    assert out[0][0] == len("two sentences.") and out[1][0] == len("A new title 3")

    class Other(Fake):
        name = "other-model"

    with pytest.raises(ValueError):
        CachedEmbedder(Other(), loaded)


@pytest.mark.slow
def test_scale_bench_end_to_end_on_the_embedded_store(tmp_path: Path) -> None:
    """The benchmark pipeline at CI_SIZE with reused sentence vectors: every field
    present and sane (no timing thresholds)."""
    from evals.bench.scale import RETRIEVERS, run_scale, table

    results = run_scale([CI_SIZE], ["embedded"], tmp_path / "out", real_embed_sizes=[], repeats=1,
                        work=tmp_path / "work", log=lambda _m: None)
    assert (tmp_path / "out" / "results.json").exists() and (tmp_path / "out" / "scale.png").stat().st_size > 10_000
    gen = results["generated"][str(CI_SIZE)]
    assert gen["papers"] == CI_SIZE and 0 < gen["distinct_sentences"] <= gen["sentences"]
    (run,) = results["runs"]
    assert run["size"] == CI_SIZE and run["store"] == "embedded" and run["vectors"] == "cache"
    ix = run["index"]
    assert ix["papers"] == CI_SIZE and ix["units"] == CI_SIZE + gen["sentences"]
    assert ix["model_units"] == CI_SIZE and ix["cached_units"] == gen["sentences"]  # titles only went to the model
    assert ix["words_embedded"] > 1000  # and the vocabulary, once
    assert ix["sync_s"] > 0 and ix["papers_per_s"] > 0 and ix["store_papers_per_s"] > 0
    assert 0 < ix["embed_s"] + ix["store_s"] + ix["keyword_s"] <= ix["sync_s"] + 0.2
    assert 100 < ix["peak_rss_mib"] < 20_000
    q = run["query"]
    assert q["bm25_units"] == ix["units"] and 100 < q["peak_rss_mib"] < 20_000
    for r in RETRIEVERS:
        lat = q["retrievers"][r]
        assert lat["n"] == q["samples_per_retriever"] > 0 and 0 < lat["p50"] <= lat["p95"]
    assert set(q["retrievers"]["hybrid"]["steps_p50"]) == {"embed", "dense", "keyword", "words"}
    long = q["hybrid_long_questions"]  # several-clause questions are re-ranked by their parts
    assert long["n"] > 0 and 0 < long["p50"] <= long["p95"] and "rerank" in long["steps_p50"]
    assert all(v["p50"] > 0 for v in q["profile"].values())
    disk = run["disk_mib"]
    assert disk["chroma"] > 0 and disk["keyword"] > 0 and disk["total"] >= disk["chroma"] + disk["keyword"]
    assert set(results["targets"]) >= {"hybrid_p95_ms", "embedding_bound", "memory_growth"}
    assert str(CI_SIZE) in table(results)
