"""`assistant` command line: index, ask, paper, stats, corpus. Formatting lives
here; every answer comes from `pipeline.Assistant`. The web server (`serve`, from
ui/) and the lab (`eval`, `calibrate`, `bench`, from evals/) plug their commands
in through the `assistant.commands` entry points, so this module imports neither."""

from __future__ import annotations

import json
from collections.abc import Collection
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from assistant.config import Settings
from assistant.console import err, fail, load_settings, out, progress
from assistant.corpus import Corpus, CorpusError, load_corpus

if TYPE_CHECKING:
    from assistant.models import Answer, Hit, Paper
    from assistant.pipeline import Assistant

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Research assistant over ML paper abstracts.",
                  rich_markup_mode="markdown")


def _load_corpus(settings: Settings) -> Corpus:
    try:
        return load_corpus(settings.corpus_dir)
    except CorpusError as exc:
        fail(str(exc))


@app.command()
def index(rebuild: bool = typer.Option(False, help="Drop the vector store and embed everything again."),
          quiet: bool = typer.Option(False, "--quiet", "-q")) -> None:
    """Build or update the index: embeds only new or changed papers."""
    _sync(load_settings(), rebuild, quiet)


@app.command()
def add(files: list[Path] = typer.Argument(..., help="BibTeX (.bib), RIS (.ris), CSL-JSON (.json), JSON Lines "
                                                      "(.jsonl) or listing (.txt) files."),
        quiet: bool = typer.Option(False, "--quiet", "-q")) -> None:
    """Add your own papers: check the files, copy them into the corpus folder and
    index them (only new or changed papers are embedded). Nothing is copied when a
    file is refused."""
    from assistant.corpus import add_files

    settings = load_settings()
    for path in files:
        if not path.is_file():
            fail(f"{path}: file not found", 2)
    try:
        done = add_files(files, settings.corpus_dir)
    except CorpusError as exc:
        fail(f"{exc}\nNothing was added.")
        return
    for line in done:
        out.print(escape(line))
    _sync(settings, False, quiet)


def _sync(settings: Settings, rebuild: bool, quiet: bool) -> None:
    """Runs the incremental sync and prints what it did (shared by `index` and `add`)."""
    from assistant.index import IndexProblem, sync

    try:
        report = sync(settings, progress=None if quiet else progress, rebuild=rebuild,
                      on_wait=lambda m: err.print(f"[yellow]{escape(m)}[/yellow]"))
    except (IndexProblem, CorpusError) as exc:
        fail(str(exc))
        return
    for message in report.errors:
        err.print(f"[yellow]Skipped file:[/yellow] {escape(message)}")
    for message in report.warnings:
        err.print(f"[yellow]Warning:[/yellow] {escape(message)}")
    if report.no_abstract:
        err.print(f"[yellow]{len(report.no_abstract)} entries without an abstract skipped:[/yellow] "
                  + escape("; ".join(report.no_abstract)))
    if report.kept_from_bad_files:
        err.print(f"[yellow]Kept {len(report.kept_from_bad_files)} indexed papers whose source files failed to parse.[/yellow]")
    if report.rebuilt_reason:
        err.print(f"[yellow]Rebuilt the vector store:[/yellow] {escape(report.rebuilt_reason)}")
    out.print(
        f"Index up to date: {report.papers} papers "
        f"(+{len(report.added)} new, {len(report.updated)} changed, -{len(report.deleted)} removed, "
        f"{len(report.repaired)} repaired); embedded {report.units_embedded} units in {report.seconds:.1f} s."
    )
    _index_map(settings)


def _index_map(settings: Settings) -> None:
    """Computes the corpus map with the index (cached; only when papers changed), so the
    first page load does not pay for it. A failure here never fails the index."""
    import time

    from assistant.topics import load_map

    t0 = time.perf_counter()
    try:
        corpus_map = load_map(settings)
    except Exception as exc:  # the map is recomputed on first use; say why it is not ready
        err.print(f"[yellow]Corpus map not computed:[/yellow] {escape(f'{type(exc).__name__}: {exc}')}")
        return
    out.print(f"Corpus map: {len(corpus_map.topics)} topics over {len(corpus_map.points)} papers "
              f"({time.perf_counter() - t0:.1f} s).")


def _assistant(settings: Settings) -> Assistant:
    from assistant.pipeline import Assistant

    return Assistant(settings)


LIST_PAGE = 10  # lines of a list answer printed unless --all


def _print_answer(answer: Answer, streamed: bool, noted: Collection[str] = (), show_all: bool = False,
                  out: Console = out) -> None:
    """`noted`: notices already printed as they came, not repeated after the answer;
    `out`: stderr when stdout is kept for BibTeX (`ask --bibtex`).
    A list answer (one line per paper) prints its first LIST_PAGE papers and says how
    many more there are, unless `show_all`."""
    lines = answer.answer.split("\n")
    listed = answer.shape == "list" and all(line.startswith("- ") for line in lines)  # the offline list
    page = LIST_PAGE if listed and not show_all else len(lines) + len(answer.citations)
    if not streamed:
        out.print(escape("\n".join(lines[:page])))
        if len(lines) > page:
            out.print(f"[dim]… and {len(lines) - page} more (--all shows every paper)[/dim]")
    for notice in answer.notices:
        if notice.message not in noted:
            err.print(f"[yellow]Note:[/yellow] {escape(notice.message)}")
    if answer.citations:
        out.print("\n[bold]Sources[/bold]")
        for c in answer.citations[:page]:
            meta = ", ".join(x for x in (c.date, c.url) if x)
            out.print(f"[{c.n}] {escape(c.title)}" + (f" ({escape(meta)})" if meta else "") + f"  id: {c.paper_id}")
            if not listed:  # a list answer's line quotes it already
                out.print(f"    “{escape(c.quote)}”", style="dim")
        if len(answer.citations) > page:
            out.print(f"[dim]… and {len(answer.citations) - page} more sources[/dim]")
    if also := answer.see_also():
        out.print("\n[bold]See also[/bold] [dim](related papers, not cited)[/dim]")
        for h in also:
            out.print(f"  - {escape(h.title)}  [dim]({h.paper_id})[/dim]")
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
    show_all: bool = typer.Option(False, "--all", help="Print every paper of a list answer, not the first ten."),
    bibtex: bool = typer.Option(False, "--bibtex", help="Print BibTeX for the cited papers on stdout "
                                "(the answer goes to stderr): `assistant ask ... --bibtex >> refs.bib`."),
) -> None:
    """Answer a question from the corpus, with verified citations."""
    from assistant.index import IndexProblem
    from assistant.pipeline import QuestionError

    if mode not in (None, "offline", "llm") or retriever not in (None, "hybrid", "dense", "bm25"):
        fail("--mode is offline or llm; --retriever is hybrid, dense or bm25", 2)
    from assistant.retrieve import Filters

    try:
        filters = Filters.parse(date_from, date_to, source_file)
    except ValueError as exc:
        fail(str(exc), 2)
    settings = load_settings()
    assistant = _assistant(settings)
    options: dict[str, Any] = dict(mode=mode, retriever=retriever, top_k=top_k, filters=filters)
    try:
        drafting = assistant.resolve_mode(mode) == "llm"  # refuses LLM mode with no endpoint, before any work
        if questions is not None:
            _ask_file(assistant, questions, options)
            return
        if question is None:
            fail("give a QUESTION or --questions FILE", 2)
        if bibtex:
            _ask_bibtex(assistant, question, options, as_json)
            return
        if as_json:
            out.print_json(assistant.ask(question, **options).contract().model_dump_json())
            return
        _ask_streamed(assistant, question, options, drafting, show_all)
    except QuestionError as exc:
        fail(str(exc), 2)
    except IndexProblem as exc:
        fail(str(exc))


def _ask_streamed(assistant: Assistant, question: str, options: dict[str, Any], drafting: bool, show_all: bool) -> None:
    """The answer as the terminal shows it: an LLM draft as it is written, then the
    verified answer under a rule; notices as they come."""
    from assistant.pipeline import AnswerReader

    streamed = False
    reader = AnswerReader()
    for event in map(reader.read, assistant.stream(question, **options)):
        if event.kind == "token" and drafting:  # an LLM draft shows as it is written
            out.print(escape(event.text), end="")
            streamed = True
        elif event.kind == "reset" and streamed:
            out.print("\n[dim]── verified answer ──[/dim]")
            streamed = False
        elif event.kind == "notice":
            err.print(f"\n[yellow]Note:[/yellow] {escape(event.text)}")
    if reader.answer is not None:
        _print_answer(reader.answer, streamed, {n.message for n in reader.notices}, show_all)


def _ask_bibtex(assistant: Assistant, question: str, options: dict[str, Any], as_json: bool) -> None:
    """The answer on stderr, BibTeX for what it cites on stdout."""
    from assistant.cite import to_bibtex

    if as_json:
        fail("--bibtex and --json each print on stdout; choose one", 2)
    answer = assistant.ask(question, **options)
    _print_answer(answer, False, show_all=True, out=err)
    papers = [assistant.paper(pid) for pid in dict.fromkeys(c.paper_id for c in answer.citations)]
    if not papers:
        err.print("[yellow]The answer cites no paper, so there is no BibTeX to print.[/yellow]")
        return
    print(to_bibtex(papers), end="")


def _ask_file(assistant: Assistant, path: Path, options: dict[str, Any]) -> None:
    """One JSON answer per input line; models load once. Bad lines get an error object."""
    from assistant.pipeline import QuestionError

    if not path.exists():
        fail(f"{path}: file not found", 2)
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
            print(assistant.ask(q, qid=qid, **options).contract().model_dump_json(), flush=True)
        except QuestionError as exc:
            print(json.dumps({"id": qid, "question": q, "error": str(exc)}, ensure_ascii=False), flush=True)


@app.command()
def paper(query: str = typer.Argument(..., help="Paper id, title (typos fine), name/acronym or description."),
          as_json: bool = typer.Option(False, "--json"),
          bibtex: bool = typer.Option(False, "--bibtex", help="Print the paper's BibTeX entry only.")) -> None:
    """Look a paper up: abstract, metadata, links and the five most related papers."""
    from assistant.index import IndexProblem
    from assistant.pipeline import QuestionError

    assistant = _assistant(load_settings())
    try:
        found = assistant.lookup(query)
        related = assistant.related(found.paper.paper_id) if found.paper else []
    except QuestionError as exc:
        fail(str(exc), 2)
        return
    except IndexProblem as exc:
        fail(str(exc))
        return
    if bibtex and found.paper is not None:
        from assistant.cite import to_bibtex

        print(to_bibtex([found.paper]), end="")
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
    _print_paper(found.paper, related)


def _print_paper(p: Paper, related: list[Hit]) -> None:
    """A paper as `assistant paper` shows it: title, authors, metadata, abstract, links, related papers."""
    out.print(f"[bold]{escape(p.title)}[/bold]")
    meta = [f"id {p.paper_id}"]
    meta += [x for x in (p.date and f"date {p.date}", p.authors_count and f"{p.authors_count} authors", p.org) if x]
    meta += [x for x in (p.venue, p.doi and f"doi {p.doi}", p.arxiv_id and f"arXiv {p.arxiv_id}") if x]
    meta.append("listed in " + ", ".join(f"{o.file}:{o.line}" for o in p.occurrences))
    if p.authors:
        out.print(escape("; ".join(p.authors)))
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
def stats(as_json: bool = typer.Option(False, "--json")) -> None:
    """Corpus and index figures."""
    from assistant.index import read_manifest

    settings = load_settings()
    corpus = _load_corpus(settings)
    manifest = read_manifest(settings.index_dir)
    data = _stats(settings, corpus, manifest)
    if as_json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return
    _print_stats(settings, data)


def _stats(settings: Settings, corpus: Corpus, manifest: dict[str, Any] | None) -> dict[str, Any]:
    """What `assistant stats` reports, as `--json` prints it."""
    return {
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
        "topics": _topics(settings) if manifest is not None else None,
        "llm": {"endpoint": settings.llm_endpoint, "model": settings.llm_model if settings.llm_configured else None,
                "default_mode": settings.answer_mode()},
    }


def _print_stats(settings: Settings, data: dict[str, Any]) -> None:
    manifest = data["index"]
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
    if settings.llm_endpoint:
        out.print(f"LLM endpoint {escape(settings.llm_endpoint)} (model {escape(settings.llm_model)}); "
                  f"default answer mode {settings.answer_mode()}")
    else:
        out.print("LLM endpoint: none configured; answers are composed offline and nothing leaves this machine")
    topics = data["topics"]
    if topics and topics.get("error"):
        out.print(f"Topics: not available ({escape(topics['error'])})")
    elif topics:
        trust = topics["trustworthiness_at_10"]
        out.print(f"Topics on the corpus map: {len(topics['topics'])} ({topics['layout']} layout"
                  + (f", trustworthiness@10 {trust:.3f}" if trust is not None else "") + f"; {topics['clustering']})")
        for t in topics["topics"]:
            out.print(f"  {t['size']:4d}  {escape(t['label'])}")


def _topics(settings: Settings) -> dict[str, Any]:
    """The corpus map's topics (computed and cached on first use, `assistant/topics.py`)."""
    from assistant.index import IndexProblem
    from assistant.topics import load_map

    try:
        corpus_map = load_map(settings)
    except (IndexProblem, OSError, ValueError) as exc:
        return {"error": str(exc)}
    m = corpus_map.method
    return {"layout": m.get("layout"), "clustering": m.get("clustering"), "naming": m.get("naming"),
            "trustworthiness_at_10": m.get("trustworthiness_at_10"),
            "topics": [{"id": t.id, "label": t.label, "size": t.size, "paper_ids": t.paper_ids}
                       for t in corpus_map.topics]}


@app.command()
def corpus(jsonl: bool = typer.Option(True, "--jsonl/--summary", help="Every parsed paper as one JSON object per line.")) -> None:
    """Export what was ingested."""
    parsed = _load_corpus(load_settings())
    for message in parsed.errors:
        err.print(f"Skipped file: {message}")
    if not jsonl:
        out.print(f"{len(parsed.papers)} papers from {len(parsed.files)} files")
        return
    for p in parsed.papers:
        row = p.model_dump()
        row["source_file"], row["source_line"] = p.source_file, p.source_line
        print(json.dumps(row, ensure_ascii=False))


def _plug_in_commands() -> None:
    """Adds the commands other packages declare (ui: serve; evals: eval, calibrate,
    bench). One whose package or extra is not installed is left out of --help."""
    for ep in entry_points(group="assistant.commands"):
        try:
            command = ep.load()
        except ImportError:
            continue
        if isinstance(command, typer.Typer):
            app.add_typer(command, name=ep.name)
        else:
            app.command(ep.name)(command)


_plug_in_commands()


def main() -> None:
    app()


# `assistant llm serve`: the packaged local model (assistant/local_llm.py; the local-llm extra).
# Imported last, after the commands above: local_llm builds its typer app lazily.
from assistant.local_llm import cli_app as _llm_cli  # noqa: E402

app.add_typer(_llm_cli(), name="llm")
