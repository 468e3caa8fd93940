"""Quality floors: every headline figure of every question set, held by
tests/test_eval_floor.py so that a change which loses quality fails CI.

A floor is the measured value minus a margin stated in questions (`MARGIN_QUESTIONS`
of the questions the figure is a share of), so "two more single-paper questions
missed at rank 1" fails where noise of one question does not. False refusals and
cautions are ceilings the same way; invalid citations must stay 0. Each question
file is pinned by its hash: a changed file fails until its floors are measured
again on purpose, in the same commit (README, contributing):

    python -m evals.floors --update        # re-measure every set, rewrite evals/floors.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

from assistant.config import PROJECT_ROOT, Settings
from assistant.files import atomic_write_json
from evals import conversations
from evals.conversations import is_conversation_set
from evals.runner import file_sha256, git_commit, run_eval

FLOORS_FILE = PROJECT_ROOT / "evals" / "floors.json"
SETS = {name: f"evals/questions/{name}.jsonl" for name in ("core", "hard", "heldout", "refusal", "lists",
                                                               "conversations")}
MARGIN_QUESTIONS = 2
# headline figure -> (kind, the headline count it is a share of)
GUARDED: dict[str, tuple[str, str | None]] = {
    "single_recall@1": ("floor", "single_n"),
    "single_recall@5": ("floor", "single_n"),
    "single_mrr": ("floor", "single_n"),
    "multi_all@10": ("floor", "multi_n"),
    "cite_precision": ("floor", "answerable_n"),
    "cite_recall": ("floor", "answerable_n"),
    "fact_recall": ("floor", "answerable_n"),
    "fact_first": ("floor", "answerable_n"),
    "unanswerable_abstained": ("floor", "unanswerable_n"),
    "off_topic_refused": ("floor", "off_topic_n"),
    "near_miss_refused": ("floor", "near_miss_n"),
    "near_miss_refused_or_cautioned": ("floor", "near_miss_n"),
    "false_abstention": ("ceiling", "answerable_n"),
    "answerable_cautioned": ("ceiling", "answerable_n"),
    "invalid_citations": ("ceiling", None),  # none, ever
    "groundedness": ("floor", None),  # every cited sentence re-verifies
    # lists.jsonl (evals/lists.py): every paper that answers a list question, both sides of a comparison
    "list_recall": ("floor", "list_n"),
    "list_complete": ("floor", "list_n"),
    "list_precision": ("floor", "list_n"),
    "compare_both_sides": ("floor", "compare_n"),
    "paraphrase_recall": ("floor", "paraphrase_n"),
    # conversations (evals/conversations.py): per turn kind, the shipped follow-up rule
    "first_recall@1": ("floor", "first_n"),
    "follow_up_recall@1": ("floor", "follow_up_n"),
    "follow_up_fact_recall": ("floor", "follow_up_n"),
    "switch_recall@1": ("floor", "switch_n"),
    "switch_hijack": ("ceiling", "switch_n"),
    "unanswerable_refused": ("floor", "unanswerable_n"),
}


def measure(settings: Settings, questions: Path, progress: bool = False, retriever: str = "hybrid") -> dict[str, Any]:
    """The headline of one set (all its questions), offline: with the shipped settings
    and the hybrid retriever, what `assistant ask` does for a user (a conversation set:
    what the API does with `history`). The list set is measured by evals/lists.py (its
    answers' citations against exhaustive gold lists)."""
    if is_conversation_set(questions):
        return conversations.measure(settings.model_copy(update={"retriever": retriever}), questions)
    if questions.stem == "lists":
        from evals.lists import headline as list_headline
        from evals.lists import run_lists

        return list_headline(run_lists(settings, questions)[1])
    with tempfile.TemporaryDirectory(prefix="floors-") as out:
        run = run_eval(settings, questions, [retriever], "offline", Path(out), progress=progress, plots=False)
    return run.metrics[retriever]["headline"]["all"]


def bounds(headline: dict[str, Any], margin: int = MARGIN_QUESTIONS) -> dict[str, dict[str, float]]:
    """Floors and ceilings from a measured headline; figures a set has no questions for are left out."""
    out: dict[str, dict[str, float]] = {"floors": {}, "ceilings": {}}
    for key, (kind, count) in GUARDED.items():
        value = headline.get(key)
        if value is None:
            continue
        slack = margin / headline[count] if count else 0.0
        if kind == "floor":
            out["floors"][key] = round(max(0.0, value - slack), 4)
        else:
            out["ceilings"][key] = round(min(1.0, value + slack), 4) if count else value
    return out


def violations(headline: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """Each guarded figure outside its bound, in words; empty when all hold."""
    found = []
    for key, floor in spec["floors"].items():
        value = headline.get(key)
        if value is None or value < floor:
            found.append(f"{key} {value} below its floor {floor} (measured {spec['measured'].get(key)})")
    for key, ceiling in spec["ceilings"].items():
        value = headline.get(key)
        if value is None or value > ceiling:
            found.append(f"{key} {value} above its ceiling {ceiling} (measured {spec['measured'].get(key)})")
    return found


def update(settings: Settings, margin: int = MARGIN_QUESTIONS) -> dict[str, Any]:
    """Measures every set and rewrites evals/floors.json."""
    record: dict[str, Any] = {
        "margin_questions": margin,
        "measured_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(),
        "how": "python -m evals.floors --update (offline, hybrid, every question of each set)",
        "sets": {},
    }
    for name, rel in SETS.items():
        path = PROJECT_ROOT / rel
        headline = measure(settings, path, progress=True)
        record["sets"][name] = {"questions": rel, "sha256": file_sha256(path),
                                "measured": {k: headline.get(k) for k in GUARDED} | {
                                    k: v for k, v in headline.items() if k.endswith("_n")},
                                **bounds(headline, margin)}
    atomic_write_json(FLOORS_FILE, record, indent=2)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m evals.floors", description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true", help="re-measure every set and rewrite evals/floors.json")
    args = parser.parse_args()
    if not args.update:
        parser.error("nothing to do; pass --update to re-measure (the floors are checked by tests/test_eval_floor.py)")
    record = update(Settings(mode="offline", llm_base_url=None, llm_api_key=None))
    for name, spec in record["sets"].items():
        print(name, json.dumps(spec["measured"]))


if __name__ == "__main__":
    main()
