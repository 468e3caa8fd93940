"""Check that paraphrase questions do not leak their gold paper's rare words.

Usage:
    python evals/check_overlap.py evals/questions/hard.jsonl

Why this exists
---------------
The hard question set is meant to test whether retrieval understands *meaning*,
not whether it can match a distinctive keyword. A question such as "What is
TaylorSeer?" is trivially solved by BM25 because "taylorseer" occurs in exactly
one paper. A `concept` question in the hard set must therefore describe the idea
in a user's own words and must not contain any word that is *rare in the corpus*
(document frequency <= 5, counted over each paper's lowercased title + abstract)
and that appears in one of its gold papers. Those rare words are exactly the
tokens that give a keyword retriever a near-free hit.

For every question the script tokenises the question the same way as the
corpus (`assistant.text.words` with the ``[a-z0-9]+`` shape, on lowercased text),
drops stopwords and question framing (`STOPWORDS`: `assistant.words.NOT_CONTENT`
and a few more) and tokens
shorter than 3 characters, and intersects the rest with the rare words of the
gold papers. It prints one row per question and exits with status 1 if any
question of type ``concept`` overlaps; other types (fact, multi, lookup, ...)
are reported for information only, since a fact question may legitimately name
a benchmark or a number.

The function `check_file` is imported by tests/test_questions.py, so the test
suite fails whenever a hard paraphrase question starts leaking keywords.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from assistant.text import ALNUM, words
from assistant.words import NOT_CONTENT

RARE_DF = 5  # a word in at most this many papers counts as rare
MIN_LEN = 3
# The assistant's stopwords and question framing, and the words this rule was first
# written with beside them (the hard set was checked against these; without them
# "one" and "look" would show up as overlaps).
STOPWORDS = NOT_CONTENT | frozenset(
    "also anything could find get look one ones something sort there's thing things told whose would".split())


def tokens(text: str) -> list[str]:
    return words(text, ALNUM)


def content_tokens(text: str) -> set[str]:
    return {t for t in tokens(text) if len(t) >= MIN_LEN and t not in STOPWORDS}


@dataclass
class CorpusStats:
    df: Counter
    words_by_title: dict[str, set[str]]  # normalized title -> tokens of title + abstract
    title_words: dict[str, set[str]] = field(default_factory=dict)  # normalized title -> title tokens

    def rare_words(self, norm_title: str) -> set[str]:
        return {w for w in self.words_by_title.get(norm_title, set()) if self.df[w] <= RARE_DF}


def corpus_stats(corpus_dir: Path | None = None) -> CorpusStats:
    from assistant.config import Settings
    from assistant.corpus import load_corpus, normalize_title

    corpus = load_corpus(corpus_dir or Settings().corpus_dir)
    df: Counter = Counter()
    words_by_title: dict[str, set[str]] = {}
    title_words: dict[str, set[str]] = {}
    for paper in corpus.papers:
        words = set(tokens(f"{paper.title} {paper.abstract}"))
        df.update(words)
        key = normalize_title(paper.title)
        words_by_title[key] = words
        title_words[key] = set(tokens(paper.title))
    return CorpusStats(df=df, words_by_title=words_by_title, title_words=title_words)


@dataclass
class Row:
    qid: str
    qtype: str
    overlap: list[str]
    title_overlap: list[str]

    @property
    def failing(self) -> bool:
        return self.qtype == "concept" and bool(self.overlap)


def check_questions(questions: list[dict], stats: CorpusStats) -> list[Row]:
    from assistant.corpus import normalize_title

    rows = []
    for q in questions:
        qwords = content_tokens(q["question"])
        rare: set[str] = set()
        title: set[str] = set()
        for gold in q.get("gold_titles", []):
            key = normalize_title(gold)
            rare |= stats.rare_words(key)
            title |= stats.title_words.get(key, set())
        rows.append(
            Row(
                qid=q["id"],
                qtype=q["type"],
                overlap=sorted(qwords & rare),
                title_overlap=sorted(qwords & {w for w in title if len(w) >= MIN_LEN and w not in STOPWORDS}),
            )
        )
    return rows


def load_questions(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def check_file(path: Path, stats: CorpusStats | None = None) -> list[Row]:
    """Rows for every question in `path`; a row with `.failing` set breaks the rule."""
    return check_questions(load_questions(Path(path)), stats or corpus_stats())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="question file (JSONL)")
    parser.add_argument("--all", action="store_true", help="print every row, not only overlapping ones")
    args = parser.parse_args(argv)

    rows = check_file(args.path)
    print(f"     {'id':<12} {'type':<13} {'rare-word overlap':<40} title-word overlap (info)")
    for row in rows:
        if args.all or row.overlap or row.title_overlap:
            mark = "FAIL " if row.failing else "     "
            print(f"{mark}{row.qid:<12} {row.qtype:<13} {', '.join(row.overlap) or '-':<40} {', '.join(row.title_overlap) or '-'}")
    failing = [r for r in rows if r.failing]
    print(f"\n{len(rows)} questions, {sum(1 for r in rows if r.qtype == 'concept')} concept, "
          f"{len(failing)} concept question(s) overlap rare gold words (df <= {RARE_DF})")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
