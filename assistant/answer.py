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
from pathlib import Path

from assistant.citations import (
    MARKER,
    MarkerStream,
    Source,
    claim_text,
    marker_numbers,
    strip_markers,
)
from assistant.evidence import Evidence
from assistant.focus import asks_for_list
from assistant.llm import LLMClient, LLMError
from assistant.text import ALNUM, title_head, words

NO_ANSWER = "INSUFFICIENT_SOURCES"


def short_name(title: str) -> str:
    head = title_head(title)
    return head if head != title and len(head) <= 40 else (title if len(title) <= 70 else title[:67].rstrip() + "...")


class OfflineAnswerer:
    """Quotes the sentences that carry the answer (assistant/focus.py) from the papers
    that answer, each cited; no model service, deterministic."""

    def draft(self, question: str, evidence: Evidence) -> Iterator[str]:
        by_n = {s.n: s for s in evidence.sources}
        picks = evidence.focus(question)
        if asks_for_list(question, len(evidence.named)):
            # One line per paper, to scan: its short name, the sentence showing it fits, [n].
            for k, pick in enumerate(picks):
                src = by_n[pick.n]
                quoted = " ".join(f"{strip_markers(src.sentences[i])} [{pick.n}]" for i in pick.sentences)
                yield ("" if k == 0 else "\n") + f"- **{short_name(src.paper.title)}**: {quoted}"
            return
        for k, pick in enumerate(picks):
            src = by_n[pick.n]
            title = src.paper.title if len(picks) == 1 else short_name(src.paper.title)
            # An abstract's own references ("RoPE [32]") are dropped: they would read as citations.
            quoted = " ".join(f"{strip_markers(src.sentences[i])} [{pick.n}]" for i in pick.sentences)
            yield ("" if k == 0 else "\n\n") + f"**{title}**: {quoted}"


class UnusableAnswer(LLMError):
    """The model replied, but with something no user should be shown as an answer."""


CHARS_PER_TOKEN = 4  # English text with the common BPE vocabularies; a budget, not a count
_NO_ANSWER_VARIANT = re.compile(r"\binsufficient[\s_-]*sources?\b", re.IGNORECASE)
RUN_ON_MARKERS = 6  # this many markers with under WORDS_PER_MARKER words each is a list, not an answer
WORDS_PER_MARKER = 4
ECHO_WORDS = 7  # a run of this many words of the instructions in the answer is an echo
COPIED_SENTENCES = 3  # consecutive source sentences copied verbatim: a dump, not an answer
PARTIAL_CHECK_CHARS = 24  # the reply so far is checked every this many characters
ATTRIBUTE_WORDS = 6  # an unmarked sentence sharing this many consecutive words with a shown one is attributed


class LLMAnswerer:
    """Hands the model the sentences that matter, not whole abstracts: on 2 cores a
    0.5B model reads ~80 tokens a second, and small models copy or drift on long
    context. Whatever comes back is normalised (other citation shapes become `[n]`)
    as it streams, and a reply that cannot be an answer (markers only, a run-on list,
    the instructions echoed, a source copied, cut off, empty) raises UnusableAnswer,
    which the pipeline turns into the offline answer with a notice."""

    def __init__(self, client: LLMClient, prompts_dir: Path, context_tokens: int | None = None) -> None:
        self.client = client
        self.system = (prompts_dir / "answer_system.md").read_text(encoding="utf-8").strip()
        self.user = (prompts_dir / "answer_user.md").read_text(encoding="utf-8").strip()
        self.source = (prompts_dir / "source.md").read_text(encoding="utf-8").strip()
        settings = getattr(client, "settings", None)
        self.context_tokens = context_tokens or int(getattr(settings, "llm_context_tokens", 1200))

    def context(self, question: str, evidence: Evidence) -> list[tuple[Source, list[int]]]:
        """(source, sentence indexes in abstract order) for the prompt, in retrieval order:
        the papers and sentences the offline answer quotes (assistant/focus.py), so the
        model reads the few sentences that answer and cannot cite a paper that does not.
        They go in round by round (each paper's best, then each one's next) until the
        budget is spent; the best of all goes in whatever its length."""
        by_n = {src.n: src for src in evidence.sources}
        picks = evidence.focus(question)
        budget = self.context_tokens * CHARS_PER_TOKEN
        shown: dict[int, list[int]] = {}
        for depth in range(max((len(p.sentences) for p in picks), default=0)):
            for pick in picks:
                if depth >= len(pick.sentences) or (depth and pick.n not in shown):
                    continue
                src, i = by_n[pick.n], pick.sentences[depth]
                cost = len(_clean(src.sentences[i])) + 1 + (len(self._header(src)) + 2 if not depth else 0)
                if cost > budget and shown:
                    continue
                budget -= cost
                shown.setdefault(pick.n, []).append(i)
        return [(src, sorted(shown[src.n])) for src in evidence.sources if src.n in shown]

    def _header(self, src: Source, k: int | None = None) -> str:
        return self.source.format(n=k or src.n, title=src.paper.title, date=src.paper.date or "date unknown",
                                  sentences="").strip()

    def messages(self, question: str, evidence: Evidence,
                 context: list[tuple[Source, list[int]]] | None = None) -> list[dict[str, str]]:
        """The sources are numbered 1..m as shown (draft() maps the numbers back)."""
        context = self.context(question, evidence) if context is None else context
        sources = "\n\n".join(
            self.source.format(n=k, title=src.paper.title, date=src.paper.date or "date unknown",
                               sentences=" ".join(_clean(src.sentences[i]) for i in picks))
            for k, (src, picks) in enumerate(context, 1)
        )
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.user.format(sources=sources, question=question)},
        ]

    def draft(self, question: str, evidence: Evidence) -> Iterator[str]:
        context = self.context(question, evidence)
        if not context:  # no paper comes near the question: what the offline answer refuses too
            yield NO_ANSWER
            return
        messages = self.messages(question, evidence, context)
        shown = {src.n: [_clean(src.sentences[i]) for i in picks] for src, picks in context}
        # The header as shown, and its "title (date)" alone: SmolLM2 copied the latter.
        headers = {src.n: [self._header(src, k), f"{src.paper.title} ({src.paper.date or 'date unknown'})"]
                   for k, (src, _) in enumerate(context, 1)}
        numbers = {k: src.n for k, (src, _) in enumerate(context, 1)}
        beyond = max((s.n for s in evidence.sources), default=0)
        # A number the model was not shown must stay unknown to verify() after the mapping:
        # [7] of 5 stays 7; [4] of 3 shown (evidence source 4 was left out) becomes beyond + 4.
        markers = MarkerStream(lambda k: numbers.get(k, k if k > beyond else beyond + k))
        attribution = Attribution(shown)
        info: dict[str, object] = {}
        reply, checked = "", 0
        for token in self.client.stream(messages, info):
            text = attribution.feed(markers.feed(token))
            if text:
                reply += text
                yield text
            if len(reply) - checked >= PARTIAL_CHECK_CHARS:
                checked = len(reply)
                # Leaving the loop closes the stream, and the server stops generating.
                if problem := reply_problem(reply, shown, self.system, headers=headers, partial=True):
                    raise UnusableAnswer(f"The LLM's answer was unusable: {problem}")
        text = attribution.feed(markers.flush()) + attribution.flush()
        if text:
            reply += text
            yield text
        problem = reply_problem(reply, shown, self.system, truncated=info.get("finish_reason") == "length",
                                headers=headers)
        if problem:
            raise UnusableAnswer(f"The LLM's answer was unusable: {problem}")
        if _NO_ANSWER_VARIANT.search(reply) and NO_ANSWER not in reply:
            yield "\n" + NO_ANSWER  # "Insufficient sources." means what the pipeline looks for


class Attribution:
    """Small models often answer with a source's own words and no marker. A sentence
    without one that shares a run of ATTRIBUTE_WORDS consecutive words with a shown
    sentence gets that source's `[n]` after its full stop, as the text streams;
    verify() then checks it like any marker the model wrote (so the guarantee is the
    same: every [n] shown has a supporting quote)."""

    def __init__(self, shown: dict[int, list[str]]) -> None:
        self.grams = {n: {g for s in sentences for g in _grams(_words(s))} for n, sentences in shown.items()}
        self.sentence = ""  # the current sentence, already passed on
        self.held: str | None = None  # whitespace after a full stop, until the next character decides
        self.refusing = False  # a reply saying the sources are insufficient is not given citations

    def source(self, sentence: str) -> int | None:
        self.refusing = self.refusing or bool(_NO_ANSWER_VARIANT.search(sentence))
        if self.refusing or MARKER.search(sentence):
            return None
        mine = _grams(_words(sentence))
        scores = {n: len(mine & grams) for n, grams in self.grams.items()}
        best = max(scores, key=lambda n: (scores[n], -n), default=None)
        return best if best is not None and scores[best] >= 1 else None

    def feed(self, text: str) -> str:
        out: list[str] = []
        for ch in text:
            if self.held is not None:
                if ch.isspace():
                    self.held += ch
                    continue
                if ch == "[":  # the model's own marker after the full stop: the sentence goes on
                    out.append(self.held)
                    self.sentence += self.held
                else:
                    if (n := self.source(self.sentence)) is not None:
                        out.append(f" [{n}]")
                    out.append(self.held)
                    self.sentence = ""
                self.held = None
            if ch.isspace() and self.sentence[-1:] in (".", "!", "?"):
                self.held = ch
                continue
            out.append(ch)
            self.sentence += ch
        return "".join(out)

    def flush(self) -> str:
        n = self.source(self.sentence) if self.sentence.rstrip()[-1:] in (".", "!", "?") else None
        tail = f" [{n}]" if n is not None else ""
        tail += self.held or ""
        self.sentence, self.held = "", None
        return tail


def _grams(words: list[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + ATTRIBUTE_WORDS]) for i in range(len(words) - ATTRIBUTE_WORDS + 1)}


def _clean(sentence: str) -> str:
    """An abstract's own references ("RoPE [32]") would read as sources to the model."""
    return strip_markers(sentence).strip()


def _words(text: str) -> list[str]:
    """Every run of ASCII letters and digits, case-folded: how a reply's wording is
    compared with the sources' and the instructions (numbers count)."""
    return words(text.casefold(), ALNUM, keep_case=True)


def reply_problem(reply: str, shown: dict[int, list[str]], instructions: str = "", truncated: bool = False,
                  headers: dict[int, list[str]] | None = None, partial: bool = False) -> str | None:
    """Why the model's reply is not an answer, in words for the notice; None when it may
    be one (verification then checks every citation). `shown`: source n -> the
    sentences the model was given; `headers`: source n -> its header lines as shown.
    `partial`: the reply so far, mid-stream, checked only for what more text cannot
    mend (a copied source, a run-on list, an echo), so a reply going wrong is cut
    short instead of generated to the token limit."""
    text = reply.strip()
    if not text:
        return None if partial else "it was empty"
    markers = list(MARKER.finditer(text))
    prose = _words(_NO_ANSWER_VARIANT.sub(" ", claim_text(text)))
    if _NO_ANSWER_VARIANT.search(text) and not partial:
        if markers:
            return "it cited sources and also said they were insufficient"
        return None
    if len(markers) >= RUN_ON_MARKERS and len(prose) < WORDS_PER_MARKER * len(markers):
        return f"it was a run-on list of {len(markers)} citation markers"
    if markers and len(prose) < WORDS_PER_MARKER and not partial:
        return "it held citation markers and no answer"
    numbers = [n for m in markers for n in marker_numbers(m.group(1))]
    unknown = {n for n in numbers if n not in shown}
    if len(unknown) >= 3:
        return f"it cited {len(unknown)} sources that do not exist (only {len(shown)} were given)"
    if instructions:
        said = " ".join(prose)
        rule_words = _words(instructions)
        for i in range(len(rule_words) - ECHO_WORDS + 1):
            if " ".join(rule_words[i:i + ECHO_WORDS]) in said:
                return "it repeated the instructions instead of answering"
    low = " ".join(_words(text))
    for n, lines in (headers or {}).items():
        if any(line and " ".join(_words(line)) in low for line in lines):
            return f"it copied source {n} instead of answering"
    for n, sentences in shown.items():
        run = best = 0
        for sentence in sentences:
            words = " ".join(_words(sentence))
            run = run + 1 if words and words in low else 0
            best = max(best, run)
        if best >= COPIED_SENTENCES:
            return f"it copied source {n} instead of answering"
    if truncated and not partial:
        return "it was cut off at the token limit before it finished"
    return None
