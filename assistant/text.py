"""Text handling, written once: sentences, words, stopwords, links and a title's
own name. Indexing, retrieval, answering, verification, topics and the lab all read
text through these, so two parts of the assistant never disagree on where a
sentence ends or what counts as a word (a disagreement between the index's and the
verifier's sentence splitters once showed half a quoted sentence without its marker).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

# ---------------------------------------------------------------- sentences

# Sentence boundaries. llama-index's punkt splitter cuts after "e.g." and misses
# joins glued by the scrape ("time axis.Given"), both common in this corpus; this
# rule handles both and keeps each sentence an exact substring of the abstract.
ABBREVIATIONS = (r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bet al\.)(?<!\bvs\.)(?<!\bFig\.)(?<!\bEq\.)(?<!\bresp\.)"
                 r"(?<!\bcf\.)(?<!\bapprox\.)(?<!\bNo\.)(?<!\bU\.S\.)")
_OPENS = r"[\"'(\[]?[A-Z0-9$\\]"  # how a sentence starts: not lowercase, not "%" ("i.i.d. generalization")
_SENTENCE_END = re.compile(ABBREVIATIONS + r"(?<=[.!?])\s+(?=" + _OPENS + ")")
_GLUED = re.compile(r"(?<=[a-z]{3}[.!?])(?=[A-Z][a-z]{2,}\b)")
# A citation marker ([2], [1, 3], [2-4]) right after a sentence's stop belongs to that sentence.
_LEADING_MARKER = re.compile(r"(\[[\d,;\-\u2013 ]+\][.,;:!?]*)(\s+|$)")  # "... stop. [7]. Next"
_MARKER_AFTER_STOP = re.compile(ABBREVIATIONS + r"(?<=[.!?])(\[[\d,;\-\u2013 ]+\])(\s+)(?=" + _OPENS + ")")


def split_sentences(text: str) -> list[str]:
    """The sentences of a text, each an exact substring of it, whitespace around them
    dropped. The index stores an abstract as these sentences (bump
    `index.UNITS_VERSION` when this changes: every paper is re-embedded)."""
    out: list[str] = []
    for part in _SENTENCE_END.split(text):
        pieces = [part] if "://" in part or "github." in part else _GLUED.split(part)
        out.extend(p.strip() for p in pieces if p.strip())
    return out


def sentence_pieces(text: str) -> list[str]:
    """The same sentences as `split_sentences`, for checking an answer's citations: the
    line breaks and the whitespace between sentences are kept as pieces of their own,
    so joining the pieces restores the layout, and a citation marker after a full stop
    (`... result. [2] Next`) stays with its sentence, written after one space. Nothing
    else differs, so a quoted stored sentence is one piece with its marker."""
    out: list[str] = []
    for line in re.split(r"(\n+)", text):
        if not line.strip():
            out.append(line)
            continue
        pieces = _line_pieces(line)
        for j in range(3, len(pieces), 2):  # a marker opening a sentence goes back to the one before
            if (m := _LEADING_MARKER.match(pieces[j])) and pieces[j - 2].strip():
                pieces[j - 2] += " " + m.group(1)
                pieces[j - 1], pieces[j] = m.group(2), pieces[j][m.end():]
        out.extend(p for p in pieces if p)
    return out


def _line_pieces(line: str) -> list[str]:
    """One line as [gap, sentence, gap, sentence, ..., gap], every gap whitespace."""
    pieces = [""]
    pos = 0
    for sentence in _split_after_markers(line):
        start = line.index(sentence, pos)
        pieces[-1] += line[pos:start]
        pieces += [sentence, ""]
        pos = start + len(sentence)
    pieces[-1] += line[pos:]
    return pieces


def _split_after_markers(line: str) -> Iterator[str]:
    """`split_sentences`, also cut after a marker that directly follows a stop
    (`result.[2] Next`): abstracts have none there, answers may."""
    for sentence in split_sentences(line):
        start = 0
        for m in _MARKER_AFTER_STOP.finditer(sentence):
            yield sentence[start:m.end(1)]
            start = m.end()
        yield sentence[start:]


# ---------------------------------------------------------------- words

# One tokenizer, `words`, with the three word shapes the assistant reads. They stay
# three because each was measured with its own: word support's vectors and
# thresholds were built on WORD (numbers never are words there), the LLM checks and
# the hard set's rare-word rule compare wording run by run with numbers (ALNUM), and
# topic labels keep "3D" and "4D" (TERM). Unifying them would move calibrated figures.
WORD = re.compile(r"[^\W\d_][\w\-]*")  # starts with a letter, keeps hyphens: "fine-tuning", "EEG", "naïve"
ALNUM = re.compile(r"[a-z0-9]+")  # every run of ASCII letters and digits: "4.70 FID" -> 4, 70, fid
TERM = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*|[0-9][A-Za-z][A-Za-z0-9]*")  # ASCII, "3D" kept


def words(text: str, shape: re.Pattern[str] = WORD, keep_case: bool = False) -> list[str]:
    """The words of a text in order, lower-cased unless `keep_case` (`str.lower`, not
    `casefold`: "große" stays one German word, as the word vectors hold it)."""
    return shape.findall(text if keep_case else text.lower())


def _english_stopwords() -> frozenset[str]:
    """NLTK's English stopword list (Apache-2.0), shipped with the package: the word
    signals were calibrated with it (importing scikit-learn's list instead would
    cost 1.3 s of start-up and shift every calibrated threshold)."""
    return frozenset((Path(__file__).parent / "stopwords_en.txt").read_text(encoding="utf-8").split())


STOPWORDS = _english_stopwords()
# Two other lists stay where they were measured, on purpose: the keyword index
# (assistant/keyword.py, and focus.stems that must read words as it does) is built
# with bm25s's own tokenizer and 33 English stopwords, saved with the index; topic
# labels (assistant/topics.py) drop scikit-learn's 318 (with this list instead,
# the terms of all 356 papers change, and with them every label of the corpus map).


# ---------------------------------------------------------------- links and titles

# A link in an abstract or a sentence: with a scheme (the scrape also writes
# "https: //"), from "www.", or a bare host on a common top-level domain
# ("github.com/x/y"). It ends at whitespace or a brace: "x/{x/}" doubles of the
# scrape are the link written twice.
URL = re.compile(r"https?\s*:\s*//[^\s{}]+|\bwww\.[^\s{}]+|(?<![\w/.@-])[\w.-]+\.(?:com|io|org|net|ai)/[^\s{}]*",
                 re.IGNORECASE)


def title_head(title: str) -> str:
    """The part of a title before its first colon ("AdamP" of "AdamP: Slowing Down
    ..."), the paper's own name when short; the whole title when it has no colon."""
    return re.split(r":\s", title, maxsplit=1)[0].strip()


def title_rest(title: str) -> str:
    """The title less its head when it has one ("Slowing Down the Slowdown ..." of
    "AdamP: Slowing Down ..."): what the paper is about, without its own name."""
    parts = re.split(r":\s", title, maxsplit=1)
    return parts[1].strip() if len(parts) == 2 else title

