"""`assistant bench library`: importing a reference library of N entries (1,000 by
default) on top of the shipped corpus.

The library is generated: N recombined papers (evals/bench/synth.py, real
sentences at real lengths) with invented authors, venues and DOIs, plus entries
for 5% of the shipped papers (the enrichment path: matched by title, nothing new
to embed but the enriched paper) and 2% without an abstract (counted, skipped),
written as BibTeX with assistant/cite.py (bibtexparser's writer).

Figures, each the median of `repeats` runs where it is repeated:
* parse + merge: `load_corpus` over the listings and the library, before any
  embedding, beside the listings alone in the same run (target: <= 5 s);
* first add: `add_files` + `sync`, with its embedding seconds per new paper
  beside the per-paper rate of the cold build of the shipped corpus in the same
  run (target: the same rate);
* no-op re-add: `add_files` of the same file + `sync`, in process, and the
  whole `assistant add` command once as a user runs it, start-up included
  (target: <= 2 s)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from assistant.cite import to_bibtex
from assistant.config import Settings
from assistant.corpus import add_files, load_corpus, paper_id_for
from assistant.index import SyncReport, sync
from assistant.models import Occurrence, Paper
from evals.bench.synth import generate_papers

FAMILY = ["Okafor", "Lindqvist", "Nakamura", "Ferreira", "Mbeki", "Larsen", "Adeyemi", "Kowalski", "Haddad", "Tanaka"]
GIVEN = ["Astrid", "Chidi", "Rei", "Lucia", "Thandi", "Ole", "Kola", "Marta", "Yusuf", "Mei"]
VENUES = ["Invented Conference on Learning", "Journal of Invented Machine Learning", "Invented Workshop on Models"]


def library_papers(source: list[Paper], n: int, seed: int = 0) -> list[Paper]:
    """`n` new papers, 5% of the shipped ones again (enrichment) and 2% without abstract."""
    rng = np.random.default_rng(seed)
    generated, _ = generate_papers(source, n, seed)
    papers = [_paper(g.title, g.abstract, i, rng) for i, g in enumerate(generated)]
    papers += [_paper(p.title, p.abstract, n + i, rng) for i, p in enumerate(source[: max(1, n // 20)])]
    papers += [_paper(f"An Entry Without Abstract {i}", "", 2 * n + i, rng) for i in range(max(1, n // 50))]
    return papers


def _paper(title: str, abstract: str, i: int, rng: np.random.Generator) -> Paper:
    authors = [f"{FAMILY[int(a)]}, {GIVEN[int(b)]}" for a, b in rng.integers(0, 10, size=(int(rng.integers(1, 7)), 2))]
    return Paper(paper_id=paper_id_for(title), title=title, abstract=abstract,
                 occurrences=[Occurrence(file="bench.bib", line=1)], published=f"{2015 + i % 10}-{1 + i % 12:02d}",
                 authors=authors, venue=VENUES[i % 3], doi=f"10.5555/bench.{i}", cite_key=f"bench{i}",
                 entry_type="article")


def _median_seconds(fn: Any, repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def _add(settings: Settings, library: Path) -> SyncReport:
    add_files([library], settings.corpus_dir)
    return sync(settings)


def bench_library(n: int = 1000, repeats: int = 3, seed: int = 0) -> dict[str, float]:
    """Runs the figures of the module docstring in a temporary folder, printing each as it comes."""
    work = Path(tempfile.mkdtemp(prefix="assistant-bench-library-"))
    shipped = Settings().corpus_dir
    settings = Settings(corpus_dir=work / "corpus", index_dir=work / "index", collection_prefix="bench-library",
                        chroma_url=None, mode="offline", llm_base_url=None, llm_api_key=None)
    try:
        shutil.copytree(shipped, settings.corpus_dir)
        source = load_corpus(shipped).papers
        papers = library_papers(source, n, seed)
        library = work / "my-library.bib"
        library.write_text(to_bibtex(papers), encoding="utf-8")
        _say(f"library: {len(papers)} BibTeX entries ({n} new, {len(papers) - n} matching or without abstract), "
              f"{library.stat().st_size / 1e6:.1f} MB")
        return _measure(settings, library, repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _measure(settings: Settings, library: Path, repeats: int) -> dict[str, float]:
    out: dict[str, float] = {}
    parse_only = settings.corpus_dir.parent / "parse-only"
    shutil.copytree(settings.corpus_dir, parse_only)
    base, listings = _median_seconds(lambda: load_corpus(parse_only), repeats)
    shutil.copy(library, parse_only / library.name)
    out["parse_merge_s"], corpus = _median_seconds(lambda: load_corpus(parse_only), repeats)
    out["listings_only_s"] = base
    _say(f"parse + merge (load_corpus, median of {repeats}): listings alone {base:.2f} s ({len(listings.papers)} "
         f"papers); with the library {out['parse_merge_s']:.2f} s ({len(corpus.papers)} papers, "
         f"{len(corpus.no_abstract)} entries without abstract skipped)   target <= 5 s")
    cold = sync(settings)
    base_rate = cold.embed_seconds / max(1, len(cold.added))
    _say(f"cold build of the shipped corpus: {len(cold.added)} papers, {cold.seconds:.1f} s "
         f"({1000 * base_rate:.0f} ms embedding per paper)")
    added = _add(settings, library)
    new = len(added.added) + len(added.updated)
    rate = added.embed_seconds / max(1, new)
    out.update(embed_ms_per_paper=1000 * rate, baseline_embed_ms_per_paper=1000 * base_rate)
    _say(f"first add: {added.seconds:.1f} s, {new} papers embedded ({len(added.added)} new, {len(added.updated)} "
         f"enriched) at {1000 * rate:.0f} ms per paper vs {1000 * base_rate:.0f} ms for the shipped corpus "
         f"(ratio {rate / base_rate:.2f})")
    staged = settings.corpus_dir.parent / "staged"
    staged.mkdir()
    shutil.copy(library, staged / library.name)
    out["noop_readd_s"], report = _median_seconds(lambda: _add(settings, staged / library.name), repeats)
    assert not report.changed, "a no-op re-add changed the index"
    out["noop_readd_cli_s"] = _cli_add(settings, staged / library.name)
    _say(f"no-op re-add: {out['noop_readd_s']:.2f} s in process (median of {repeats}); `assistant add` command "
         f"{out['noop_readd_cli_s']:.2f} s wall, start-up included   target <= 2 s")
    return out


def _say(line: str) -> None:
    print(line, flush=True)


def _cli_add(settings: Settings, library: Path) -> float:
    env = {"ASSISTANT_CORPUS_DIR": str(settings.corpus_dir), "ASSISTANT_INDEX_DIR": str(settings.index_dir),
           "ASSISTANT_COLLECTION_PREFIX": settings.collection_prefix, "ASSISTANT_CHROMA_URL": "",
           "ASSISTANT_MODE": "offline", "ASSISTANT_LLM_BASE_URL": ""}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "assistant", "add", str(library), "--quiet"],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    if done.returncode != 0 or "embedded 0 units" not in done.stdout:
        raise RuntimeError(f"`assistant add` of the same file did something: {done.stdout}{done.stderr}")
    return wall


if __name__ == "__main__":
    bench_library(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
