"""The keyword (BM25) index, on bm25s directly: the same units as Chroma (every
sentence, and each paper as title twice + abstract), tokenized by bm25s with its
English stopwords and the Snowball stemmer, saved with bm25s's own format (sparse
score arrays as .npy) plus the paper id of each unit. No node objects and no
framework in between, so a 100k-paper index stays small and opens quickly.

`KEYWORD_FORMAT` goes into the manifest: an index written in another format is
rebuilt by the next `assistant index` (no paper is re-embedded)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np

from assistant.files import atomic_path

KEYWORD_FORMAT = 3  # 2 indexed hyphenated words as their parts only; 1 was llama-index's BM25Retriever folder
UNIT_PAPERS = "unit_papers.json"
TOKEN_PATTERN = r"(?u)\b\w\w+\b"
COMPOUND = re.compile(r"\b[^\W\d_]+(?:-[^\W\d_]+)+\b")  # "pre-training", "text-to-image"; not "GPT-2"


def with_compounds(text: str) -> str:
    """The text with each hyphenated compound also written as one word. Abstracts
    spell the same word both ways ("pre-training" and "pretraining", "multi-modal"
    and "multimodal"), and TOKEN_PATTERN splits at the hyphen, so "LLM pretraining"
    missed every "pre-training" abstract. Units are indexed with both forms, so a
    question spelling it either way meets both; questions are not given the joined
    form too, which would count a hyphenated word twice (and lifted near-miss
    questions past abstention, evals/README.md)."""
    joined = [m.group().replace("-", "") for m in COMPOUND.finditer(text)]
    return f"{text} {' '.join(joined)}" if joined else text


@lru_cache(maxsize=1)  # one stemmer; PyStemmer's own word cache holds at most 10,000 words (~1 MB)
def stemmer() -> object:
    import Stemmer

    return Stemmer.Stemmer("english")


def build_keyword_index(units: Iterable[tuple[str, str]], target: Path) -> int:
    """Indexes (paper id, text) units in a folder beside `target` and swaps it in;
    returns the unit count. `units` is read once, as a stream: bm25s tokenizes each
    text as it comes, so the texts of a large corpus (1.05M units at 100k papers)
    are never all held at once."""
    import bm25s

    paper_ids: list[str] = []

    def texts() -> Iterator[str]:
        for paper_id, text in units:
            paper_ids.append(paper_id)
            yield with_compounds(text)

    tokens = bm25s.tokenize(texts(), stopwords="en", stemmer=stemmer(), token_pattern=TOKEN_PATTERN,
                            show_progress=False)
    bm25 = bm25s.BM25()
    bm25.index(tokens, show_progress=False)
    with atomic_path(target) as tmp:
        tmp.mkdir(parents=True)
        bm25.save(str(tmp), show_progress=False)
        (tmp / UNIT_PAPERS).write_text(json.dumps(paper_ids), encoding="utf-8")
    return len(paper_ids)


class KeywordIndex:
    """The saved index, read once per process; `best_per_paper` is the query path."""

    def __init__(self, folder: Path) -> None:
        import bm25s

        self.bm25 = bm25s.BM25.load(str(folder), show_progress=False)
        self.unit_papers: list[str] = json.loads((folder / UNIT_PAPERS).read_text(encoding="utf-8"))
        if len(self.unit_papers) != int(self.bm25.scores["num_docs"]):
            raise ValueError(f"{len(self.unit_papers)} unit ids for {self.bm25.scores['num_docs']} BM25 units")

    def __len__(self) -> int:
        return len(self.unit_papers)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every unit. The query is tokenized like the units, without
        the stopword list: stopwords are not in the vocabulary, so they drop out anyway."""
        import bm25s

        tokens = bm25s.tokenize(query, stemmer=stemmer(), token_pattern=TOKEN_PATTERN, return_ids=False,
                                show_progress=False)
        token_ids = self.bm25.get_tokens_ids(tokens[0]) if tokens else []
        if not token_ids:
            return np.zeros(len(self), dtype=np.float32)
        return bm25_scores(self.bm25, token_ids)

    def best_per_paper(self, query: str, n: int) -> dict[str, float]:
        """Per paper: its best unit score among the top `n` units (papers without a match are absent)."""
        scores = self.scores(query)
        top = np.flatnonzero(scores > 0)  # selecting among matches only: np.partition is slow on
        if len(top) > n:  # a million tied zeros (105 ms at 1M units, against 1 ms here)
            matched = scores[top]
            cut = np.partition(matched, len(matched) - n)[len(matched) - n]
            # ties at the cut go to the lower unit number, so a query always gets the same
            # papers (bm25s leaves them to argpartition)
            above = top[matched > cut]
            top = np.concatenate([above, top[matched == cut][: n - len(above)]])
        out: dict[str, float] = {}
        for i in top:
            pid = self.unit_papers[i]
            out[pid] = max(out.get(pid, 0.0), float(scores[i]))
        return out


def bm25_scores(bm25: object, token_ids: list[int]) -> np.ndarray:
    """bm25s's own BM25 scores of every unit for one query, identical to
    `bm25s.BM25.get_scores_from_ids` (a test holds them equal), computed faster.
    bm25s 0.3 adds each query term's posting list with `np.add.at` (unbuffered,
    ~10x slower than a fancy-index add); within one term's posting list each unit
    occurs once, so `+=` gives the same sums. At 100k generated papers (1.05M units)
    a common term's list has ~10^5 entries and bm25s's own retrieval took p95
    ~200 ms (docs/scale/README.md)."""
    s = bm25.scores  # type: ignore[attr-defined]  # bm25s sets its index arrays in index(), untyped
    data, indices, indptr = s["data"], s["indices"], s["indptr"]
    scores = np.zeros(s["num_docs"], dtype=np.dtype(bm25.dtype))  # type: ignore[attr-defined]  # as above
    for t in token_ids:  # a repeated query term counts again, as in bm25s
        lo, hi = indptr[t], indptr[t + 1]
        scores[indices[lo:hi]] += data[lo:hi]
    nonoccurrence = bm25.nonoccurrence_array  # type: ignore[attr-defined]  # as above
    if nonoccurrence is not None:  # BM25L / BM25+ variants
        scores += nonoccurrence[np.asarray(token_ids)].sum()
    return scores
