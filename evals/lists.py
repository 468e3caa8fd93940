"""List questions ("Which papers ...?", "How can X be done?", comparisons): does the
answer cite every paper that answers, and only those?

    python -m evals.lists --questions evals/questions/lists.jsonl --out evals/reports/lists

Three answer rules over the same retrieval, in one run:

- `naive`: every retrieved paper a list answer reads (`list_top_k`) whose best
  sentence reaches the similarity floor (`assistant.focus.FLOOR`), never refusing;
- `today`: the rule before list questions were told apart (issue 29): the answer
  read the top `top_k` papers, cited one for a "How can ...?" or "What work ...?"
  question, and for "Which papers ...?" and comparisons every paper near the best
  one (`focus.near_the_best`) plus each comparison part's best match, at most four;
- `ours`: what `assistant ask` answers (offline, hybrid), read from its citations.

Per question: citation recall (share of gold papers cited), complete (every gold
paper cited), precision (share of cited papers that are gold; none when nothing is
cited). A comparison is complete when both sides are cited. Figures are given for
the list questions (type multi) and the comparisons, by split and by form
(`which`, `how`, `paraphrase`, `compare`; questions of other sets count as `which`
or `compare`). Heldout questions are never listed one by one (evals/README.md).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.config import PROJECT_ROOT, Settings
from assistant.corpus import normalize_title
from evals.metrics import Question, load_questions
from evals.report import table
from evals.runner import display_path, file_sha256, git_commit
from evals.stats import percentile

RULES = ("naive", "today", "ours")
FORMS = ("which", "how", "paraphrase", "compare")


@dataclass(frozen=True)
class ListQuestion:
    question: Question
    form: str

    @property
    def is_list(self) -> bool:
        return self.question.type == "multi"


def load_list_questions(path: Path, split: str | None = None) -> list[ListQuestion]:
    """The multi and compare questions of a set, with how each asks (`form`)."""
    forms = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            forms[row["id"]] = row.get("form")
    return [ListQuestion(q, forms[q.id] or ("compare" if q.type == "compare" else "which"))
            for q in load_questions(path, split) if q.type in ("multi", "compare")]


# ====================================================================== metrics


def list_scores(cited_titles: Sequence[str], gold: frozenset[str]) -> dict[str, float | None]:
    """Recall, completeness and precision of one answer's cited papers against its gold list."""
    cited = {normalize_title(t) for t in cited_titles}
    hit = len(cited & gold)
    return {"recall": hit / len(gold), "complete": float(hit == len(gold)),
            "precision": hit / len(cited) if cited else None, "cited": float(len(cited))}


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def aggregate(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means over a group of one rule's rows (precision over the answers that cite)."""
    return {"n": len(rows), **{k: _mean([r["scores"][k] for r in rows])
                               for k in ("recall", "complete", "precision", "cited")}}


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per rule: list questions and comparisons, each overall and by split; lists by form."""
    out: dict[str, Any] = {}
    for rule in RULES:
        mine = [r for r in rows if r["rule"] == rule]
        groups: dict[str, Any] = {}
        for kind, pick in (("list", lambda r: r["type"] == "multi"), ("compare", lambda r: r["type"] == "compare")):
            for split in ("all", "tune", "heldout"):
                chosen = [r for r in mine if pick(r) and split in ("all", r["split"])]
                if chosen:
                    groups[f"{kind}/{split}"] = aggregate(chosen)
        for form in FORMS[:3]:
            for split in ("all", "tune", "heldout"):
                chosen = [r for r in mine if r["type"] == "multi" and r["form"] == form and split in ("all", r["split"])]
                if chosen:
                    groups[f"{form}/{split}"] = aggregate(chosen)
        latencies = [r["latency_ms"] for r in mine if r.get("latency_ms") is not None]
        groups["latency_p50_ms"] = percentile(latencies, 0.5) if latencies else None
        out[rule] = groups
    return out


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The figures the floors guard (evals/floors.py): ours, every question of the set."""
    ours = metrics["ours"]
    lists, compare, para = ours.get("list/all", {}), ours.get("compare/all", {}), ours.get("paraphrase/all", {})
    return {"list_recall": lists.get("recall"), "list_complete": lists.get("complete"),
            "list_precision": lists.get("precision"), "compare_both_sides": compare.get("complete"),
            "paraphrase_recall": para.get("recall"), "list_n": lists.get("n", 0), "compare_n": compare.get("n", 0),
            "paraphrase_n": para.get("n", 0), "invalid_citations": 0}


# ====================================================================== the three rules


def todays_rule(question: str, evidence: Any) -> list[int]:
    """Source numbers the answer cited before issue 29 (module docstring)."""
    from assistant import focus as f

    best = {s.n: s.best for s in evidence.sources if s.similarities}
    named = sorted(evidence.named)
    order = [n for n in sorted(best) if best[n] >= f.FLOOR or n in named]
    if not order:
        return []
    support = {s.n: s.support.weighted for s in evidence.sources if s.support is not None}
    if not (f.PLURAL.search(question) or f.COMPARE.search(question) or len(named) > 1):
        papers = [named[0] if named else order[0]]
    elif len(named) > 1:
        papers = named
    else:
        papers = f.near_the_best(order, best, {s.n: s.score for s in evidence.sources}, named, support)
    papers = papers[:f.SEVERAL_MAX_PAPERS]
    parts = {s.n: s.part_similarities for s in evidence.sources if s.part_similarities}
    if extra := f.sides(question, parts) - set(papers):
        papers = sorted(set(papers) | extra)[:f.SEVERAL_MAX_PAPERS]
    return papers


def naive_rule(evidence: Any) -> list[int]:
    from assistant.focus import FLOOR

    return [s.n for s in evidence.sources if s.best >= FLOOR]


def run_question(assistant: Any, lq: ListQuestion) -> list[dict[str, Any]]:
    """One question through the pipeline (ours) and the two baselines on its retrieval."""
    q, s = lq.question, assistant.settings
    answer = assistant.ask(q.question, mode="offline", retriever="hybrid", qid=q.id)
    from assistant.evidence import gather

    index = assistant.index
    ranking = index.search(q.question, k=max(s.retrieve_k, 10, s.list_top_k), retriever="hybrid")
    wide, narrow = (gather(index, ranking, q.question, k) for k in (s.list_top_k, s.top_k))
    titles = {src.n: src.paper.title for src in wide.sources}
    cited = {
        "naive": [titles[n] for n in naive_rule(wide)],
        "today": [] if answer.abstained else [titles[n] for n in todays_rule(q.question, narrow)],
        "ours": [c.title for c in answer.citations],
    }
    base = {"id": q.id, "question": q.question, "type": q.type, "form": lq.form, "split": q.split or "tune",
            "heldout": q.is_heldout, "gold_titles": list(q.gold_titles), "abstained": answer.abstained}
    return [base | {"rule": rule, "cited_titles": titles_, "scores": list_scores(titles_, q.gold),
                    "latency_ms": answer.timings_ms.get("total") if rule == "ours" else None,
                    "shape": answer.shape if rule == "ours" else None}
            for rule, titles_ in cited.items()]


def run_lists(settings: Settings, questions_path: Path, split: str | None = None) -> tuple[list[dict], dict]:
    from assistant.pipeline import Assistant

    assistant = Assistant(settings)
    assistant.ask("Which papers use Gaussian splatting?", mode="offline")  # model loading is not latency
    rows = [row for lq in load_list_questions(questions_path, split) for row in run_question(assistant, lq)]
    return rows, summarize(rows)


# ====================================================================== report


def render(rows: Sequence[dict[str, Any]], metrics: dict[str, Any], record: dict[str, Any]) -> str:
    groups = [g for g in metrics["ours"] if "/" in g]
    lines = [f"# List questions: {record['questions']}", "",
             f"Run {record['date']} at {record['git_commit']}; questions sha256 {record['questions_sha256']}; "
             f"offline, hybrid retrieval; `list_top_k` {record['list_top_k']}, `top_k` {record['top_k']}.", "",
             "Rules (evals/lists.py): `naive` every retrieved paper above the similarity floor; `today` the rule "
             "before issue 29; `ours` the answer `assistant ask` gives. Recall: share of gold papers cited; complete: "
             "every gold paper cited (for a comparison, both sides); precision: share of cited papers that are gold.",
             ""]
    header = ["group", "n"] + [f"{rule} {k}" for rule in RULES for k in ("recall", "complete", "precision")]
    body = []
    for g in groups:
        cells: list[Any] = [g, metrics["ours"][g]["n"]]
        for rule in RULES:
            m = metrics[rule].get(g, {})
            cells += [m.get("recall"), m.get("complete"), m.get("precision")]
        body.append(cells)
    lines += [table(header, body), "", f"Answer latency p50 (ours, wall time on a shared machine): "
              f"{metrics['ours']['latency_p50_ms']:.0f} ms (use `assistant bench query` for speed).", ""]
    lines += ["## Tune questions not answered completely (ours)", ""]
    for r in rows:
        if r["rule"] == "ours" and not r["heldout"] and r["scores"]["complete"] < 1:
            gold = {normalize_title(t) for t in r["gold_titles"]}
            missed = [t for t in r["gold_titles"] if normalize_title(t) not in {normalize_title(c) for c in r["cited_titles"]}]
            extra = [t for t in r["cited_titles"] if normalize_title(t) not in gold]
            lines.append(f"- {r['id']} {r['question']}: missed {missed}; not gold {extra}")
    return "\n".join(lines) + "\n"


def write(out_dir: Path, rows: list[dict], metrics: dict, record: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "results.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    (out_dir / "metrics.json").write_text(json.dumps({"settings": record, "metrics": metrics}, indent=2), encoding="utf-8")
    (out_dir / "report.md").write_text(render(rows, metrics, record), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> None:
    import datetime as dt

    parser = argparse.ArgumentParser(prog="python -m evals.lists", description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, default=PROJECT_ROOT / "evals" / "questions" / "lists.jsonl")
    parser.add_argument("--split", choices=("tune", "heldout"))
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "evals" / "reports" / "lists")
    args = parser.parse_args(argv)
    settings = Settings(mode="offline", llm_base_url=None, llm_api_key=None)
    rows, metrics = run_lists(settings, args.questions, args.split)
    record = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "git_commit": git_commit(),
              "questions": display_path(args.questions), "questions_sha256": file_sha256(args.questions), "split": args.split,
              "top_k": settings.top_k, "list_top_k": settings.list_top_k}
    write(args.out, rows, metrics, record)
    print(json.dumps(headline(metrics)))


if __name__ == "__main__":
    main()
