"""What `assistant eval` measures: the question sets, what a configuration produced
for a question, and the scores, all small pure functions over normalised titles and
answer fields, each checkable by hand (tests/test_evaluate.py does exactly that).
`None` means "does not apply" and is skipped by the means, never counted as zero.

Conventions (written into every report): recall@k is the share of a question's
gold papers in the top k (so a two-paper compare question has recall@1 <= 0.5);
retrieval and citation metrics apply to questions with gold papers only;
abstention is expected exactly when the gold list is empty (unanswerable, and
adversarial questions whose topic is not in the corpus).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.corpus import normalize_title
from evals.stats import percentile

TYPES = ("concept", "fact", "multi", "lookup", "compare", "unanswerable", "adversarial")
# The configurations a run can score (evals/runner.py runs them).
PIPELINE_RETRIEVERS = ("hybrid", "dense", "bm25")
ANSWER_BASELINES = ("naive",)  # evals/baselines.py: the best keyword sentence of each of the top two papers
BASELINE_RETRIEVERS = ("li-vector", "li-bm25", "li-fusion")
K_MAX = 10


# ====================================================================== questions


@dataclass(frozen=True)
class Question:
    """One line of a question set (evals/README.md documents the format)."""

    id: str
    question: str
    type: str
    gold_titles: tuple[str, ...]
    answer_facts: tuple[str, ...] = ()
    notes: str = ""
    split: str | None = None
    unanswerable_kind: str | None = None  # off_topic (no abstract covers the field) or near_miss

    @property
    def gold(self) -> frozenset[str]:
        """Gold titles normalised the way the corpus builds ids, so case and punctuation never matter."""
        return frozenset(normalize_title(t) for t in self.gold_titles)

    @property
    def expects_abstention(self) -> bool:
        """Nothing in the corpus answers it: unanswerable, or adversarial off-corpus."""
        return not self.gold_titles

    @property
    def is_heldout(self) -> bool:
        """Heldout questions are never listed one by one in reports (evals/README: the heldout rule)."""
        return self.split == "heldout" or self.id.startswith("heldout-")


def load_questions(path: Path, split: str | None = None) -> list[Question]:
    """Reads a JSONL question set; `split` keeps one part of hard.jsonl. Errors name the line."""
    questions: list[Question] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            q = Question(
                id=str(row["id"]),
                question=str(row["question"]),
                type=str(row["type"]),
                gold_titles=tuple(row.get("gold_titles") or ()),
                answer_facts=tuple(row.get("answer_facts") or ()),
                notes=str(row.get("notes") or ""),
                split=row.get("split"),
                unanswerable_kind=row.get("unanswerable_kind"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{lineno}: not a question object ({exc})") from None
        if split is None or q.split == split:
            questions.append(q)
    return questions


# ====================================================================== metrics
# Every metric is a small pure function; `None` means "does not apply" and is
# skipped by the means, never counted as zero.


def gold_ranks(gold: Iterable[str], ranked_titles: Sequence[str]) -> list[int]:
    """1-based ranks at which gold papers appear (titles normalised, duplicates counted once)."""
    wanted = {normalize_title(g) for g in gold}
    ranks: list[int] = []
    seen: set[str] = set()
    for rank, title in enumerate(ranked_titles, 1):
        norm = normalize_title(title)
        if norm in wanted and norm not in seen:
            ranks.append(rank)
            seen.add(norm)
    return ranks


def recall_at_k(gold: Iterable[str], ranked_titles: Sequence[str], k: int) -> float | None:
    """Share of the gold papers found in the top k."""
    wanted = {normalize_title(g) for g in gold}
    if not wanted:
        return None
    return sum(r <= k for r in gold_ranks(wanted, ranked_titles)) / len(wanted)


def all_at_k(gold: Iterable[str], ranked_titles: Sequence[str], k: int) -> float | None:
    """1.0 when every gold paper is in the top k (set recall; what a multi answer needs)."""
    r = recall_at_k(gold, ranked_titles, k)
    return None if r is None else float(r >= 1.0 - 1e-9)


def reciprocal_rank(gold: Iterable[str], ranked_titles: Sequence[str], k: int = K_MAX) -> float | None:
    """1 / rank of the first gold paper in the top k; 0 when none is there."""
    wanted = {normalize_title(g) for g in gold}
    if not wanted:
        return None
    ranks = [r for r in gold_ranks(wanted, ranked_titles) if r <= k]
    return 1.0 / ranks[0] if ranks else 0.0


def ndcg_at_k(gold: Iterable[str], ranked_titles: Sequence[str], k: int = K_MAX) -> float | None:
    """Binary-relevance nDCG: rewards putting all gold papers high, not just the first."""
    wanted = {normalize_title(g) for g in gold}
    if not wanted:
        return None
    dcg = sum(1.0 / math.log2(r + 1) for r in gold_ranks(wanted, ranked_titles) if r <= k)
    ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(wanted), k) + 1))
    return dcg / ideal


def citation_precision(cited_titles: Sequence[str], gold: Iterable[str]) -> float | None:
    """Share of cited papers that are gold. None when nothing is cited."""
    if not cited_titles:
        return None
    wanted = {normalize_title(g) for g in gold}
    return sum(normalize_title(t) in wanted for t in cited_titles) / len(cited_titles)


def citation_recall(cited_titles: Sequence[str], gold: Iterable[str]) -> float | None:
    """Share of gold papers the answer cites."""
    wanted = {normalize_title(g) for g in gold}
    if not wanted:
        return None
    return len(wanted & {normalize_title(t) for t in cited_titles}) / len(wanted)


def fact_recall(facts: Sequence[str], answer_text: str) -> float | None:
    """Share of answer facts that occur, case-insensitively, in the answer."""
    if not facts:
        return None
    low = answer_text.casefold()
    return sum(f.casefold() in low for f in facts) / len(facts)


# The answer's first claim: up to its first citation marker, after a bold "**Title**:" heading.
_FIRST_CLAIM = re.compile(r"^\s*(?:\*\*[^*\n]+\*\*:\s*)?(.*?\[\d+(?:\s*[,–-]\s*\d+)*\])", re.S)


def fact_first(facts: Sequence[str], answer_text: str) -> float | None:
    """1.0 when the answer's first cited sentence (its paper heading aside) holds one of
    the facts: a reader who stops there has what was asked."""
    if not facts:
        return None
    m = _FIRST_CLAIM.search(answer_text)
    first = (m.group(1) if m else answer_text).casefold()
    return float(any(f.casefold() in first for f in facts))


def invalid_citations(cited_ids: Sequence[str], retrieved_ids: Sequence[str]) -> int:
    """Citations to papers the retriever never returned (cannot have been read)."""
    pool = set(retrieved_ids)
    return sum(c not in pool for c in cited_ids)


def abstention_metrics(expected: Sequence[bool], abstained: Sequence[bool]) -> dict[str, float | None]:
    """Abstaining is the positive class: precision = abstentions that were right,
    recall = unanswerables abstained on, false-abstention rate = answerables refused."""
    tp = sum(e and a for e, a in zip(expected, abstained))
    fp = sum(not e and a for e, a in zip(expected, abstained))
    fn = sum(e and not a for e, a in zip(expected, abstained))
    answerable = sum(not e for e in expected)
    n = len(expected)
    return {
        "abstention_precision": tp / (tp + fp) if tp + fp else None,
        "abstention_recall": tp / (tp + fn) if tp + fn else None,
        "abstention_accuracy": sum(e == a for e, a in zip(expected, abstained)) / n if n else None,
        "false_abstention_rate": fp / answerable if answerable else None,
    }


def abstention_auc(answerability: Sequence[float], should_abstain: Sequence[bool]) -> float | None:
    """Chance that an unanswerable question scores below an answerable one (ROC AUC
    of abstaining below a threshold); None unless both kinds are present."""
    from sklearn.metrics import roc_auc_score

    if not any(should_abstain) or all(should_abstain):
        return None
    return float(roc_auc_score(should_abstain, [-s for s in answerability]))


# ====================================================================== per question


@dataclass
class Output:
    """What a configuration produced for one question, whatever produced it."""

    retrieved_ids: list[str]
    retrieved_titles: list[str]
    latency_ms: float
    contract: dict[str, Any]
    answer_text: str | None = None  # None: a retrieval-only configuration
    abstained: bool | None = None
    cited_ids: list[str] = field(default_factory=list)
    cited_titles: list[str] = field(default_factory=list)
    answerability: float | None = None  # what the pipeline abstains on (Answer.answerability)
    cautioned: bool = False  # answered with the low-confidence notice
    groundedness: float | None = None
    draft_groundedness: float | None = None
    removed_citations: int = 0
    error: str | None = None


RETRIEVAL_METRICS: dict[str, Callable[[Question, Output], float | None]] = {
    "recall@1": lambda q, o: recall_at_k(q.gold, o.retrieved_titles, 1),
    "recall@5": lambda q, o: recall_at_k(q.gold, o.retrieved_titles, 5),
    "recall@10": lambda q, o: recall_at_k(q.gold, o.retrieved_titles, 10),
    "mrr": lambda q, o: reciprocal_rank(q.gold, o.retrieved_titles),
    "ndcg@10": lambda q, o: ndcg_at_k(q.gold, o.retrieved_titles),
    "all@10": lambda q, o: all_at_k(q.gold, o.retrieved_titles, 10),
}

ANSWER_METRICS: dict[str, Callable[[Question, Output], float | None]] = {
    "cite_precision_gold": lambda q, o: citation_precision(o.cited_titles, q.gold) if q.gold else None,
    "cite_recall": lambda q, o: citation_recall(o.cited_titles, q.gold) if q.gold else None,
    "cited_papers": lambda q, o: float(len(o.cited_ids)) if q.gold and not o.abstained else None,
    "fact_recall": lambda q, o: fact_recall(q.answer_facts, "" if o.abstained else (o.answer_text or "")),
    "fact_first": lambda q, o: fact_first(q.answer_facts, "" if o.abstained else (o.answer_text or "")),
    "invalid_citations": lambda q, o: float(invalid_citations(o.cited_ids, o.retrieved_ids)),
    "groundedness": lambda q, o: o.groundedness,
    "draft_groundedness": lambda q, o: o.draft_groundedness,
}


def score_question(q: Question, o: Output) -> dict[str, float | None]:
    """All per-question scores; answer metrics only for configurations that answer."""
    scores: dict[str, float | None] = {name: fn(q, o) for name, fn in RETRIEVAL_METRICS.items()}
    ranks = gold_ranks(q.gold, o.retrieved_titles)
    scores["first_gold_rank"] = float(ranks[0]) if ranks else None
    scores["latency_ms"] = o.latency_ms
    if o.answer_text is not None:
        scores.update({name: fn(q, o) for name, fn in ANSWER_METRICS.items()})
        scores["abstained"] = float(bool(o.abstained))
        scores["cautioned"] = float(o.cautioned)
    return scores


# ====================================================================== aggregation

SUMMARY_KEYS = (
    "recall@1", "recall@5", "recall@10", "mrr", "ndcg@10", "all@10",
    "cite_precision_gold", "cite_recall", "fact_recall", "fact_first",
    "invalid_citations", "groundedness", "draft_groundedness",
)


def mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means of every per-question score (skipping n/a), abstention figures and latency
    percentiles for one group of result rows of one configuration."""
    out: dict[str, Any] = {"n": len(rows), "n_retrieval": sum(r["scores"].get("recall@10") is not None for r in rows)}
    for key in SUMMARY_KEYS:
        out[key] = mean(r["scores"].get(key) for r in rows)
    answered = [r for r in rows if r["scores"].get("abstained") is not None]
    if answered:
        out.update(abstention_metrics([r["expects_abstention"] for r in answered],
                                      [bool(r["scores"]["abstained"]) for r in answered]))
        out["invalid_citations_total"] = sum(r["scores"].get("invalid_citations") or 0 for r in answered)
    latencies = [r["scores"]["latency_ms"] for r in rows if r["scores"].get("latency_ms") is not None]
    out["latency_p50_ms"] = percentile(latencies, 0.50)
    out["latency_p95_ms"] = percentile(latencies, 0.95)
    return out


def headline(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What a user cares about, each on its own questions. Retrieval: is the one paper
    I mean first (single gold paper: R@1, R@5, MRR), are all the papers on a topic there
    (several gold papers: all in the top 10). The answer, on answerable questions: are
    the cited papers the right ones (precision), are the right ones cited (recall), does
    the text carry the asked-for fact. Refusal: off-topic and near-miss questions
    refused (or, for near misses, cautioned), answerable ones refused or cautioned."""
    single = [r for r in rows if len(r["gold_titles"]) == 1]
    several = [r for r in rows if len(r["gold_titles"]) >= 2]
    out: dict[str, Any] = {
        "single_n": len(single),
        "single_recall@1": mean(r["scores"].get("recall@1") for r in single),
        "single_recall@5": mean(r["scores"].get("recall@5") for r in single),
        "single_mrr": mean(r["scores"].get("mrr") for r in single),
        "multi_n": len(several),
        "multi_all@10": mean(r["scores"].get("all@10") for r in several),
        "unanswerable_n": sum(r["expects_abstention"] for r in rows),
    }
    answered = [r for r in rows if r["scores"].get("abstained") is not None]
    if not answered:
        return out
    refused = lambda r: float(bool(r["scores"]["abstained"]))  # noqa: E731
    flagged = lambda r: float(bool(r["scores"]["abstained"] or r["scores"].get("cautioned")))  # noqa: E731
    answerable = [r for r in answered if not r["expects_abstention"]]
    unanswerable = [r for r in answered if r["expects_abstention"]]
    off_topic = [r for r in unanswerable if r.get("unanswerable_kind") == "off_topic"]
    near_miss = [r for r in unanswerable if r.get("unanswerable_kind") != "off_topic"]
    out.update({
        "answerable_n": len(answerable),
        "cite_precision": mean(r["scores"].get("cite_precision_gold") for r in answerable),
        "cite_recall": mean(r["scores"].get("cite_recall") for r in answerable),
        "fact_recall": mean(r["scores"].get("fact_recall") for r in answerable),
        "fact_first": mean(r["scores"].get("fact_first") for r in answerable),
        "cited_papers": mean(r["scores"].get("cited_papers") for r in answerable),
        "unanswerable_abstained": mean(refused(r) for r in unanswerable),
        "unanswerable_abstained_or_cautioned": mean(flagged(r) for r in unanswerable),
        "off_topic_n": len(off_topic),
        "off_topic_refused": mean(refused(r) for r in off_topic),
        "near_miss_n": len(near_miss),
        "near_miss_refused": mean(refused(r) for r in near_miss),
        "near_miss_refused_or_cautioned": mean(flagged(r) for r in near_miss),
        "false_abstention": mean(refused(r) for r in answerable),
        "answerable_cautioned": mean(r["scores"].get("cautioned") for r in answerable),
        "invalid_citations": sum(r["scores"].get("invalid_citations") or 0 for r in answered),
        "groundedness": mean(r["scores"].get("groundedness") for r in answered),
    })
    return out


def summarize_config(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Overall, per type, per split (when the set has splits) and the recall@k curve."""
    by_type = {t: summarize([r for r in rows if r["type"] == t]) for t in types_in(rows)}
    splits = sorted({r["split"] for r in rows if r.get("split")})
    scored = [r for r in rows if r["scores"].get("recall@10") is not None]
    curve = [mean(recall_at_k(r["gold_titles"], r["retrieved_titles"], k) for r in scored) for k in range(1, K_MAX + 1)]
    result: dict[str, Any] = {"overall": summarize(rows), "by_type": by_type, "recall_curve": curve,
                              "headline": {"all": headline(rows)}}
    if splits:
        result["by_split"] = {s: summarize([r for r in rows if r.get("split") == s]) for s in splits}
        result["headline"].update({s: headline([r for r in rows if r.get("split") == s]) for s in splits})
    scored = [(r["answerability"], r["expects_abstention"]) for r in rows if r.get("answerability") is not None]
    if scored:
        result["abstention_auc"] = abstention_auc([s for s, _ in scored], [e for _, e in scored])
    return result


def types_in(rows: Sequence[dict[str, Any]]) -> list[str]:
    present = {r["type"] for r in rows}
    return [t for t in TYPES if t in present] + sorted(present - set(TYPES))



# ====================================================================== the run


@dataclass
class EvalRun:
    settings: dict[str, Any]
    rows: list[dict[str, Any]]
    metrics: dict[str, Any]
    out_dir: Path
