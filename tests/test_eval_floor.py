"""Regression floor: the core question set, offline hybrid mode, through the same
runner as `assistant eval`, must not fall below evals/floors.json. The floors are
a measured run minus a little slack; the file says when and where it was measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.config import PROJECT_ROOT
from evals.evaluate import miss_reason, run_eval

pytestmark = pytest.mark.slow

FLOORS = PROJECT_ROOT / "evals" / "floors.json"


def test_core_set_stays_above_the_floors(full_index, tmp_path: Path) -> None:
    spec = json.loads(FLOORS.read_text(encoding="utf-8"))["core"]
    run = run_eval(full_index, PROJECT_ROOT / spec["questions"], [spec["retriever"]], spec["mode"], tmp_path,
                   progress=False, plots=False)
    overall = run.metrics[spec["retriever"]]["overall"]
    misses = [f"{r['id']}: {why}" for r in run.rows if not r["heldout"] and (why := miss_reason(r))]
    for metric, floor in spec["floors"].items():
        assert overall[metric] >= floor, (
            f"{metric} {overall[metric]:.3f} fell below the floor {floor} "
            f"(measured {spec['measured'][metric]} on {spec['measured']['date']}). Misses:\n" + "\n".join(misses)
        )
