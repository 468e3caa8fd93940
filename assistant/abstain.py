"""Deciding that the corpus holds nothing on a question.

No single retrieval score separates a near miss ("4-bit quantization of a *video*
diffusion model" when the corpus quantizes only image models) from a paraphrase of
a real paper: both land in the right cluster. A logistic model over five signals
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

All five mean the same whichever retriever ranked (`ASSISTANT_RETRIEVER`), so one
calibration serves them all.

`assistant calibrate` (evals/calibrate.py) fits it on question sets with sklearn
and writes `assistant/abstention.json`, which ships with the package; answering
only needs the stored weights, so the query path pays a dot product. The threshold is chosen on the fitting questions for a target
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
from typing import TYPE_CHECKING, Any

from assistant.files import atomic_write_json
from assistant.index import IndexProblem

if TYPE_CHECKING:
    from assistant.evidence import Evidence

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
        atomic_write_json(path, asdict(self), indent=2)

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


def question_signals(evidence: Evidence) -> dict[str, float]:
    """The model's inputs for one question, all measured once for answering
    (assistant/evidence.py): its top paper's record and the question-wide signals."""
    top = evidence.sources[0] if evidence.sources else None
    support = top.support if top is not None else None
    return {
        "best_sentence": top.best if top is not None else 0.0,
        "paper_similarity": evidence.paper_similarity,
        "keyword": evidence.keyword_top,
        "word_support_min": support.weakest if support is not None else 0.0,
        "word_support_weighted": support.weighted if support is not None else 0.0,
    }
