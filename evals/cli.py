"""`assistant bench ...`, plugged into `assistant` through the `assistant.commands`
entry points (pyproject.toml) like the lab's `eval` (evals/evaluate.py) and
`calibrate` (evals/calibrate.py). Imports stay inside the commands so that loading
the group costs `assistant ask` nothing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import typer

from assistant.console import fail

bench = typer.Typer(no_args_is_help=True, help="Benchmarks that print figures.")


@bench.command("index")
def bench_index() -> None:
    """Cold build, no-op re-index and one-paper change vs llama-index's default build."""
    from evals.bench.speed import bench_index as run

    run()


@bench.command("query")
def bench_query(repeats: int = typer.Option(5, help="Passes over the question list.")) -> None:
    """Retrieval and offline answer latency beside a plain Chroma query; cold start."""
    from evals.bench.speed import bench_query as run

    run(repeats)


@bench.command("conversations")
def bench_conversations(questions: Path = typer.Option(Path("evals/questions/conversations.jsonl"),
                                                       help="Conversation set (evals/README.md).")) -> None:
    """Offline answer latency with history against the same questions alone, interleaved."""
    from assistant.config import Settings
    from evals.conversations import latency

    print(latency(Settings(), questions))


@bench.command("load")
def bench_load(clients: int = typer.Option(8, help="Concurrent clients POSTing /api/ask."),
               seconds: float = typer.Option(60.0, help="Duration of the load (of each endpoint's phase)."),
               max_requests: Optional[int] = typer.Option(None, help="Stop after this many answers."),
               as_json: bool = typer.Option(False, "--json", help="One JSON object instead of text."),
               endpoint: str = typer.Option("ask", help="What the clients call, comma-separated phases on one "
                                            "server: ask (/api/ask), chat (/v1/chat/completions), chat-stream "
                                            "(the same, streamed); e.g. ask,chat prints the p95 ratio.")) -> None:
    """Concurrent clients against a fresh `assistant serve` (loopback, offline) while the UI is probed."""
    from evals.bench.load import bench_load as run

    try:
        reports = run(clients, seconds, max_requests, as_json, endpoint)
    except (ValueError, RuntimeError) as exc:
        fail(str(exc))
    if any(r.errors or r.probe_errors for r in reports):
        raise typer.Exit(1)


@bench.command("library")
def bench_library(entries: int = typer.Option(1000, help="New papers in the generated BibTeX library."),
                  repeats: int = typer.Option(3, help="Runs of each timed step (median).")) -> None:
    """Importing a generated BibTeX library: parse + merge seconds, embedding rate, no-op re-add."""
    from evals.bench.library import bench_library as run

    run(entries, repeats)


@bench.command("soak")
def bench_soak(clients: int = typer.Option(8, help="Concurrent clients POSTing /api/ask."),
               minutes: float = typer.Option(10.0, help="Duration of the load."),
               interval: float = typer.Option(15.0, help="Seconds between samples of the server."),
               warmup: float = typer.Option(120.0, help="Seconds of load before the verdict's figures start."),
               history_share: float = typer.Option(0.3, help="Share of questions sent as follow-ups with history."),
               endpoint: str = typer.Option("ask", help="ask (/api/ask), chat or chat-stream (/v1/chat/completions)."),
               out_dir: Path = typer.Option(Path("evals/reports/soak"), "--out", help="Where NAME.json and NAME.png go."),
               name: str = typer.Option("soak", help="File name of the JSON and the plot."),
               server_env: list[str] = typer.Option([], help="KEY=VALUE set for the server only (repeatable), e.g. "
                                                  "ASSISTANT_MALLOC_TRIM_INTERVAL=0 for a baseline.")) -> None:
    """Long load against a fresh `assistant serve`: RSS, open files, threads, p50/p95 over time; verdict and plot."""
    from evals.bench.soak import bench_soak as run

    if bad := [item for item in server_env if not re.fullmatch(r"ASSISTANT_[A-Z0-9_]+=.*", item)]:
        fail(f"--server-env takes ASSISTANT_SETTING=value, not {bad[0]!r}", 2)
    try:
        figures = run(clients, minutes, interval, warmup, history_share, endpoint, out_dir, name,
                      dict(item.split("=", 1) for item in server_env))
    except (ValueError, RuntimeError) as exc:
        fail(str(exc))
    if figures["errors"]:
        raise typer.Exit(1)


@bench.command("scale")
def bench_scale(sizes: str = typer.Option("1000,10000,100000", help="Corpus sizes (papers), comma-separated."),
                store: str = typer.Option("embedded,server", help="embedded and/or server (a `chroma run` per run)."),
                out_dir: Path = typer.Option(Path("docs/scale"), "--out", help="Where results.json and scale.png go."),
                real_embed_sizes: str = typer.Option("1000", help="Sizes embedded fully by the model ('all' = no vector reuse)."),
                repeats: int = typer.Option(5, help="Passes over the question list per retriever."),
                timeout: float = typer.Option(1500.0, help="Seconds after which one index or query phase is stopped."),
                append: bool = typer.Option(False, help="Merge into an existing results.json.")) -> None:
    """Index throughput, disk, peak RSS and query p50/p95 against corpus size (generated corpora)."""
    from evals.bench.scale import command

    command(sizes, store, out_dir, real_embed_sizes, repeats, timeout, append)
