"""Fitting the abstention model (`assistant calibrate`): the runtime only reads the
fitted weights (assistant/abstain.py); how they are chosen lives in the lab.

The threshold is chosen on the fitting questions for a target false-abstention rate
(5%), since refusing an answerable question costs a user more than a cited near
miss, which still shows its sources (evals/README.md, calibration)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from assistant.abstain import SIGNALS, AbstentionModel, question_signals
from assistant.evidence import gather
from assistant.config import PROJECT_ROOT
from assistant.console import fail, load_settings, out
from assistant.index import IndexProblem
from evals.metrics import Question, load_questions
from evals.runner import display_path, file_sha256

if TYPE_CHECKING:
    from assistant.pipeline import Assistant


def operating_threshold(scores: Sequence[float], answerable: Sequence[bool], max_false: float) -> float:
    """The highest threshold that refuses at most `max_false` of the answerable questions
    (abstaining below it), so it abstains as often as that budget allows."""
    kept = sorted(s for s, a in zip(scores, answerable) if a)
    if not kept:
        raise ValueError("calibration needs answerable questions")
    allowed = math.floor(max_false * len(kept))  # answerable questions that may fall below
    return kept[allowed]  # abstain strictly below: exactly `allowed` answerable ones do


def group_threshold(scores: Sequence[float], answerable: Sequence[bool], groups: Sequence[str],
                    max_false: float) -> float:
    """The lowest of the groups' operating thresholds, so that every question set keeps
    its own false-abstention budget: pooled, the easy core set let the threshold refuse
    8% of the hard set's answerable paraphrases (evals/README.md, calibration)."""
    by_group: dict[str, tuple[list[float], list[bool]]] = {}
    for score, ok, group in zip(scores, answerable, groups):
        by_group.setdefault(group, ([], []))[0].append(score)
        by_group[group][1].append(ok)
    return min(operating_threshold(s, a, max_false) for s, a in by_group.values() if any(a))


def margin_threshold(scores: Sequence[float], answerable: Sequence[bool], limit: float) -> float:
    """Midway between the highest-scored unanswerable question refused below `limit` and
    the lowest answerable one above it. The budget's limit usually sits higher, where
    it refuses more answerable questions and no more unanswerable ones (on core + hard
    tune: 4.2% -> 0% of the hard set's answerable questions, same refusals)."""
    refused = [s for s, a in zip(scores, answerable) if not a and s < limit]
    if not refused:
        return limit
    top = max(refused)
    above = [s for s, a in zip(scores, answerable) if a and s > top]
    return (top + min(above)) / 2 if above else limit


def fit(rows: Sequence[tuple[dict[str, float], bool]], max_false: float = 0.05, max_caution: float = 0.10,
        c: float = 0.3, signals: Sequence[str] = SIGNALS, meta: dict[str, Any] | None = None,
        groups: Sequence[str] | None = None) -> AbstentionModel:
    """Fits the model on (signals, answerable) pairs; `groups` names each row's question
    set (each keeps its own budget, `group_threshold`). C=0.3 (fairly strong L2) because
    a calibration set has a few dozen unanswerable questions; leave-one-out figures of
    the fitted model go into `fitted_on`."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import LeaveOneOut, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.array([[r[name] for name in signals] for r, _ in rows], dtype=float)
    y = np.array([a for _, a in rows], dtype=bool)
    if y.all() or not y.any():
        raise ValueError("calibration needs both answerable and unanswerable questions")
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
    pipe.fit(x, y)
    scaler, lr = pipe.steps[0][1], pipe.steps[1][1]
    fitted = pipe.predict_proba(x)[:, 1]
    loo = cross_val_predict(make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000)), x, y,
                            cv=LeaveOneOut(), method="predict_proba")[:, 1]
    groups = list(groups) if groups is not None else ["all"] * len(rows)
    # Thresholds are read off the leave-one-out scores, which behave like a new
    # question's: read off the fitted scores, the hard set's false abstention in an
    # evaluation came out above the budget (evals/README.md, calibration).
    threshold = margin_threshold(loo.tolist(), y.tolist(), group_threshold(loo.tolist(), y.tolist(), groups, max_false))
    caution = max(threshold, group_threshold(loo.tolist(), y.tolist(), groups, max_caution))
    answered = fitted >= threshold
    report = {
        "questions": int(len(y)),
        "unanswerable": int((~y).sum()),
        "max_false_abstention": max_false,
        "C": c,
        "fitted_abstention_recall": float(np.mean(fitted[~y] < threshold)),
        "fitted_false_abstention": float(np.mean(fitted[y] < threshold)),
        "max_caution": max_caution,
        "fitted_unanswerable_answered_with_caution": float(np.mean(fitted[~y & answered] < caution)) if (~y & answered).any() else None,
        "fitted_answerable_answered_with_caution": float(np.mean(fitted[y & answered] < caution)),
        "loo_auc": float(roc_auc_score(y, loo)),
        "loo_abstention_recall": float(np.mean(loo[~y] < threshold)),
        "loo_false_abstention": float(np.mean(loo[y] < threshold)),
    }
    for group in sorted(set(groups)):
        g = np.array([x == group for x in groups])
        report[f"fitted_{group}"] = {"abstention_recall": float(np.mean(fitted[~y & g] < threshold)) if (~y & g).any() else None,
                                     "false_abstention": float(np.mean(fitted[y & g] < threshold)) if (y & g).any() else None}
    for i, name in enumerate(signals):
        report[f"auc_{name}_alone"] = float(roc_auc_score(y, x[:, i]))
    return AbstentionModel(
        weights={name: float(w) for name, w in zip(signals, lr.coef_[0])},
        intercept=float(lr.intercept_[0]),
        means={name: float(m) for name, m in zip(signals, scaler.mean_)},
        scales={name: float(s) for name, s in zip(signals, scaler.scale_)},
        threshold=float(threshold),
        caution_threshold=float(caution),
        fitted_on={**(meta or {}), **report},
    )




def calibration_rows(assistant: Assistant, questions: Sequence[Question],
                     progress: bool = True) -> list[tuple[dict[str, float], bool]]:
    """(signals, answerable) for each question through the same retrieval and evidence
    the pipeline uses. Questions that name a paper or are not in a language the model
    reads are left out (the pipeline answers them whatever the model says), and so are
    heldout questions: calibrating on them would spend them (evals/README.md, the
    heldout rule)."""
    from tqdm import tqdm

    settings = assistant.settings
    rows: list[tuple[dict[str, float], bool]] = []
    usable = [q for q in questions if not q.is_heldout]
    for q in tqdm(usable, desc="calibrating", unit="q", disable=not progress, mininterval=0.5):
        query = assistant.clean_question(q.question)
        index = assistant.index
        ranking = index.search(query, k=max(settings.retrieve_k, 10))
        evidence = gather(index, ranking, query, settings.top_k)
        if evidence.named or not assistant.readable(query, index):
            continue
        rows.append((question_signals(evidence), not q.expects_abstention))
    return rows


def calibrate(
    questions: list[Path] = typer.Option(
        [PROJECT_ROOT / "evals/questions/core.jsonl", PROJECT_ROOT / "evals/questions/hard.jsonl",
         PROJECT_ROOT / "evals/questions/refusal.jsonl"], "--questions",
        help="Question sets to fit on (repeatable); their heldout questions are always left out."),
    max_false: float = typer.Option(0.05, min=0.0, max=0.5, help="False-abstention rate the threshold allows."),
    max_caution: float = typer.Option(0.10, min=0.0, max=0.5,
                                      help="Share of answerable questions the low-confidence notice may reach."),
    out_path: Optional[Path] = typer.Option(None, "--out", help="Where the model goes (default: ASSISTANT_ABSTAIN_MODEL)."),
) -> None:
    """Fit the abstention model on question sets and store it (evals/README.md, calibration)."""
    from assistant.pipeline import Assistant

    settings = load_settings()
    target = out_path or settings.abstain_model
    try:
        assistant, rows, groups = Assistant(settings), [], []
        for path in questions:  # each set keeps its own false-abstention budget
            found = calibration_rows(assistant, load_questions(path))
            rows += found
            groups += [display_path(path)] * len(found)
        meta = {"question_sets": {display_path(p): file_sha256(p) for p in questions}}
        model = fit(rows, max_false=max_false, max_caution=max_caution, meta=meta, groups=groups)
    except (OSError, ValueError, IndexProblem) as exc:
        fail(str(exc))
    model.save(target)
    _print_fit(model, max_false, target)


def _print_fit(model: AbstentionModel, max_false: float, target: Path) -> None:
    r = model.fitted_on
    out.print(f"Fitted on {r['questions']} questions ({r['unanswerable']} unanswerable; heldout, "
              f"paper-naming and non-English questions left out). Threshold {model.threshold:.3f} (answerability).")
    out.print(f"  on the fitting questions: abstains on {r['fitted_abstention_recall']:.0%} of unanswerable, "
              f"{r['fitted_false_abstention']:.1%} of answerable")
    for key, value in r.items():
        if key.startswith("fitted_") and isinstance(value, dict):
            refused, false = value["abstention_recall"], value["false_abstention"]
            out.print(f"    {key[7:]}: abstains on {refused or 0:.0%} of unanswerable, {false or 0:.1%} of answerable")
    out.print(f"  caution notice below {model.caution_threshold:.3f}: on {r['fitted_unanswerable_answered_with_caution'] or 0:.0%} "
              f"of the unanswerable questions it answers, {r['fitted_answerable_answered_with_caution']:.0%} of the answerable ones")
    out.print(f"  leave-one-out: ROC AUC {r['loo_auc']:.3f}; at <= {max_false:.0%} false abstention it abstains on "
              f"{r['loo_abstention_recall']:.0%} of unanswerable ({r['loo_false_abstention']:.1%} false)")
    alone = ", ".join(f"{k[4:-6]} {v:.3f}" for k, v in r.items() if k.startswith("auc_"))
    out.print(f"  ROC AUC of each signal alone: {alone}")
    out.print(f"Wrote {target}")
