"""The files of a built index as the query path reads them: the manifest (checked
against the configured model and keyword format), the paper snapshot and its
sentences, the word vectors, the keyword index, and whether the corpus changed since."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from typing import Any

import numpy as np

from assistant.config import StoreConfig
from assistant.corpus import corpus_files, load_corpus
from assistant.embed import model_fingerprint
from assistant.index import (
    KEYWORD_DIR,
    IndexMissing,
    IndexProblem,
    corpus_fingerprint,
    read_manifest,
    read_snapshot,
)
from assistant.keyword import KEYWORD_FORMAT, KeywordIndex
from assistant.models import Paper
from assistant.text import split_sentences
from assistant.words import WORDS_FILE, WordVectors


def _damaged(config: StoreConfig, part: str, exc: BaseException) -> IndexProblem:
    state = "missing (built by an older version?)" if isinstance(exc, FileNotFoundError) else f"damaged ({type(exc).__name__})"
    return IndexProblem(f"The {part} in {config.index_dir} is {state}. "
                        "Run `assistant index` to repair it (no paper is re-embedded).")


class Sentences(Mapping[str, list[str]]):
    """Each paper's abstract sentences, split when first asked for: splitting every
    abstract when the index opens took most of the opening time at 100k papers
    (docs/scale/README.md), and a question reads a few dozen papers."""

    def __init__(self, papers: dict[str, Paper]) -> None:
        self._papers = papers
        self._split: dict[str, list[str]] = {}  # bound: one entry per paper, about the abstracts' size

    def __getitem__(self, paper_id: str) -> list[str]:
        found = self._split.get(paper_id)
        if found is None:
            found = self._split[paper_id] = split_sentences(self._papers[paper_id].abstract)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._papers)

    def __len__(self) -> int:
        return len(self._papers)


def checked_manifest(config: StoreConfig) -> dict[str, Any]:
    """The manifest of an index the configured model and this version can read; the
    errors say what to run."""
    manifest = read_manifest(config.index_dir)
    if manifest is None or not (config.index_dir / KEYWORD_DIR).is_dir():
        raise IndexMissing(
            f"No index found in {config.index_dir}. Build it with `assistant index` "
            "(about a minute and a half on 2 cores)."
        )
    expected = model_fingerprint(config.embed_model_path)
    if manifest.get("embed_model") != expected:
        raise IndexProblem(
            f"The index in {config.index_dir} was built with {manifest.get('embed_model')}, "
            f"but the configured model is {expected}. Run `assistant index` to rebuild it."
        )
    if manifest.get("keyword_format") != KEYWORD_FORMAT:
        raise IndexProblem(
            f"The keyword index in {config.index_dir} was written by an older version of the assistant. "
            "Run `assistant index` to rebuild it (no paper is re-embedded)."
        )
    return manifest


class IndexFiles:
    """What an index holds besides its vectors, loaded once per process. `encode` embeds
    question words the vocabulary lacks (word support)."""

    def __init__(self, config: StoreConfig, encode: Callable[[list[str]], np.ndarray]) -> None:
        self.config = config
        self.manifest = checked_manifest(config)
        try:
            self.papers: dict[str, Paper] = {p.paper_id: p for p in read_snapshot(config.index_dir)}
        except (OSError, ValueError, KeyError) as exc:
            raise _damaged(config, "paper snapshot", exc) from exc
        self.sentences = Sentences(self.papers)
        try:  # vocabulary vectors for word support and the language check (assistant/words.py)
            self.words = WordVectors(config.index_dir / WORDS_FILE, encode)
        except Exception as exc:  # numpy's reader raises what it hits (BadZipFile on a truncated file)
            raise _damaged(config, "word vectors file", exc) from exc
        self._corpus_stamp: tuple[tuple[str, int, int], ...] | None = None
        self._stale = False

    @cached_property
    def keyword(self) -> KeywordIndex:
        try:
            return KeywordIndex(self.config.index_dir / KEYWORD_DIR)
        except Exception as exc:  # bm25s raises whatever its reader hits on a damaged file
            raise _damaged(self.config, "keyword index", exc) from exc

    def stale_notice(self) -> str | None:
        """Says so when the corpus on disk no longer matches what was indexed. The
        corpus is re-parsed only when a corpus file's size or mtime changed."""
        folder = self.config.corpus_dir
        try:
            stamp = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in corpus_files(folder))
        except OSError:
            return None
        if stamp != self._corpus_stamp:
            try:
                current = corpus_fingerprint(load_corpus(folder).papers)
            except Exception:
                current = None
            self._corpus_stamp = stamp
            self._stale = current is not None and current != self.manifest.get("corpus_fingerprint")
        if self._stale:
            return "The corpus changed since the index was built; run `assistant index` to include the changes."
        return None
