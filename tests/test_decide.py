"""The answer policy as a table: no index, no model, no endpoint (assistant/decide.py)."""

from __future__ import annotations

import pytest

from assistant.decide import (
    CAUTION_NOTICE,
    LANGUAGE_NOTICE,
    LLM_DOUBT_NOTICE,
    LLMOutcome,
    Signals,
    Thresholds,
    after_llm,
    decide,
)

T = Thresholds(refuse=0.3, caution=0.5)


@pytest.mark.parametrize("signals, mode, action, kinds, confident, use_llm", [
    # confident answers, offline and through the LLM
    (Signals(0.9), "offline", "answer", [], True, False),
    (Signals(0.9), "llm", "answer", [], True, True),
    # between the thresholds: answered with a caution, not confident enough to outvote the LLM
    (Signals(0.4), "llm", "answer", ["caution"], False, True),
    # below the refusal threshold: refused
    (Signals(0.1), "llm", "refuse", [], False, False),
    # a named paper is always answered, confidently, whatever the model thinks
    (Signals(0.1, named=True), "offline", "answer", [], True, False),
    (Signals(0.1, named=True, readable=False), "offline", "answer", [], True, False),
    # a question the model cannot read is never refused or cautioned by it: said so instead
    (Signals(0.05, readable=False), "offline", "answer", ["language"], False, False),
    # a follow-up says so; refused like any other question when the corpus has nothing
    (Signals(0.9, follow_up_about="AdamP"), "offline", "answer", ["follow_up"], True, False),
    (Signals(0.1, follow_up_about="AdamP"), "offline", "refuse", ["follow_up"], False, False),
    # a follow-up its paper does not answer: the plain no, never an LLM draft
    (Signals(0.9, follow_up_about="DPM-Solver", not_in_paper="The abstract of DPM-Solver does not mention EEG."),
     "llm", "answer", ["follow_up", "not_in_paper"], True, False),
    (Signals(0.4, follow_up_about="X", not_in_paper="no"), "offline", "answer",
     ["follow_up", "not_in_paper", "caution"], False, False),
    # asking for papers besides those under discussion says so
    (Signals(0.9, besides="DPM-Solver"), "llm", "answer", ["follow_up"], True, True),
])
def test_decide(signals: Signals, mode: str, action: str, kinds: list[str], confident: bool, use_llm: bool) -> None:
    decision = decide(signals, T, mode)  # type: ignore[arg-type]
    assert (decision.action, [n.kind for n in decision.notices]) == (action, kinds)
    if action == "answer":
        assert (decision.confident, decision.use_llm) == (confident, use_llm)


def test_the_notices_say_what_happened() -> None:
    notices = decide(Signals(0.4, readable=True, follow_up_about="AdamP"), T, "offline").notices
    assert [n.message for n in notices] == ["Read as a follow-up about AdamP.", CAUTION_NOTICE]
    assert decide(Signals(0.0, readable=False), T, "offline").notices[0].message == LANGUAGE_NOTICE
    assert decide(Signals(0.9, besides="DPM-Solver"), T, "offline").notices[0].message == (
        "Read as asking for papers besides DPM-Solver.")


def test_a_caution_threshold_below_the_refusal_one_cautions_nobody() -> None:
    decision = decide(Signals(0.35), Thresholds(refuse=0.3, caution=0.2), "offline")
    assert decision.action == "answer" and decision.confident and not decision.notices


@pytest.mark.parametrize("outcome, confident, route, kind, fragment", [
    (LLMOutcome("verified"), False, "llm", None, ""),
    (LLMOutcome("no_answer"), True, "offline", "caution", LLM_DOUBT_NOTICE),
    (LLMOutcome("no_answer"), False, "refuse", "llm_insufficient", "no answer in the sources"),
    (LLMOutcome("unverified"), True, "offline", "llm_unusable", "no citation the sources support"),
    (LLMOutcome("unusable", "The LLM only listed markers"), True, "offline", "llm_unusable",
     "The LLM only listed markers; showing the offline answer instead."),
    (LLMOutcome("failed", "LLM endpoint http://127.0.0.1:9/v1 timed out"), False, "offline", "llm_fallback",
     "timed out; showing the offline answer instead."),
    (LLMOutcome("failed", "LLM endpoint closed the connection", partial=True), False, "offline", "llm_fallback",
     "(the partial answer above was discarded)"),
])
def test_after_llm(outcome: LLMOutcome, confident: bool, route: str, kind: str | None, fragment: str) -> None:
    got, notice = after_llm(outcome, confident)
    assert got == route
    assert (notice.kind if notice else None) == kind
    if notice is not None:
        assert fragment in notice.message
