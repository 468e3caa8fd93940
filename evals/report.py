"""What a run leaves on disk (results.jsonl, metrics.json, report.md and the plots),
the report's tables, the misses listed one by one (never heldout ones), the short
terminal summary, and `compare_runs`: what changed between two runs, in one screen.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.metrics import EvalRun, gold_ranks
from evals.plots import write_plots


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


def console_summary(run: EvalRun) -> str:
    """A short table for the terminal; the full report is in report.md."""
    keys = (("R@1", "recall@1"), ("R@5", "recall@5"), ("R@10", "recall@10"), ("MRR", "mrr"), ("citeR", "cite_recall"),
            ("factR", "fact_recall"), ("abst acc", "abstention_accuracy"), ("p95 ms", "latency_p95_ms"))
    lines = [f"{'config':12}" + "".join(f"{h:>10}" for h, _ in keys)]
    for c, m in run.metrics.items():
        lines.append(f"{c:12}" + "".join(f"{fmt(m['overall'].get(k)):>10}" for _, k in keys))
    lines.append(f"wrote {run.out_dir}/report.md, results.jsonl, metrics.json and plots")
    return "\n".join(lines)
