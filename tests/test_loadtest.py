"""`assistant bench load`: the load generator itself (fast) and a short real run
against `assistant serve` on the test index (slow)."""

from __future__ import annotations

import json

import pytest

from assistant.config import Settings
from evals.bench.load import chat_problem, contract_problem, load_questions, run_load, run_loads

GOOD = {"id": None, "question": "q", "answer": "An answer [1].", "abstained": False, "answerability": 0.9, "notices": [],
        "citations": [{"n": 1, "paper_id": "p", "title": "t", "quote": "x", "url": None}],
        "retrieved": [], "mode": "offline", "timings_ms": {"retrieve": 1.0, "answer": 1.0, "total": 2.0}}


def test_contract_check() -> None:
    assert contract_problem(200, GOOD) is None
    assert contract_problem(200, GOOD | {"abstained": True, "citations": []}) is None
    assert contract_problem(503, {"error": "down"}) == "HTTP 503"
    assert "not the contract" in contract_problem(200, {"error": "x"})
    assert "not the contract" in contract_problem(200, GOOD | {"extra": 1})
    assert contract_problem(200, GOOD | {"citations": []}) == "answer without citations"
    assert "not the contract" in contract_problem(200, GOOD | {"citations": [{"n": 1}]})  # citation fields missing
    assert "not the contract" in contract_problem(200, GOOD | {"notices": ["a bare string"]})  # notices are typed
    assert contract_problem(200, None) is not None


def test_questions() -> None:
    assert len(load_questions()) >= 100


def test_bounds_are_enforced() -> None:
    for kwargs in ({"clients": 0}, {"clients": 1000}, {"seconds": 0}, {"seconds": 10**6}, {"max_requests": 0}):
        with pytest.raises(ValueError):
            run_load(**kwargs)


@pytest.mark.slow
def test_short_load_run_has_no_errors(full_index: Settings) -> None:
    report = run_load(clients=4, seconds=8, settings=full_index)
    print("\n" + report.text())
    assert report.errors == 0, report.error_samples  # every answer: HTTP 200 with exactly the contract
    assert report.requests >= 8 and report.throughput > 0
    assert len(report.latencies_ms) == report.requests
    assert report.probes >= 5 and report.probe_errors == 0  # the UI and health answered throughout
    assert max(report.ui_ms) < 10_000


@pytest.mark.slow
def test_max_requests_bounds_the_run(full_index: Settings) -> None:
    report = run_load(clients=3, seconds=120, max_requests=6, settings=full_index)
    assert report.requests == 6 and report.errors == 0
    assert report.wall_s < 60


CHAT = {"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop", "message": {
    "role": "assistant", "content": "An answer [1].\n\nSources:\n- [1] t — “x”", "notices": [],
    "citations": [{"n": 1, "paper_id": "p", "title": "t", "quote": "x", "url": None}]}}]}


def sse(*deltas: dict) -> str:
    return "".join(f"data: {json.dumps({'choices': [{'delta': d}]})}\n\n" for d in deltas) + "data: [DONE]\n\n"


def test_chat_check() -> None:
    assert chat_problem(200, CHAT, stream=False) == (None, False)
    message = CHAT["choices"][0]["message"]
    refusal = {"choices": [{"message": message | {"content": "The corpus has no paper.", "citations": []}}]}
    assert chat_problem(200, refusal, stream=False) == (None, True)
    assert chat_problem(400, {"error": {}}, stream=False) == ("HTTP 400", False)
    assert chat_problem(200, {"choices": [{"message": message | {"content": ""}}]}, False)[0].startswith("not a cited")
    assert chat_problem(200, {"choices": [{"message": message | {"citations": [{"n": 1}]}}]}, False)[0]
    assert chat_problem(200, {"error": "x"}, stream=False)[0].startswith("not a cited")
    good = sse({"role": "assistant", "content": ""}, {"content": "An answer [1]."},
               {"citations": message["citations"], "notices": []})
    assert chat_problem(200, good, stream=True) == (None, False)
    cut = good.removesuffix("data: [DONE]\n\n")
    assert chat_problem(200, cut, stream=True) == ("stream without data: [DONE]", False)
    assert chat_problem(200, sse({"content": "An answer [1]."}), stream=True)[0].startswith("not a cited")


@pytest.mark.slow
def test_short_load_on_the_openai_endpoint_has_no_errors(full_index: Settings) -> None:
    reports = run_loads(["ask", "chat", "chat-stream"], clients=3, seconds=5, settings=full_index)
    for report in reports:
        print("\n" + report.text())
        assert report.errors == 0, report.error_samples
        assert report.requests >= 3 and report.probe_errors == 0
    assert [r.endpoint for r in reports] == ["ask", "chat", "chat-stream"]
    assert "/v1/chat/completions (stream) latency" in reports[2].text()
    with pytest.raises(ValueError):
        run_loads(["chat", "graphql"], settings=full_index)
