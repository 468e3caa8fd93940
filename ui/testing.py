"""Runs `assistant serve` in a subprocess for the API and browser tests: the real
command, the real port, environment pointing at a given index. Its output goes to
test-artifacts/ so a failed start can be read afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from assistant.config import PROJECT_ROOT, Settings

ARTIFACTS = PROJECT_ROOT / "test-artifacts"


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a server on `settings`' index, offline and without any
    LLM endpoint unless `extra` sets one."""
    env = {**os.environ, "ASSISTANT_INDEX_DIR": str(settings.index_dir),
           "ASSISTANT_COLLECTION_PREFIX": settings.collection_prefix, "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir),
           "ASSISTANT_MODE": "offline", "ASSISTANT_LLM_BASE_URL": "", "ASSISTANT_LLM_API_KEY": "",
           "OPENAI_API_KEY": "", "OPENAI_BASE_URL": "", "ASSISTANT_AUTH": ""}
    return env | extra


@contextmanager
def running_server(settings: Settings, port: int, name: str = "server", timeout: float = 240.0,
                   **extra_env: str) -> Iterator[str]:
    """Starts the server and yields its base URL once it answers HTTP."""
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"{name}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "assistant", "serve", "--port", str(port)], cwd=PROJECT_ROOT,
                                env=server_env(settings, **extra_env), stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(proc, base, timeout, log_path)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_until_up(proc: subprocess.Popen[bytes], base: str, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"assistant serve exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            httpx.get(f"{base}/api/health", timeout=5.0)  # any answer (200, 401, 503) means it is up
            return
        except httpx.HTTPError:
            time.sleep(0.5)
    raise RuntimeError(f"assistant serve did not answer within {timeout:.0f} s: {log_path.read_text()[-2000:]}")
