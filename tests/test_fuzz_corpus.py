"""Hypothesis fuzzer over the corpus parser (docs/reliability.md): random bytes,
generated listings and mutated real listings either parse into papers whose
title and abstract are non-empty and taken from the input, or are refused with a
`CorpusError` naming the file; never another exception, never a hang (every
example has a deadline)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.corpus import (
    CHROME,
    CorpusError,
    extract_urls,
    load_corpus,
    merge,
    normalize_ws,
    parse_file,
)
from assistant.text import split_sentences
from tests.conftest import CORPUS

pytestmark = pytest.mark.slow  # ~15 s: 900 examples

FUZZ = settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow], derandomize=True,
                database=None)
# The head of each real layout (A, B, C): a few entries with their chrome and metadata.
SEEDS = [(CORPUS / name).read_bytes()[:size] for name, size in
         (("000_687525f68a13be73.txt", 6000), ("001_ed1b269fc01325b6.txt", 7000), ("004_fe3f780eb27247e2.txt", 6000))]
REAL_LINES = [ln for seed in SEEDS for ln in seed.decode("utf-8", "ignore").split("\n")]
CHECKED: dict[str, dict[str, int]] = {}  # per fuzz run: examples, parsed, refused


def run_fuzz(fuzz: Callable[[], None], name: str) -> dict[str, int]:
    """Runs one Hypothesis property from scratch and returns its own counts, so each
    test checks what it generated whether it runs alone or with the others."""
    CHECKED[name] = {"examples": 0, "parsed": 0, "refused": 0}
    fuzz()
    print(f"\n[fuzz] {name}: {CHECKED[name]}")
    return CHECKED[name]


def check(data: bytes, name: str) -> None:
    """The property, for one input written as a listing file."""
    counts = CHECKED[name]
    counts["examples"] += 1
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.txt"
        path.write_bytes(data)
        try:
            parsed = parse_file(path)
        except CorpusError as exc:
            counts["refused"] += 1
            assert str(exc).startswith(str(path)), exc  # names the file (and line)
            assert load_corpus(Path(folder)).errors == [str(exc)]  # the corpus skips it and goes on
            return
        counts["parsed"] += 1
        source = normalize_ws(data.decode("utf-8"))
        assert parsed.entries
        for entry in parsed.entries:
            assert entry.title and entry.abstract
            assert entry.title in source and entry.abstract in source  # taken from the input, never invented
            assert entry.title not in CHROME
        for paper in merge(parsed.entries):
            assert paper.title and paper.abstract and paper.paper_id
            assert all(url.startswith("http") for url in extract_urls(paper.abstract))
            assert all(s in paper.abstract for s in split_sentences(paper.abstract))
        corpus = load_corpus(Path(folder))
        assert not corpus.errors and len(corpus.papers) == len(merge(parsed.entries))


@FUZZ
@given(st.binary(max_size=4096))
def random_bytes(data: bytes) -> None:
    check(data, "bytes")


def test_random_bytes() -> None:
    counts = run_fuzz(random_bytes, "bytes")
    assert counts["examples"] >= 250 and counts["refused"] > 0, counts  # random bytes almost never parse


line = st.one_of(
    st.sampled_from(sorted(CHROME) + ["", "·", "  • 3 authors", "  • 1 authors", "Oct 10, 2024 2", "Nov 25 2", "Mar 14",
                                      "Feb 30, 2024", "naver-ai NAVER AI Lab", "Subscribe"]),
    st.sampled_from(REAL_LINES),
    st.text(max_size=80),
    st.text(min_size=290, max_size=2000, alphabet=st.characters(codec="utf-8")),
    st.builds(lambda t: "Subscribe" + t, st.text(max_size=60)),
    # a whole entry: a short line, then a long one (with random text in both)
    st.builds(lambda t, a: f"{t}\n{a}", st.text(min_size=1, max_size=140),
              st.text(min_size=300, max_size=1200, alphabet=st.characters(codec="utf-8"))),
)


@FUZZ
@given(st.lists(line, max_size=40), st.sampled_from(["\n", "\r\n", "\r"]), st.sampled_from([True, True, True, False]))
def generated_listings(lines: list[str], newline: str, header: bool) -> None:
    head = ["Get trending papers in your email inbox!"] if header else []
    check(newline.join(head + lines).encode("utf-8", "surrogatepass"), "generated")


def test_generated_listings() -> None:
    """Both outcomes occur: listings that parse and inputs that are refused, so neither
    branch of the property goes untested."""
    counts = run_fuzz(generated_listings, "generated")
    assert counts["examples"] >= 250 and counts["parsed"] > 0 and counts["refused"] > 0, counts


mutation = st.tuples(st.sampled_from(["delete", "insert", "replace", "duplicate", "truncate", "swap-lines"]),
                     st.integers(0, 10**6), st.integers(0, 400), st.binary(min_size=1, max_size=64))


def mutate(data: bytes, ops: list[tuple[str, int, int, bytes]]) -> bytes:
    for op, where, size, payload in ops:
        if not data:
            break
        i = where % len(data)
        if op == "delete":
            data = data[:i] + data[i + size:]
        elif op == "insert":
            data = data[:i] + payload + data[i:]
        elif op == "replace":
            data = data[:i] + payload + data[i + len(payload):]
        elif op == "duplicate":
            data = data[:i] + data[i:i + size] + data[i:]
        elif op == "truncate":
            data = data[:i]
        else:
            lines = data.split(b"\n")
            a, b = where % len(lines), (where + size) % len(lines)
            lines[a], lines[b] = lines[b], lines[a]
            data = b"\n".join(lines)
    return data


@FUZZ
@given(st.sampled_from(range(len(SEEDS))), st.lists(mutation, min_size=1, max_size=6))
def mutated_real_listings(seed: int, ops: list[tuple[str, int, int, bytes]]) -> None:
    check(mutate(SEEDS[seed], ops), "mutated")


def test_mutated_real_listings() -> None:
    counts = run_fuzz(mutated_real_listings, "mutated")
    assert counts["examples"] >= 250 and counts["parsed"] > 0 and counts["refused"] > 0, counts
