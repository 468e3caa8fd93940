"""Larger corpora for the scale benchmark, built from the real one.

`generate_corpus` writes N new papers as layout-A listing files (header, then
title / blank / abstract / blank; see data/corpus/README.md) that
`assistant.corpus.load_corpus` parses back into exactly N papers. Each new paper
is a recombination of real material, drawn with a seeded RNG:

* an anchor paper is picked at random, and its donors are the anchor plus its
  nearest real papers by TF-IDF cosine of the abstracts (same rough topic);
* the abstract has as many sentences as the anchor's; sentence i is the real
  sentence at the same relative position in a random donor's abstract, so the
  discourse shape stays real (context, then method, then results, then a code
  link at the end);
* the title joins the first part of the anchor's title to the last part of a
  donor's, plus a counter (a bare number, which `names.paper_names` ignores),
  so titles, and therefore paper ids, are unique.

Why recombined real sentences are a fair stand-in for a larger corpus. What the
index and the query path cost depends on (1) how many units there are and how
long they are: the sentence-length and sentences-per-paper distributions are the
real ones, so embedding, Chroma and BM25 see the same number of units per paper
and the same tokens per unit; (2) the vocabulary and term frequencies BM25 sees:
every token is a real abstract token at its real frequency. Two differences,
both on the pessimistic side for the query path: the vocabulary does not grow
with N (a real 100k-paper corpus has more, rarer terms), so a query term's
posting list is longer than it would be and BM25 scores more documents; and the
sentence units repeat (about 3.4k distinct sentences, each used ~N/360 times),
so dense search meets many exact-duplicate vectors and its top-200 sentence hits
spread over more papers. Retrieval *quality* on such a corpus means nothing; only
its cost is measured. Identical text gives identical vectors, which is also why
an embedding cache keyed by the exact text (`VectorCache`) is exact for these
corpora: it changes how long indexing takes, never what is indexed.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.corpus import (
    MAX_TITLE_CHARS,
    MIN_ABSTRACT_CHARS,
    normalize_title,
    paper_id_for,
)
from assistant.files import atomic_path
from assistant.text import split_sentences
from assistant.models import Paper

HEADER = ["new", "Get trending papers in your email inbox!", "Subscribe", "byAK and the research community", "Mar 14"]
PAPERS_PER_FILE = 5000  # ~7 MB per file, well under corpus.MAX_FILE_BYTES
NEIGHBOURS = 4  # donors per anchor besides the anchor itself
MAX_TITLE = 200


# ---------------------------------------------------------------- sentence pool


def _joins(left: str | None, sentence: str, right: str | None) -> bool:
    """True when `sentence` between the given neighbours splits back out exactly."""
    parts = [p for p in (left, sentence, right) if p is not None]
    return split_sentences(" ".join(parts)) == parts


@dataclass
class Donor:
    title: str
    sentences: list[str]
    first_ok: list[bool]  # may open an abstract (followed by another sentence)
    mid_ok: list[bool]  # may sit between two sentences
    last_ok: list[bool]  # may close an abstract


def donors_from(papers: list[Paper]) -> list[Donor]:
    probe_left, probe_right = "Prior work is limited.", "Results are reported."
    out = []
    for paper in sorted(papers, key=lambda p: p.paper_id):
        sentences = split_sentences(paper.abstract)
        out.append(
            Donor(
                title=paper.title,
                sentences=sentences,
                first_ok=[_joins(None, s, probe_right) for s in sentences],
                mid_ok=[_joins(probe_left, s, probe_right) for s in sentences],
                last_ok=[_joins(probe_left, s, None) for s in sentences],
            )
        )
    return out


def topic_neighbours(papers: list[Paper], k: int = NEIGHBOURS) -> np.ndarray:
    """Row i: the k real papers nearest to paper i by TF-IDF cosine of title + abstract
    (papers sorted by id, as in `donors_from`)."""
    papers = sorted(papers, key=lambda p: p.paper_id)
    docs = [Counter(re.findall(r"[a-z][a-z0-9\-]{2,}", f"{p.title} {p.abstract}".lower())) for p in papers]
    vocab = sorted({w for d in docs for w in d})
    col = {w: j for j, w in enumerate(vocab)}
    tf = np.zeros((len(docs), len(vocab)), dtype=np.float32)
    for i, d in enumerate(docs):
        for w, c in d.items():
            tf[i, col[w]] = 1.0 + math.log(c)
    df = (tf > 0).sum(axis=0)
    tfidf = tf * np.log((1 + len(docs)) / (1 + df))[None, :]
    tfidf /= np.maximum(np.linalg.norm(tfidf, axis=1, keepdims=True), 1e-9)
    sim = tfidf @ tfidf.T
    np.fill_diagonal(sim, -1.0)
    k = min(k, len(papers) - 1)
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


# ---------------------------------------------------------------- generator


@dataclass
class Generated:
    title: str
    abstract: str
    sentences: list[str]
    anchor: int


@dataclass
class GenerationReport:
    papers: int
    files: list[Path]
    sentences: int
    distinct_sentences: int
    seconds: float
    retries: int = 0
    source_papers: int = 0
    seed: int = 0
    samples: list[Generated] = field(default_factory=list, repr=False)


def _title(rng: np.random.Generator, a: str, b: str, counter: int) -> str:
    wa, wb = a.split(), b.split()
    cut_a = int(rng.integers(1, max(2, len(wa))))  # keep 1 .. len-1 words of the anchor's title
    cut_b = int(rng.integers(max(1, len(wb) // 3), len(wb))) if len(wb) > 1 else 0
    words = wa[:cut_a] + wb[cut_b:]
    while len(words) > 1 and len(" ".join(words)) > MAX_TITLE - 10:
        words.pop()
    return f"{' '.join(words).rstrip(' .,:;-') or wa[0]} {counter}"


def _abstract(rng: np.random.Generator, donors: list[Donor], group: list[int], n: int) -> list[str] | None:
    chosen: list[str] = []
    for i in range(n):
        slot = "first" if i == 0 else ("last" if i == n - 1 else "mid")
        picked = None
        for donor_idx in rng.permutation(group):
            d = donors[int(donor_idx)]
            m = len(d.sentences)
            j = round(i * (m - 1) / max(n - 1, 1))
            ok = {"first": d.first_ok, "mid": d.mid_ok, "last": d.last_ok}[slot]
            if n == 1:
                ok = [True] * m
            # the position-aligned sentence, else its nearest usable neighbour in that abstract
            for jj in sorted(range(m), key=lambda x: (abs(x - j), x)):
                s = d.sentences[jj]
                if ok[jj] and s not in chosen:
                    picked = s
                    break
            if picked is not None:
                break
        if picked is None:
            return None
        chosen.append(picked)
    return chosen


def generate_papers(source: list[Paper], n: int, seed: int = 0) -> tuple[list[Generated], int]:
    """N recombined papers (see the module docstring); deterministic for a seed and source."""
    donors = donors_from(source)
    near = topic_neighbours(source)
    rng = np.random.default_rng(seed)
    out: list[Generated] = []
    seen_titles: set[str] = set()
    seen_ids: set[str] = set()
    retries = 0
    while len(out) < n:
        anchor = int(rng.integers(len(donors)))
        group = [anchor, *(int(x) for x in near[anchor])]
        n_sent = len(donors[anchor].sentences)
        sentences = _abstract(rng, donors, group, n_sent)
        partner = int(rng.choice(group[1:])) if len(group) > 1 else anchor
        title = _title(rng, donors[anchor].title, donors[partner].title, len(out) + 1)
        abstract = " ".join(sentences or [])
        norm, pid = normalize_title(title), paper_id_for(title)
        if (
            sentences is None
            or len(abstract) < MIN_ABSTRACT_CHARS
            or len(title) > MAX_TITLE_CHARS
            or norm in seen_titles
            or pid in seen_ids  # the id is a 24-bit hash under a 4-word slug: check, never assume
            or split_sentences(abstract) != sentences
        ):
            retries += 1
            if retries > 10 * n + 1000:
                raise RuntimeError("the source corpus is too small or too odd to recombine")
            continue
        seen_titles.add(norm)
        seen_ids.add(pid)
        out.append(Generated(title=title, abstract=abstract, sentences=sentences, anchor=anchor))
    return out, retries


def write_listing(papers: list[Generated], path: Path) -> None:
    lines: list[str] = []
    for line in HEADER:
        lines += [line, ""]
    for p in papers:
        lines += [p.title, "", p.abstract, ""]
    path.write_text("\n".join(lines).rstrip("\n"), encoding="utf-8")


def generate_corpus(source: list[Paper], n: int, out_dir: Path, seed: int = 0,
                    papers_per_file: int = PAPERS_PER_FILE) -> GenerationReport:
    """Writes `n` recombined papers to `out_dir/scale_<seed>_<k>.txt` (layout A)."""
    t0 = time.perf_counter()
    papers, retries = generate_papers(source, n, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.txt"):
        old.unlink()
    files = []
    for k, start in enumerate(range(0, n, papers_per_file)):
        path = out_dir / f"scale_{seed}_{k:04d}.txt"
        write_listing(papers[start : start + papers_per_file], path)
        files.append(path)
    all_sentences = [s for p in papers for s in p.sentences]
    return GenerationReport(
        papers=n, files=files, sentences=len(all_sentences), distinct_sentences=len(set(all_sentences)),
        seconds=time.perf_counter() - t0, retries=retries, source_papers=len(source), seed=seed, samples=papers[:3],
    )


# ---------------------------------------------------------------- embedding cache


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class VectorCache:
    """Vectors keyed by a hash of the exact text, for one embedding model."""

    def __init__(self, model: str, keys: list[str] | None = None, vectors: np.ndarray | None = None) -> None:
        self.model = model
        self.rows: dict[str, int] = {k: i for i, k in enumerate(keys or [])}
        self.vectors = vectors if vectors is not None else np.zeros((0, 0), dtype=np.float32)

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, text: str) -> np.ndarray | None:
        row = self.rows.get(text_key(text))
        return None if row is None else self.vectors[row]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, ".npz") as tmp:
            np.savez(tmp, model=np.array(self.model), keys=np.array(list(self.rows)), vectors=self.vectors)

    @classmethod
    def load(cls, path: Path) -> VectorCache:
        with np.load(path) as data:
            return cls(str(data["model"]), [str(k) for k in data["keys"]], data["vectors"].astype(np.float32))

    @classmethod
    def build(cls, embedder: Any, texts: list[str]) -> VectorCache:
        texts = list(dict.fromkeys(texts))
        vectors = embedder.encode(texts)
        return cls(embedder.name, [text_key(t) for t in texts], vectors)


def real_sentences(source: list[Paper]) -> list[str]:
    return sorted({s for p in source for s in split_sentences(p.abstract)})


def cache_is_current(path: Path, model: str, source: list[Paper]) -> bool:
    """True when `path` holds vectors from `model` for every real sentence."""
    if not path.exists():
        return False
    try:
        cache = VectorCache.load(path)
    except (OSError, ValueError, KeyError):
        return False
    return cache.model == model and all(text_key(t) in cache.rows for t in real_sentences(source))


def build_sentence_cache(embedder: Any, source: list[Paper], path: Path) -> float:
    """Embeds every real abstract sentence once with the real model and keeps the
    vectors in `path`; returns the seconds spent embedding."""
    t0 = time.perf_counter()
    cache = VectorCache.build(embedder, real_sentences(source))
    seconds = time.perf_counter() - t0
    cache.save(path)
    return seconds


class CachedEmbedder:
    """The indexer's embedder with a cache in front: texts found in the cache get
    their stored vector, the rest (here: the generated titles) go through the real
    model. Counts both, so a report can say exactly what was reused."""

    def __init__(self, embedder: Any, cache: VectorCache) -> None:
        if cache.model != embedder.name:
            raise ValueError(f"cache built with {cache.model}, embedder is {embedder.name}")
        self.embedder = embedder
        self.cache = cache
        self.name = embedder.name
        self.dim = embedder.dim
        self.hits = 0
        self.misses = 0
        self.model_seconds = 0.0

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        missing: list[int] = []
        for i, text in enumerate(texts):
            vector = self.cache.get(text)
            if vector is None:
                missing.append(i)
            else:
                out[i] = vector
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if missing:
            t0 = time.perf_counter()
            out[missing] = self.embedder.encode([texts[i] for i in missing])
            self.model_seconds += time.perf_counter() - t0
        return out

