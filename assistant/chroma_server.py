"""A `chroma run` server on loopback, for the scale benchmark and the tests that
exercise the scale-out path against a real server (users start their own with
`chroma run` and set ASSISTANT_CHROMA_URL; nothing in the query path uses this)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChromaServer:
    """One server on a fixed data folder and port, so it can be killed and started
    again in the same place (the fault tests restart it mid-session)."""

    def __init__(self, data: Path, port: int | None = None, log: Path | None = None) -> None:
        self.data, self.port, self.log = data, port or free_port(), log
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[str] | None = None

    def start(self, timeout: float = 60.0) -> ChromaServer:
        exe = Path(sys.executable).parent / "chroma"
        self._log = open(self.log, "a", encoding="utf-8") if self.log else None
        out = self._log or subprocess.DEVNULL
        self.proc = subprocess.Popen([str(exe), "run", "--path", str(self.data), "--host", "127.0.0.1",
                                      "--port", str(self.port)], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"chroma server did not start on {self.url}" + (f" (log: {self.log})" if self.log else ""))

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
