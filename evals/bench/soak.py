"""`assistant bench soak`: does a long-running `assistant serve` stay flat under load?

Starts a real server (evals/servers.py, offline, loopback), lets `clients` threads
ask questions from every question set through /api/ask for `minutes` (a share of
them as follow-ups carrying the previous turn as `history`, as a chat client sends
them), and every `interval` seconds samples the server process with psutil (RSS,
open files, threads) and the p50/p95 of the answers completed since the last sample.

The verdict is read after a warm-up (models loaded, every question asked at least
once): the RSS slope in MiB/min (least squares over the samples), the RSS growth in
MiB, the p95 of the last window against the first, and the errors. The targets are
issue 28's: 0 errors, <= 50 MiB growth after warm-up, last p95 <= 1.2x the first.
Writes NAME.json (every sample and the verdict) and NAME.png (RSS and p95 over
time). Each client sends its requests through `bench load`'s `ask`, to /api/ask or
to the OpenAI-compatible /v1/chat/completions (`endpoint`).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.config import PROJECT_ROOT, Settings
from evals.bench.load import ENDPOINTS, MAX_CLIENTS, REQUEST_TIMEOUT, ask
from evals.servers import assistant_server, free_port
from evals.stats import percentile

QUESTION_SETS = sorted((PROJECT_ROOT / "evals" / "questions").glob("*.jsonl"))
MAX_MINUTES = 24 * 60.0
MAX_GROWTH_MIB = 50.0  # issue 28: RSS after warm-up grows at most this much in total
MAX_P95_RATIO = 1.2  # issue 28: p95 of the last window within 1.2x of the first
WINDOW_S = 300.0  # the first and last p95 windows: 5 minutes, less on a short run
MIB = 1024 * 1024


@dataclass
class Sample:
    t_s: float  # since the load started
    rss_mib: float
    open_files: int  # file descriptors, sockets included
    threads: int
    requests: int  # answers completed in this interval
    errors: int
    p50_ms: float | None
    p95_ms: float | None


@dataclass
class SoakRun:
    clients: int
    minutes: float
    interval_s: float
    warmup_s: float
    history_share: float
    endpoint: str = "ask"  # a key of evals.bench.load.ENDPOINTS
    server_env: dict[str, str] = field(default_factory=dict)  # settings given to the server only, e.g. a baseline
    questions: int = 0
    follow_ups: int = 0  # requests sent with the previous turn as history
    server_start_s: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    done: list[tuple[float, float, bool]] = field(default_factory=list, repr=False)  # (t_s, ms, failed)
    error_samples: list[str] = field(default_factory=list)


def soak_questions() -> list[str]:
    """Every question set's questions once each (a conversation's turns too), in a
    fixed shuffled order."""
    seen = dict.fromkeys(q for path in QUESTION_SETS for q in _questions_in(path))
    questions = list(seen)
    random.Random(28).shuffle(questions)
    return questions


def _questions_in(path: Path) -> list[str]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [q for row in rows for q in ([row["question"]] if "question" in row else
                                        [t["question"] for t in row.get("turns", [])])]


def _client(run: SoakRun, http: Any, questions: list[str], counter: Any, stop: threading.Event,
            lock: threading.Lock, t0: float) -> None:
    """Asks until `stop`; every question whose number falls in the history share is
    a follow-up that carries this client's previous question and answer."""
    import httpx

    previous: tuple[str, str] | None = None
    every = round(1 / run.history_share) if run.history_share > 0 else 0
    while not stop.is_set():
        n = next(counter)
        question = questions[n % len(questions)]
        follow_up = previous is not None and every and (n % every == 0)
        history = [previous] if follow_up and previous else None
        sent = time.perf_counter()
        try:
            problem, _, text = ask(http, run.endpoint, question, history)
        except (httpx.HTTPError, ValueError) as exc:
            problem, text = f"{type(exc).__name__}: {exc}", ""
        answered = time.perf_counter()
        with lock:
            run.done.append((answered - t0, (answered - sent) * 1000, problem is not None))
            run.follow_ups += bool(history)
            if problem and len(run.error_samples) < 5:
                run.error_samples.append(f"{question[:50]!r}: {problem}")
        previous = (question, text) if problem is None else None


def _sample(run: SoakRun, proc: Any, t0: float, since: int, lock: threading.Lock) -> int:
    """Appends one sample of the server process and of the answers after `since`."""
    with lock:
        fresh = run.done[since:]
    ms = [m for _, m, _ in fresh]
    with proc.oneshot():
        rss, fds, threads = proc.memory_info().rss, proc.num_fds(), proc.num_threads()
    run.samples.append(Sample(
        t_s=round(time.perf_counter() - t0, 1), rss_mib=round(rss / MIB, 1), open_files=fds, threads=threads,
        requests=len(fresh), errors=sum(failed for _, _, failed in fresh),
        p50_ms=_round(percentile(ms, 0.5)), p95_ms=_round(percentile(ms, 0.95))))
    return since + len(fresh)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def run_soak(clients: int = 8, minutes: float = 10.0, interval_s: float = 15.0, warmup_s: float = 120.0,
             history_share: float = 0.3, endpoint: str = "ask", settings: Settings | None = None,
             startup_timeout: float = 300.0, server_env: dict[str, str] | None = None) -> SoakRun:
    """Runs the soak against a fresh server and returns every sample."""
    import httpx
    import psutil

    if not 1 <= clients <= MAX_CLIENTS:
        raise ValueError(f"clients must be between 1 and {MAX_CLIENTS}")
    if not 0 < minutes <= MAX_MINUTES:
        raise ValueError(f"minutes must be between 0 and {MAX_MINUTES:g}")
    if not 0 <= warmup_s < minutes * 60 or not 0 < interval_s <= minutes * 60:
        raise ValueError("warm-up must be shorter than the run, and the interval positive and no longer than it")
    if not 0 <= history_share <= 1:
        raise ValueError("history share must be between 0 and 1")
    if endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint must be one of {', '.join(ENDPOINTS)}")
    settings = settings or Settings()
    questions = soak_questions()
    run = SoakRun(clients, minutes, interval_s, warmup_s, history_share, endpoint, dict(server_env or {}),
                  questions=len(questions))
    log = Path(tempfile.mkstemp(prefix="assistant-soak-", suffix=".log")[1])
    port = free_port()
    server = assistant_server(settings, port, log, healthy=True, **run.server_env).start(startup_timeout)
    run.server_start_s = round(server.start_s, 1)
    proc = psutil.Process(server.proc.pid)  # type: ignore[union-attr]
    stop, lock, counter = threading.Event(), threading.Lock(), itertools.count()
    t0 = time.perf_counter()
    https = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=REQUEST_TIMEOUT) for _ in range(clients)]
    threads = [threading.Thread(target=_client, args=(run, h, questions, counter, stop, lock, t0),
                                name=f"soak-client-{i}", daemon=True) for i, h in enumerate(https)]
    try:
        for th in threads:
            th.start()
        since, end = 0, t0 + minutes * 60
        while (now := time.perf_counter()) < end:
            time.sleep(min(interval_s, end - now))
            since = _sample(run, proc, t0, since, lock)
        stop.set()
        for th in threads:
            th.join(REQUEST_TIMEOUT + 5)
    finally:
        stop.set()
        server.stop()
        for h in https:
            h.close()
        log.unlink(missing_ok=True)
    return run


def verdict(run: SoakRun) -> dict[str, Any]:
    """The figures the targets are read on: after warm-up, slope and growth of RSS,
    p95 of the first and last windows, errors; and whether each target is met."""
    after = [s for s in run.samples if s.t_s >= run.warmup_s] or run.samples[-1:]
    t = np.array([s.t_s / 60 for s in after])
    rss = np.array([s.rss_mib for s in after])
    slope = float(np.polyfit(t, rss, 1)[0]) if len(after) >= 2 else 0.0
    end = run.samples[-1].t_s if run.samples else 0.0
    window = min(WINDOW_S, max((end - run.warmup_s) / 2, 1e-9))
    first = [ms for ts, ms, _ in run.done if run.warmup_s <= ts < run.warmup_s + window]
    last = [ms for ts, ms, _ in run.done if end - window <= ts <= end]
    p95_first, p95_last = percentile(first, 0.95), percentile(last, 0.95)
    ratio = p95_last / p95_first if p95_first and p95_last else None
    requests, errors = len(run.done), sum(failed for _, _, failed in run.done)
    growth = float(rss[-1] - rss[0]) if len(rss) else 0.0
    return {
        "requests": requests, "errors": errors, "throughput_rps": round(requests / end, 2) if end else 0.0,
        "rss_start_mib": run.samples[0].rss_mib if run.samples else None,
        "rss_after_warmup_mib": float(rss[0]) if len(rss) else None, "rss_end_mib": float(rss[-1]) if len(rss) else None,
        "rss_growth_after_warmup_mib": round(growth, 1), "rss_slope_mib_per_min": round(slope, 2),
        "kb_per_request_after_warmup": round(growth * 1024 / max(1, sum(s.requests for s in after[1:])), 2),
        "open_files": [min(s.open_files for s in run.samples), max(s.open_files for s in run.samples)]
        if run.samples else None,
        "threads": [min(s.threads for s in run.samples), max(s.threads for s in run.samples)] if run.samples else None,
        "p95_window_s": round(window), "p95_first_ms": _round(p95_first), "p95_last_ms": _round(p95_last),
        "p95_ratio": _round_ratio(ratio),
        "targets": {"errors == 0": errors == 0, f"growth <= {MAX_GROWTH_MIB:g} MiB": growth <= MAX_GROWTH_MIB,
                    f"p95 last/first <= {MAX_P95_RATIO}": ratio is not None and ratio <= MAX_P95_RATIO},
    }


def _round_ratio(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def text(run: SoakRun, figures: dict[str, Any]) -> str:
    head = (f"{run.clients} clients x {run.minutes:g} min on {ENDPOINTS[run.endpoint]} of assistant serve "
            f"(offline, {os.cpu_count()} CPUs, "
            f"{run.questions} questions, {run.history_share:.0%} with history; server start {run.server_start_s} s)"
            + "".join(f"\n  server {k}={v}" for k, v in run.server_env.items()))
    rows = [f"{'t (s)':>7} {'RSS MiB':>8} {'files':>5} {'thr':>4} {'answers':>7} {'err':>4} {'p50 ms':>8} {'p95 ms':>8}"]
    rows += [f"{s.t_s:7.0f} {s.rss_mib:8.1f} {s.open_files:5d} {s.threads:4d} {s.requests:7d} {s.errors:4d} "
             f"{s.p50_ms or 0:8.1f} {s.p95_ms or 0:8.1f}" for s in run.samples]
    f = figures
    tail = [
        f"requests {f['requests']} ({f['throughput_rps']} req/s, {run.follow_ups} with history), errors {f['errors']}",
        f"RSS: {f['rss_start_mib']} MiB at the first sample, {f['rss_after_warmup_mib']} after {run.warmup_s:g} s warm-up, "
        f"{f['rss_end_mib']} at the end: {f['rss_growth_after_warmup_mib']:+} MiB, slope {f['rss_slope_mib_per_min']} "
        f"MiB/min, {f['kb_per_request_after_warmup']} KB/request",
        f"p95: first {f['p95_window_s']} s after warm-up {f['p95_first_ms']} ms, last {f['p95_window_s']} s "
        f"{f['p95_last_ms']} ms, ratio {f['p95_ratio']}",
        "verdict: " + ", ".join(f"{name} {'ok' if ok else 'MISSED'}" for name, ok in f["targets"].items()),
    ]
    return "\n".join([head, *rows, *tail, *(f"  error: {e}" for e in run.error_samples)])


def plot(run: SoakRun, path: Path) -> None:
    """RSS and p50/p95 against minutes, the warm-up shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s.t_s / 60 for s in run.samples]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    top.plot(minutes, [s.rss_mib for s in run.samples], marker=".", color="tab:blue")
    top.set_ylabel("server RSS (MiB)")
    for key, style in (("p95_ms", "-"), ("p50_ms", "--")):
        bottom.plot(minutes, [getattr(s, key) for s in run.samples], style, marker=".", color="tab:red",
                    label=key.split("_")[0])
    bottom.set_ylabel(f"{ENDPOINTS[run.endpoint]} latency (ms)")
    bottom.set_xlabel("minutes under load")
    bottom.legend(loc="upper left")
    for ax in (top, bottom):
        ax.axvspan(0, run.warmup_s / 60, color="0.9", label="warm-up")
        ax.grid(alpha=0.3)
    fig.suptitle(f"assistant serve, {run.clients} clients x {run.minutes:g} min ({os.cpu_count()} CPUs)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def bench_soak(clients: int, minutes: float, interval_s: float, warmup_s: float, history_share: float,
               endpoint: str, out_dir: Path, name: str, server_env: dict[str, str] | None = None) -> dict[str, Any]:
    run = run_soak(clients, minutes, interval_s, warmup_s, history_share, endpoint, server_env=server_env)
    figures = verdict(run)
    print(text(run, figures))
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {k: v for k, v in asdict(run).items() if k != "done"} | {"cpus": os.cpu_count(), "verdict": figures}
    (out_dir / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    plot(run, out_dir / f"{name}.png")
    print(f"wrote {out_dir / (name + '.json')} and {out_dir / (name + '.png')}")
    return figures
