"""`assistant eval`: run a question set through the same pipeline as `assistant ask`
and score it; `assistant eval --compare OLD NEW` shows what changed between runs.

Layout, top to bottom:

- question sets (`Question`, `load_questions`);
- metrics: small pure functions over normalised titles and answer fields, each
  checkable by hand (tests/test_evaluate.py does exactly that);
- per-question scoring (`score_question`) and aggregation (`summarize`);
- runners: our pipeline (`run_pipeline`, one `Assistant.stream` per question, the
  code path `ask` uses) and the llama-index baselines (`run_baseline`);
- outputs: results.jsonl, metrics.json, report.md, PNG plots;
- `compare_runs` and the typer command `eval_command`.

Conventions (written into every report): recall@k is the share of a question's
gold papers in the top k (so a two-paper compare question has recall@1 <= 0.5);
retrieval and citation metrics apply to questions with gold papers only;
abstention is expected exactly when the gold list is empty (unanswerable, and
adversarial questions whose topic is not in the corpus).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from assistant.config import NO_ENDPOINT, PROJECT_ROOT, Settings
from assistant.corpus import normalize_title
from evals.stats import percentile

if TYPE_CHECKING:
    from assistant.pipeline import Assistant

TYPES = ("concept", "fact", "multi", "lookup", "compare", "unanswerable", "adversarial")
PIPELINE_RETRIEVERS = ("hybrid", "dense", "bm25")
ANSWER_BASELINES = ("naive",)  # evals/baselines.py: the best keyword sentence of each of the top two papers
BASELINE_RETRIEVERS = ("li-vector", "li-bm25", "li-fusion")
K_MAX = 10
WARM_UP = "How can diffusion models be quantized to low bit widths?"


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


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means of every per-question score (skipping n/a), abstention figures and latency
    percentiles for one group of result rows of one configuration."""
    out: dict[str, Any] = {"n": len(rows), "n_retrieval": sum(r["scores"].get("recall@10") is not None for r in rows)}
    for key in SUMMARY_KEYS:
        out[key] = _mean(r["scores"].get(key) for r in rows)
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
        "single_recall@1": _mean(r["scores"].get("recall@1") for r in single),
        "single_recall@5": _mean(r["scores"].get("recall@5") for r in single),
        "single_mrr": _mean(r["scores"].get("mrr") for r in single),
        "multi_n": len(several),
        "multi_all@10": _mean(r["scores"].get("all@10") for r in several),
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
        "cite_precision": _mean(r["scores"].get("cite_precision_gold") for r in answerable),
        "cite_recall": _mean(r["scores"].get("cite_recall") for r in answerable),
        "fact_recall": _mean(r["scores"].get("fact_recall") for r in answerable),
        "fact_first": _mean(r["scores"].get("fact_first") for r in answerable),
        "cited_papers": _mean(r["scores"].get("cited_papers") for r in answerable),
        "unanswerable_abstained": _mean(refused(r) for r in unanswerable),
        "unanswerable_abstained_or_cautioned": _mean(flagged(r) for r in unanswerable),
        "off_topic_n": len(off_topic),
        "off_topic_refused": _mean(refused(r) for r in off_topic),
        "near_miss_n": len(near_miss),
        "near_miss_refused": _mean(refused(r) for r in near_miss),
        "near_miss_refused_or_cautioned": _mean(flagged(r) for r in near_miss),
        "false_abstention": _mean(refused(r) for r in answerable),
        "answerable_cautioned": _mean(r["scores"].get("cautioned") for r in answerable),
        "invalid_citations": sum(r["scores"].get("invalid_citations") or 0 for r in answered),
        "groundedness": _mean(r["scores"].get("groundedness") for r in answered),
    })
    return out


def summarize_config(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Overall, per type, per split (when the set has splits) and the recall@k curve."""
    by_type = {t: summarize([r for r in rows if r["type"] == t]) for t in _types_in(rows)}
    splits = sorted({r["split"] for r in rows if r.get("split")})
    scored = [r for r in rows if r["scores"].get("recall@10") is not None]
    curve = [_mean(recall_at_k(r["gold_titles"], r["retrieved_titles"], k) for r in scored) for k in range(1, K_MAX + 1)]
    result: dict[str, Any] = {"overall": summarize(rows), "by_type": by_type, "recall_curve": curve,
                              "headline": {"all": headline(rows)}}
    if splits:
        result["by_split"] = {s: summarize([r for r in rows if r.get("split") == s]) for s in splits}
        result["headline"].update({s: headline([r for r in rows if r.get("split") == s]) for s in splits})
    scored = [(r["answerability"], r["expects_abstention"]) for r in rows if r.get("answerability") is not None]
    if scored:
        result["abstention_auc"] = abstention_auc([s for s, _ in scored], [e for _, e in scored])
    return result


def _types_in(rows: Sequence[dict[str, Any]]) -> list[str]:
    present = {r["type"] for r in rows}
    return [t for t in TYPES if t in present] + sorted(present - set(TYPES))


# ====================================================================== runners


def _progress(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="q", file=sys.stderr, mininterval=0.5, leave=True)


def answer_evidence(assistant: Any, question: str, hits: list[Any], index: Any) -> Any:
    """The numbered sources an answer was drafted from, rebuilt from its hits (the
    Answer does not carry sentence vectors), for the LLM draft's groundedness."""
    from assistant.evidence import gather
    from assistant.retrieve import Ranking

    named = [pid for pid in index.named_papers(question) if pid in index.papers]
    return gather(index, Ranking(hits=hits, query_vector=None, named=named), question, assistant.settings.top_k)


def final_groundedness(answer: Any, index: Any, threshold: float) -> float | None:
    """Re-verifies the shown answer against the papers it cites: share of cited
    sentences whose citations all hold (1.0 for offline answers by construction)."""
    from assistant.citations import Source, verify

    if answer.abstained or not answer.citations:
        return None
    cited = [c for c in answer.citations if c.paper_id in index.papers]
    vectors = index.dense.sentence_vectors([c.paper_id for c in cited])
    sources = [Source(n=c.n, paper=index.papers[c.paper_id], sentences=index.sentences[c.paper_id],
                      vectors=vectors[c.paper_id]) for c in cited]
    checked = verify(answer.answer, sources, index.dense.encode, threshold)
    return checked.groundedness if checked.cited_claims else None


def draft_groundedness(draft: str, evidence: Any, index: Any, threshold: float) -> float | None:
    """Groundedness of the LLM's draft before verification removed anything: how much
    the verifier had to fix, the number that makes LLM and offline comparable."""
    from assistant.answer import NO_ANSWER
    from assistant.citations import verify

    if not draft.strip() or NO_ANSWER in draft:
        return None
    checked = verify(draft, evidence.sources, index.dense.encode, threshold)
    return checked.groundedness if checked.cited_claims else 0.0


def ask_once(assistant: Any, q: Question, mode: str, retriever: str) -> tuple[Any, str]:
    """One question through the pipeline, and the LLM's own draft (`Answer.llm_draft`):
    empty offline, and when the endpoint failed mid-way (a partial draft would score
    as if it were the LLM's answer)."""
    answer = assistant.ask(q.question, mode=mode, retriever=retriever, qid=q.id)
    return answer, (answer.llm_draft or "") if mode == "llm" else ""


def pipeline_output(assistant: Any, q: Question, mode: str, retriever: str) -> Output:
    """Runs one question and extracts everything the metrics need from the Answer."""
    from assistant.pipeline import QuestionError

    index = assistant.index
    t0 = time.perf_counter()
    try:
        answer, draft = ask_once(assistant, q, mode, retriever)
    except QuestionError as exc:  # refused input: an abstention with nothing retrieved
        ms = (time.perf_counter() - t0) * 1000
        return Output([], [], ms, {"id": q.id, "question": q.question, "error": str(exc)},
                      answer_text="", abstained=True, error=str(exc))
    threshold = assistant.settings.support_threshold
    return Output(
        retrieved_ids=[h.paper_id for h in answer.retrieved],
        retrieved_titles=[h.title for h in answer.retrieved],
        latency_ms=answer.timings_ms.get("total", 0.0),
        contract=answer.contract().model_dump(mode="json"),
        answer_text=answer.answer,
        abstained=answer.abstained,
        cited_ids=[c.paper_id for c in answer.citations],
        cited_titles=[c.title for c in answer.citations],
        answerability=answer.answerability,
        cautioned=answer.has_notice("caution"),
        groundedness=final_groundedness(answer, index, threshold),
        draft_groundedness=draft_groundedness(
            draft, answer_evidence(assistant, answer.question, answer.retrieved, index), index, threshold
        ) if mode == "llm" else None,
        removed_citations=len(answer.removed_citations),
    )


def run_pipeline(assistant: Any, questions: Sequence[Question], mode: str, retriever: str,
                 progress: bool = True) -> list[tuple[Question, Output]]:
    """Every question through our pipeline with one retriever, after a warm-up so the
    first question's latency does not include model loading."""
    assistant.ask(WARM_UP, mode="offline", retriever=retriever)
    bar = _progress(len(questions), f"{retriever} ({mode})") if progress else None
    results = []
    for q in questions:
        results.append((q, pipeline_output(assistant, q, mode, retriever)))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return results


def run_naive(assistant: Assistant, questions: Sequence[Question], progress: bool = True) -> list[tuple[Question, Output]]:
    """The naive answerer (evals/baselines.py) through the answer metrics, beside ours."""
    from evals.baselines import naive_answer

    naive_answer(assistant, WARM_UP)
    bar = _progress(len(questions), "naive") if progress else None
    results = []
    for q in questions:
        t0 = time.perf_counter()
        text, hits, cited = naive_answer(assistant, q.question)
        ms = (time.perf_counter() - t0) * 1000
        contract = {"id": q.id, "question": q.question, "answer": text, "abstained": False,
                    "citations": [{"n": n, "paper_id": h.paper_id, "title": h.title} for n, h in enumerate(cited, 1)],
                    "retrieved": [{"paper_id": h.paper_id, "title": h.title, "score": round(h.score, 6)} for h in hits],
                    "mode": "naive", "timings_ms": {"total": round(ms, 2)}}
        results.append((q, Output([h.paper_id for h in hits], [h.title for h in hits], ms, contract, answer_text=text,
                                  abstained=False, cited_ids=[h.paper_id for h in cited],
                                  cited_titles=[h.title for h in cited])))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return results


def run_baseline(search: Callable[[str, int], list[tuple[str, str, float]]], name: str,
                 questions: Sequence[Question], progress: bool = True) -> list[tuple[Question, Output]]:
    """Retrieval-only runs: `search(query, k)` returns (paper_id, title, score) ranked."""
    search(WARM_UP, K_MAX)  # first-query costs (tokenizer, stemmer caches) are not query latency
    bar = _progress(len(questions), name) if progress else None
    results = []
    for q in questions:
        t0 = time.perf_counter()
        hits = search(q.question, K_MAX)
        ms = (time.perf_counter() - t0) * 1000
        contract = {"id": q.id, "question": q.question, "answer": None, "abstained": None, "citations": [],
                    "retrieved": [{"paper_id": p, "title": t, "score": round(s, 6)} for p, t, s in hits],
                    "mode": "retrieval-only", "timings_ms": {"retrieve": round(ms, 2), "answer": 0.0, "total": round(ms, 2)}}
        results.append((q, Output([p for p, _, _ in hits], [t for _, t, _ in hits], ms, contract)))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return results


def result_row(config: str, q: Question, o: Output) -> dict[str, Any]:
    """One results.jsonl line: the question, the output contract, the scores. The
    contract's retrieved papers keep their ids and scores but not their titles, which
    `retrieved_titles` holds in the same order: the titles were a fifth of the file
    (a hard-set report was 5.3 MB)."""
    contract = o.contract
    if contract.get("retrieved"):
        contract = contract | {"retrieved": [{k: v for k, v in hit.items() if k != "title"}
                                             for hit in contract["retrieved"]]}
    return {
        "config": config,
        "id": q.id,
        "type": q.type,
        "split": q.split,
        "question": q.question,
        "gold_titles": list(q.gold_titles),
        "answer_facts": list(q.answer_facts),
        "expects_abstention": q.expects_abstention,
        "unanswerable_kind": q.unanswerable_kind,
        "heldout": q.is_heldout,
        "retrieved_titles": o.retrieved_titles,
        "cited_ids": o.cited_ids,
        "answerability": o.answerability,
        "removed_citations": o.removed_citations,
        "error": o.error,
        "scores": score_question(q, o),
        "output": contract,
    }


# ====================================================================== settings


def _git(*args: str) -> str | None:
    """Read-only git query; GIT_OPTIONAL_LOCKS=0 keeps `status` from touching the index."""
    try:
        done = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10,
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_commit() -> str | None:
    commit = _git("rev-parse", "HEAD")
    if commit and _git("status", "--porcelain", "--untracked-files=no"):
        commit += " (working tree has uncommitted changes)"
    return commit


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def run_settings(settings: Settings, index: Any, questions_path: Path, split: str | None, mode: str,
                 configs: Sequence[str], n: int) -> dict[str, Any]:
    """Everything needed to reproduce the run, recorded in report.md and metrics.json."""
    from assistant.abstain import AbstentionModel

    manifest = index.manifest if index is not None else {}
    abstention = AbstentionModel.load(settings.abstain_model)
    record: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "git_commit": git_commit(),
        "questions": display_path(questions_path),
        "questions_sha256": file_sha256(questions_path),
        "split": split,
        "n_questions": n,
        "configs": list(configs),
        "mode": mode,
        "model_fingerprint": manifest.get("embed_model"),
        "corpus_fingerprint": manifest.get("corpus_fingerprint"),
        "index_papers": manifest.get("papers"),
        "index_dir": str(settings.index_dir),
        "top_k": settings.top_k,
        "retrieve_k": settings.retrieve_k,
        "dense_candidates": settings.dense_candidates,
        "abstain_threshold": settings.abstain_threshold if settings.abstain_threshold is not None else abstention.threshold,
        "abstention_model": {"path": display_path(settings.abstain_model), "weights": abstention.weights,
                             "fitted_on": abstention.fitted_on.get("question_sets")},
        "support_threshold": settings.support_threshold,
        "machine": f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end (latency is wall time)",
        "fusion": {"rrf_k": settings.rrf_k, "keyword_weight": settings.keyword_weight,
                   "paper_unit_share": settings.paper_unit_share, "second_sentence_share": settings.second_sentence_share,
                   "part_coverage_weight": settings.part_coverage_weight,
                   "word_support_weight": settings.word_support_weight,
                   "word_support_min_share": settings.word_support_min_share},
    }
    if mode == "llm":
        record["llm_model"] = settings.llm_model
        record["llm_temperature"] = settings.llm_temperature
    return record


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


# ====================================================================== orchestration


@dataclass
class EvalRun:
    settings: dict[str, Any]
    rows: list[dict[str, Any]]
    metrics: dict[str, Any]
    out_dir: Path


def parse_configs(spec: str) -> list[str]:
    """`dense,bm25,hybrid,li-vector`: validated, order kept, duplicates dropped."""
    names = list(dict.fromkeys(p.strip() for p in spec.split(",") if p.strip()))
    known = PIPELINE_RETRIEVERS + ANSWER_BASELINES + BASELINE_RETRIEVERS
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        raise ValueError(f"unknown retriever {', '.join(unknown) or '(none)'}; choose from " + ", ".join(known))
    return names


def run_eval(settings: Settings, questions_path: Path, configs: Sequence[str], mode: str, out_dir: Path,
             split: str | None = None, progress: bool = True, plots: bool = True) -> EvalRun:
    """Loads models once, runs every configuration, writes results, metrics, report and plots."""
    from assistant.pipeline import Assistant

    questions = load_questions(questions_path, split)
    if not questions:
        raise ValueError(f"{questions_path}: no questions" + (f" in split {split!r}" if split else ""))
    assistant = Assistant(settings)
    index = assistant.index
    rows: list[dict[str, Any]] = []
    baselines = None
    for config in configs:
        if config in PIPELINE_RETRIEVERS:
            results = run_pipeline(assistant, questions, mode, config, progress)
        elif config in ANSWER_BASELINES:
            results = run_naive(assistant, questions, progress)
        else:
            if baselines is None:
                from evals.baselines import Baselines

                baselines = Baselines(settings, list(index.papers.values()))
            results = run_baseline(lambda text, k, c=config, b=baselines: b.search(c, text, k), config, questions, progress)
        rows.extend(result_row(config, q, o) for q, o in results)
    record = run_settings(settings, index, questions_path, split, mode, configs, len(questions))
    if baselines is not None:
        record["baselines"] = baselines.describe()
    metrics = {c: summarize_config([r for r in rows if r["config"] == c]) for c in configs}
    run = EvalRun(record, rows, metrics, out_dir)
    write_outputs(run, plots)
    return run


def write_outputs(run: EvalRun, plots: bool = True) -> None:
    run.out_dir.mkdir(parents=True, exist_ok=True)
    with (run.out_dir / "results.jsonl").open("w", encoding="utf-8") as fh:
        for row in run.rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    (run.out_dir / "metrics.json").write_text(
        json.dumps({"settings": run.settings, "metrics": run.metrics}, indent=2, ensure_ascii=False), encoding="utf-8")
    images = write_plots(run) if plots else []
    (run.out_dir / "report.md").write_text(render_report(run, images), encoding="utf-8")


# ====================================================================== report


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


OVERALL_COLUMNS = (
    ("R@1", "recall@1"), ("R@5", "recall@5"), ("R@10", "recall@10"), ("MRR", "mrr"), ("nDCG@10", "ndcg@10"),
    ("all@10", "all@10"), ("citeP gold", "cite_precision_gold"),
    ("citeR", "cite_recall"), ("factR", "fact_recall"), ("abst P", "abstention_precision"),
    ("abst R", "abstention_recall"), ("abst acc", "abstention_accuracy"), ("false abst", "false_abstention_rate"),
    ("invalid cites", "invalid_citations_total"), ("grounded", "groundedness"), ("p50 ms", "latency_p50_ms"),
    ("p95 ms", "latency_p95_ms"),
)
TYPE_COLUMNS = (
    ("n", "n"), ("R@1", "recall@1"), ("R@5", "recall@5"), ("R@10", "recall@10"), ("MRR", "mrr"),
    ("nDCG@10", "ndcg@10"), ("all@10", "all@10"), ("citeP gold", "cite_precision_gold"),
    ("citeR", "cite_recall"), ("factR", "fact_recall"), ("abst acc", "abstention_accuracy"),
    ("p50 ms", "latency_p50_ms"),
)


def render_report(run: EvalRun, images: Sequence[str]) -> str:
    s, m = run.settings, run.metrics
    parts = [f"# Evaluation: {s.get('questions', '?')}" + (f" (split {s['split']})" if s.get("split") else ""), ""]
    parts += ["## Settings", "", table(("setting", "value"), [(k, json.dumps(v) if isinstance(v, (dict, list)) else v)
                                                             for k, v in s.items()]), ""]
    parts += ["## Overall", "", table(["config"] + [h for h, _ in OVERALL_COLUMNS],
                                      [[c] + [m[c]["overall"].get(k) for _, k in OVERALL_COLUMNS] for c in m]), ""]
    parts += [_conventions(), ""]
    parts += ["## Headline: single-paper, multi-paper and unanswerable questions", "",
              "Single = questions with one gold paper; multi = two or more (all@10: every one in the top 10); "
              "unanswerable = empty gold list. abst or caution = unanswerable questions refused or answered with "
              "the low-confidence notice; answerable cautioned = answerable questions that got the notice.", "",
              _headline_table(m), ""]
    parts += ["## Headline: the answer a user reads", "",
              "On answerable questions: citeP = share of cited papers that are gold, citeR = share of gold papers "
              "cited, factR = share of the question's gold facts (short strings from the abstract) in the answer "
              "text (0 when refused), fact first = share whose first cited sentence (the paper's heading aside) holds "
              "one of them, papers cited per answered question. Off-topic = unanswerable questions on a "
              "field no abstract covers; near miss = the corpus has the neighbouring topic. naive = the best "
              "keyword sentence of each of the top two papers, cited, never refusing (evals/baselines.py).", "",
              _headline_table(m, ANSWER_COLUMNS), ""]
    for c in m:
        if m[c].get("by_split"):
            parts += [f"### {c}: by split", "", table(["split"] + [h for h, _ in TYPE_COLUMNS],
                      [[sp] + [v.get(k) for _, k in TYPE_COLUMNS] for sp, v in m[c]["by_split"].items()]), ""]
    parts += ["## Recall@5 by type", "", _by_type_matrix(m, "recall@5"), ""]
    parts += ["## Multi-paper set recall@10 (all gold in top 10 / mean fraction)", "", _multi_table(m), ""]
    for c in m:
        parts += [f"## {c}: by type", "", table(["type"] + [h for h, _ in TYPE_COLUMNS],
                  [[t] + [v.get(k) for _, k in TYPE_COLUMNS] for t, v in m[c]["by_type"].items()]), ""]
    if any("abstention_auc" in v for v in m.values()):
        parts += ["## Abstention signal", "", "ROC AUC of the answerability the pipeline abstains on "
                  "(assistant/abstain.py; questions naming a paper score 1):", "",
                  table(("config", "AUC"), [(c, v.get("abstention_auc")) for c, v in m.items() if "abstention_auc" in v]), ""]
    parts += _misses(run)
    if images:
        parts += ["## Plots", ""] + [f"![{Path(i).stem}]({i})" for i in images] + [""]
    return "\n".join(parts)


def _conventions() -> str:
    return ("recall@k = share of a question's gold papers in the top k; MRR/nDCG@10 over the top 10; all@10 = "
            "every gold paper in the top 10. Retrieval and citation metrics cover questions with gold papers; "
            "abstention is expected exactly when the gold list is empty. citeP gold = cited papers that are gold; "
            "factR counts 0 for abstentions; "
            "grounded = share of cited answer sentences whose citations all hold when the shown answer is "
            "re-verified (draft_groundedness in metrics.json: the LLM draft before verification). "
            "n/a = not applicable (baselines retrieve only).")


def _by_type_matrix(m: dict[str, Any], key: str) -> str:
    types = list(dict.fromkeys(t for v in m.values() for t, s in v["by_type"].items() if s.get(key) is not None))
    return table(["config"] + types, [[c] + [v["by_type"].get(t, {}).get(key) for t in types] for c, v in m.items()])


HEADLINE_COLUMNS = (
    ("single n", "single_n"), ("R@1", "single_recall@1"), ("R@5", "single_recall@5"), ("MRR", "single_mrr"),
    ("multi n", "multi_n"), ("all@10", "multi_all@10"), ("unanswerable n", "unanswerable_n"),
    ("abstained", "unanswerable_abstained"), ("false abst", "false_abstention"),
    ("abst or caution", "unanswerable_abstained_or_cautioned"), ("answerable cautioned", "answerable_cautioned"),
)
ANSWER_COLUMNS = (
    ("answerable n", "answerable_n"), ("citeP", "cite_precision"), ("citeR", "cite_recall"),
    ("factR", "fact_recall"), ("fact first", "fact_first"), ("papers cited", "cited_papers"),
    ("off-topic n", "off_topic_n"),
    ("off-topic refused", "off_topic_refused"), ("near-miss n", "near_miss_n"),
    ("near-miss refused", "near_miss_refused"), ("near-miss refused or cautioned", "near_miss_refused_or_cautioned"),
    ("answerable refused", "false_abstention"), ("answerable cautioned", "answerable_cautioned"),
    ("invalid cites", "invalid_citations"), ("grounded", "groundedness"),
)


def _headline_table(m: dict[str, Any], columns: Sequence[tuple[str, str]] = HEADLINE_COLUMNS) -> str:
    rows = [[c, part] + [h.get(k) for _, k in columns]
            for c in m for part, h in m[c].get("headline", {}).items() if columns is HEADLINE_COLUMNS
            or h.get("answerable_n") is not None]
    return table(["config", "questions"] + [h for h, _ in columns], rows)


def _multi_table(m: dict[str, Any]) -> str:
    rows = [(c, v["by_type"]["multi"]["all@10"], v["by_type"]["multi"]["recall@10"], v["by_type"]["multi"]["n"])
            for c, v in m.items() if "multi" in v["by_type"]]
    return table(("config", "all gold in top 10", "mean fraction", "n"), rows) if rows else "no multi questions"


def miss_reason(row: dict[str, Any]) -> str | None:
    """Why a question counts as failed, in words; None when it passed."""
    sc = row["scores"]
    if row.get("error"):
        return f"refused: {row['error'][:60]}"
    if row["expects_abstention"]:
        return "answered instead of abstaining" if sc.get("abstained") == 0.0 else None
    if sc.get("abstained") == 1.0:
        rank = sc.get("first_gold_rank")
        return f"abstained (gold rank {fmt(rank, 0) if rank else '>10'}, answerability {fmt(row.get('answerability'), 2)})"
    if (sc.get("recall@5") or 0.0) < 1.0:
        ranks = gold_ranks(row["gold_titles"], row["retrieved_titles"])
        return f"gold ranks {ranks or '-'} of {len(row['gold_titles'])} gold"
    return None


def _misses(run: EvalRun) -> list[str]:
    """Failed questions per configuration, except heldout ones (never to be tuned on)."""
    parts = ["## Misses", "", "Questions not fully recalled in the top 5, or with the wrong abstention decision. "
             "Heldout questions are counted in the tables but not listed (evals/README: the heldout rule).", ""]
    for config in run.metrics:
        rows = [r for r in run.rows if r["config"] == config]
        misses = [(r, why) for r in rows if (why := miss_reason(r))]
        hidden = sum(r["heldout"] for r, _ in misses)
        shown = [(r, why) for r, why in misses if not r["heldout"]]
        parts.append(f"### {config}: {len(misses)} of {len(rows)}" + (f" ({hidden} heldout not listed)" if hidden else ""))
        parts.append("")
        parts += [f"- `{r['id']}` ({r['type']}): {why}" for r, why in shown]
        parts.append("")
    return parts


# ====================================================================== plots


def write_plots(run: EvalRun) -> list[str]:
    """recall@k curves, recall@5 per type and the abstention ROC, as PNG files in the run folder."""
    import matplotlib

    matplotlib.use("Agg")
    images = [plot_recall_curves(run.metrics, run.out_dir / "recall_at_k.png"),
              plot_type_bars(run.metrics, run.out_dir / "recall5_by_type.png")]
    roc = plot_roc(run.rows, run.metrics, run.out_dir / "abstention_roc.png")
    images += [roc] if roc else []
    return images


def plot_recall_curves(metrics: dict[str, Any], path: Path) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ks = list(range(1, K_MAX + 1))
    for config, m in metrics.items():
        curve = [v if v is not None else float("nan") for v in m["recall_curve"]]
        ax.plot(ks, curve, marker="o", markersize=3, label=config, linestyle="-" if config in PIPELINE_RETRIEVERS else "--")
    ax.set(xlabel="k", ylabel="mean recall@k", title="Retrieval recall@k", xticks=ks, ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def plot_type_bars(metrics: dict[str, Any], path: Path) -> str:
    import matplotlib.pyplot as plt

    types = list(dict.fromkeys(t for v in metrics.values() for t, s in v["by_type"].items() if s.get("recall@5") is not None))
    configs = list(metrics)
    width = 0.8 / max(len(configs), 1)
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(types) + 2), 5))
    for i, config in enumerate(configs):
        values = [metrics[config]["by_type"].get(t, {}).get("recall@5") or 0.0 for t in types]
        ax.bar([x + i * width - 0.4 + width / 2 for x in range(len(types))], values, width, label=config)
    counts = [max(metrics[c]["by_type"].get(t, {}).get("n_retrieval", 0) for c in configs) for t in types]
    ax.set_xticks(range(len(types)), [f"{t}\n(n={n})" for t, n in zip(types, counts)])
    ax.set(ylabel="recall@5", title="Recall@5 by question type", ylim=(0, 1.05))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=min(len(configs), 6), loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def plot_roc(rows: Sequence[dict[str, Any]], metrics: dict[str, Any], path: Path) -> str | None:
    """ROC of abstaining below an answerability threshold, with each run's actual operating point."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    curves = []
    for config in metrics:
        scored = [r for r in rows if r["config"] == config and r.get("answerability") is not None]
        scores, expected = [r["answerability"] for r in scored], [r["expects_abstention"] for r in scored]
        if any(expected) and not all(expected):
            curves.append((config, roc_curve(expected, [-s for s in scores]), abstention_auc(scores, expected),
                           metrics[config]["overall"]))
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for config, (fpr, tpr, _), area, overall in curves:
        line = ax.plot(fpr, tpr, label=f"{config} (AUC {area:.3f})")[0]
        if overall.get("false_abstention_rate") is not None and overall.get("abstention_recall") is not None:
            ax.plot([overall["false_abstention_rate"]], [overall["abstention_recall"]], "o", color=line.get_color())
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false-abstention rate (answerable refused)", ylabel="abstention recall (unanswerable refused)",
           title="Abstention ROC (dot = actual run)", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


# ====================================================================== compare


def _bucket(rank: float | None) -> str:
    if rank is None:
        return ">10"
    return "1" if rank <= 1 else "2-5" if rank <= 5 else "6-10" if rank <= 10 else ">10"


def question_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What changed for one question between two runs, in words (empty when nothing did)."""
    changes: list[str] = []
    o_rank, n_rank = old["scores"].get("first_gold_rank"), new["scores"].get("first_gold_rank")
    if old["gold_titles"] and _bucket(o_rank) != _bucket(n_rank):
        changes.append(f"gold rank {fmt(o_rank, 0) if o_rank else '>10'} -> {fmt(n_rank, 0) if n_rank else '>10'}")
    o_found = len(gold_ranks(old["gold_titles"], old["retrieved_titles"]))
    n_found = len(gold_ranks(new["gold_titles"], new["retrieved_titles"]))
    if len(old["gold_titles"]) > 1 and o_found != n_found:
        changes.append(f"gold in top 10 {o_found}/{len(old['gold_titles'])} -> {n_found}/{len(new['gold_titles'])}")
    o_ab, n_ab = old["scores"].get("abstained"), new["scores"].get("abstained")
    if o_ab is not None and n_ab is not None and o_ab != n_ab:
        changes.append("abstained" if n_ab else "no longer abstains")
    if set(old.get("cited_ids") or []) != set(new.get("cited_ids") or []):
        gone = len(set(old["cited_ids"] or []) - set(new["cited_ids"] or []))
        added = len(set(new["cited_ids"] or []) - set(old["cited_ids"] or []))
        changes.append(f"citations -{gone} +{added}")
    return changes


def read_run(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    rows = [json.loads(line) for line in (folder / "results.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    return metrics, rows


COMPARE_KEYS = ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10", "all@10", "cite_precision_gold",
                "cite_recall", "fact_recall", "abstention_accuracy", "false_abstention_rate", "groundedness",
                "latency_p50_ms", "latency_p95_ms")


def _delta(old: float | None, new: float | None, key: str) -> str:
    """"0.853 (+0.031)": the new value and its change, compact enough for six columns."""
    if old is None or new is None:
        return "n/a"
    if key.startswith("latency"):
        return f"{new:.0f} ({new - old:+.0f})"
    return f"{new:.3f} ({new - old:+.3f})"


def compare_runs(old_dir: Path, new_dir: Path, max_lines: int = 25) -> str:
    """Metric deltas per shared configuration and the questions whose outcome changed,
    kept to about one screen; heldout questions are counted, never named."""
    old_m, old_rows = read_run(old_dir)
    new_m, new_rows = read_run(new_dir)
    configs = [c for c in new_m["metrics"] if c in old_m["metrics"]]
    lines = [f"compare {old_dir} -> {new_dir}"]
    for label, key in (("commit", "git_commit"), ("questions", "questions_sha256"), ("mode", "mode")):
        a, b = old_m["settings"].get(key), new_m["settings"].get(key)
        if a != b:
            lines.append(f"  {label} differs: {a} -> {b}")
    if not configs:
        return "\n".join(lines + ["no configuration in common"])
    lines.append(f"{'new value (change)':22}" + "".join(f"{c:>16}" for c in configs))
    for key in COMPARE_KEYS:
        cells = [_delta(old_m["metrics"][c]["overall"].get(key), new_m["metrics"][c]["overall"].get(key), key)
                 for c in configs]
        if any(c != "n/a" for c in cells):
            lines.append(f"{key:22}" + "".join(f"{c:>16}" for c in cells))
    old_by = {(r["config"], r["id"]): r for r in old_rows}
    changed, hidden = [], 0
    for r in new_rows:
        prev = old_by.get((r["config"], r["id"]))
        if prev is None or r["config"] not in configs:
            continue
        if diffs := question_changes(prev, r):
            if r.get("heldout"):
                hidden += 1
            else:
                changed.append(f"  [{r['config']}] {r['id']} ({r['type']}): " + "; ".join(diffs))
    lines.append(f"changed questions: {len(changed) + hidden}" + (f" ({hidden} heldout, not listed)" if hidden else ""))
    lines += changed[:max_lines]
    if len(changed) > max_lines:
        lines.append(f"  ... and {len(changed) - max_lines} more (see results.jsonl)")
    return "\n".join(lines)


# ====================================================================== command


def eval_command(
    questions: Optional[Path] = typer.Option(None, "--questions", help="JSONL question set (evals/questions/*.jsonl)."),
    mode: Optional[str] = typer.Option(None, help="offline or llm (default: llm when an endpoint is configured)."),
    retriever: str = typer.Option("hybrid", help="Comma list of hybrid, dense, bm25, naive (answer baseline), "
                                  "li-vector, li-bm25, li-fusion."),
    out: Optional[Path] = typer.Option(None, "--out", help="Report folder (default evals/reports/<set>-<time>)."),
    split: Optional[str] = typer.Option(None, help="tune or heldout: one part of a set with a split field."),
    compare: Optional[tuple[Path, Path]] = typer.Option(None, help="OLD_DIR NEW_DIR: what changed between two runs."),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the PNG plots."),
) -> None:
    """Score a question set (retrieval, citations, facts, abstention, latency) or compare two runs."""
    from rich.console import Console

    from evals.conversations import LLM_CONFIGS, OFFLINE_CONFIGS, conversation_eval, is_conversation_set

    err = Console(stderr=True, highlight=False)
    if compare:
        old_dir, new_dir = compare
        for d in (old_dir, new_dir):
            if not (d / "metrics.json").exists() or not (d / "results.jsonl").exists():
                err.print(f"[red]Error:[/red] {d} has no metrics.json/results.jsonl from `assistant eval`")
                raise typer.Exit(2)
        print(compare_runs(old_dir, new_dir))
        return
    if questions is None or not questions.exists():
        err.print(f"[red]Error:[/red] give --questions FILE (an existing JSONL file){'' if questions is None else f'; {questions} not found'}")
        raise typer.Exit(2)
    if mode not in (None, "offline", "llm") or split not in (None, "tune", "heldout"):
        err.print("[red]Error:[/red] --mode is offline or llm; --split is tune or heldout")
        raise typer.Exit(2)
    if is_conversation_set(questions):  # conversations: evals/conversations.py, all its configurations in one run
        settings = Settings()
        if mode == "llm" and not settings.llm_configured:
            err.print(f"[red]Error:[/red] {NO_ENDPOINT}")
            raise typer.Exit(2)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        configs = LLM_CONFIGS if mode == "llm" else OFFLINE_CONFIGS  # llm: the evidence rule and the LLM's rewrite
        print(conversation_eval(settings, questions, out or PROJECT_ROOT / "evals" / "reports" / f"{questions.stem}-{stamp}",
                                split, configs))
        return
    try:
        configs = parse_configs(retriever)
        settings = Settings()
        used_mode = mode or settings.answer_mode()
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out_dir = out or PROJECT_ROOT / "evals" / "reports" / f"{questions.stem}{'-' + split if split else ''}-{stamp}"
        run = run_eval(settings, questions, configs, used_mode, out_dir, split, plots=not no_plots)
    except ValueError as exc:
        err.print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(2) from None
    print(console_summary(run))


def console_summary(run: EvalRun) -> str:
    """A short table for the terminal; the full report is in report.md."""
    keys = (("R@1", "recall@1"), ("R@5", "recall@5"), ("R@10", "recall@10"), ("MRR", "mrr"), ("citeR", "cite_recall"),
            ("factR", "fact_recall"), ("abst acc", "abstention_accuracy"), ("p95 ms", "latency_p95_ms"))
    lines = [f"{'config':12}" + "".join(f"{h:>10}" for h, _ in keys)]
    for c, m in run.metrics.items():
        lines.append(f"{c:12}" + "".join(f"{fmt(m['overall'].get(k)):>10}" for _, k in keys))
    lines.append(f"wrote {run.out_dir}/report.md, results.jsonl, metrics.json and plots")
    return "\n".join(lines)
