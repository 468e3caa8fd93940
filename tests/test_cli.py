"""The command line as a user runs it: real processes, real index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.config import PROJECT_ROOT, Settings

pytestmark = pytest.mark.slow


def run(*args: str, settings: Settings | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    base = {**os.environ, "ASSISTANT_MODE": "offline", "ASSISTANT_LLM_BASE_URL": "", "OPENAI_API_KEY": ""}
    if settings is not None:
        base |= {"ASSISTANT_INDEX_DIR": str(settings.index_dir), "ASSISTANT_COLLECTION_PREFIX": settings.collection_prefix,
                 "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir)}
    return subprocess.run([sys.executable, "-m", "assistant", *args], cwd=PROJECT_ROOT, env=base | env,
                          capture_output=True, text=True, timeout=300)


def test_ask_prints_answer_and_sources(full_index: Settings) -> None:
    out = run("ask", "What does AdamP change in the optimizer step?", settings=full_index)
    assert out.returncode == 0, out.stderr
    assert "[1]" in out.stdout and "Sources" in out.stdout and "AdamP: Slowing Down" in out.stdout
    assert "https://github.com/clovaai/AdamP" in out.stdout


def test_a_notice_is_printed_once(full_index: Settings) -> None:
    out = run("ask", "Who wrote AdamP?", settings=full_index)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("without author names") == 1 and "radial component" in out.stdout


def test_ask_json_is_the_contract(full_index: Settings) -> None:
    out = run("ask", "--json", "What is Timo?", settings=full_index)
    data = json.loads(out.stdout)
    assert data["mode"] == "offline" and data["citations"][0]["title"].startswith("Timo")
    assert len(data["retrieved"]) >= 10


def test_ask_questions_file_one_json_per_line(full_index: Settings, tmp_path: Path) -> None:
    qfile = tmp_path / "q.jsonl"
    qfile.write_text('{"id": "a", "question": "What is Timo?"}\nnot json\n{"id": "c", "question": ""}\n'
                     '{"id": "d", "question": "How to cook pasta carbonara?"}\n')
    out = run("ask", "--json", "--questions", str(qfile), settings=full_index)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r.get("id") for r in rows] == ["a", None, "c", "d"]
    assert rows[0]["citations"] and "error" in rows[1] and "empty" in rows[2]["error"]
    assert rows[3]["abstained"] is True


def test_empty_and_over_long_questions_exit_2_with_a_message(full_index: Settings) -> None:
    empty = run("ask", "   ", settings=full_index)
    assert empty.returncode == 2 and "question is empty" in empty.stderr and "Traceback" not in empty.stderr
    long = run("ask", "x" * 5000, settings=full_index)
    assert long.returncode == 2 and "the limit is 2000" in long.stderr


def test_llm_mode_with_no_endpoint_is_refused_before_anything_is_sent(full_index: Settings) -> None:
    """openai.OpenAI(base_url=None) means api.openai.com: with nothing configured, LLM mode
    must stop with the setting to set, not send the question to a public service."""
    for args in (("ask", "--mode", "llm", "What is AdamP?"), ("ask", "--json", "--mode", "llm", "What is AdamP?")):
        out = run(*args, settings=full_index)
        assert out.returncode == 2, out.stderr
        assert "ASSISTANT_LLM_BASE_URL" in out.stderr and "assistant llm serve" in out.stderr
        assert "openai.com" not in out.stderr + out.stdout and "Traceback" not in out.stderr
    stats = run("stats", settings=full_index)
    assert "LLM endpoint: none configured" in stats.stdout
    keyed = json.loads(run("stats", "--json", settings=full_index, OPENAI_API_KEY="sk-test").stdout)["llm"]
    assert keyed == {"endpoint": "https://api.openai.com/v1", "model": "gpt-4o-mini", "default_mode": "offline"}


def test_missing_index_says_what_to_run(tmp_path: Path) -> None:
    out = run("ask", "What is Timo?", ASSISTANT_INDEX_DIR=str(tmp_path / "none"))
    assert out.returncode == 1 and "assistant index" in out.stderr and "Traceback" not in out.stderr


def test_paper_lookup_text_and_json(full_index: Settings) -> None:
    out = run("paper", "AdamP", settings=full_index)
    assert out.returncode == 0
    assert "Related papers" in out.stdout and "naver-ai NAVER AI Lab" in out.stdout and "Jun 15, 2020" in out.stdout
    data = json.loads(run("paper", "--json", "h-Edit", settings=full_index).stdout)
    assert data["status"] == "found" and data["paper"]["urls"] == ["https://github.com/nktoan/h-edit"]
    assert len(data["related"]) == 5


def test_unknown_paper_exits_1_with_suggestions(full_index: Settings) -> None:
    out = run("paper", "quantum chromodynamics on a lattice of gluons", settings=full_index)
    assert out.returncode == 1 and "No paper matches" in out.stdout


def test_stats_and_corpus_export(full_index: Settings) -> None:
    stats = json.loads(run("stats", "--json", settings=full_index).stdout)
    assert stats["entries"] == 380 and stats["unique_papers"] == 356 and stats["index_up_to_date"]
    assert stats["index"]["papers"] == 356
    rows = run("corpus", "--jsonl").stdout.splitlines()
    assert len(rows) == 356
    first = json.loads(rows[0])
    assert {"paper_id", "title", "abstract", "source_file", "source_line", "authors_count", "date", "org", "urls",
            "occurrences"} <= set(first)


def test_index_no_op_reports_nothing_embedded(full_index: Settings) -> None:
    out = run("index", "--quiet", settings=full_index)
    assert out.returncode == 0 and "embedded 0 units" in out.stdout


def test_invalid_setting_is_reported_not_traced(full_index: Settings) -> None:
    out = run("ask", "What is Timo?", settings=full_index, ASSISTANT_TOP_K="lots")
    assert out.returncode == 2 and "Invalid settings" in out.stderr and "Traceback" not in out.stderr


def test_a_list_answer_prints_a_page_of_papers_and_says_how_many_more(full_index: Settings) -> None:
    """One line per paper (short name, fitting sentence, [n]); past ten, "… and N more"."""
    question = "Which papers are about diffusion models?"
    out = run("ask", question, settings=full_index, ASSISTANT_LIST_TOP_K="20")
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.split("\n\nSources")[0].splitlines() if line.strip()]
    listed = [line for line in lines if line.startswith("- ")]
    assert len(listed) == 10 and all(line.startswith("- **") and line.rstrip().endswith("]") for line in listed)
    assert lines[-1].startswith("… and ") and lines[-1].endswith("more (--all shows every paper)")
    more = int(lines[-1].split()[2])
    every = run("ask", question, "--all", settings=full_index, ASSISTANT_LIST_TOP_K="20")
    assert sum(line.startswith("- **") for line in every.stdout.splitlines()) == 10 + more
    contract = json.loads(run("ask", question, "--json", settings=full_index, ASSISTANT_LIST_TOP_K="20").stdout)
    assert contract["shape"] == "list" and len(contract["citations"]) == 10 + more


def test_help_reads_each_command_description_as_one_paragraph() -> None:
    """Docstrings wrap at 88 columns; the help rewraps them to the terminal instead of
    breaking "copy them into the corpus folder and / index them" mid-sentence."""
    from typer.testing import CliRunner

    from assistant.cli import app

    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert result.exit_code == 0
    assert "copy them into the corpus folder and index them (only new or changed papers are embedded)" in result.output
