"""Atomic writes: a reader finds the old content or the new, never none and never half."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from assistant.files import atomic_path, atomic_write_json


def _write_folder(target: Path, version: int) -> None:
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "version.txt").write_text(str(version), encoding="utf-8")


def test_a_replaced_folder_is_never_missing_for_a_reader(tmp_path: Path) -> None:
    target = tmp_path / "keyword"
    _write_folder(target, 0)
    missing: list[int] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                (target / "version.txt").read_text(encoding="utf-8")
            except FileNotFoundError:
                missing.append(1)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for version in range(1, 300):
            _write_folder(target, version)
    finally:
        stop.set()
        reader.join()
    assert not missing, f"the folder was missing {len(missing)} times during 299 replacements"
    assert (target / "version.txt").read_text(encoding="utf-8") == "299"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keyword"]  # no temporary or old folder left


def test_a_failed_write_keeps_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    atomic_write_json(target, {"papers": 356})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("{half", encoding="utf-8")
            raise RuntimeError("crash mid-write")
    assert target.read_text(encoding="utf-8") == '{"papers": 356}'
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]
