"""The list-signal measurement (evals/list_signals.py): what it counts as a question's
subject, and its recall / complete / precision, checked by hand."""

from __future__ import annotations

import pytest

from evals.list_signals import list_figures, loqo_probabilities, subject, tune_questions


@pytest.mark.parametrize(("question", "expected"), [
    ("Which papers are mainly about spiking neural networks?", "spiking neural networks"),
    ("Which works have a model compose music?", "a model compose music"),
    ("How can diffusion models be quantized to low bit widths?", "diffusion models quantized to low bit widths"),
    ("What work generates dynamic 3D content (4D)?", "generates dynamic 3D content (4D)"),
])
def test_the_subject_is_the_question_less_its_list_scaffolding(question: str, expected: str) -> None:
    assert subject(question) == expected


def test_list_figures_cite_the_first_paper_always_and_average_over_questions() -> None:
    one = {"id": "a", "n_gold": 2, "gold": [True, False, True], "signals": []}
    two = {"id": "b", "n_gold": 1, "gold": [False, True, False], "signals": []}
    # a: cites 0 and 1 (1 of 2 gold, precision 1/2); b: cites 0 only (0 of 1, precision 0)
    recall, complete, precision = list_figures([one, two], lambda q: [1] if q["id"] == "a" else [])
    assert (recall, complete, precision) == (pytest.approx(0.25), 0.0, pytest.approx(0.25))


def test_a_held_out_question_is_judged_by_a_model_that_never_saw_it() -> None:
    """Leave-one-question-out: a signal that separates gold in every other question
    judges the held-out one the same way, whatever its own labels say."""
    def question(qid: str, gold: list[bool]) -> dict:
        return {"id": qid, "n_gold": sum(gold), "gold": gold,
                "signals": [{"s": 1.0 if g else 0.0} for g in [True, True, False, False]]}
    questions = [question(f"q{i}", [True, True, False, False]) for i in range(4)] + \
                [question("odd", [True, False, True, True])]  # labels the signal contradicts
    judged = loqo_probabilities(questions, ["s"])["odd"]
    assert judged[1] > 0.5 > judged[2]


def test_only_tune_questions_are_read() -> None:
    ids = [q.id for q in tune_questions()]
    assert ids and not any(q.split == "heldout" for q in tune_questions())
    assert "lists-003" not in ids  # a heldout list question
