"""Incremental, crash-safe indexing against real Chroma: embedded and a real server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.config import PROJECT_ROOT, Settings
from assistant.corpus import load_corpus
from assistant.index import (
    IndexBusy,
    Store,
    index_lock,
    read_manifest,
    sync,
    units_for,
)
from assistant.pipeline import Assistant
from assistant.text import split_sentences
from evals.servers import ChromaServer
from tests.conftest import assert_index_exact, write_small_corpus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory):
    """A real `chroma run` server on a free loopback port, for the scale-out path."""
    server = ChromaServer(tmp_path_factory.mktemp("chroma-server")).start()
    yield server.url
    server.stop()


@pytest.fixture(params=["embedded", "server"])
def store_settings(request, tmp_path: Path) -> Settings:
    corpus = write_small_corpus(tmp_path / "corpus")
    extra = {}
    if request.param == "server":
        extra = {"chroma_url": request.getfixturevalue("chroma_server"), "collection_prefix": f"t{tmp_path.name[-20:]}".replace("_", "-")}
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", mode="offline", **extra)


def counts(settings: Settings) -> tuple[int, int]:
    return Store(settings.store_config).counts()


def expected_units(settings: Settings) -> tuple[int, int]:
    papers = load_corpus(settings.corpus_dir).papers
    return len(papers), sum(len(split_sentences(p.abstract)) for p in papers)


def test_sentences_are_exact_substrings_and_cover_the_abstract() -> None:
    for paper in load_corpus(PROJECT_ROOT / "data" / "corpus").papers:
        sentences = split_sentences(paper.abstract)
        assert all(s in paper.abstract for s in sentences)
        assert "".join(sentences).replace(" ", "") == paper.abstract.replace(" ", "")


def test_sentence_splitter_handles_abbreviations_and_glued_joins() -> None:
    text = "We use e.g. SGD and Adam. It works along the time axis.Given this, we win. See https://a.io/X.Y for code."
    assert split_sentences(text) == [
        "We use e.g. SGD and Adam.",
        "It works along the time axis.",
        "Given this, we win.",
        "See https://a.io/X.Y for code.",
    ]


def test_units_cover_every_sentence_and_the_whole_paper() -> None:
    paper = load_corpus(PROJECT_ROOT / "data" / "corpus").papers[0]
    units = units_for(paper)
    assert [u.kind for u in units].count("paper") == 1
    assert [u.text for u in units if u.kind == "sentence"] == split_sentences(paper.abstract)
    meta = units[0].metadata(paper, "h")
    assert {"paper_id", "title", "date", "urls", "index"} <= set(meta)


def test_build_rerun_change_and_delete(store_settings: Settings) -> None:
    first = sync(store_settings)
    n_papers, n_sentences = expected_units(store_settings)
    assert len(first.added) == n_papers == 6
    assert first.units_embedded == n_papers + n_sentences  # each unit embedded exactly once
    assert counts(store_settings) == (n_papers, n_sentences)

    again = sync(store_settings)
    assert again.units_embedded == 0 and not again.changed
    assert counts(store_settings) == (n_papers, n_sentences)

    # Change one abstract: only that paper's units are embedded again.
    listing = next(store_settings.corpus_dir.glob("*.txt"))
    lines = listing.read_text(encoding="utf-8").split("\n")
    lines[5] = lines[5] + " We add one closing sentence about robustness."
    listing.write_text("\n".join(lines), encoding="utf-8")
    changed = sync(store_settings)
    assert len(changed.updated) == 1 and not changed.added and not changed.deleted
    changed_paper = next(p for p in load_corpus(store_settings.corpus_dir).papers if p.paper_id == changed.updated[0])
    assert changed.units_embedded == len(units_for(changed_paper))
    assert counts(store_settings) == expected_units(store_settings)

    # Remove the last paper from the listing: its vectors go, nothing else is re-embedded.
    listing.write_text("\n".join(lines[:-2]), encoding="utf-8")
    removed = sync(store_settings)
    assert len(removed.deleted) == 1 and removed.units_embedded == 0
    assert counts(store_settings) == expected_units(store_settings) == (5, expected_units(store_settings)[1])


def test_papers_of_an_unparseable_file_are_kept(store_settings: Settings) -> None:
    sync(store_settings)
    before = counts(store_settings)
    listing = next(store_settings.corpus_dir.glob("*.txt"))
    listing.write_bytes(b"\x00garbage" * 50)
    report = sync(store_settings)
    assert report.errors and listing.name in report.errors[0]
    assert len(report.kept_from_bad_files) == 6 and not report.deleted
    assert counts(store_settings) == before
    assert read_manifest(store_settings.index_dir)["papers"] == 6


def test_model_mismatch_is_detected_and_rebuilt(store_settings: Settings) -> None:
    sync(store_settings)
    store = Store(store_settings.store_config)
    store.papers.modify(metadata={"embed_model": "some-other-model", "schema": 1})
    report = sync(store_settings)
    assert report.rebuilt_reason and "some-other-model" in report.rebuilt_reason
    assert len(report.added) == 6
    assert counts(store_settings) == expected_units(store_settings)


def _index_process(settings: Settings, round_papers: int = 64) -> subprocess.Popen[str]:
    env = {**os.environ, "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir), "ASSISTANT_INDEX_DIR": str(settings.index_dir),
           "ASSISTANT_COLLECTION_PREFIX": settings.collection_prefix, "ASSISTANT_INDEX_ROUND_PAPERS": str(round_papers)}
    if settings.chroma_url:
        env["ASSISTANT_CHROMA_URL"] = settings.chroma_url
    return subprocess.Popen([sys.executable, "-m", "assistant", "index"], env=env, cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_mid_index_is_repaired_and_old_papers_stay_answerable(store_settings: Settings) -> None:
    sync(store_settings)  # 6 papers complete
    old_ids = set(Store(store_settings.store_config).complete_papers())
    write_small_corpus(store_settings.corpus_dir, n_papers=40)  # the whole file: 34 new papers, committed 2 per round
    proc = _index_process(store_settings, round_papers=2)
    # Kill -9 as soon as the first new round is committed: the kill
    # lands mid-way however fast the machine embeds (16 rounds still to go).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(Store(store_settings.store_config).complete_papers()) > len(old_ids):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    store = Store(store_settings.store_config)
    complete = store.complete_papers()
    assert old_ids <= set(complete), "papers indexed before the crash must stay answerable"
    assert len(old_ids) < len(complete) < 40, "the kill should have landed mid-way"
    # The keyword index and snapshot were rewritten before embedding began, so they
    # already hold papers Chroma does not: questions still work, on the old papers, and
    # say that the index is behind the corpus.
    old = next(p for p in load_corpus(store_settings.corpus_dir).papers if p.paper_id in old_ids)
    answer = Assistant(store_settings).ask(f"What does the paper {old.title} propose?")
    assert answer.citations and answer.citations[0].paper_id == old.paper_id
    assert answer.citations[0].quote in old.abstract
    assert answer.has_notice("stale_index")

    report = sync(store_settings)
    assert counts(store_settings) == expected_units(store_settings)
    assert len(report.added) == 40 - len(complete)
    again = sync(store_settings)
    assert again.units_embedded == 0 and counts(store_settings) == expected_units(store_settings)
    assert_index_exact(store_settings)


def test_second_writer_waits_then_refuses(tmp_path: Path) -> None:
    with index_lock(tmp_path):
        messages: list[str] = []
        with pytest.raises(IndexBusy, match="stayed locked"):
            with index_lock(tmp_path, wait=0.5, on_wait=messages.append):
                pass
        assert messages and "another `assistant index`" in messages[0]


def test_concurrent_index_runs_end_correct(small_settings: Settings) -> None:
    a, b = _index_process(small_settings), _index_process(small_settings)
    outs = [p.communicate(timeout=300) for p in (a, b)]
    assert a.returncode == 0 and b.returncode == 0, outs
    assert any("waiting" in err for _, err in outs)
    assert counts(small_settings) == expected_units(small_settings)
    assert_index_exact(small_settings)


def test_lookup_through_a_chroma_server(chroma_server: str, tmp_path: Path) -> None:
    """The scale-out path: same code, vectors in a real Chroma server."""
    from assistant.pipeline import Assistant

    settings = Settings(corpus_dir=write_small_corpus(tmp_path / "corpus"), index_dir=tmp_path / "idx",
                        chroma_url=chroma_server, collection_prefix="lookup-test", mode="offline")
    sync(settings)
    assistant = Assistant(settings)
    found = assistant.lookup("h-Edit")
    assert found.status == "found" and found.paper.title.startswith("h-Edit")
    assert len(assistant.related(found.paper.paper_id)) == 5
    answer = assistant.ask("How does h-Edit perform image editing with diffusion models?")
    assert not answer.abstained and answer.citations[0].title.startswith("h-Edit")


def test_damaged_embedded_store_is_moved_aside_and_rebuilt(small_settings: Settings) -> None:
    sync(small_settings)
    db = small_settings.index_dir / "chroma" / "chroma.sqlite3"
    db.write_bytes(b"this is not a database" * 100)
    report = sync(small_settings)
    assert report.rebuilt_reason and "damaged" in report.rebuilt_reason
    assert counts(small_settings) == expected_units(small_settings)
    assert list(small_settings.index_dir.glob("chroma.damaged-*"))
    assert_index_exact(small_settings)
