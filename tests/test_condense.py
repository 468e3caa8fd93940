"""The `condense` configuration of the conversation evaluation (evals/condense.py,
issue 24 item 5): the LLM's standalone rewrite is answered with no history, and a
rewrite that cannot be used falls back to the shipped evidence rule, counted. The
endpoint is the true external boundary: an unreachable port, the scripted server,
and (marked `llm`) the packaged Qwen model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.local_llm import QWEN, serve
from evals.condense import Condenser, usable
from evals.conversations import run_conversations
from evals.servers import free_port
from tests.fake_llm_server import FakeLLM, Reply
from tests.test_llm_real import _require_local_llm

DPM_TITLE = "DPM-Solver: A Fast ODE Solver for Diffusion Probabilistic Model Sampling in Around 10 Steps"
CONVERSATION = {"id": "conv-c", "split": "tune", "notes": "", "turns": [
    {"question": "How can diffusion models be sampled in around 10 steps with a dedicated ODE solver?", "kind": "first",
     "gold_titles": [DPM_TITLE], "answer_facts": ["10 to 20 function evaluations"], "notes": ""},
    {"question": "What FID does it get on CIFAR-10?", "kind": "follow_up", "gold_titles": [DPM_TITLE],
     "answer_facts": ["4.70 FID"], "notes": ""},
    {"question": "Which papers show that diffusion models can be quantized to 8-bit models without training?",
     "kind": "switch", "gold_titles": ["Post-training Quantization on Diffusion Models"], "answer_facts": ["8-bit models"],
     "notes": ""}]}


@pytest.fixture
def conversation(tmp_path: Path) -> Path:
    path = tmp_path / "conversations.jsonl"
    path.write_text(json.dumps(CONVERSATION) + "\n", encoding="utf-8")
    return path


def endpoint(base: Settings, url: str, model: str = "fake-model") -> Settings:
    return base.model_copy(update={"llm_base_url": url, "llm_model": model, "llm_api_key": None,
                                   "llm_timeout": 5.0, "llm_retries": 0})


FOLLOW_UP = "What FID does it get?"


@pytest.mark.parametrize(("reply", "finish", "expected"), [
    ("Standalone question: What FID does DPM-Solver get?", "stop", ("What FID does DPM-Solver get?", None)),
    ('"What FID does DPM-Solver get?"\nIt replaces "it" with the paper.', "stop", ("What FID does DPM-Solver get?", None)),
    (FOLLOW_UP, "stop", (FOLLOW_UP, None)),  # left as it is: a usable (if unhelpful) standalone question
    ("   \n ", "stop", (None, "empty")),
    ("What does it do?", "stop", (None, "no content words")),
    ("What " * 45 + "FID?", "stop", (None, "too long")),
    ("What FID does DPM-Solver get on", "length", (None, "too long")),
    ("How does DPM-Solver sample in 10 steps?", "stop", (None, "ignores the message")),  # an earlier question
])
def test_a_rewrite_is_used_only_when_it_is_a_question_to_search_with(reply: str, finish: str,
                                                                     expected: tuple[str | None, str | None]) -> None:
    assert usable(reply, finish, FOLLOW_UP) == expected


def _by_config(rows: list[dict]) -> dict[str, list[dict]]:
    return {c: [r for r in rows if r["config"] == c] for c in ("evidence", "condense")}


@pytest.mark.slow
def test_an_unreachable_endpoint_falls_back_to_the_evidence_rule(full_index: Settings, conversation: Path) -> None:
    settings = endpoint(full_index, f"http://127.0.0.1:{free_port()}/v1")
    rows, metrics = run_conversations(settings, conversation, ["evidence", "condense"])
    rows_of = _by_config(rows)
    assert [r.get("fallback") for r in rows_of["condense"]] == [None, "error", "error"]  # the first turn has no history
    assert [r["cited_titles"] for r in rows_of["condense"]] == [r["cited_titles"] for r in rows_of["evidence"]]
    assert rows_of["condense"][1]["cited_titles"][0] == DPM_TITLE and "4.70 FID" in rows_of["condense"][1]["answer"]
    assert metrics["condense"]["all"]["all"]["fallback"] == 1.0


@pytest.mark.slow
def test_a_usable_rewrite_is_answered_with_no_history(full_index: Settings, conversation: Path) -> None:
    with FakeLLM() as fake:
        fake.script = [Reply.text("What FID does DPM-Solver get on CIFAR-10?"), Reply.text("   ")]
        rows, _ = run_conversations(endpoint(full_index, fake.base_url), conversation, ["condense"])
        assert "Human: How can diffusion models be sampled" in fake.completions[0].user_prompt
        assert f"Assistant: Answered from: {DPM_TITLE}" in fake.completions[0].user_prompt
    follow_up, switch = rows[1], rows[2]
    assert follow_up["condensed"] == "What FID does DPM-Solver get on CIFAR-10?" and follow_up["fallback"] is None
    assert follow_up["notices"] == [] and follow_up["cited_titles"][0] == DPM_TITLE  # asked alone: no follow-up notice
    assert switch["fallback"] == "empty" and switch["scores"]["hijacked"] == 0.0  # the evidence rule's own answer


@pytest.fixture(scope="module")
def qwen() -> Iterator[str]:
    _require_local_llm()
    with serve(QWEN, n_ctx=2048, threads=2) as url:
        yield url


@pytest.mark.llm
@pytest.mark.slow
def test_the_packaged_model_names_the_paper_under_discussion(full_index: Settings, qwen: str) -> None:
    """What the measurement rests on: Qwen's rewrite of a pronoun follow-up is usable."""
    from assistant.pipeline import Assistant, Turn

    first = Assistant(full_index.model_copy(update={"mode": "offline"})).ask(CONVERSATION["turns"][0]["question"])
    settings = endpoint(full_index, qwen, QWEN.name).model_copy(update={"llm_timeout": 240.0})
    rewrite = Condenser(settings, timeout=240.0).rewrite(  # 240 s: the 2 cores are shared with other jobs
        "What FID does it get on CIFAR-10?", [Turn(first.question, first)])
    assert rewrite.fallback is None and rewrite.question is not None
    assert "DPM-Solver" in rewrite.question and "FID" in rewrite.question


def test_the_condense_run_needs_an_endpoint(conversation: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from evals.evaluate import eval_command

    app = typer.Typer()
    app.command("eval")(eval_command)
    app.command("unused")(lambda: None)  # two commands, so typer keeps the "eval" name
    for key in ("ASSISTANT_LLM_BASE_URL", "OPENAI_BASE_URL", "ASSISTANT_LLM_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    result = CliRunner().invoke(app, ["eval", "--questions", str(conversation), "--mode", "llm"])
    assert result.exit_code == 2 and "ASSISTANT_LLM_BASE_URL" in result.output
