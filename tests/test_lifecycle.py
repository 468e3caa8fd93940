"""How the two long-running commands stop (issue 28), as a service manager stops them:

- `assistant llm serve` starts llama.cpp's server as a child. SIGTERM or SIGINT to
  the command stops the child; SIGKILL of the command (no cleanup code runs) kills
  it too, through the parent-death signal set in the child (`local_llm._dies_with_parent`).
  Either way no process remains and the port binds again within 5 s.
- `assistant serve` on SIGTERM lets an answer in flight finish, answers new requests
  503, and exits 0; an answer slower than ASSISTANT_SHUTDOWN_TIMEOUT is cut off then.

Every test runs real processes; the slow answer is a real LLM endpoint that takes its
time (tests/fake_llm_server.py)."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from assistant.config import PROJECT_ROOT, Settings
from evals.servers import ServerProcess, assistant_server, free_port

STOP_WITHIN_S = 5.0


def _gone(pids: list[int], within: float = STOP_WITHIN_S) -> list[int]:
    """The pids still running (zombies count as gone) after waiting up to `within` s."""
    deadline = time.monotonic() + within
    while True:
        alive = [pid for pid in pids if _running(pid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _binds(port: int, within: float = STOP_WITHIN_S) -> bool:
    """Whether a new server could listen on the port: bound as uvicorn binds, with
    SO_REUSEADDR, which a listening socket still blocks but closed connections
    waiting out TIME_WAIT do not."""
    deadline = time.monotonic() + within
    while True:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return True
            except OSError:
                if time.monotonic() > deadline:
                    return False
        time.sleep(0.1)


def _kill_group(proc: subprocess.Popen) -> None:
    """Cleanup for a failed test: the whole session the test started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(10)


# ---------------------------------------------------------------- the mechanism, without a model

PARENT = textwrap.dedent("""
    import subprocess, sys, time
    from assistant.local_llm import _dies_with_parent
    preexec = _dies_with_parent() if sys.argv[1] == "on" else None
    child = subprocess.Popen(["sleep", "120"], preexec_fn=preexec)
    print(child.pid, flush=True)
    time.sleep(120)
""")


@pytest.mark.parametrize("death_signal", ["on", "off"])
def test_a_child_dies_with_a_parent_killed_by_sigkill(death_signal: str) -> None:
    """With the parent-death signal the child is gone within 5 s of its parent's
    SIGKILL; without it (as before the fix) the child lives on, re-parented."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT, death_signal], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                              text=True, start_new_session=True, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    try:
        child = int(parent.stdout.readline())  # type: ignore[union-attr]
        assert _running(child)
        parent.kill()
        parent.wait(10)
        alive = _gone([child])
        if death_signal == "on":
            assert alive == [], "the child outlived its SIGKILLed parent"
        else:
            assert alive == [child], "without the death signal the child is orphaned (the bug this guards)"
    finally:
        _kill_group(parent)


# ---------------------------------------------------------------- assistant llm serve, the real model server


def _llm_serve(port: int) -> tuple[subprocess.Popen, list[int]]:
    """`assistant llm serve` with the small packaged model, once it says it serves;
    returns it and the pids of its children."""
    cmd = [sys.executable, "-m", "assistant", "llm", "serve", "--model", "smollm2", "--port", str(port),
           "--threads", "1", "--ctx", "512"]
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline, lines = time.monotonic() + 180, []
    while time.monotonic() < deadline and proc.stdout is not None:
        line = proc.stdout.readline()
        lines.append(line)
        if not line or "served at" in line:
            break
    assert "served at" in "".join(lines), "".join(lines) + (proc.stderr.read() if proc.poll() is not None else "")
    children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    assert children, "the model server runs as a child process"
    return proc, children


@pytest.mark.slow
@pytest.mark.llm
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_llm_serve_leaves_no_model_server_behind(sig: signal.Signals) -> None:
    from tests.test_llm_real import _require_local_llm

    _require_local_llm()
    port = free_port()
    proc, children = _llm_serve(port)
    try:
        t0 = time.perf_counter()
        os.kill(proc.pid, sig)  # the command only, as systemd / docker stop / kill do
        code = proc.wait(STOP_WITHIN_S)
        alive = _gone(children)
        assert alive == [], f"model server {alive} still running after {sig.name} of its parent"
        assert _binds(port), f"port {port} still taken after {sig.name}"
        elapsed = time.perf_counter() - t0
        if sig == signal.SIGKILL:
            assert code == -signal.SIGKILL
        else:
            assert code == 0 and "Stopped." in proc.stderr.read()  # type: ignore[union-attr]
        print(f"\n[llm serve] {sig.name}: model server gone and port free in {elapsed:.1f} s")
    finally:
        _kill_group(proc)


# ---------------------------------------------------------------- assistant serve: graceful stop


def _slow_llm_server(full_index: Settings, fake_url: str, log: Path, shutdown_timeout: float) -> ServerProcess:
    env = {"ASSISTANT_MODE": "llm", "ASSISTANT_LLM_BASE_URL": fake_url, "ASSISTANT_LLM_API_KEY": "sk-lifecycle",
           "ASSISTANT_LLM_MODEL": "fake-model", "ASSISTANT_LLM_TIMEOUT": "120", "ASSISTANT_LLM_RETRIES": "0",
           "ASSISTANT_SHUTDOWN_TIMEOUT": str(shutdown_timeout)}
    return assistant_server(full_index, free_port(), log, healthy=True, **env).start(240)


def _wait_for(condition, within: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


QUESTION = "How does AdamP slow down the growth of weight norms?"


@pytest.mark.slow
def test_serve_finishes_the_answer_in_flight_refuses_new_ones_and_exits_0(full_index: Settings) -> None:
    from tests.fake_llm_server import FakeLLM, Reply

    release = threading.Event()

    def slow(body: dict) -> Reply:
        release.wait(60)  # the model takes its time: until the test has checked the shutdown
        return Reply.text("INSUFFICIENT_SOURCES")

    with FakeLLM() as fake, tempfile.TemporaryDirectory() as tmp, concurrent.futures.ThreadPoolExecutor(1) as pool:
        fake.script = [slow]
        server = _slow_llm_server(full_index, fake.base_url, Path(tmp) / "serve.log", shutdown_timeout=30)
        proc, base = server.proc, server.probe_url.removesuffix("/api/health")
        port = int(base.rsplit(":", 1)[1])
        try:
            in_flight = pool.submit(httpx.post, f"{base}/api/ask", json={"question": QUESTION}, timeout=120)
            _wait_for(lambda: len(fake.completions) == 1)  # the answer waits on the model
            proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            time.sleep(0.5)
            refused = httpx.post(f"{base}/api/ask", json={"question": QUESTION}, timeout=10)
            health = httpx.get(f"{base}/api/health", timeout=10)
            assert refused.status_code == 503 and "shutting down" in refused.json()["error"]
            assert refused.headers["retry-after"] == "5" and health.status_code == 503
            assert proc.poll() is None and not in_flight.done(), "still serving the answer in flight"
            release.set()
            answer = in_flight.result(60)
            t_answer = time.perf_counter()
            assert answer.status_code == 200 and answer.json()["question"] == QUESTION, answer.text[:300]
            assert proc.wait(STOP_WITHIN_S) == 0, server.output()[-2000:]  # type: ignore[union-attr]
            assert _binds(port)
            print(f"\n[serve] SIGTERM: answer in flight finished (200), new request 503, exit 0 "
                  f"{time.perf_counter() - t_answer:.1f} s after the answer")
        finally:
            release.set()
            server.kill()


@pytest.mark.slow
def test_serve_cuts_off_an_answer_slower_than_the_shutdown_timeout(full_index: Settings) -> None:
    from tests.fake_llm_server import FakeLLM, Reply

    release = threading.Event()

    def stuck(body: dict) -> Reply:
        release.wait(60)
        return Reply.text("INSUFFICIENT_SOURCES")

    with FakeLLM() as fake, tempfile.TemporaryDirectory() as tmp, concurrent.futures.ThreadPoolExecutor(1) as pool:
        fake.script = [stuck]
        server = _slow_llm_server(full_index, fake.base_url, Path(tmp) / "serve.log", shutdown_timeout=2)
        proc, base = server.proc, server.probe_url.removesuffix("/api/health")
        try:
            in_flight = pool.submit(httpx.post, f"{base}/api/ask", json={"question": QUESTION}, timeout=120)
            _wait_for(lambda: len(fake.completions) == 1)
            t0 = time.perf_counter()
            proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            code = proc.wait(2 + 3 + STOP_WITHIN_S)  # the timeout, uvicorn's socket close, margin
            elapsed = time.perf_counter() - t0
            assert code == 0, server.output()[-2000:]
            assert elapsed >= 2, "waited for the answer up to the timeout"
            with pytest.raises(httpx.HTTPError):
                in_flight.result(30).raise_for_status()
            print(f"\n[serve] SIGTERM with an answer stuck: exit 0 after {elapsed:.1f} s (timeout 2 s)")
        finally:
            release.set()
            server.kill()


# ---------------------------------------------------------------- per-browser-session state is bounded


@pytest.mark.slow
def test_chat_session_state_has_a_turn_limit_a_session_cap_and_an_expiry(assistant) -> None:  # noqa: ANN001
    """A conversation stops growing at MAX_SESSION_TURNS (the user is told to clear it),
    the server holds at most MAX_SESSIONS sessions and forgets one SESSION_TTL_S
    after its last use."""
    import gradio as gr

    from assistant.pipeline import Turn
    from ui.app import MAX_SESSION_TURNS, MAX_SESSIONS, SESSION_TTL_S, AssistantUI, build_ui

    ui = AssistantUI(assistant)
    answer = assistant.ask(QUESTION)
    below = [Turn(QUESTION, answer)] * (MAX_SESSION_TURNS - 1)
    last = list(ui.respond(QUESTION, [], below, "offline", 5, ""))[-1]
    assert len(last[2]) == MAX_SESSION_TURNS, "the last allowed turn is answered and kept"
    full = last[2]
    refused = list(ui.respond(QUESTION, [], full, "offline", 5, ""))
    assert len(refused) == 1 and len(refused[0][2]) == MAX_SESSION_TURNS, "nothing is added past the limit"
    assert f"reached {MAX_SESSION_TURNS} questions" in refused[0][1][-1]["content"]
    assert "Clear conversation" in refused[0][1][-1]["content"]
    demo = build_ui(assistant)
    assert demo.state_session_capacity == MAX_SESSIONS
    states = [b for b in demo.blocks.values() if isinstance(b, gr.State)]
    assert states and all(s.time_to_live == SESSION_TTL_S for s in states)
