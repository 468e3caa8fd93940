"""Writing files so that a reader never sees half of one: everything the index,
the calibration and the benchmarks store is written beside its target and renamed
over it (atomic on POSIX), so a crash or a concurrent reader finds the old file or
the new one, never a mix."""

from __future__ import annotations

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
    own extension (numpy's .npz) on the same name. A folder replaces a folder: the
    old one is moved aside first, since rename cannot replace a non-empty folder."""
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}{suffix}")
    _remove(tmp)
    try:
        yield tmp
        if tmp.is_dir() and target.exists():
            old = target.with_name(target.name + ".old")
            _remove(old)
            os.replace(target, old)
            os.replace(tmp, target)
            _remove(old)
        else:
            os.replace(tmp, target)
    finally:
        _remove(tmp)


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
