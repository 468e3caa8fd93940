"""`assistant bench load`: N concurrent clients against a real `assistant serve`.

Starts the server in a subprocess on a free loopback port (offline mode, no LLM
endpoint, no auth), lets `clients` threads POST questions from
evals/questions/core.jsonl to /api/ask for `seconds` (or until `max_requests`
answers), and meanwhile probes the UI once a second (GET / and GET /api/health)
to show it stays responsive. Prints throughput, latency percentiles, errors and
the probe latencies. Bounded in time and requests; talks to 127.0.0.1 only.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from assistant.config import PROJECT_ROOT, Settings
from assistant.models import AnswerContract
from evals.servers import assistant_server, free_port
from evals.stats import percentile

QUESTIONS_FILE = PROJECT_ROOT / "evals" / "questions" / "core.jsonl"
MAX_CLIENTS = 64
MAX_SECONDS = 3600.0
REQUEST_TIMEOUT = 120.0  # one answer; bounds how long the run can overrun `seconds`


def load_questions(path: Path = QUESTIONS_FILE) -> list[str]:
    questions = [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not questions:
        raise ValueError(f"{path}: no questions")
    return questions


def contract_problem(status: int, body: Any) -> str | None:
    """None when a response is a 200 holding exactly the answer contract, else why not."""
    if status != 200:
        return f"HTTP {status}"
    try:
        answer = AnswerContract.model_validate(body)
    except ValidationError as exc:
        return f"not the contract: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}"
    if not answer.answer:
        return "empty answer"
    if not answer.abstained and not answer.citations:
        return "answer without citations"
    return None


def ask_once(http: Any, question: str, history: list[dict[str, Any]] | None = None
             ) -> tuple[float, float, Any, str | None]:
    """One POST /api/ask on an httpx client, checked against the answer contract:
    (sent, answered) perf_counter times, the JSON body, and the problem or None."""
    import httpx

    payload: dict[str, Any] = {"question": question}
    if history:
        payload["history"] = history
    t = time.perf_counter()
    try:
        r = http.post("/api/ask", json=payload)
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else None
        problem = contract_problem(r.status_code, body)
        if problem is None and body["question"] != " ".join(question.split()):
            problem = "answer to another question"
    except (httpx.HTTPError, ValueError) as exc:
        body, problem = None, f"{type(exc).__name__}: {exc}"
    return t, time.perf_counter(), body, problem


def _ms(values: list[float], q: float) -> float:
    """A percentile for the report, 0 when nothing was measured."""
    return round(percentile(values, q) or 0.0, 1)


@dataclass
class LoadReport:
    clients: int
    seconds: float  # requested duration
    wall_s: float = 0.0  # first request sent to last answer received
    requests: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    abstained: int = 0
    probes: int = 0
    probe_errors: int = 0
    ui_ms: list[float] = field(default_factory=list, repr=False)
    health_ms: list[float] = field(default_factory=list, repr=False)
    server_start_s: float = 0.0
    server_concurrency: int = 0

    @property
    def throughput(self) -> float:
        return self.requests / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        lat, ui, health = self.latencies_ms, self.ui_ms, self.health_ms
        out = {k: v for k, v in asdict(self).items() if k not in ("latencies_ms", "ui_ms", "health_ms")}
        out.update(
            throughput_rps=round(self.throughput, 2),
            latency_ms={"p50": _ms(lat, 0.50), "p95": _ms(lat, 0.95),
                        "p99": _ms(lat, 0.99), "max": round(max(lat, default=0.0), 1)},
            ui_probe_ms={"p50": _ms(ui, 0.5), "max": round(max(ui, default=0.0), 1)},
            health_probe_ms={"p50": _ms(health, 0.5), "max": round(max(health, default=0.0), 1)},
            wall_s=round(self.wall_s, 1),
            server_start_s=round(self.server_start_s, 1),
        )
        return out

    def text(self) -> str:
        s = self.summary()
        lat, ui, h = s["latency_ms"], s["ui_probe_ms"], s["health_probe_ms"]
        lines = [
            f"{self.clients} clients x {self.seconds:g} s against assistant serve (offline, "
            f"server concurrency {self.server_concurrency}, {os.cpu_count()} CPUs; server start {s['server_start_s']} s)",
            f"requests: {self.requests} in {s['wall_s']} s = {s['throughput_rps']} req/s   "
            f"errors: {self.errors}   abstained: {self.abstained}",
            f"/api/ask latency ms: p50 {lat['p50']}  p95 {lat['p95']}  p99 {lat['p99']}  max {lat['max']}",
            f"UI probe GET / ms: p50 {ui['p50']}  max {ui['max']}   "
            f"GET /api/health ms: p50 {h['p50']}  max {h['max']}   ({self.probes} probes, {self.probe_errors} failed)",
        ]
        lines += [f"  error: {e}" for e in self.error_samples]
        return "\n".join(lines)


def run_load(clients: int = 8, seconds: float = 60.0, max_requests: int | None = None,
             settings: Settings | None = None, questions: list[str] | None = None,
             startup_timeout: float = 300.0) -> LoadReport:
    """Runs the load against a fresh server and returns the figures."""
    import httpx

    if not 1 <= clients <= MAX_CLIENTS:
        raise ValueError(f"clients must be between 1 and {MAX_CLIENTS}")
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be between 0 and {MAX_SECONDS:g}")
    if max_requests is not None and max_requests < 1:
        raise ValueError("max_requests must be at least 1")
    settings = settings or Settings()
    questions = questions or load_questions()
    report = LoadReport(clients=clients, seconds=seconds, server_concurrency=settings.concurrency)
    log = Path(tempfile.mkstemp(prefix="assistant-load-", suffix=".log")[1])
    port = free_port()
    server = assistant_server(settings, port, log, healthy=True).start(startup_timeout)
    base = f"http://127.0.0.1:{port}"
    report.server_start_s = server.start_s
    lock = threading.Lock()
    counter = itertools.count()
    stop = threading.Event()
    first_sent: list[float] = []
    last_done = [0.0]

    def client_loop() -> None:
        with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT) as http:
            while not stop.is_set():
                n = next(counter)
                if max_requests is not None and n >= max_requests:
                    return
                question = questions[n % len(questions)]
                with lock:
                    if not first_sent:
                        first_sent.append(time.perf_counter())
                t, done, body, problem = ask_once(http, question)
                with lock:
                    report.requests += 1
                    report.latencies_ms.append((done - t) * 1000)
                    last_done[0] = max(last_done[0], done)
                    if problem:
                        report.errors += 1
                        if len(report.error_samples) < 5:
                            report.error_samples.append(f"{question[:50]!r}: {problem}")
                    elif body["abstained"]:
                        report.abstained += 1

    def probe_loop() -> None:
        with httpx.Client(base_url=base, timeout=30.0) as http:
            while not stop.is_set():
                tick = time.perf_counter()
                for path, sink, ok in (("/", report.ui_ms, lambda r: "<html" in r.text.lower()),
                                       ("/api/health", report.health_ms, lambda r: r.json().get("status") == "ok")):
                    t = time.perf_counter()
                    try:
                        r = http.get(path)
                        good = r.status_code == 200 and ok(r)
                    except (httpx.HTTPError, ValueError):
                        good = False
                    sink.append((time.perf_counter() - t) * 1000)
                    report.probe_errors += 0 if good else 1
                report.probes += 1
                stop.wait(max(0.0, 1.0 - (time.perf_counter() - tick)))

    threads = [threading.Thread(target=client_loop, name=f"load-client-{i}", daemon=True) for i in range(clients)]
    prober = threading.Thread(target=probe_loop, name="load-probe", daemon=True)
    try:
        prober.start()
        for th in threads:
            th.start()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and any(th.is_alive() for th in threads):
            time.sleep(0.1)
        stop.set()
        for th in threads:
            th.join(REQUEST_TIMEOUT + 5)
        prober.join(35)
    finally:
        stop.set()
        server.stop()
        log.unlink(missing_ok=True)
    if first_sent:
        report.wall_s = max(last_done[0] - first_sent[0], 1e-9)
    return report


def bench_load(clients: int, seconds: float, max_requests: int | None, as_json: bool = False) -> LoadReport:
    report = run_load(clients=clients, seconds=seconds, max_requests=max_requests)
    print(json.dumps(report.summary()) if as_json else report.text())
    return report
