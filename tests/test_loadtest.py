"""`assistant bench load`: the load generator itself (fast) and a short real run
against `assistant serve` on the test index (slow)."""

from __future__ import annotations

import pytest

from assistant.config import Settings
from evals.bench.load import contract_problem, load_questions, run_load

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
