"""Keeps a long-running `assistant serve` from growing in glibc's heap.

Issue 28 traced the server's residual growth under load (3.5-3.7 MiB/min with 8
clients, after the torch input shapes were bounded) to memory that glibc's malloc
had been given back but kept: Python objects stayed flat (tracemalloc), memory in
use by native code levelled off (~250 MiB), and the free memory held in the
arenas of the worker threads rose steadily (64 -> 120 MiB over minutes 1-7 of a
4-client soak). Each thread that allocates gets its own arena (up to 8 per
core), every arena keeps its freed chunks, and a few chunks still in use pin the
pages around them.

Two remedies, both settings:
- at most `malloc_arenas` arenas (default 2), set before the worker threads start,
  so freed memory is shared by the threads rather than stranded in one each;
- every `malloc_trim_interval` seconds (default 60) one background thread calls
  `malloc_trim(0)`, which hands every whole free page of every arena back to the
  system (measured: 20-52 MiB each time under load, in 1-53 ms).
Both are glibc's; on another C library (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # mallopt parameter, from glibc's malloc.h


@lru_cache(maxsize=1)  # one handle on the C library
def _glibc() -> Any:
    """The C library when it is glibc (has malloc_trim and mallopt), else None."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes, libc.mallopt.argtypes = [ctypes.c_size_t], [ctypes.c_int, ctypes.c_int]
        return libc
    except (OSError, AttributeError):
        return None


def limit_arenas(arenas: int) -> bool:
    """Caps the malloc arenas that threads created from now on may use; True when set."""
    libc = _glibc()
    return bool(libc is not None and arenas > 0 and libc.mallopt(M_ARENA_MAX, arenas) == 1)


def trim() -> bool:
    """Returns the free pages of every arena to the system; True when any were."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))


class Trimmer(threading.Thread):
    """Calls `trim()` every `interval` seconds until `stop()`; one daemon thread."""

    def __init__(self, interval: float) -> None:
        super().__init__(name="heap-trim", daemon=True)
        self.interval = interval
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self.interval):
            trim()

    def stop(self) -> None:
        self._stopped.set()


def configure(arenas: int, trim_interval: float) -> Trimmer | None:
    """Applies both remedies (a 0 turns one off); returns the running trimmer, if any."""
    if _glibc() is None:
        log.info("not glibc: malloc arenas and trimming left to the C library")
        return None
    limit_arenas(arenas)
    if trim_interval <= 0:
        return None
    trimmer = Trimmer(trim_interval)
    trimmer.start()
    return trimmer
