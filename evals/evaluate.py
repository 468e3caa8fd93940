"""`assistant eval`: run a question set through the same pipeline as `assistant ask`
and score it; `assistant eval --compare OLD NEW` shows what changed between runs.

The lab's evaluation, by job:

- evals/metrics.py: question sets (`Question`, `load_questions`), the metrics, per-
  question scoring (`score_question`) and aggregation (`summarize`, `headline`);
- evals/runner.py: the configurations' runners and `run_eval`, the whole run;
- evals/report.py: results.jsonl, metrics.json, report.md, `compare_runs`;
- evals/plots.py: the PNG plots;
- this module: the typer command `eval_command` (entry point `assistant eval`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import typer

from assistant.config import NO_ENDPOINT, PROJECT_ROOT, Settings
from evals.report import compare_runs, console_summary
from evals.runner import parse_configs, run_eval




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
