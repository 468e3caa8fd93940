"""Real servers in subprocesses on loopback, for the benchmarks and the tests: a
`chroma run` server (the scale-out path) and `assistant serve` (API, browser and
load tests). One launcher starts either, waits until it answers HTTP and stops it;
users start their own servers, nothing in the runtime uses this."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

from assistant.config import PROJECT_ROOT, Settings

ARTIFACTS = PROJECT_ROOT / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A command serving HTTP on 127.0.0.1, restartable in place (the fault tests
    kill a server and start it again on the same data and port)."""

    def __init__(self, cmd: list[str], probe_url: str, *, env: dict[str, str] | None = None,
                 log: Path | None = None, ready: Callable[[httpx.Response], bool] = lambda r: True,
                 name: str = "server") -> None:
        self.cmd, self.probe_url, self.env, self.log_path, self.ready, self.name = cmd, probe_url, env, log, ready, name
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_s = 0.0
        self._log: IO[str] | None = None

    def start(self, timeout: float = 60.0) -> ServerProcess:
        """Returns once the probe URL answers as `ready` wants; raises with the log's tail otherwise."""
        t0 = time.perf_counter()
        self._log = open(self.log_path, "a", encoding="utf-8") if self.log_path else None
        out = self._log or subprocess.DEVNULL
        self.proc = subprocess.Popen(self.cmd, cwd=PROJECT_ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self._end(signal.SIGKILL, 1)
                raise RuntimeError(f"{self.name} exited with {code}: {self.output()[-2000:]}")
            try:
                if self.ready(httpx.get(self.probe_url, timeout=5.0)):
                    self.start_s = time.perf_counter() - t0
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.kill()
        raise RuntimeError(f"{self.name} did not answer {self.probe_url} within {timeout:.0f} s: {self.output()[-2000:]}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), SIGKILL after 20 s."""
        self._end(signal.SIGTERM, 20)

    def kill(self) -> None:
        """SIGKILL: the server vanishes as in a crash, without a clean shutdown."""
        self._end(signal.SIGKILL, 10)

    def _end(self, sig: int, wait_s: float) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(wait_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None


class ChromaServer(ServerProcess):
    """`chroma run` on a data folder."""

    def __init__(self, data: Path, port: int | None = None, log: Path | None = None) -> None:
        self.data, self.port = data, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).parent / "chroma"
        super().__init__([str(exe), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(self.port)],
                         f"{self.url}/api/v2/heartbeat", log=log, ready=lambda r: r.status_code == 200,
                         name="chroma server")


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of `assistant serve` on `settings`' index: offline, no LLM
    endpoint, no auth, unless `extra` sets them."""
    env = {**os.environ, "ASSISTANT_INDEX_DIR": str(settings.index_dir), "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir),
           "ASSISTANT_COLLECTION_PREFIX": settings.collection_prefix, "ASSISTANT_CHROMA_URL": settings.chroma_url or "",
           "ASSISTANT_MODE": "offline", "ASSISTANT_LLM_BASE_URL": "", "ASSISTANT_LLM_API_KEY": "",
           "OPENAI_API_KEY": "", "OPENAI_BASE_URL": "", "ASSISTANT_AUTH": "",
           "ASSISTANT_CONCURRENCY": str(settings.concurrency)}
    return env | extra


def assistant_server(settings: Settings, port: int, log: Path, *, healthy: bool = False,
                     **extra_env: str) -> ServerProcess:
    """`assistant serve` as a user starts it. Up means any HTTP answer (200, 401 or
    503), or a 200 from /api/health when `healthy`."""
    cmd = [sys.executable, "-m", "assistant", "serve", "--host", "127.0.0.1", "--port", str(port)]
    ready = (lambda r: r.status_code == 200) if healthy else (lambda r: True)
    return ServerProcess(cmd, f"http://127.0.0.1:{port}/api/health", env=server_env(settings, **extra_env), log=log,
                         ready=ready, name="assistant serve")


@contextmanager
def running_server(settings: Settings, port: int, name: str = "server", timeout: float = 240.0,
                   **extra_env: str) -> Iterator[str]:
    """Starts `assistant serve` and yields its base URL; its output goes to
    test-artifacts/NAME.log so a failed start can be read afterwards."""
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / f"{name}.log"
    log.write_text("")
    server = assistant_server(settings, port, log, **extra_env).start(timeout)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
