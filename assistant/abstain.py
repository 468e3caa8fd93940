"""Deciding that the corpus holds nothing on a question.

No single retrieval score separates a near miss ("4-bit quantization of a *video*
diffusion model" when the corpus quantizes only image models) from a paraphrase of
a real paper: both land in the right cluster. A logistic model over three signals
does better than the best-sentence similarity alone (evals/README.md, calibration):

- `best_sentence`: the top paper's best question-sentence similarity (is there one
  passage that says what was asked?);
- `paper_similarity`: the best whole-paper vector similarity (title + mean of its
  sentences: is any paper about this as a whole?);
- `keyword`: the best BM25 score of any paper (do the question's words occur
  together anywhere?);
- `word_support_min` and `word_support_weighted`: how near the top paper's words
  come to the question's least supported content word, and to all of them
  weighted by rarity (does the top paper speak of everything asked about?
  `assistant/words.py`).

All three mean the same whichever retriever ranked (`ASSISTANT_RETRIEVER`), so one
calibration serves them all.

`assistant calibrate` fits it on question sets with sklearn and writes
`evals/abstention.json`; answering only needs the stored weights, so the query path
pays a dot product. The threshold is chosen on the fitting questions for a target
false-abstention rate (5%), since refusing an answerable question costs a user more
than a cited near miss, which still shows its sources. Between it and a higher
caution threshold (at most 15% of answerable questions below it) the answer comes
with a notice that the closest papers may not do exactly what was asked: most near
misses the model cannot refuse still get told apart that way.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from assistant.index import IndexProblem

SIGNALS = ("best_sentence", "paper_similarity", "keyword", "word_support_min", "word_support_weighted")


class AbstentionModelError(IndexProblem):
    """The calibration file is missing or unreadable; like an index problem, every
    front end shows the message, which says how to recreate it."""


@dataclass(frozen=True)
class AbstentionModel:
    """Standardised logistic regression: answerability = sigmoid(b + sum w * (x - mean) / scale)."""

    weights: dict[str, float]
    intercept: float
    means: dict[str, float]
    scales: dict[str, float]
    threshold: float  # abstain when answerability is below this
    caution_threshold: float  # below this (and above `threshold`) the answer carries a caution notice
    fitted_on: dict[str, Any] = field(default_factory=dict)  # what it was calibrated on, and how well it did

    def answerability(self, signals: dict[str, float]) -> float:
        """Probability that the corpus answers the question (1 = surely answerable)."""
        z = self.intercept + sum(
            self.weights[name] * (signals[name] - self.means[name]) / self.scales[name] for name in self.weights
        )
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def save(self, path: Path) -> None:
        """Written beside and renamed over, so a running server never reads half a file."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> AbstentionModel:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            model = cls(**data)
            missing = [name for name in model.weights if name not in SIGNALS or model.scales.get(name, 0) <= 0]
            if missing or not model.weights:
                raise ValueError(f"unknown or unscaled signals {missing}")
            return model
        except FileNotFoundError:
            raise AbstentionModelError(
                f"The abstention calibration {path} is missing. Restore it from the repository or "
                "recreate it with `assistant calibrate`."
            ) from None
        except (OSError, ValueError, TypeError) as exc:
            raise AbstentionModelError(
                f"The abstention calibration {path} is unreadable ({exc}). Recreate it with `assistant calibrate`."
            ) from None


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


def fit(rows: Sequence[tuple[dict[str, float], bool]], max_false: float = 0.05, max_caution: float = 0.15,
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


def question_signals(query: str, ranking: Any, evidence: Any, index: Any) -> dict[str, float]:
    """The model's inputs for one question, mostly from what answering computes anyway;
    keyword-only retrieval needs one more Chroma query (the paper similarity)."""
    paper_similarity = ranking.paper_similarity
    if paper_similarity is None:
        vector = ranking.query_vector
        paper_similarity = index.paper_similarity(vector) if vector is not None else 0.0
    weakest, weighted = index.words.support(query, [evidence.sources[0].paper])[0] if evidence.sources else (0.0, 0.0)
    return {
        "best_sentence": evidence.best(1) if evidence.sources else 0.0,
        "paper_similarity": paper_similarity,
        "keyword": ranking.keyword_top,
        "word_support_min": weakest,
        "word_support_weighted": weighted,
    }


def calibration_rows(assistant: Any, questions: Sequence[Any],
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
        ranking = assistant.index.search(query, k=max(settings.retrieve_k, 10))
        evidence = assistant.evidence(ranking, query, settings.top_k)
        if evidence.named or not assistant.readable(query):
            continue
        rows.append((question_signals(query, ranking, evidence, assistant.index), not q.expects_abstention))
    return rows
