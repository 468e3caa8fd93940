"""What to do with a question once its signals are measured: answer, answer with a
caution, refuse, or, after an LLM draft, keep it, fall back to the offline answer or
refuse. Pure functions of the signals, so the whole policy reads in one place and is
tested as a table without an index or a model (tests/test_decide.py);
`pipeline.Assistant.stream` only measures the signals, runs the stages and emits
events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from assistant.models import Notice

CAUTION_NOTICE = ("Low confidence: these are the closest papers in the corpus, but none may do exactly what "
                  "you asked.")
# When the LLM finds no answer but the abstention model is confident there is one,
# the user gets the offline answer under this caution rather than a refusal: the
# packaged 0.5B model said INSUFFICIENT_SOURCES on answerable questions as often as
# on near misses (README, LLM mode), and a strong model's doubt is worth showing
# beside the passages, not instead of them.
LLM_DOUBT_NOTICE = ("The LLM found no answer in these sources, so this is the offline answer, quoting the passages "
                    "that come closest: they may not say exactly what you asked.")
LANGUAGE_NOTICE = ("This question does not look like English, which the search model reads best, so the papers "
                   "it found may miss; asking in English usually finds more.")
UNVERIFIED_NOTICE = "The LLM's answer carried no citation the sources support; showing the offline answer instead."


@dataclass(frozen=True)
class Signals:
    """What the pipeline measured about one question."""

    answerability: float  # the abstention model's probability that the corpus answers it
    named: bool = False  # the question names a paper (always answered)
    readable: bool = True  # in a language the embedding model reads (else never refused by a model that cannot read it)
    follow_up_about: str | None = None  # the paper a follow-up was read about
    not_in_paper: str | None = None  # "The abstract of X does not mention Y.": a follow-up its paper does not answer
    besides: str | None = None  # the papers a question asking for others leaves out ("DPM-Solver and 2 more")


@dataclass(frozen=True)
class Thresholds:
    refuse: float  # below: refused
    caution: float  # below (and not named): answered with CAUTION_NOTICE


@dataclass(frozen=True)
class Decision:
    action: Literal["answer", "refuse"]
    notices: list[Notice] = field(default_factory=list)
    confident: bool = False  # confident enough to outvote an LLM that finds nothing in the sources
    use_llm: bool = False


def decide(signals: Signals, thresholds: Thresholds, mode: Literal["offline", "llm"]) -> Decision:
    """Refuse below the refusal threshold (a model that cannot read the question never
    refuses it); answer with a caution below the caution threshold; a question that
    names a paper is always answered, confidently. A follow-up its paper does not
    answer gets the plain "does not mention" answer, never an LLM draft."""
    judged = signals.named or signals.readable
    notices = [] if judged else [Notice(kind="language", message=LANGUAGE_NOTICE)]
    if signals.follow_up_about:
        notices.append(Notice(kind="follow_up", message=f"Read as a follow-up about {signals.follow_up_about}."))
    if signals.besides:
        notices.append(Notice(kind="follow_up", message=f"Read as asking for papers besides {signals.besides}."))
    if judged and not signals.named and signals.answerability < thresholds.refuse:
        return Decision("refuse", notices)
    if signals.not_in_paper:
        notices.append(Notice(kind="not_in_paper", message=signals.not_in_paper))
    confident = signals.named or (judged and signals.answerability >= max(thresholds.refuse, thresholds.caution))
    if judged and not confident:
        notices.append(Notice(kind="caution", message=CAUTION_NOTICE))
    return Decision("answer", notices, confident, use_llm=mode == "llm" and not signals.not_in_paper)


@dataclass(frozen=True)
class LLMOutcome:
    """How the LLM's draft went: `verified` (it carries supported citations),
    `no_answer` (it said the sources do not answer), `unverified` (no citation
    survived), `unusable` (not an answer at all) or `failed` (the endpoint failed)."""

    kind: Literal["verified", "no_answer", "unverified", "unusable", "failed"]
    reason: str = ""  # the one-line reason of `unusable` and `failed`
    partial: bool = False  # `failed` after some text was streamed


# Said when streamed draft text is taken back; a front end that never showed the
# draft (the OpenAI face withholds it) drops this phrase.
PARTIAL_DISCARDED = " (the partial answer above was discarded)"


def after_llm(outcome: LLMOutcome, confident: bool) -> tuple[Literal["llm", "offline", "refuse"], Notice | None]:
    """Keep the LLM's answer, fall back to the offline one (saying why), or refuse: a
    draft that finds nothing refuses only when the pipeline is not confident itself."""
    instead = "showing the offline answer instead"
    if outcome.kind == "verified":
        return "llm", None
    if outcome.kind == "no_answer":
        if confident:
            return "offline", Notice(kind="caution", message=LLM_DOUBT_NOTICE)
        return "refuse", Notice(kind="llm_insufficient", message="The LLM found no answer in the sources.")
    if outcome.kind == "unverified":
        return "offline", Notice(kind="llm_unusable", message=UNVERIFIED_NOTICE)
    if outcome.kind == "unusable":
        return "offline", Notice(kind="llm_unusable", message=f"{outcome.reason}; {instead}.")
    partial = PARTIAL_DISCARDED if outcome.partial else ""
    return "offline", Notice(kind="llm_fallback", message=f"{outcome.reason}; {instead}{partial}.")
