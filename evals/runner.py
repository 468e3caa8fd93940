"""Runs a question set through each configuration: our pipeline (`run_pipeline`, one
`Assistant.ask` per question, the code path `assistant ask` uses), the naive answerer
and the llama-index baselines (`run_baseline`), and records what is needed to
reproduce the run (commit, question file hash, settings). `run_eval` is the whole
run: it writes results, metrics, report and plots (evals/report.py, evals/plots.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.config import PROJECT_ROOT, Settings
from evals.metrics import (
    ANSWER_BASELINES,
    BASELINE_RETRIEVERS,
    K_MAX,
    PIPELINE_RETRIEVERS,
    EvalRun,
    Output,
    Question,
    load_questions,
    score_question,
    summarize_config,
)
from evals.report import write_outputs

if TYPE_CHECKING:
    from assistant.pipeline import Assistant

WARM_UP = "How can diffusion models be quantized to low bit widths?"


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
