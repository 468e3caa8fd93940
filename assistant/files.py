"""Writing files so that a reader never sees half of one: everything the index,
the calibration and the benchmarks store is written beside its target and renamed
over it (atomic on POSIX), so a crash or a concurrent reader finds the old file or
the new one, never a mix."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(target: Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside `target` to write to; renamed over `target` when the
    block succeeds, removed when it fails. `suffix` keeps writers that append their
    own extension (numpy's .npz) on the same name. A folder replaces a folder by an
    atomic exchange of the two names (see _swap), so a reader never finds it missing."""
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}{suffix}")
    _remove(tmp)
    try:
        yield tmp
        if tmp.is_dir() and target.is_dir():
            _swap(tmp, target)  # tmp now holds the old folder, removed below
        else:
            os.replace(tmp, target)
    finally:
        _remove(tmp)


_RENAME_EXCHANGE = 2  # linux/fs.h


def _swap(a: Path, b: Path) -> None:
    """Exchanges two folders atomically with Linux's renameat2(RENAME_EXCHANGE):
    rename() cannot replace a non-empty folder, and moving the old one aside first
    leaves a moment with no folder at all. Where renameat2 is missing (other systems,
    old kernels or file systems) that two-step move is the fallback."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    at_fdcwd = -100
    if renameat2 is not None and renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return
    old = b.with_name(b.name + ".old")
    _remove(old)
    os.replace(b, old)
    os.replace(a, b)
    os.replace(old, a)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_json(path: Path, data: Any, indent: int | None = None) -> None:
    atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=indent) + ("\n" if indent else ""))


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
