"""Shared fixtures. The full-corpus index used by end-to-end tests lives in
var/test-index and is brought up to date by a real `sync` at session start, so a
re-run costs ~1 s while a fresh clone builds it once (~1.5 min on 2 cores)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant.config import PROJECT_ROOT, Settings

CORPUS = PROJECT_ROOT / "data" / "corpus"
LAYOUT_C = CORPUS / "004_fe3f780eb27247e2.txt"


@pytest.fixture(scope="session")
def full_settings() -> Settings:
    return Settings(index_dir=PROJECT_ROOT / "var" / "test-index", collection_prefix="test", mode="offline",
                    llm_base_url=None, llm_api_key=None)


@pytest.fixture(scope="session")
def full_index(full_settings: Settings) -> Settings:
    """Settings of an index over the whole shipped corpus, verified up to date."""
    from assistant.index import sync

    sync(full_settings)
    return full_settings


@pytest.fixture(scope="session")
def assistant(full_index: Settings):
    from assistant.pipeline import Assistant

    return Assistant(full_index)


def write_small_corpus(folder: Path, n_papers: int = 6, skip: int = 0) -> Path:
    """A layout-C listing with the first `n_papers` entries of 004 (after `skip`)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = LAYOUT_C.read_text(encoding="utf-8").split("\n")
    header, entries = lines[:2], lines[2:]
    entries[0] = entries[0].removeprefix("Subscribe")
    chosen = entries[2 * skip : 2 * (skip + n_papers)]
    (folder / "004_small.txt").write_text("\n".join(header + ["Subscribe" + chosen[0]] + chosen[1:]), encoding="utf-8")
    return folder


@pytest.fixture
def small_settings(tmp_path: Path) -> Settings:
    """A fresh embedded index over a 6-paper corpus in a temporary folder."""
    corpus = write_small_corpus(tmp_path / "corpus")
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index", mode="offline", llm_base_url=None, llm_api_key=None)


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target


def assert_index_exact(settings: Settings) -> None:
    """The index holds exactly the corpus's papers, no more, no fewer, each complete
    with its current content: Chroma paper units with the right content hash, every
    sentence unit, the paper snapshot, the keyword index and the manifest agree."""
    from assistant.corpus import load_corpus
    from assistant.index import (
        KEYWORD_DIR,
        UNITS_VERSION,
        Store,
        _local_digests,
        read_manifest,
        read_snapshot,
    )
    from assistant.keyword import KeywordIndex
    from assistant.text import split_sentences

    papers = load_corpus(settings.corpus_dir).papers
    ids = {p.paper_id for p in papers}
    n_sentences = sum(len(split_sentences(p.abstract)) for p in papers)
    store = Store(settings.store_config)
    complete = store.complete_papers()
    assert set(complete) == ids, f"missing {ids - set(complete)}, extra {set(complete) - ids}"
    assert all(complete[p.paper_id]["content_hash"] == f"{p.content_hash()}-u{UNITS_VERSION}" for p in papers)
    assert store.sentence_paper_ids() == ids
    assert store.counts() == (len(ids), n_sentences)
    assert {p.paper_id for p in read_snapshot(settings.index_dir)} == ids
    manifest = read_manifest(settings.index_dir)
    assert manifest is not None and manifest["papers"] == len(ids) and manifest["sentences"] == n_sentences
    assert manifest["local_files"] == _local_digests(settings.index_dir)
    keyword = KeywordIndex(settings.index_dir / KEYWORD_DIR)
    assert len(keyword) == len(ids) + n_sentences and set(keyword.unit_papers) == ids
    from assistant.text import words
    from assistant.words import WORDS_FILE, WordVectors

    vocabulary = {w for p in papers for w in words(f"{p.title} {p.abstract}")}
    assert set(WordVectors(settings.index_dir / WORDS_FILE, lambda words: None).row) == vocabulary
