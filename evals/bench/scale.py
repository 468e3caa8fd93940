"""`assistant bench scale`: indexing and query cost against corpus size.

For each size, a corpus of recombined real papers is generated (assistant/scale.py)
and, for each store (embedded Chroma on disk, or a `chroma run` server started
for the run), two child processes run one after the other, so each peak RSS is
that phase's own (from wait4):

* index: `index.sync` into a fresh folder. Reports papers/s and the split of the
  sync time into embedding, Chroma writes, BM25 build and the rest.
* query: `retrieve.open_index` and `Index.search` over the benchmark questions
  with each retriever (dense, bm25, hybrid): p50/p95, the steps of each search,
  and a profile of the parts (the two Chroma queries alone, bm25s scoring alone).

Vectors. Embedding 100k papers (~1M units) with MiniLM on 2 cores takes well over
an hour, and a generated corpus only repeats ~3.4k real sentences. At the sizes
in `real_embed_sizes` every unit goes through the model and its rate (units/s)
is measured; at the others the indexer gets a `CachedEmbedder`: sentences take
the vectors the same model gave the same text (computed once), titles (unique,
generated) still go through the model. Those runs are labelled `vectors: cache`,
and their model-bound throughput is projected from the measured rate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from assistant.config import PROJECT_ROOT, Settings
from assistant.files import atomic_write_json
from evals.stats import percentile
from evals.servers import ChromaServer

RETRIEVERS = ("dense", "bm25", "hybrid")
STORES = ("embedded", "server")
DEFAULT_SIZES = (1000, 10000, 100000)
DEFAULT_CACHE = PROJECT_ROOT / "var" / "scale-cache" / "sentence-vectors.npz"
PREFIX = "scale"
TARGET_HYBRID_P95_MS = 100.0
TARGET_SIZE = 100_000




def _summary(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 0.5), 2), "p95": round(percentile(values, 0.95), 2),
            "mean": round(statistics.fmean(values), 2), "n": len(values)}


def _du(path: Path) -> int:
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_blocks * 512
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _mib(n_bytes: float) -> float:
    return round(n_bytes / 2**20, 1)


def _status_mib(pid: int | str, field: str) -> float | None:
    """One memory line of /proc/PID/status (VmHWM, VmRSS), in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def peak_rss_mib(pid: int | str = "self") -> float | None:
    """VmHWM: the peak resident set of a process's current address space. Unlike
    wait4's ru_maxrss it does not inherit the parent's resident set at fork/exec."""
    return _status_mib(pid, "VmHWM")


def server_memory_mib(server: ChromaServer) -> dict[str, float]:
    """Peak and current resident memory of the Chroma server process (empty once it is gone)."""
    pid = server.proc.pid if server.proc else 0
    memory = {"peak_rss_mib": peak_rss_mib(pid), "rss_mib": _status_mib(pid, "VmRSS")}
    return {k: v for k, v in memory.items() if v is not None}


# ---------------------------------------------------------------- children


class _Progress:
    """A `sync` progress bar that appends (seconds, papers done) to a file now and
    then, so a run stopped at the time limit still says how far it got."""

    def __init__(self, path: Path, total: int) -> None:
        self.path, self.total, self.done = path, total, 0
        self.t0 = self.last = time.perf_counter()
        self._write()

    def _write(self) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"s": round(time.perf_counter() - self.t0, 1), "done": self.done, "total": self.total}) + "\n")

    def update(self, n: int) -> None:
        self.done += n
        if time.perf_counter() - self.last > 10:
            self.last = time.perf_counter()
            self._write()

    def close(self) -> None:
        self._write()


def child_index(out: Path, cache_path: Path | None) -> None:
    """Runs in its own process: one full `sync` of ASSISTANT_CORPUS_DIR."""
    from assistant.embed import get_embedder
    from assistant.index import sync

    settings = Settings()
    t0 = time.perf_counter()
    model = get_embedder(settings.embed_model_path, settings.embed_max_tokens, settings.embed_batch_size)
    model_load = time.perf_counter() - t0
    embedder = None
    if cache_path is not None:
        from evals.bench.synth import CachedEmbedder, VectorCache

        embedder = CachedEmbedder(model, VectorCache.load(cache_path))
    progress_file = out.with_suffix(".progress")
    report = sync(settings, progress=lambda total, _desc: _Progress(progress_file, total), embedder=embedder)
    if report.errors:
        raise SystemExit(f"corpus errors: {report.errors[:3]}")
    result = {
        "papers": report.papers,
        "units": report.units_embedded,
        "sync_s": report.seconds,
        "embed_s": report.embed_seconds,
        "store_s": report.store_seconds,
        "keyword_s": report.keyword_seconds,
        "model_load_s": model_load,
        # the vocabulary's words go to the model as well (assistant/words.py): counted apart
        "model_units": embedder.misses - report.words_embedded if embedder else report.units_embedded,
        "words_embedded": report.words_embedded,
        "words_s": report.words_seconds,
        "cached_units": embedder.hits if embedder else 0,
        "model_s": embedder.model_seconds if embedder else report.embed_seconds,
        "peak_rss_mib": peak_rss_mib(),
    }
    out.write_text(json.dumps(result), encoding="utf-8")


def child_cache(out: Path) -> None:
    """Runs in its own process: embeds every real sentence once (the vector cache)."""
    from evals.bench.synth import build_sentence_cache, real_sentences

    from assistant.corpus import load_corpus
    from assistant.embed import get_embedder

    settings = Settings()
    source = load_corpus(settings.corpus_dir).papers
    model = get_embedder(settings.embed_model_path, settings.embed_max_tokens, settings.embed_batch_size)
    seconds = build_sentence_cache(model, source, out)
    n = len(real_sentences(source))
    out.with_suffix(".json").write_text(json.dumps({"sentences": n, "seconds": round(seconds, 1),
                                                    "units_per_s": round(n / seconds, 1)}), encoding="utf-8")


def child_query(out: Path, repeats: int) -> None:
    """Runs in its own process: open the index, then time searches."""
    from evals.bench.speed import LONG_QUESTIONS, QUESTIONS

    from assistant.retrieve import open_index

    settings = Settings(mode="offline")
    t0 = time.perf_counter()
    index = open_index(settings)
    open_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index.search(QUESTIONS[0], k=settings.retrieve_k, retriever="hybrid")  # loads the model and BM25
    first_s = time.perf_counter() - t0
    for q in QUESTIONS:  # warm-up
        for r in RETRIEVERS:
            index.search(q, k=settings.retrieve_k, retriever=r)  # type: ignore[arg-type]
    total: dict[str, list[float]] = {r: [] for r in RETRIEVERS}
    steps: dict[str, dict[str, list[float]]] = {r: {} for r in RETRIEVERS}
    for _ in range(repeats):
        for q in QUESTIONS:
            for r in RETRIEVERS:
                t = time.perf_counter()
                ranking = index.search(q, k=settings.retrieve_k, retriever=r)  # type: ignore[arg-type]
                total[r].append((time.perf_counter() - t) * 1000)
                for step, ms in ranking.timings_ms.items():
                    if step != "total":
                        steps[r].setdefault(step, []).append(ms)
    # Long, several-clause questions through hybrid search: they also pay for the
    # re-ranking by question parts (a model call and a Chroma read by ids).
    long_total: list[float] = []
    long_steps: dict[str, list[float]] = {}
    for q in LONG_QUESTIONS:
        index.search(q, k=settings.retrieve_k, retriever="hybrid")  # warm-up
    for _ in range(repeats):
        for q in LONG_QUESTIONS:
            t = time.perf_counter()
            ranking = index.search(q, k=settings.retrieve_k, retriever="hybrid")
            long_total.append((time.perf_counter() - t) * 1000)
            for step, ms in ranking.timings_ms.items():
                if step != "total":
                    long_steps.setdefault(step, []).append(ms)
    # Profile of the parts, outside `search`: Chroma alone (vector given); the two
    # collection counts the query path used to make (removed: they scan the
    # collections); bm25s's own top-k retrieval beside our scoring (`keyword_scores`).
    pool = settings.dense_candidates
    n_pap = max(pool // 2, 50)
    vectors = {q: index.dense.embed_query(q) for q in QUESTIONS}
    keyword = index.keyword
    parts: dict[str, list[float]] = {"chroma_sentences_top%d" % pool: [], "chroma_papers_top%d" % n_pap: [],
                                     "chroma_two_counts_removed": [], "bm25s_retrieve_top%d" % pool: [],
                                     "keyword_scores_top%d" % pool: []}
    import bm25s

    from assistant.keyword import TOKEN_PATTERN, stemmer

    for _ in range(repeats):
        for q in QUESTIONS:
            t = time.perf_counter()
            index.store.sentences.query(query_embeddings=[vectors[q]], n_results=pool, include=["metadatas", "distances"])
            parts["chroma_sentences_top%d" % pool].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            index.store.papers.query(query_embeddings=[vectors[q]], n_results=n_pap, include=["metadatas", "distances"])
            parts["chroma_papers_top%d" % n_pap].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            index.store.sentences.count()
            index.store.papers.count()
            parts["chroma_two_counts_removed"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            tokens = bm25s.tokenize(q, stemmer=stemmer(), token_pattern=TOKEN_PATTERN, show_progress=False)
            keyword.bm25.retrieve(tokens, k=min(pool, len(keyword)), show_progress=False, return_as="tuple")
            parts["bm25s_retrieve_top%d" % pool].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            index.keyword_scores(q, pool)
            parts["keyword_scores_top%d" % pool].append((time.perf_counter() - t) * 1000)
    result = {
        "open_s": open_s,
        "first_query_s": first_s,
        "samples_per_retriever": len(total["hybrid"]),
        "retrievers": {r: {**_summary(total[r]), "steps_p50": {k: round(percentile(v, 0.5), 2) for k, v in steps[r].items()},
                           "steps_p95": {k: round(percentile(v, 0.95), 2) for k, v in steps[r].items()}} for r in RETRIEVERS},
        "hybrid_long_questions": {**_summary(long_total),
                                  "steps_p50": {k: round(percentile(v, 0.5), 2) for k, v in long_steps.items()},
                                  "steps_p95": {k: round(percentile(v, 0.95), 2) for k, v in long_steps.items()}},
        "profile": {k: _summary(v) for k, v in parts.items()},
        "bm25_units": len(keyword),
        "peak_rss_mib": peak_rss_mib(),
    }
    out.write_text(json.dumps(result), encoding="utf-8")


# ---------------------------------------------------------------- parent


def _run_child(args: list[str], env: dict[str, str], log: Path, timeout_s: float) -> dict[str, Any]:
    """Wall seconds, exit status and load average of one child, killed at the limit.
    Its peak RSS is what the child reports (VmHWM), or the last VmHWM seen here."""
    start = time.perf_counter()
    load = os.getloadavg()[0]
    hwm = None
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "evals.bench.scale", *args], env=env, cwd=PROJECT_ROOT,
                                stdout=fh, stderr=subprocess.STDOUT)
        timed_out = False
        while True:
            pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            hwm = peak_rss_mib(proc.pid) or hwm
            if time.perf_counter() - start > timeout_s:
                proc.kill()
                timed_out = True
                _, status, _ = os.wait4(proc.pid, 0)
                break
            time.sleep(0.2)
    return {"wall_s": time.perf_counter() - start, "peak_rss_mib": hwm, "rc": os.waitstatus_to_exitcode(status),
            "timed_out": timed_out,
            "load_avg": [round(load, 2), round(os.getloadavg()[0], 2)]}


def _progress_tail(path: Path) -> dict[str, Any] | None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None


def run_one(size: int, store: str, corpus: Path, work: Path, cache: Path | None, repeats: int,
            timeout_s: float) -> dict[str, Any]:
    """Index then query one generated corpus on one store."""
    run_dir = work / f"{size}-{store}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    index_dir = run_dir / "index"
    env = {**os.environ, "ASSISTANT_CORPUS_DIR": str(corpus), "ASSISTANT_INDEX_DIR": str(index_dir),
           "ASSISTANT_CHROMA_URL": "", "ASSISTANT_COLLECTION_PREFIX": PREFIX, "ASSISTANT_MODE": "offline",
           "ASSISTANT_LLM_BASE_URL": "", "OPENAI_BASE_URL": "", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("ASSISTANT_LLM_API_KEY", None)
    env.pop("OPENAI_API_KEY", None)
    result: dict[str, Any] = {"size": size, "store": store, "vectors": "cache" if cache else "model"}
    server = None
    try:
        if store == "server":
            server = ChromaServer(run_dir / "chroma-server", log=run_dir / "chroma-server.log").start()
            env["ASSISTANT_CHROMA_URL"] = server.url
        args = ["index", "--out", str(run_dir / "index.json")] + (["--cache", str(cache)] if cache else [])
        child = _run_child(args, env, run_dir / "index.log", timeout_s)
        result["index"] = {"wall_s": round(child["wall_s"], 1), "peak_rss_mib": child["peak_rss_mib"], "load_avg": child["load_avg"]}
        if child["rc"] != 0 or child["timed_out"]:
            result["index"].update(failed=True, timed_out=child["timed_out"], progress=_progress_tail(run_dir / "index.progress"),
                                   log_tail=(run_dir / "index.log").read_text(encoding="utf-8", errors="replace")[-1500:])
            return result
        data = json.loads((run_dir / "index.json").read_text(encoding="utf-8"))
        other = data["sync_s"] - data["embed_s"] - data["store_s"] - data["keyword_s"] - data["words_s"]
        result["index"].update(
            papers=data["papers"], units=data["units"], model_units=data["model_units"], cached_units=data["cached_units"],
            words_embedded=data["words_embedded"], words_s=round(data["words_s"], 1),
            sync_s=round(data["sync_s"], 1), embed_s=round(data["embed_s"], 1), store_s=round(data["store_s"], 1),
            keyword_s=round(data["keyword_s"], 1), other_s=round(other, 1), model_s=round(data["model_s"], 1),
            model_load_s=round(data["model_load_s"], 1), peak_rss_mib=data["peak_rss_mib"],
            papers_per_s=round(data["papers"] / data["sync_s"], 1),
            store_papers_per_s=round(data["papers"] / max(data["store_s"] + data["keyword_s"], 1e-9), 1),
        )
        if server:
            result["server_after_index"] = server_memory_mib(server)
        child = _run_child(["query", "--out", str(run_dir / "query.json"), "--repeats", str(repeats)], env,
                           run_dir / "query.log", timeout_s)
        result["query"] = {"wall_s": round(child["wall_s"], 1), "peak_rss_mib": child["peak_rss_mib"], "load_avg": child["load_avg"]}
        if child["rc"] != 0 or child["timed_out"]:
            result["query"].update(failed=True, timed_out=child["timed_out"],
                                   log_tail=(run_dir / "query.log").read_text(encoding="utf-8", errors="replace")[-1500:])
        else:
            data = json.loads((run_dir / "query.json").read_text(encoding="utf-8"))
            result["query"].update({k: round(v, 2) if isinstance(v, float) else v for k, v in data.items()})
        if server:
            result["server"] = server_memory_mib(server)
        disk = {
            "chroma": _du(run_dir / "chroma-server") if server else _du(index_dir / "chroma"),
            "keyword": _du(index_dir / "keyword"),
            "snapshot": _du(index_dir / "papers.json"),
        }
        result["disk_mib"] = {k: _mib(v) for k, v in disk.items()} | {"total": _mib(sum(disk.values()))}
        return result
    finally:
        if server:
            server.stop()


def _machine() -> dict[str, Any]:
    import chromadb
    import torch

    from assistant.embed import cpu_has_bf16

    cpu = ""
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import psutil

    return {"cpus": os.cpu_count(), "cpu": cpu, "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "chromadb": chromadb.__version__, "torch": torch.__version__,
            "bf16": cpu_has_bf16(), "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]}


def _derive(results: dict[str, Any]) -> None:
    """Embedding rate from the model runs, projections for the cached ones, targets."""
    runs = [r for r in results["runs"] if "papers" in r.get("index", {})]
    model_runs = [r for r in runs if r["vectors"] == "model" and r["index"]["embed_s"] > 0]
    if model_runs:
        ref = max(model_runs, key=lambda r: (r["store"] == "embedded", r["size"]))
        rate = ref["index"]["units"] / ref["index"]["embed_s"]
        results["embedding"] = {"measured_in": f"{ref['size']} papers, {ref['store']} store", "units": ref["index"]["units"],
                                "seconds": ref["index"]["embed_s"], "units_per_s": round(rate, 1),
                                "papers_per_s": round(ref["size"] / ref["index"]["embed_s"], 1)}
    elif results.get("embedding", {}).get("units_per_s"):
        rate = results["embedding"]["units_per_s"]
    else:
        rate = None
    for r in runs:
        ix = r["index"]
        if rate:
            projected = ix["units"] / rate
            rest = ix["store_s"] + ix["keyword_s"] + ix["other_s"]
            ix["projected_embed_s"] = round(projected, 1)
            ix["projected_papers_per_s"] = round(ix["papers"] / (projected + rest), 1)
            ix["embed_share"] = round(projected / (projected + rest), 3)
    # Targets.
    targets: dict[str, Any] = {}
    big = [r for r in runs if r["size"] >= TARGET_SIZE and "retrievers" in r.get("query", {})]
    largest = max((r["size"] for r in runs if "retrievers" in r.get("query", {})), default=None)
    if largest:
        targets["hybrid_p95_ms"] = {
            r["store"]: {"size": r["size"], "p95": r["query"]["retrievers"]["hybrid"]["p95"],
                         "met": r["query"]["retrievers"]["hybrid"]["p95"] < TARGET_HYBRID_P95_MS}
            for r in runs if r["size"] == largest and "retrievers" in r.get("query", {})
        }
        targets["hybrid_p95_ms"]["target"] = f"< {TARGET_HYBRID_P95_MS:.0f} ms at {TARGET_SIZE} papers"
        targets["hybrid_p95_ms"]["reached_target_size"] = bool(big)
    targets["embedding_bound"] = {f"{r['size']}-{r['store']}": r["index"].get("embed_share") for r in runs}
    growth: dict[str, Any] = {}
    for store in STORES:
        rs = sorted((r for r in runs if r["store"] == store), key=lambda r: r["size"])
        for key, get in (("index_rss", lambda r: r["index"]["peak_rss_mib"]),
                         ("query_rss", lambda r: r.get("query", {}).get("peak_rss_mib")),
                         ("disk", lambda r: r.get("disk_mib", {}).get("total"))):
            slopes = []
            for a, b in zip(rs, rs[1:]):
                if get(a) is not None and get(b) is not None:
                    slopes.append({"from": a["size"], "to": b["size"],
                                   "mib_per_1k_papers": round((get(b) - get(a)) / (b["size"] - a["size"]) * 1000, 2)})
            if slopes:
                growth.setdefault(store, {})[key] = slopes
    targets["memory_growth"] = growth
    results["targets"] = targets


def table(results: dict[str, Any]) -> str:
    head = (f"{'papers':>7} {'store':8} {'vec':5} {'pap/s':>6} {'proj':>6} {'embed':>6} {'chroma':>6} {'bm25':>5} {'other':>5}"
            f" {'disk':>7} {'idxRSS':>6} {'qRSS':>6} {'srvRSS':>6}"
            + "".join(f" {r + ' p50/p95':>16}" for r in RETRIEVERS))
    lines = [head, "-" * len(head)]
    for r in results["runs"]:
        ix, q = r.get("index", {}), r.get("query", {})
        if "papers" not in ix:
            prog = ix.get("progress") or {}
            lines.append(f"{r['size']:>7} {r['store']:8} {r['vectors']:5} stopped after {ix.get('wall_s', 0):.0f} s"
                         f" (timed out: {ix.get('timed_out')}), {prog.get('done', '?')}/{prog.get('total', '?')} papers embedded+written")
            continue
        lat = "".join(
            f" {q['retrievers'][k]['p50']:7.1f}/{q['retrievers'][k]['p95']:<8.1f}" if "retrievers" in q else f" {'-':>16}"
            for k in RETRIEVERS)
        lines.append(
            f"{r['size']:>7} {r['store']:8} {r['vectors']:5} {ix['papers_per_s']:6.1f} {ix.get('projected_papers_per_s', float('nan')):6.1f}"
            f" {ix['embed_s']:6.1f} {ix['store_s']:6.1f} {ix['keyword_s']:5.1f} {ix['other_s']:5.1f}"
            f" {r.get('disk_mib', {}).get('total', float('nan')):7.1f} {ix['peak_rss_mib']:6.0f} {q.get('peak_rss_mib', float('nan')):6.0f}"
            f" {r.get('server', {}).get('peak_rss_mib', float('nan')):6.0f}{lat}")
    lines.append("pap/s: papers/s of the sync as run; proj: papers/s with every unit embedded by the model at the measured rate;"
                 " embed/chroma/bm25/other: seconds; disk MiB; RSS: peak MiB of the index and query processes and of the"
                 " Chroma server; latencies in ms. vec=cache: sentence vectors reused (see README).")
    return "\n".join(lines)


def _series(ax: Any, runs: list[dict[str, Any]], store: str, get: Any, color: str, label: str) -> None:
    """One line of a plot panel: corpus size against `get(run)` for one store's runs,
    skipping runs that lack the figure (a failed or stopped phase)."""
    points = []
    for r in sorted((r for r in runs if r["store"] == store), key=lambda r: r["size"]):
        try:
            value = get(r)
        except KeyError:
            continue
        if value is not None:
            points.append((r["size"], value))
    if points:
        ax.plot(*zip(*points), "-" if store == "embedded" else "--", marker="o" if store == "embedded" else "s",
                color=color, label=f"{label} ({store})")


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in results["runs"] if "papers" in r.get("index", {})]
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    colors = {"dense": "tab:blue", "bm25": "tab:orange", "hybrid": "tab:green"}
    panels = [
        (axes[0][0], "query p95 (ms)", "Query latency p95",
         [(lambda r, k=k: r["query"]["retrievers"][k]["p95"], colors[k], k) for k in RETRIEVERS]),
        (axes[0][1], "papers / s", "Index throughput",
         [(lambda r: r["index"]["papers_per_s"], "tab:purple", "as run, cache runs reuse sentence vectors"),
          (lambda r: r["index"]["store_papers_per_s"], "tab:red", "store only: Chroma + BM25"),
          (lambda r: r["index"]["projected_papers_per_s"], "black", "with model embedding, projected")]),
        (axes[1][0], "peak RSS (MiB)", "Memory",
         [(lambda r: r["index"]["peak_rss_mib"], "tab:purple", "index process"),
          (lambda r: r["query"]["peak_rss_mib"], "tab:green", "query process"),
          (lambda r: r["server"]["peak_rss_mib"], "tab:brown", "Chroma server process")]),
        (axes[1][1], "MiB on disk", "Index size on disk",
         [(lambda r: r["disk_mib"]["total"], "black", "total"),
          (lambda r: r["disk_mib"]["chroma"], "tab:blue", "Chroma"),
          (lambda r: r["disk_mib"]["keyword"], "tab:orange", "BM25")]),
    ]
    for ax, ylabel, title, lines in panels:
        for store in STORES:
            for get, color, label in lines:
                _series(ax, runs, store, get, color, label)
        ax.set(xscale="log", yscale="log", xlabel="papers", ylabel=ylabel, title=title)
    axes[0][0].axhline(TARGET_HYBRID_P95_MS, color="grey", linestyle=":", label="target: hybrid p95 100 ms")
    for ax, *_ in panels:
        ax.legend(fontsize=7)
    fig.suptitle(f"Cost against corpus size ({results['machine']['cpus']} CPUs; generated corpora, see docs/scale/README.md)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_scale(sizes: list[int], stores: list[str], out_dir: Path | None, real_embed_sizes: list[int], seed: int = 0,
              repeats: int = 5, timeout_s: float = 1500.0, cache_path: Path = DEFAULT_CACHE, work: Path | None = None,
              keep: bool = False, log: Any = print, checkpoint: Any = None) -> dict[str, Any]:
    """The whole benchmark; writes results.json and scale.png to `out_dir` when given."""
    from evals.bench.synth import generate_corpus

    from assistant.corpus import load_corpus

    for store in stores:
        if store not in STORES:
            raise ValueError(f"unknown store {store!r}; use {', '.join(STORES)}")
    settings = Settings()
    source = load_corpus(settings.corpus_dir).papers
    own_work = work is None
    work = work or Path(tempfile.mkdtemp(prefix="assistant-scale-"))
    results: dict[str, Any] = {
        "machine": _machine(),
        "config": {"sizes": sizes, "stores": stores, "seed": seed, "repeats": repeats, "real_embed_sizes": real_embed_sizes,
                   "dense_candidates": settings.dense_candidates, "index_round_papers": settings.index_round_papers,
                   "retrieve_k": settings.retrieve_k, "timeout_s": timeout_s,
                   "source_papers": len(source)},
        "generated": {},
        "runs": [],
    }
    cache = None
    if any(s not in real_embed_sizes for s in sizes):
        from evals.bench.synth import cache_is_current

        from assistant.embed import model_fingerprint

        built = None
        if not cache_is_current(cache_path, model_fingerprint(settings.embed_model_path), source):
            work.mkdir(parents=True, exist_ok=True)
            child = _run_child(["cache", "--out", str(cache_path)], dict(os.environ), work / "cache.log", timeout_s)
            if child["rc"] != 0:
                raise RuntimeError(f"building the sentence vectors failed:\n{(work / 'cache.log').read_text()[-2000:]}")
            built = json.loads(cache_path.with_suffix(".json").read_text(encoding="utf-8"))
        results["sentence_cache"] = {"path": str(cache_path), "built": built}
        cache = cache_path
        log(f"sentence vectors: {cache_path} ({'built in %.0f s' % built['seconds'] if built else 'reused'})")
    try:
        for size in sorted(sizes):
            corpus = work / f"corpus-{size}"
            gen = generate_corpus(source, size, corpus, seed=seed)
            results["generated"][str(size)] = {"papers": gen.papers, "files": len(gen.files), "sentences": gen.sentences,
                                               "distinct_sentences": gen.distinct_sentences, "seconds": round(gen.seconds, 1),
                                               "mib": _mib(sum(f.stat().st_size for f in gen.files))}
            log(f"generated {size} papers ({gen.sentences} sentences, {gen.distinct_sentences} distinct) in {gen.seconds:.0f} s")
            for store in stores:
                use_cache = cache if size not in real_embed_sizes else None
                log(f"run: {size} papers, {store} store, vectors from {'cache' if use_cache else 'the model'} ...")
                result = run_one(size, store, corpus, work, use_cache, repeats, timeout_s)
                results["runs"].append(result)
                ix = result.get("index", {})
                log(f"  index {ix.get('wall_s')} s wall" + (" FAILED/STOPPED" if ix.get("failed") else f", {ix.get('papers_per_s')} papers/s")
                    + (f"; hybrid p95 {result['query']['retrievers']['hybrid']['p95']} ms" if "retrievers" in result.get("query", {}) else ""))
                if not keep:
                    shutil.rmtree(work / f"{size}-{store}", ignore_errors=True)
                _derive(results)
                if out_dir:
                    _write(results, out_dir)
                if checkpoint:
                    checkpoint(results)
            if not keep:
                shutil.rmtree(corpus, ignore_errors=True)
    finally:
        if own_work and not keep:
            shutil.rmtree(work, ignore_errors=True)
    _derive(results)
    if out_dir:
        _write(results, out_dir)
        plot(results, out_dir / "scale.png")
    return results


def command(sizes: str, stores: str, out: Path, real_embed_sizes: str, repeats: int, timeout_s: float,
            append: bool) -> dict[str, Any]:
    """`assistant bench scale`: runs, merges into out/results.json when appending,
    writes the plot and prints the table."""
    size_list = [int(x) for x in sizes.split(",") if x.strip()]
    real = size_list if real_embed_sizes.strip() == "all" else [int(x) for x in real_embed_sizes.split(",") if x.strip()]
    store_list = [x.strip() for x in stores.split(",") if x.strip()]
    previous = None
    if append and (out / "results.json").exists():
        previous = json.loads((out / "results.json").read_text(encoding="utf-8"))
    results = run_scale(size_list, store_list, None, real, repeats=repeats, timeout_s=timeout_s,
                        log=lambda m: print(m, file=sys.stderr, flush=True),
                        checkpoint=lambda r: _write(_merge(previous, r), out))
    results = _merge(previous, results)
    _write(results, out)
    plot(results, out / "scale.png")
    print(table(results))
    return results


def _merge(previous: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """New runs replace earlier ones of the same size and store; the rest are kept."""
    if not previous:
        return new
    done = {(r["size"], r["store"]) for r in new["runs"]}
    merged = dict(new)
    merged["runs"] = sorted([r for r in previous["runs"] if (r["size"], r["store"]) not in done] + new["runs"],
                            key=lambda r: (r["size"], r["store"]))
    merged["generated"] = {**previous.get("generated", {}), **new["generated"]}
    merged["earlier_invocations"] = previous.get("earlier_invocations", []) + [
        {"config": previous["config"], "machine": previous["machine"]}]
    if "embedding" in previous and "embedding" not in new:
        merged["embedding"] = previous["embedding"]
    _derive(merged)
    return merged


def _write(results: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "results.json", results, indent=1)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m evals.bench.scale", description="scale benchmark children")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("index")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cache", type=Path)
    p = sub.add_parser("cache")
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("query")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.cmd == "index":
        child_index(args.out, args.cache)
    elif args.cmd == "cache":
        child_cache(args.out)
    else:
        child_query(args.out, args.repeats)


if __name__ == "__main__":
    main()
