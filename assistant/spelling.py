"""Typos in a question, read as the corpus word they were meant for.

"quantizaton of diffusion modles" was refused: neither misspelt word is in any
abstract, so keyword search found nothing and word support said the papers speak of
neither. A word is corrected only when it cannot be meant as written: it is no word
of the corpus, no English word (pyspellchecker's dictionary of 160k words: so
"anime" or "federated" in a question stays as written and a near miss is still
refused; the model's own vocabulary of 22k words took "federated" for a typo of
"generated"), not a name (capitals inside it), not another form of a corpus word
("cascades" where abstracts say "cascade", "analysing" where they say "analyzing":
keyword search stems both alike), and one edit away from a corpus word (two for
words of eight letters or more; swapping two letters is one edit, "modles") that at
least two abstracts use. A question in another language is left alone. The answer
says how the question was read (`spelling` notice).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import OSA

from assistant.keyword import stemmer
from assistant.text import STOPWORDS
from assistant.words import looks_foreign

MIN_LETTERS = 5  # shorter words are too often another word one edit away ("mode", "node", "code")
MIN_PAPERS = 2  # a correction is a word at least this many abstracts use, not another typo
_WORD = re.compile(r"(?<![\w-])[A-Za-z][a-z]+(?![\w-])")  # lower case, or capitalised at most


@lru_cache(maxsize=1)  # one dictionary per process (~20 MB, read in ~0.2 s on first use)
def english_words() -> Collection[str]:
    """The English words pyspellchecker knows."""
    from spellchecker import SpellChecker

    words: Collection[str] = SpellChecker(language="en").word_frequency.dictionary
    return words


def corrections(question: str, corpus_words: Mapping[str, int], english: Collection[str] | None = None) -> dict[str, str]:
    """Misspelt word (as written) -> the corpus word it is read as (`corpus_words`: word -> how
    many papers use it; `english`: English words, by default `english_words()`)."""
    fixes: dict[str, str] = {}
    unknown = [t for t in dict.fromkeys(_WORD.findall(question))
               if len(t) >= MIN_LETTERS and t.lower() not in corpus_words and t.lower() not in STOPWORDS]
    if not unknown or looks_foreign(question):
        return fixes
    english = english_words() if english is None else english
    for token in unknown:
        word = token.lower()
        if word in english:
            continue
        best = _nearest(word, corpus_words)
        if best is not None:
            fixes[token] = best.capitalize() if token[0].isupper() else best
    return fixes


def _nearest(word: str, corpus_words: Mapping[str, int]) -> str | None:
    """The corpus word within the allowed edits, the most used of the nearest ones."""
    limit = 1 if len(word) < 8 else 2
    matches = process.extract(word, list(corpus_words), scorer=OSA.distance, score_cutoff=limit, limit=10)
    found: list[tuple[str, int]] = [(str(w), int(d)) for w, d, _ in matches
                                    if corpus_words[w] >= MIN_PAPERS and str(w).isalpha()]
    stem = stemmer().stemWord  # type: ignore[attr-defined]  # PyStemmer ships no type hints
    forms = {stem(word), stem(_american(word))}
    if not found or any(stem(w) in forms for w, _ in found):
        return None
    nearest = min(d for _, d in found)
    return max((w for w, d in found if d == nearest), key=lambda w: corpus_words[w])


def _american(word: str) -> str:
    """The American spelling of a British word ("analysing", "neighbouring"), which the
    corpus mostly uses: another form of the same word, not a typo."""
    return re.sub(r"(?<=[a-z])([iy])s(e|es|ed|ing|ation|ations)$", r"\1z\2", word).replace("our", "or")


def corrected(question: str, fixes: Mapping[str, str]) -> str:
    """The question with each misspelt word replaced."""
    for wrong, right in fixes.items():
        question = re.sub(rf"(?<![\w-]){re.escape(wrong)}(?![\w-])", right, question)
    return question


def spelling_notice(fixes: Mapping[str, str]) -> str:
    """"Read "quantizaton" as "quantization"." for the answer's notice."""
    return "Read " + ", ".join(f"“{wrong}” as “{right}”" for wrong, right in fixes.items()) + "."
