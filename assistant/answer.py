"""The two answerers behind one interface: `draft(question, evidence)` yields the
answer text, with `[n]` markers pointing into `evidence.sources`, as it is made.

- `OfflineAnswerer` composes the answer from the abstract sentences most similar
  to the question; no model service, deterministic.
- `LLMAnswerer` sends the numbered sources to an OpenAI-compatible endpoint with
  the prompt in prompts/ and streams its tokens.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from rapidfuzz import fuzz

from assistant.citations import MARKER, MarkerStream, Source, claim_text, marker_numbers, strip_markers
from assistant.llm import LLMClient, LLMError

NO_ANSWER = "INSUFFICIENT_SOURCES"
NEAR_DUPLICATE = 85  # rapidfuzz ratio above which two sentences say the same thing
SENTENCE_MARGIN = 0.06  # a paper's second sentence is used when this close to its best
PAPER_MARGIN = 0.15  # a paper is used when its best sentence is this close to the overall best


@dataclass
class Evidence:
    """Numbered sources with the question's similarity to each of their sentences."""

    sources: list[Source]
    similarities: dict[int, list[float]]  # source n -> per-sentence similarity
    named: set[int]  # source numbers of papers the question names
    vectors: dict[int, np.ndarray]  # source n -> its stored sentence embeddings

    def best(self, n: int) -> float:
        return max(self.similarities.get(n, [0.0]), default=0.0)

    @property
    def relevance(self) -> float:
        return max((self.best(s.n) for s in self.sources), default=0.0)


class Answerer(Protocol):
    mode: str

    def draft(self, question: str, evidence: Evidence) -> Iterator[str]:
        context = self.context(evidence)
        messages = self.messages(question, evidence, context)
        shown = {src.n: [_clean(src.sentences[i]) for i in picks] for src, picks in context}
        numbers = {k: src.n for k, (src, _) in enumerate(context, 1)}
        beyond = max((s.n for s in evidence.sources), default=0)
        # A number the model was not shown stays unknown to verify() after the mapping.
        markers = MarkerStream(lambda k: numbers.get(k, beyond + k))
        info: dict[str, object] = {}
        reply = ""
        for token in self.client.stream(messages, info):
            text = markers.feed(token)
            if text:
                reply += text
                yield text
        text = markers.flush()
        if text:
            reply += text
            yield text
        problem = reply_problem(reply, shown, self.system, truncated=info.get("finish_reason") == "length")
        if problem:
            raise UnusableAnswer(f"The LLM's answer was unusable: {problem}")
        if _NO_ANSWER_VARIANT.search(reply) and NO_ANSWER not in reply:
            yield "\n" + NO_ANSWER  # "Insufficient sources." means what the pipeline looks for


def _clean(sentence: str) -> str:
    """An abstract's own references ("RoPE [32]") would read as sources to the model."""
    return strip_markers(sentence).strip()


def _usable(sentence: str) -> bool:
    """Links, code-availability notes and fragments tell the model nothing it can answer from."""
    return len(sentence) >= 25 and not _BOILERPLATE.search(sentence)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.casefold())


def reply_problem(reply: str, shown: dict[int, list[str]], instructions: str = "",
                  truncated: bool = False) -> str | None:
    """Why the model's reply is not an answer, in words for the notice; None when it may
    be one (verification then checks every citation). `shown`: source n -> the
    sentences the model was given."""
    text = reply.strip()
    if not text:
        return "it was empty"
    markers = list(MARKER.finditer(text))
    prose = _words(_NO_ANSWER_VARIANT.sub(" ", claim_text(text)))
    if _NO_ANSWER_VARIANT.search(text):
        if markers and len(prose) >= WORDS_PER_MARKER:
            return "it both answered and said the sources were insufficient"
        return None
    if markers and len(prose) < WORDS_PER_MARKER:
        return "it held citation markers and no answer"
    numbers = [n for m in markers for n in marker_numbers(m.group(1))]
    unknown = {n for n in numbers if n not in shown}
    if len(markers) >= RUN_ON_MARKERS and len(prose) < WORDS_PER_MARKER * len(markers):
        return f"it was a run-on list of {len(markers)} citation markers"
    if len(unknown) >= 3:
        return f"it cited {len(unknown)} sources that do not exist (only {len(shown)} were given)"
    if instructions:
        said = " ".join(prose)
        rule_words = _words(instructions)
        for i in range(len(rule_words) - ECHO_WORDS + 1):
            if " ".join(rule_words[i:i + ECHO_WORDS]) in said:
                return "it repeated the instructions instead of answering"
    low = " ".join(_words(text))
    for n, sentences in shown.items():
        run = best = 0
        for sentence in sentences:
            words = " ".join(_words(sentence))
            run = run + 1 if words and words in low else 0
            best = max(best, run)
        if best >= COPIED_SENTENCES:
            return f"it copied source {n} instead of answering"
    if truncated:
        return "it was cut off at the token limit before it finished"
    return None
