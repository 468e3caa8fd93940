"""`assistant serve`: the web UI and the JSON API on one local port (never a
public share link). Plugged into the `assistant` command through the
`assistant.commands` entry point; the app itself is `ui.server.create_app`."""

from __future__ import annotations

from typing import Optional

import typer
from rich.markup import escape

from assistant.console import err, fail, load_settings, progress


def serve(
    host: Optional[str] = typer.Option(None, help="Interface to listen on (default: ASSISTANT_HOST, 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port (default: ASSISTANT_PORT, 7860)."),
    build: bool = typer.Option(False, "--build", help="Build or update the index first when it is missing."),
) -> None:
    """Serve the chat UI (Chat, Papers, Corpus map), the JSON API (/api/ask, /api/papers/{id},
    /api/search, /api/health; schema at /openapi.json), the OpenAI-compatible /v1/chat/completions
    and the MCP server at /mcp."""
    from assistant.index import IndexProblem, sync
    from assistant.retrieve import open_index
    from ui.heap import configure
    from ui.server import create_app, parse_auth

    settings = load_settings(host=host, port=port)
    configure(settings.malloc_arenas, settings.malloc_trim_interval)  # before the worker threads start
    try:
        parse_auth(settings.auth)
    except ValueError as exc:
        fail(str(exc), 2)
    try:
        open_index(settings)
    except IndexProblem as exc:
        if not build:
            err.print(f"[yellow]{escape(str(exc))}[/yellow]\n"
                      "Starting anyway: the page offers a [bold]Build index[/bold] button with progress. "
                      "Or stop and run `assistant serve --build` (or `assistant index`).")
        else:
            try:
                report = sync(settings, progress=progress)
            except IndexProblem as problem:
                fail(str(problem))
            err.print(f"Index built: {report.papers} papers in {report.seconds:.0f} s.")
            open_index(settings, reload=True)

    from ui.lifecycle import serve_until_stopped

    app = create_app(settings)
    auth = " (basic auth on)" if settings.auth else ""
    err.print(f"Serving on http://{settings.host}:{settings.port}/{auth}  API docs: /api/docs  "
              "OpenAI: /v1  MCP: /mcp  Ctrl+C to stop")
    serve_until_stopped(app, settings.host, settings.port, settings.shutdown_timeout)


def mcp() -> None:
    """Serve the assistant as an MCP server over stdio, for desktop MCP clients (tools ask, search_papers,
    get_paper; resources paper://{paper_id}). `assistant serve` offers the same at /mcp over HTTP."""
    from assistant.pipeline import Assistant
    from ui.heap import configure
    from ui.mcp_server import serve_stdio

    settings = load_settings()
    configure(settings.malloc_arenas, settings.malloc_trim_interval)  # an agent's session runs for hours too
    serve_stdio(Assistant(settings))
