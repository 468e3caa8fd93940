"""What every command line shares (the runtime's `assistant`, the web server's
`serve` and the lab's `eval`/`bench`): the consoles, settings read with a readable
error, a one-line failure with its exit status, and progress bars."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from assistant.config import Settings

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment with the given options on top (None = not given)."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except Exception as exc:  # pydantic ValidationError: show the bad setting, not a trace
        err.print(f"[red]Invalid settings:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None


def fail(message: str, code: int = 1) -> NoReturn:
    """One red line on stderr and the exit status: 2 for bad input, 1 for everything else."""
    err.print(f"[red]Error:[/red] {escape(message)}")
    raise typer.Exit(code)


def progress(total: int, desc: str) -> Any:
    """A tqdm bar on stderr, announced first so a long embedding run says what it does."""
    from tqdm import tqdm

    noun = desc.rsplit(" ", 1)[-1]  # "Embedding papers", "Embedding words"
    err.print(f"{desc}: {total} {noun} to embed")
    return tqdm(total=total, desc=desc, unit=noun.removesuffix("s"), file=sys.stderr, mininterval=1.0)
