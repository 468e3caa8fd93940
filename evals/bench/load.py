"""`assistant bench load`: N concurrent clients against a real `assistant serve`.

Starts the server in a subprocess on a free loopback port (offline mode, no LLM
endpoint, no auth), lets `clients` threads POST questions from
evals/questions/core.jsonl to /api/ask for `seconds` (or until `max_requests`
answers), and meanwhile probes the UI once a second (GET / and GET /api/health)
to show it stays responsive. Prints throughput, latency percentiles, errors and
the probe latencies. Bounded in time and requests; talks to 127.0.0.1 only.

`endpoints` drives /v1/chat/completions as well (`chat`, `chat-stream`: the
OpenAI face, ui/openai_api.py), one phase after another on the same server, so
their latencies compare within one run.
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

from pydantic import BaseModel, Field, ValidationError

from assistant.config import PROJECT_ROOT, Settings
from assistant.models import AnswerContract, CitationContract, Notice
from evals.servers import assistant_server, free_port
from evals.stats import percentile

QUESTIONS_FILE = PROJECT_ROOT / "evals" / "questions" / "core.jsonl"
MAX_CLIENTS = 64
MAX_SECONDS = 3600.0
REQUEST_TIMEOUT = 120.0  # one answer; bounds how long the run can overrun `seconds`
ENDPOINTS = {"ask": "/api/ask", "chat": "/v1/chat/completions", "chat-stream": "/v1/chat/completions (stream)"}


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


class _Chat(BaseModel):
    """What a load client checks of an OpenAI-face answer: the text and the contract's citations and notices."""

    content: str = Field(min_length=1)
    citations: list[CitationContract]
    notices: list[Notice]


def chat_problem(status: int, body: Any, stream: bool) -> tuple[str | None, bool]:
    """(None, abstained) when a /v1/chat/completions response is a well-formed cited
    answer or refusal, else (why not, False). `body` is the JSON, or the SSE text."""
    if status != 200:
        return f"HTTP {status}", False
    try:
        chat = _Chat.model_validate(_chat_message(body, stream))
    except _Unfinished:
        return "stream without data: [DONE]", False
    except (ValueError, KeyError, IndexError, TypeError) as exc:  # ValidationError is a ValueError
        return f"not a cited completion: {type(exc).__name__}", False
    return None, not chat.citations


class _Unfinished(ValueError):
    """A stream that ended without `data: [DONE]`."""


def _chat_message(body: Any, stream: bool) -> dict[str, Any]:
    """The assistant message of a completion: the JSON's, or the SSE events' deltas joined."""
    if stream:
        events = [line[6:] for line in str(body).split("\n") if line.startswith("data: ")]
        if not events or events[-1] != "[DONE]":
            raise _Unfinished
        chunks = [json.loads(e)["choices"][0] for e in events[:-1]]
        return chunks[-1]["delta"] | {"content": "".join(c["delta"].get("content", "") for c in chunks)}
    return body["choices"][0]["message"]


def _ms(values: list[float], q: float) -> float:
    """A percentile for the report, 0 when nothing was measured."""
    return round(percentile(values, q) or 0.0, 1)


@dataclass
class LoadReport:
    clients: int
    seconds: float  # requested duration
    endpoint: str = "ask"  # a key of ENDPOINTS
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
            f"{ENDPOINTS[self.endpoint]} latency ms: p50 {lat['p50']}  p95 {lat['p95']}  p99 {lat['p99']}  "
            f"max {lat['max']}",
            f"UI probe GET / ms: p50 {ui['p50']}  max {ui['max']}   "
            f"GET /api/health ms: p50 {h['p50']}  max {h['max']}   ({self.probes} probes, {self.probe_errors} failed)",
        ]
        lines += [f"  error: {e}" for e in self.error_samples]
        return "\n".join(lines)


def run_load(clients: int = 8, seconds: float = 60.0, max_requests: int | None = None,
             settings: Settings | None = None, questions: list[str] | None = None,
             startup_timeout: float = 300.0, endpoint: str = "ask") -> LoadReport:
    """Runs the load against a fresh server and returns the figures."""
    return run_loads([endpoint], clients, seconds, max_requests, settings, questions, startup_timeout)[0]


def run_loads(endpoints: list[str], clients: int = 8, seconds: float = 60.0, max_requests: int | None = None,
              settings: Settings | None = None, questions: list[str] | None = None,
              startup_timeout: float = 300.0) -> list[LoadReport]:
    """One load phase per endpoint, in order, against the same fresh server."""
    if not 1 <= clients <= MAX_CLIENTS:
        raise ValueError(f"clients must be between 1 and {MAX_CLIENTS}")
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be between 0 and {MAX_SECONDS:g}")
    if max_requests is not None and max_requests < 1:
        raise ValueError("max_requests must be at least 1")
    if not endpoints or set(endpoints) - set(ENDPOINTS):
        raise ValueError(f"endpoints must be among {', '.join(ENDPOINTS)}")
    settings = settings or Settings()
    questions = questions or load_questions()
    log = Path(tempfile.mkstemp(prefix="assistant-load-", suffix=".log")[1])
    port = free_port()
    server = assistant_server(settings, port, log, healthy=True).start(startup_timeout)
    reports = []
    try:
        for endpoint in endpoints:
            report = LoadReport(clients=clients, seconds=seconds, endpoint=endpoint,
                                server_concurrency=settings.concurrency, server_start_s=server.start_s)
            _drive(f"http://127.0.0.1:{port}", report, questions, max_requests)
            reports.append(report)
    finally:
        server.stop()
        log.unlink(missing_ok=True)
    return reports


def ask(http: Any, endpoint: str, question: str, history: list[tuple[str, str]] | None = None
        ) -> tuple[str | None, bool, str]:
    """One question to `endpoint` (a key of ENDPOINTS), after earlier (question, answer)
    turns when `history` is given: (what is wrong with the response or None, abstained,
    the answer's text). `bench load` and `bench soak` send every request through here."""
    turns = history or []
    if endpoint == "ask":
        payload: dict[str, Any] = {"question": question}
        if turns:
            payload["history"] = [{"question": q, "answer": a} for q, a in turns]
        r = http.post("/api/ask", json=payload)
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else None
        problem = contract_problem(r.status_code, body)
        if problem is None and body is not None and body["question"] != " ".join(question.split()):
            problem = "answer to another question"
        good = problem is None and body is not None
        return problem, good and body["abstained"], body["answer"] if good else ""
    stream = endpoint == "chat-stream"
    messages = [m for q, a in turns for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]
    r = http.post("/v1/chat/completions", json={"model": "assistant", "stream": stream,
                                                "messages": [*messages, {"role": "user", "content": question}]})
    body = r.text if stream or r.status_code != 200 else r.json()
    problem, abstained = chat_problem(r.status_code, body, stream)
    return problem, abstained, _chat_message(body, stream)["content"] if problem is None else ""


def _drive(base: str, report: LoadReport, questions: list[str], max_requests: int | None) -> None:
    """`report.clients` clients on one endpoint for `report.seconds`, the UI probed meanwhile."""
    import httpx

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
                t = time.perf_counter()
                with lock:
                    if not first_sent:
                        first_sent.append(t)
                try:
                    problem, abstained, _ = ask(http, report.endpoint, question)
                except (httpx.HTTPError, ValueError) as exc:
                    problem, abstained = f"{type(exc).__name__}: {exc}", False
                done = time.perf_counter()
                with lock:
                    report.requests += 1
                    report.latencies_ms.append((done - t) * 1000)
                    last_done[0] = max(last_done[0], done)
                    if problem:
                        report.errors += 1
                        if len(report.error_samples) < 5:
                            report.error_samples.append(f"{question[:50]!r}: {problem}")
                    elif abstained:
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

    threads = [threading.Thread(target=client_loop, name=f"load-client-{i}", daemon=True)
               for i in range(report.clients)]
    prober = threading.Thread(target=probe_loop, name="load-probe", daemon=True)
    try:
        prober.start()
        for th in threads:
            th.start()
        deadline = time.monotonic() + report.seconds
        while time.monotonic() < deadline and any(th.is_alive() for th in threads):
            time.sleep(0.1)
        stop.set()
        for th in threads:
            th.join(REQUEST_TIMEOUT + 5)
        prober.join(35)
    finally:
        stop.set()
    if first_sent:
        report.wall_s = max(last_done[0] - first_sent[0], 1e-9)


def bench_load(clients: int, seconds: float, max_requests: int | None, as_json: bool = False,
               endpoints: str = "ask") -> list[LoadReport]:
    reports = run_loads([e.strip() for e in endpoints.split(",") if e.strip()], clients, seconds, max_requests)
    if as_json:
        print(json.dumps([r.summary() for r in reports] if len(reports) > 1 else reports[0].summary()))
        return reports
    print("\n\n".join(r.text() for r in reports))
    base = reports[0]
    for r in reports[1:]:  # same server, same run: the ratio is what compares
        ratio = _ms(r.latencies_ms, 0.95) / max(_ms(base.latencies_ms, 0.95), 1e-9)
        print(f"p95 {ENDPOINTS[r.endpoint]} / {ENDPOINTS[base.endpoint]}: {ratio:.2f}")
    return reports
