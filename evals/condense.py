"""The `condense` configuration of the conversation evaluation (issue 24, item 5):
an LLM rewrites each question asked after the first into a standalone question,
the condense-question convention of llama-index's CondenseQuestionChatEngine
(prompts: evals/prompts/condense_system.md and condense_user.md, its default
prompt adapted: the instruction and one example as the system message, which the
packaged 0.5B model follows where one user message made it echo the question), and the
rewrite is answered with no history. A rewrite that cannot be used (an error or a
timeout, an empty reply, a reply cut off or much longer than a question, one with
no content words or none of the message's own) falls back to the shipped evidence rule for that turn, and the
fallback is counted.

It lives in the lab, not in the runtime: measured with the packaged Qwen model
against the evidence rule, it did not do at least as well on every headline
(evals/README.md, "Conversations", has the figures and the decision).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.config import Settings
from assistant.llm import LLMClient, LLMError
from assistant.words import content_words

if TYPE_CHECKING:
    from assistant.pipeline import Turn

PROMPTS = Path(__file__).parent / "prompts"
HISTORY_TURNS = 3  # the last turns shown to the model: a 0.5B model on 2 cores reads ~60-100 tokens/s
CITED_TITLES = 2  # titles of an answer's cited papers shown for it (what "it" and "they" point at)
MAX_TOKENS = 64  # a standalone question is one line; more is a ramble
MAX_WORDS = 40  # a rewrite longer than this is not a question to search with
TIMEOUT = 60.0  # seconds, what `assistant llm serve` recommends for the local model; slower falls back
_LABEL = re.compile(r"^\s*(standalone question|question|rewritten question)\s*:\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Rewrite:
    """The question to search with; `fallback` says why the evidence rule was used instead."""
    question: str | None
    fallback: str | None
    seconds: float


def history_text(history: Sequence[Turn]) -> str:
    """The chat history as the condense prompt shows it: each question, and for each
    answer the papers it cited (an answer's quotes would cost the small model seconds)."""
    lines = []
    for turn in history[-HISTORY_TURNS:]:
        titles = [c.title for c in turn.answer.citations][:CITED_TITLES]
        said = f"Answered from: {'; '.join(dict.fromkeys(titles))}" if titles else "Found no answer in the papers."
        lines += [f"Human: {turn.question}", f"Assistant: {said}"]
    return "\n".join(lines)


def usable(reply: str, finish_reason: str | None, message: str = "") -> tuple[str | None, str | None]:
    """(the standalone question, None) or (None, why it cannot be used). A rewrite that
    keeps none of the message's own content words is not a rewrite of it: on the tune
    conversations the packaged 0.5B model often returned an earlier question instead."""
    if finish_reason == "length":
        return None, "too long"
    lines = [line for line in reply.strip().splitlines() if line.strip()]
    if not lines:
        return None, "empty"
    text = _LABEL.sub("", lines[0]).strip().strip("\"'`").strip()
    if not text:
        return None, "empty"
    if len(text.split()) > MAX_WORDS:
        return None, "too long"
    words = content_words(text)
    if not words:
        return None, "no content words"
    own = content_words(message)
    if own and not set(own) & set(words):
        return None, "ignores the message"
    return text, None


class Condenser:
    """Rewrites follow-ups through the house's bounded client; never raises."""

    def __init__(self, settings: Settings, timeout: float = TIMEOUT) -> None:
        bounded = settings.model_copy(update={"llm_max_tokens": MAX_TOKENS, "llm_temperature": 0.0, "llm_retries": 0,
                                              "llm_timeout": min(settings.llm_timeout, timeout)})  # no retry: fall back
        self.client = LLMClient(bounded)
        self.system = (PROMPTS / "condense_system.md").read_text(encoding="utf-8").strip()
        self.user = (PROMPTS / "condense_user.md").read_text(encoding="utf-8").strip()

    def rewrite(self, question: str, history: Sequence[Turn]) -> Rewrite:
        t0 = time.perf_counter()
        messages = [{"role": "system", "content": self.system},
                    {"role": "user", "content": self.user.format(history=history_text(history), question=question)}]
        info: dict[str, object] = {}
        try:
            reply = "".join(self.client.stream(messages, info))
        except LLMError as exc:
            reason = "timeout" if "timed out" in str(exc) else "empty" if "empty answer" in str(exc) else "error"
            return Rewrite(None, reason, time.perf_counter() - t0)
        finish = info.get("finish_reason")
        text, why = usable(reply, finish if isinstance(finish, str) else None, question)
        return Rewrite(text, why, time.perf_counter() - t0)
