"""Quality floors (evals/floors.py): every headline figure of every question set, offline
hybrid, through the same runner as `assistant eval`, stays within evals/floors.json;
the question files are pinned by hash; and the floors are shown to catch known-worse
configurations (the untuned fusion, dense retrieval without BM25, abstention off)."""

from __future__ import annotations

import json

import pytest

from assistant.config import PROJECT_ROOT, Settings
from evals.runner import file_sha256
from evals.floors import FLOORS_FILE, SETS, measure, violations

SPEC = json.loads(FLOORS_FILE.read_text(encoding="utf-8"))
UNTUNED = {"keyword_weight": 1.0, "paper_unit_share": 0.0, "second_sentence_share": 0.0, "part_coverage_weight": 0.0,
           "word_support_weight": 0.0}


def test_every_set_is_guarded_and_pinned_by_hash() -> None:
    """A question edited, added or deleted fails here until `python -m evals.floors --update`
    re-measures its floors in the same commit."""
    assert set(SPEC["sets"]) == set(SETS)
    for spec in SPEC["sets"].values():
        assert file_sha256(PROJECT_ROOT / spec["questions"]) == spec["sha256"], (
            f"{spec['questions']} changed since its floors were measured; re-measure: python -m evals.floors --update")
        assert spec["floors"] and spec["ceilings"]["invalid_citations"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SETS))
def test_each_set_stays_within_its_floors(full_index: Settings, name: str) -> None:
    spec = SPEC["sets"][name]
    headline = measure(full_index, PROJECT_ROOT / spec["questions"])
    assert violations(headline, spec) == []


@pytest.mark.slow
@pytest.mark.parametrize("worse", ["untuned fusion", "dense only", "abstention off"])
def test_the_floors_catch_a_worse_configuration(full_index: Settings, worse: str) -> None:
    spec = SPEC["sets"]["core"]
    if worse == "untuned fusion":
        headline = measure(full_index.model_copy(update=UNTUNED), PROJECT_ROOT / spec["questions"])
    elif worse == "dense only":
        headline = measure(full_index, PROJECT_ROOT / spec["questions"], retriever="dense")
    else:
        headline = measure(full_index.model_copy(update={"abstain_threshold": 0.0}), PROJECT_ROOT / spec["questions"])
    assert violations(headline, spec), f"the {worse} configuration passed every floor: {headline}"


@pytest.mark.slow
def test_the_conversation_floors_catch_the_word_list_rule(full_index: Settings) -> None:
    """The rule before issue 24 (a short question with "it", "that", ... is a follow-up)
    lets the previous paper hijack new topics: the conversation floors must fail it."""
    spec = SPEC["sets"]["conversations"]
    headline = measure(full_index.model_copy(update={"follow_up_rule": "word_list"}), PROJECT_ROOT / spec["questions"])
    assert violations(headline, spec), f"the word-list rule passed every conversation floor: {headline}"
