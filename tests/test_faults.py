"""Faults during a session (docs/reliability.md): a damaged or truncated index
directory is found and rebuilt by `assistant index` to exactly the corpus's papers,
and a Chroma server that dies and comes back is survived without restarting the
assistant. (Killed and concurrent `assistant index` runs are in test_index.py, an
LLM endpoint dying mid-answer in test_llm.py.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from assistant.config import PROJECT_ROOT, Settings
from assistant.index import (
    KEYWORD_DIR,
    MANIFEST,
    SNAPSHOT,
    IndexProblem,
    StoreUnavailable,
    sync,
)
from assistant.words import WORDS_FILE
from evals.servers import ChromaServer, free_port
from tests.conftest import assert_index_exact, write_small_corpus

pytestmark = pytest.mark.slow

QUESTION = "How does h-Edit perform image editing with diffusion models?"


def answer_without_timings(settings: Settings) -> dict:
    from assistant.pipeline import Assistant
    from assistant.retrieve import open_index

    open_index(settings, reload=True)
    contract = Assistant(settings).ask(QUESTION).contract().model_dump(mode="json")
    assert not contract["abstained"] and contract["citations"][0]["title"].startswith("h-Edit")
    return without_timings(contract)


def without_timings(contract: dict) -> dict:
    return {k: v for k, v in contract.items() if k != "timings_ms"}


def env_of(settings: Settings) -> dict[str, str]:
    """The environment of a user's `assistant` command on `settings`' index (offline)."""
    return {**os.environ, "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir), "ASSISTANT_INDEX_DIR": str(settings.index_dir),
            "ASSISTANT_COLLECTION_PREFIX": settings.collection_prefix, "ASSISTANT_CHROMA_URL": "",
            "ASSISTANT_MODE": "offline", "ASSISTANT_LLM_BASE_URL": "", "ASSISTANT_LLM_API_KEY": "", "OPENAI_API_KEY": ""}


def assistant_command(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assistant", *args], env=env_of(settings), cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=600)


# ---------------------------------------------------------------- damaged index directory


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A 6-paper embedded index, built once and copied by each test."""
    root = tmp_path_factory.mktemp("pristine")
    settings = Settings(corpus_dir=write_small_corpus(root / "corpus"), index_dir=root / "index", mode="offline",
                        llm_base_url=None, llm_api_key=None)
    sync(settings)
    assert_index_exact(settings)
    return settings


@pytest.fixture
def copy(pristine: Settings, tmp_path: Path) -> Settings:
    shutil.copytree(pristine.index_dir, tmp_path / "index")
    return pristine.model_copy(update={"index_dir": tmp_path / "index"})


def _truncate(path: Path, fraction: float) -> None:
    os.truncate(path, int(path.stat().st_size * fraction))


def _sqlite(d: Path) -> Path:
    return d / "chroma" / "chroma.sqlite3"


DAMAGE: dict[str, tuple[Callable[[Path], None], bool]] = {  # name -> (damage, vectors must be re-embedded)
    "chroma sqlite truncated to half": (lambda d: _truncate(_sqlite(d), 0.5), True),
    "chroma sqlite truncated to one page": (lambda d: os.truncate(_sqlite(d), 4096), True),
    "chroma sqlite truncated to 0 bytes": (lambda d: _truncate(_sqlite(d), 0), True),
    "keyword file deleted": (lambda d: (d / KEYWORD_DIR / "data.csc.index.npy").unlink(), False),
    "keyword vocabulary corrupted": (lambda d: (d / KEYWORD_DIR / "vocab.index.json").write_text("{garbage"), False),
    "keyword unit list truncated": (lambda d: _truncate(d / KEYWORD_DIR / "unit_papers.json", 0.5), False),
    "keyword folder deleted": (lambda d: shutil.rmtree(d / KEYWORD_DIR), False),
    "manifest not JSON": (lambda d: (d / MANIFEST).write_text("{not json"), False),
    "manifest truncated": (lambda d: _truncate(d / MANIFEST, 0.5), False),
    "manifest deleted": (lambda d: (d / MANIFEST).unlink(), False),
    "paper snapshot truncated": (lambda d: _truncate(d / SNAPSHOT, 0.5), False),
    "paper snapshot deleted": (lambda d: (d / SNAPSHOT).unlink(), False),
    "word vectors truncated": (lambda d: _truncate(d / WORDS_FILE, 0.5), False),
    "word vectors deleted": (lambda d: (d / WORDS_FILE).unlink(), False),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_index_is_rebuilt_to_exactly_the_corpus(pristine: Settings, copy: Settings, damage: str) -> None:
    before = answer_without_timings(pristine)  # the copy itself is first opened by the sync, as in a new process
    harm, reembed = DAMAGE[damage]
    harm(copy.index_dir)
    report = sync(copy)
    assert report.keyword_rebuilt, "the local files must be rewritten"
    moved_aside = list(copy.index_dir.glob("chroma.damaged-*"))
    if damage in ("chroma sqlite truncated to half", "chroma sqlite truncated to one page"):
        # Chroma refuses the file; the damaged store is kept aside (not deleted) and a new one built
        assert report.rebuilt_reason and report.rebuilt_reason.startswith("damaged store moved to chroma.damaged-")
        assert "database disk image is malformed" in report.rebuilt_reason, report.rebuilt_reason
        assert [d.name for d in moved_aside] == [report.rebuilt_reason.split()[4].rstrip(":")]
        assert (moved_aside[0] / "chroma.sqlite3").exists()
    else:  # a 0-byte file opens as an empty store (nothing to move aside); the other damages spare the store
        assert report.rebuilt_reason is None and moved_aside == [], report.rebuilt_reason
    if reembed:  # the vectors were lost with the store: every paper embedded again
        assert len(report.added) == 6
    else:  # the vectors were intact: nothing embedded again
        assert report.units_embedded == 0 and not report.added
    assert_index_exact(copy)
    assert answer_without_timings(copy) == before  # data lost: none
    assert not sync(copy).changed  # and the next run is a no-op again


LOCAL_PARTS = {"keyword file deleted": "keyword index", "keyword vocabulary corrupted": "keyword index",
               "paper snapshot truncated": "paper snapshot", "paper snapshot deleted": "paper snapshot",
               "word vectors truncated": "word vectors file", "word vectors deleted": "word vectors file"}


@pytest.mark.parametrize("damage", list(LOCAL_PARTS))
def test_damaged_local_files_give_a_clear_message_until_repaired(pristine: Settings, copy: Settings, damage: str) -> None:
    """Before `assistant index` repairs it, a question gets a message that names the
    damaged part and says what to run, not a crash; after the repair, the same answer
    as before the damage (the whole contract but its timings)."""
    from assistant.pipeline import Assistant
    from assistant.retrieve import open_index

    before = answer_without_timings(pristine)
    DAMAGE[damage][0](copy.index_dir)
    with pytest.raises(IndexProblem) as problem:
        open_index(copy, reload=True)
        Assistant(copy).ask(QUESTION)
    message = str(problem.value)
    assert message.startswith(f"The {LOCAL_PARTS[damage]} in {copy.index_dir} is "), message
    assert message.endswith("Run `assistant index` to repair it (no paper is re-embedded).")
    sync(copy)
    assert answer_without_timings(copy) == before


def test_damaged_index_cli_exits_1_and_api_answers_503_until_repaired(pristine: Settings, copy: Settings) -> None:
    """The same damage as a user meets it: `assistant ask` exits 1 with one error line
    (no trace), a running `assistant serve` answers /api/ask with a JSON 503 carrying
    the message and /api/health with 503; `assistant index` repairs it and the same
    server, not restarted, then gives the answer from before the damage, as does the CLI."""
    from evals.servers import running_server

    before = answer_without_timings(pristine)
    DAMAGE["keyword vocabulary corrupted"][0](copy.index_dir)
    expected = (f"The keyword index in {copy.index_dir} is damaged (JSONDecodeError). "
                "Run `assistant index` to repair it (no paper is re-embedded).")

    asked = assistant_command(copy, "ask", QUESTION)
    assert asked.returncode == 1, asked.stderr[-2000:]
    assert " ".join(asked.stderr.split()) == f"Error: {expected}", asked.stderr[-2000:]  # one message, no trace
    assert asked.stdout.strip() == ""

    with running_server(copy, free_port(), name="api-damaged-index") as base, httpx.Client(base_url=base, timeout=120) as api:
        r = api.post("/api/ask", json={"question": QUESTION})
        assert r.status_code == 503 and r.headers["content-type"].startswith("application/json")
        assert r.json() == {"error": expected}
        health = api.get("/api/health")
        assert health.status_code == 503 and health.json()["status"] == "error"

        repaired = assistant_command(copy, "index", "--quiet")
        assert repaired.returncode == 0 and "Traceback" not in repaired.stderr, repaired.stderr[-2000:]
        assert "embedded 0 units" in repaired.stdout

        r = api.post("/api/ask", json={"question": QUESTION})
        assert r.status_code == 200, r.text[:500]
        assert without_timings(r.json()) == before
        assert api.get("/api/health").status_code == 200
    answered = assistant_command(copy, "ask", "--json", QUESTION)
    assert answered.returncode == 0, answered.stderr[-2000:]
    assert without_timings(json.loads(answered.stdout)) == before
    assert_index_exact(copy)


def test_assistant_index_command_repairs_several_damages_at_once(copy: Settings) -> None:
    for name in ("chroma sqlite truncated to half", "keyword file deleted", "manifest not JSON", "paper snapshot truncated"):
        DAMAGE[name][0](copy.index_dir)
    out = assistant_command(copy, "index", "--quiet")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Rebuilt the vector store" in out.stderr and "damaged store moved" in out.stderr
    assert "Index up to date: 6 papers (+6 new" in out.stdout
    assert "Traceback" not in out.stderr
    assert_index_exact(copy)
    assert list(copy.index_dir.glob("chroma.damaged-*")), "the damaged store is kept aside, not deleted"


# ---------------------------------------------------------------- Chroma server stopped and restarted


@pytest.mark.server
def test_chroma_server_killed_and_restarted_mid_session(tmp_path: Path) -> None:
    from assistant.pipeline import Assistant
    from evals.servers import running_server

    chroma = ChromaServer(tmp_path / "chroma-data", free_port())
    chroma.start()
    settings = Settings(corpus_dir=write_small_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index",
                        chroma_url=chroma.url, collection_prefix="restart", mode="offline",
                        llm_base_url=None, llm_api_key=None)
    try:
        sync(settings)
        assistant = Assistant(settings)  # one assistant for the whole session, never recreated
        before = {k: v for k, v in assistant.ask(QUESTION).contract().model_dump(mode="json").items() if k != "timings_ms"}
        with running_server(settings, free_port(), name="api-chroma-restart", ASSISTANT_CHROMA_URL=chroma.url) as base, \
                httpx.Client(base_url=base, timeout=60) as api:
            assert api.post("/api/ask", json={"question": QUESTION}).status_code == 200

            chroma.kill()
            t0 = time.perf_counter()
            with pytest.raises(StoreUnavailable) as failed:
                assistant.ask(QUESTION)
            in_process_ms = (time.perf_counter() - t0) * 1000
            message = str(failed.value)
            assert chroma.url in message and "not reachable" in message and "\n" not in message
            t0 = time.perf_counter()
            r = api.post("/api/ask", json={"question": QUESTION})
            api_ms = (time.perf_counter() - t0) * 1000
            assert r.status_code == 503 and r.headers["content-type"].startswith("application/json")
            assert set(r.json()) == {"error"} and "not reachable" in r.json()["error"] and "Traceback" not in r.text
            assert api.get("/api/search", params={"q": "h-Edit"}).status_code == 503
            health = api.get("/api/health")
            assert health.status_code == 503 and health.json()["chroma"]["ok"] is False
            assert api.get("/").status_code == 200, "the UI stays up while the store is down"
            with pytest.raises(IndexProblem, match="Chroma server"):
                sync(settings)  # `assistant index` fails with a message too, and changes nothing

            chroma.start()  # same port, same data folder
            after = {k: v for k, v in assistant.ask(QUESTION).contract().model_dump(mode="json").items() if k != "timings_ms"}
            assert after == before, "the same assistant answers again, identically"
            r = api.post("/api/ask", json={"question": QUESTION})
            assert r.status_code == 200 and {k: v for k, v in r.json().items() if k != "timings_ms"} == before
            assert api.get("/api/health").json()["status"] == "ok"
        assert_index_exact(settings)  # data lost: none
        print(f"\n[chroma restart] clear error in-process {in_process_ms:.0f} ms, API 503 in {api_ms:.0f} ms; "
              "recovered after restart without restarting the assistant")
    finally:
        chroma.kill()
