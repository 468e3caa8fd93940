"""`assistant` command line: index, ask, paper, calibrate, stats, corpus, serve, eval, bench.
Formatting lives here; every answer comes from `pipeline.Assistant`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from assistant.config import PROJECT_ROOT, Settings
from assistant.corpus import CorpusError, load_corpus

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Research assistant over ML paper abstracts.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print figures.")
app.add_typer(bench_app, name="bench")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except Exception as exc:  # pydantic ValidationError: show the bad setting, not a trace
        err.print(f"[red]Invalid settings:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]Error:[/red] {escape(message)}")
    raise typer.Exit(code)


def _load_corpus(settings: Settings) -> Any:
    try:
        return load_corpus(settings.corpus_dir)
    except CorpusError as exc:
        _fail(str(exc))


def _progress(total: int, desc: str) -> Any:
    from tqdm import tqdm

    noun = desc.rsplit(" ", 1)[-1]  # "Embedding papers", "Embedding words"
    err.print(f"{desc}: {total} {noun} to embed")
    return tqdm(total=total, desc=desc, unit=noun.removesuffix("s"), file=sys.stderr, mininterval=1.0)


@app.command()
def index(rebuild: bool = typer.Option(False, help="Drop the vector store and embed everything again."),
          quiet: bool = typer.Option(False, "--quiet", "-q")) -> None:
    """Build or update the index: embeds only new or changed papers."""
    from assistant.index import IndexProblem, sync

    settings = _settings()
    try:
        report = sync(settings, progress=None if quiet else _progress, rebuild=rebuild,
                      on_wait=lambda m: err.print(f"[yellow]{escape(m)}[/yellow]"))
    except (IndexProblem, CorpusError) as exc:
        _fail(str(exc))
        return
    for message in report.errors:
        err.print(f"[yellow]Skipped file:[/yellow] {escape(message)}")
    for message in report.warnings:
        err.print(f"[yellow]Warning:[/yellow] {escape(message)}")
    if report.kept_from_bad_files:
        err.print(f"[yellow]Kept {len(report.kept_from_bad_files)} indexed papers whose source files failed to parse.[/yellow]")
    if report.rebuilt_reason:
        err.print(f"[yellow]Rebuilt the vector store:[/yellow] {escape(report.rebuilt_reason)}")
    out.print(
        f"Index up to date: {report.papers} papers "
        f"(+{len(report.added)} new, {len(report.updated)} changed, -{len(report.deleted)} removed, "
        f"{len(report.repaired)} repaired); embedded {report.units_embedded} units in {report.seconds:.1f} s."
    )


def _assistant(settings: Settings) -> Any:
    from assistant.pipeline import Assistant

    return Assistant(settings)


def _filters(date_from: str | None, date_to: str | None, source_file: str | None) -> Any:
    from assistant.retrieve import Filters

    return Filters(date_from=date_from, date_to=date_to, source_file=source_file)


def _print_answer(answer: Any, streamed: bool) -> None:
    if not streamed:
        out.print(escape(answer.answer))
    for notice in answer.notices:
        err.print(f"[yellow]Note:[/yellow] {escape(notice)}")
    if answer.citations:
        out.print("\n[bold]Sources[/bold]")
        for c in answer.citations:
            meta = ", ".join(x for x in (c.date, c.url) if x)
            out.print(f"[{c.n}] {escape(c.title)}" + (f" ({escape(meta)})" if meta else "") + f"  id: {c.paper_id}")
            out.print(f"    “{escape(c.quote)}”", style="dim")
    if answer.removed_citations:
        err.print(f"[yellow]{len(answer.removed_citations)} citation(s) removed by verification:[/yellow]")
        for reason in answer.removed_citations:
            err.print(f"  - {escape(reason)}")


@app.command()
def ask(
    question: Optional[str] = typer.Argument(None, help="The question; omit with --questions."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer object as JSON."),
    questions: Optional[Path] = typer.Option(None, help="JSONL file of {\"id\",\"question\"}; one JSON answer per line."),
    mode: Optional[str] = typer.Option(None, help="offline or llm (default: llm when an endpoint is configured)."),
    retriever: Optional[str] = typer.Option(None, help="hybrid, dense or bm25."),
    top_k: Optional[int] = typer.Option(None, help="Most papers to cite."),
    date_from: Optional[str] = typer.Option(None, help="Only papers published on or after YYYY-MM-DD."),
    date_to: Optional[str] = typer.Option(None, help="Only papers published on or before YYYY-MM-DD."),
    source_file: Optional[str] = typer.Option(None, help="Only papers listed in this corpus file."),
) -> None:
    """Answer a question from the corpus, with verified citations."""
    from assistant.index import IndexProblem
    from assistant.pipeline import QuestionError

    if mode not in (None, "offline", "llm") or retriever not in (None, "hybrid", "dense", "bm25"):
        _fail("--mode is offline or llm; --retriever is hybrid, dense or bm25", 2)
    settings = _settings()
    assistant = _assistant(settings)
    options = dict(mode=mode, retriever=retriever, top_k=top_k, filters=_filters(date_from, date_to, source_file))
    try:
        if questions is not None:
            _ask_file(assistant, questions, options)
            return
        if question is None:
            _fail("give a QUESTION or --questions FILE", 2)
        if as_json:
            out.print_json(json.dumps(assistant.ask(question, **options).contract(), ensure_ascii=False))
            return
        streamed = False
        answer = None
        for event in assistant.stream(question, **options):
            if event.kind == "token" and (options["mode"] or settings.answer_mode()) == "llm":
                out.print(escape(event.text), end="")
                streamed = True
            elif event.kind == "reset" and streamed:
                out.print("\n[dim]── verified answer ──[/dim]")
                streamed = False
            elif event.kind == "notice":
                err.print(f"\n[yellow]{escape(event.text)}[/yellow]")
            elif event.kind == "answer":
                answer = event.answer
        if answer is not None:
            _print_answer(answer, streamed)
    except QuestionError as exc:
        _fail(str(exc), 2)
    except IndexProblem as exc:
        _fail(str(exc))


def _ask_file(assistant: Any, path: Path, options: dict[str, Any]) -> None:
    """One JSON answer per input line; models load once. Bad lines get an error object."""
    from assistant.pipeline import QuestionError

    if not path.exists():
        _fail(f"{path}: file not found", 2)
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            qid, q = item.get("id"), item["question"]
        except (ValueError, KeyError, AttributeError, TypeError):
            print(json.dumps({"id": None, "error": f"{path}:{lineno}: expected a JSON object with 'question'"}), flush=True)
            continue
        try:
            print(json.dumps(assistant.ask(q, qid=qid, **options).contract(), ensure_ascii=False), flush=True)
        except QuestionError as exc:
            print(json.dumps({"id": qid, "question": q, "error": str(exc)}, ensure_ascii=False), flush=True)


@app.command()
def paper(query: str = typer.Argument(..., help="Paper id, title (typos fine), name/acronym or description."),
          as_json: bool = typer.Option(False, "--json")) -> None:
    """Look a paper up: abstract, metadata, links and the five most related papers."""
    from assistant.index import IndexProblem
    from assistant.pipeline import QuestionError

    assistant = _assistant(_settings())
    try:
        found = assistant.lookup(query)
        related = assistant.related(found.paper.paper_id) if found.paper else []
    except QuestionError as exc:
        _fail(str(exc), 2)
        return
    except IndexProblem as exc:
        _fail(str(exc))
        return
    if as_json:
        data: dict[str, Any] = {"status": found.status, "query": found.query, "message": found.message,
                                "paper": found.paper.model_dump() if found.paper else None,
                                "related": [h.model_dump(include={"paper_id", "title", "score"}) for h in related],
                                "candidates": [h.model_dump(include={"paper_id", "title", "score"}) for h in found.candidates]}
        print(json.dumps(data, ensure_ascii=False, indent=2))
        raise typer.Exit(0 if found.status == "found" else 1)
    if found.paper is None:
        out.print(escape(found.message))
        for h in found.candidates:
            out.print(f"  - {escape(h.title)}  [dim]({h.paper_id})[/dim]")
        raise typer.Exit(1)
    p = found.paper
    out.print(f"[bold]{escape(p.title)}[/bold]")
    meta = [f"id {p.paper_id}"]
    meta += [x for x in (p.date and f"date {p.date}", p.authors_count and f"{p.authors_count} authors", p.org) if x]
    meta.append("listed in " + ", ".join(f"{o.file}:{o.line}" for o in p.occurrences))
    out.print("[dim]" + escape(" · ".join(meta)) + "[/dim]\n")
    out.print(escape(p.abstract))
    if p.urls:
        out.print("\n[bold]Links[/bold]")
        for u in p.urls:
            out.print(f"  {escape(u)}")
    out.print("\n[bold]Related papers[/bold]")
    for h in related:
        out.print(f"  - {escape(h.title)}  [dim]({h.paper_id}, similarity {h.score:.2f})[/dim]")


@app.command()
def calibrate(
    questions: list[Path] = typer.Option(
        [PROJECT_ROOT / "evals/questions/core.jsonl", PROJECT_ROOT / "evals/questions/hard.jsonl"], "--questions",
        help="Question sets to fit on (repeatable); their heldout questions are always left out."),
    max_false: float = typer.Option(0.05, min=0.0, max=0.5, help="False-abstention rate the threshold allows."),
    out_path: Optional[Path] = typer.Option(None, "--out", help="Where the model goes (default: ASSISTANT_ABSTAIN_MODEL)."),
) -> None:
    """Fit the abstention model on question sets and store it (evals/README.md, calibration)."""
    from assistant.abstain import calibration_rows, fit
    from assistant.evaluate import display_path, file_sha256, load_questions
    from assistant.index import IndexProblem

    settings = _settings()
    target = out_path or settings.abstain_model
    try:
        assistant, rows, groups = _assistant(settings), [], []
        for path in questions:  # each set keeps its own false-abstention budget
            found = calibration_rows(assistant, load_questions(path))
            rows += found
            groups += [display_path(path)] * len(found)
        meta = {"question_sets": {display_path(p): file_sha256(p) for p in questions}}
        model = fit(rows, max_false=max_false, meta=meta, groups=groups)
    except (OSError, ValueError, IndexProblem) as exc:
        _fail(str(exc))
    model.save(target)
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


@app.command()
def stats(as_json: bool = typer.Option(False, "--json")) -> None:
    """Corpus and index figures."""
    from assistant.index import read_manifest

    settings = _settings()
    corpus = _load_corpus(settings)
    manifest = read_manifest(settings.index_dir)
    data = {
        "corpus_dir": str(settings.corpus_dir),
        "files": {f.path.name: {"layout": f.layout, "entries": len(f.entries)} for f in corpus.files},
        "skipped_files": corpus.errors,
        "entries": corpus.entry_count,
        "unique_papers": len(corpus.papers),
        "duplicates": corpus.entry_count - len(corpus.papers),
        "with_date": sum(p.date is not None for p in corpus.papers),
        "with_authors_count": sum(p.authors_count is not None for p in corpus.papers),
        "with_urls": sum(bool(p.urls) for p in corpus.papers),
        "corpus_fingerprint": corpus.fingerprint(),
        "index": manifest,
        "index_up_to_date": bool(manifest and manifest.get("corpus_fingerprint") == corpus.fingerprint()),
    }
    if as_json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return
    out.print(f"Corpus {data['corpus_dir']}: {data['entries']} entries, {data['unique_papers']} unique papers "
              f"({data['duplicates']} duplicates)")
    for name, f in data["files"].items():
        out.print(f"  {name}: layout {f['layout']}, {f['entries']} entries")
    out.print(f"  with date {data['with_date']}, with author count {data['with_authors_count']}, with links {data['with_urls']}")
    if manifest is None:
        out.print(f"Index {settings.index_dir}: not built (run `assistant index`)")
    else:
        state = "up to date" if data["index_up_to_date"] else "OUT OF DATE (run `assistant index`)"
        out.print(f"Index {manifest['store']}: {manifest['papers']} papers, {manifest['sentences']} sentences, "
                  f"model {manifest['embed_model']}, {state}")


@app.command()
def corpus(jsonl: bool = typer.Option(True, "--jsonl/--summary", help="Every parsed paper as one JSON object per line.")) -> None:
    """Export what was ingested."""
    parsed = _load_corpus(_settings())
    for message in parsed.errors:
        err.print(f"Skipped file: {message}")
    if not jsonl:
        out.print(f"{len(parsed.papers)} papers from {len(parsed.files)} files")
        return
    for p in parsed.papers:
        row = p.model_dump()
        row["source_file"], row["source_line"] = p.source_file, p.source_line
        print(json.dumps(row, ensure_ascii=False))


@bench_app.command("index")
def bench_index() -> None:
    """Cold build, no-op re-index and one-paper change vs llama-index's default build."""
    from assistant.bench import bench_index as run

    run()


@bench_app.command("query")
def bench_query(repeats: int = typer.Option(5, help="Passes over the question list.")) -> None:
    """Retrieval and offline answer latency beside a plain Chroma query; cold start."""
    from assistant.bench import bench_query as run

    run(repeats)


@bench_app.command("load")
def bench_load(clients: int = typer.Option(8, help="Concurrent clients POSTing /api/ask."),
               seconds: float = typer.Option(60.0, help="Duration of the load."),
               max_requests: Optional[int] = typer.Option(None, help="Stop after this many answers."),
               as_json: bool = typer.Option(False, "--json", help="One JSON object instead of text.")) -> None:
    """Concurrent clients against a fresh `assistant serve` (loopback, offline) while the UI is probed."""
    from assistant.loadtest import bench_load as run

    try:
        report = run(clients, seconds, max_requests, as_json)
    except (ValueError, RuntimeError) as exc:
        _fail(str(exc))
        return
    if report.errors or report.probe_errors:
        raise typer.Exit(1)


@bench_app.command("scale")
def bench_scale(sizes: str = typer.Option("1000,10000,100000", help="Corpus sizes (papers), comma-separated."),
                store: str = typer.Option("embedded,server", help="embedded and/or server (a `chroma run` per run)."),
                out_dir: Path = typer.Option(Path("docs/scale"), "--out", help="Where results.json and scale.png go."),
                real_embed_sizes: str = typer.Option("1000", help="Sizes embedded fully by the model ('all' = no vector reuse)."),
                repeats: int = typer.Option(5, help="Passes over the question list per retriever."),
                timeout: float = typer.Option(1500.0, help="Seconds after which one index or query phase is stopped."),
                append: bool = typer.Option(False, help="Merge into an existing results.json.")) -> None:
    """Index throughput, disk, peak RSS and query p50/p95 against corpus size (generated corpora)."""
    from assistant.bench_scale import command

    command(sizes, store, out_dir, real_embed_sizes, repeats, timeout, append)


def main() -> None:
    app()
from assistant.evaluate import eval_command as _eval  # noqa: E402
app.command("eval")(_eval)
from assistant.serve import serve as _serve  # noqa: E402
app.command("serve")(_serve)
