"""Reading a question in a conversation: a follow-up about the paper under
discussion, or a question of its own.

The rule (`follows_up`), decided from evidence rather than from the words used:
a question that names a paper or an acronym is its own question, always. Otherwise
it is a follow-up about the paper under discussion (the previous answer's cited
papers) when it needs the conversation:

- it is thin: THIN_QUESTION content words or fewer, too little of its own for
  retrieval to go on ("Which datasets did they use?", "And which model sizes?"),
  and it refers back or continues, or that paper comes within THIN_MARGIN of what
  it finds alone ("Explain speculative decoding" after AdamP is thin but new); or
- that paper matches it about as well as anything it finds alone: its best sentence
  within FOLLOW_UP_MARGIN of the alone search's best ("How does it compare with Adam
  in BF16 on LLaMA-1B?" after Stable-SPAM); or
- it refers back (it/its/they/them/their/this/these/those) and, asked alone, finds
  nothing confidently (best sentence below UNSURE_ALONE: "Does it run on Intel's
  Loihi chip?" after the single-timestep spiking paper).

"Which papers show that diffusion models can be quantized?" after AdamP has content
of its own and finds the quantization papers far above anything AdamP says, so it is
a new question whatever "that" means.

Chosen on the tune part of evals/questions/conversations.jsonl (17 conversations,
offline, hybrid), decisions on the turns after the first (read as a follow-up /
turns of that kind):

| rule | follow-ups | unanswerable about the previous paper | switches (hijack risk) | off topic |
|---|---|---|---|---|
| word list (before) | 23/27 | 5/5 | 5/18 | 0/3 |
| thin only | 23/27 | 4/5 | 0/18 | 0/3 |
| margin 0.10 only | 13/27 | 0/5 | 0/18 | 0/3 |
| thin or margin | 26/27 | 4/5 | 0/18 | 0/3 |
| **thin or margin or refers back and unsure (shipped)** | **26/27** | **5/5** | **0/18** | **0/3** |

End to end (evals/reports/conversations, same run; tune / heldout): follow-up R@1
0.96 / 1.00 (word list 0.85 / 0.93), follow-up fact recall 0.96 / 0.93 (0.74 /
0.73), switch hijack 0 / 0 (0.17 / 0.11), switch R@1 1.00 / 1.00 (asked alone 1.00
/ 1.00), unanswerable turns refused or "does not mention" 0.88 / 1.00 (0.25 / 0.33).

A follow-up is answered from the paper under discussion (`Reading.papers`, pinned
first like a named paper); where that abstract does not speak of what is asked,
`missing_phrase` names what it does not mention, for the plain "does not mention" answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assistant.text import words
from assistant.words import content_words

if TYPE_CHECKING:
    from assistant.models import Answer

# The follow-up rule before issue 24, kept only as the evaluation's baseline
# (Settings.follow_up_rule = "word_list"): any question of 16 words or fewer with one of these.
WORD_LIST = re.compile(
    r"^(and|also|what about|how about|then|so|but)\b|\b(it|its|it's|they|them|their|this|that|these|those|the paper|the method|the model)\b",
    re.IGNORECASE,
)
WORD_LIST_MAX_WORDS = 16

# A question with at most this many content words (assistant/words.py) has too little
# of its own for retrieval to go on: "Which datasets did they use?", "And on video?".
THIN_QUESTION = 3
# A follow-up when the paper under discussion's best sentence is within this of the
# best sentence the question finds alone (cosine similarity, MiniLM).
FOLLOW_UP_MARGIN = 0.10
# Asked alone, a question whose best sentence anywhere is below this found nothing
# confidently; with a word referring back, it is about the paper under discussion.
UNSURE_ALONE = 0.45
REFERS_BACK = re.compile(r"\b(it|its|they|them|their|this|these|those)\b", re.IGNORECASE)
# A thin question that neither refers back nor continues ("And which model sizes?")
# is a follow-up only when the paper under discussion comes within this of what it
# finds alone: "Explain speculative decoding" after AdamP (0.60 alone, 0.23 in AdamP)
# is a new question however few its words.
CONTINUES = re.compile(r"^\s*(and|also|what about|how about|then|so|but)\b", re.IGNORECASE)
THIN_MARGIN = 0.2
# Asking which of the papers under discussion do something: "Which of them learn
# delays?", "Do any of these use ImageNet?", "Which one was trained on video?".
NARROWS = re.compile(r"\b(which|what|any|how many)\s+(one|ones|of (them|these|those|the (papers|works|methods)))(?![\w-])",
                     re.IGNORECASE)
_NARROWING_WORDS = frozenset("one ones".split())
# Narrowing a list needs the word itself or a form of it ("image" for "images": word
# support 0.85-1.0); 0.55 lets through neighbours that every paper of a field has
# ("latency" for "delays": 0.6-0.7 in all seven spiking-network papers).
NARROW_SUPPORT = 0.8
# Referring back to one paper: after a list answer, the paper it led with.
ONE_PAPER = re.compile(r"\b(it|its|it's|this (paper|method|model|work|approach))\b", re.IGNORECASE)
# The paper under discussion answers a follow-up when every content word of the
# question comes this near a word of its title and abstract (word vectors, assistant/words.py).
WORD_SUPPORT = 0.55
# Words that frame a follow-up ("did they *try* it", "how *much* does it *save*"), not its
# topic, and the kinds of thing an abstract answers by naming instances ("which
# *datasets*": TriviaQA and HumanEval; "what *results*", "how large a *gain*": the
# figures) and seldom names as such. Without them "What speedup does it report?"
# got "does not mention report".
_ASKING_WORDS = frozenset(
    "try tried apply applied work works worked run runs handle handles test tested evaluate evaluated support "
    "supports train trained compare compared beat beats reach reaches get gets need needs cover covers include "
    "includes mention mentions generate generated been also well much many long take takes save saves written "
    "change changes learned offer offers report reports reported claim claims claimed achieve achieves achieved "
    "obtain obtains obtained demonstrate demonstrates demonstrated describe describes described find finds found "
    "say says state states measure measured result results dataset datasets benchmark benchmarks experiment "
    "experiments metric metrics baseline baselines finding findings gain gains improvement improvements "
    # a ranking asked of the papers ("Which of them needs the *least* training data?")
    "least most fewest fewer less more".split()
)
_TRAILING = frozenset("model models method methods network networks".split())

# Pointing at papers of the previous answer by place: "And the second one?", "Tell me
# more about the last paper", "What does [2] use?", "Compare the first two". Without
# a following noun the ordinal must end the phrase, so "the first token" points at nothing.
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
             "ninth": 9, "tenth": 10, "last": -1}
_COUNTS = {"two": 2, "three": 3, "four": 4, "five": 5, "2": 2, "3": 3, "4": 4, "5": 5}
# "The first paper to use diffusion for video" asks for the earliest, not a place.
_THING = (r"(?:one|ones|papers?|works?|methods?|approach(?:es)?|articles?|stud(?:y|ies)|results?|entr(?:y|ies))\b"
          r"(?!\s+(?:to|that|which|who|where|ever)\b)")
_ORDINAL = re.compile(r"\bthe\s+(" + "|".join(_ORDINALS) + r")(?:\s+(" + "|".join(_COUNTS) + r"))?"
                      r"(?:\s+" + _THING + r"|(?=\s*(?:[?.!,;:]|$|\s+(?:and|or|in|on|from|about|mentioned|cited|"
                      r"listed|you)\b)))", re.IGNORECASE)
_CITED = re.compile(r"\[(\d{1,2})\]|(?:\b(?:paper|source|reference|citation|number|no\.)|#)\s*(\d{1,2})\b",
                    re.IGNORECASE)


@dataclass(frozen=True)
class Reading:
    """How a question is read in its conversation. `papers`: ids of the papers under
    discussion (the previous answer's cited papers, first cited first); `about`: the
    first one's short name, for the notice; `besides`: the question asks for papers
    other than those, on their subject."""

    follow_up: bool
    papers: list[str] = field(default_factory=list)
    about: str = ""
    besides: bool = False  # asks for other papers on their subject ("Are there other fast samplers?")


def _latest_citing(history: Sequence[tuple[str, Answer]]) -> Answer | None:
    """The latest answer that cites a paper: a refusal in between (an off-topic
    question) does not end the discussion of the papers before it."""
    return next((answer for _, answer in reversed(history) if any(c.paper_id for c in answer.citations)), None)


def discussed(history: Sequence[tuple[str, Answer]]) -> list[tuple[str, str]]:
    """(paper id, title) of the papers the conversation is about: those the latest
    answer that cites anything cites, in citation order."""
    answer = _latest_citing(history)
    return [] if answer is None else list(dict.fromkeys((c.paper_id, c.title) for c in answer.citations if c.paper_id))


def pointed_at(question: str, history: Sequence[tuple[str, Answer]]) -> list[str]:
    """Ids of the papers the question points at by place in an earlier answer ("the
    second one", "the last paper", "the first two") or by citation number ("[2]",
    "paper 3"): in the latest answer that has that place (a place, in the latest
    answer citing several papers), so "And the last one?" after a follow-up about
    the second still means the list's last. Empty when it points at nothing, or at a
    place no answer has."""
    numbers = [int(m.group(1) or m.group(2)) for m in _CITED.finditer(question)]
    places = [(_ORDINALS[m.group(1).lower()], _COUNTS.get((m.group(2) or "").lower(), 1))
              for m in _ORDINAL.finditer(question)]
    if not numbers and not places:
        return []
    for _, answer in reversed(history):
        if numbers:
            by_number = {c.n: c.paper_id for c in answer.citations if c.paper_id}
            if all(n in by_number for n in numbers):
                return list(dict.fromkeys(by_number[n] for n in numbers))
            continue
        papers = list(dict.fromkeys(c.paper_id for c in answer.citations if c.paper_id))
        if len(papers) > 1 and (found := _at_places(places, papers)):  # a place needs a list
            return found
    return []


def _at_places(places: list[tuple[int, int]], papers: list[str]) -> list[str]:
    """The papers at these (place, count) of a list (place -1: the last), or none when
    the list is too short for one of them."""
    found: list[str] = []
    for place, count in places:
        if count > len(papers) or place > len(papers):
            return []
        if place == -1:
            found += papers[-count:]
        else:
            found += papers[place - 1:place - 1 + count] if place == 1 else [papers[place - 1]]
    return list(dict.fromkeys(found))


def without_pointers(question: str) -> str:
    """The question less its pointers ("the second one", "[2]"): what it asks of them."""
    return _CITED.sub(" ", _ORDINAL.sub(" ", question))


def listed(history: Sequence[tuple[str, Answer]]) -> bool:
    """Whether the papers under discussion came from a list answer ("Which papers ...?"):
    its shape, or (a client that passes back only text and citations, the OpenAI face)
    more than the two papers a comparison cites."""
    answer = _latest_citing(history)
    return answer is not None and (answer.shape == "list" or len({c.paper_id for c in answer.citations}) > 2)


def narrowed(question: str, supports: dict[str, dict[str, float]]) -> list[str]:
    """For "Which of them ...?": the papers under discussion (id -> its word support,
    in discussion order) that name every thing the question asks about, in so many
    words (NARROW_SUPPORT); all of them when none does, so the answer says what the
    first does not mention rather than pick one at random."""
    asked = [w for w in content_words(question) if w not in _ASKING_WORDS and w not in _NARROWING_WORDS]
    if not asked or not NARROWS.search(question):
        return list(supports)
    return [pid for pid, support in supports.items()
            if all(support.get(w, 0.0) >= NARROW_SUPPORT for w in asked)] or list(supports)


def word_list_follows_up(question: str) -> bool:
    """The pre-issue-24 rule (the baseline): a short question holding a listed word."""
    return bool(WORD_LIST.search(question)) and len(question.split()) <= WORD_LIST_MAX_WORDS


def follows_up(question: str, alone_best: float, discussed_best: float) -> bool:
    """The evidence rule (module docstring): a thin question, or one the paper under
    discussion matches about as well as anything it finds alone, or one that refers
    back and finds nothing confidently alone."""
    refers = bool(REFERS_BACK.search(question) or CONTINUES.search(question))
    thin = len(content_words(question)) <= THIN_QUESTION and (refers or discussed_best >= alone_best - THIN_MARGIN)
    return (thin or discussed_best >= alone_best - FOLLOW_UP_MARGIN
            or (alone_best < UNSURE_ALONE and bool(REFERS_BACK.search(question))))


def missing_phrase(question: str, support: dict[str, float]) -> str:
    """What the question asks about that the paper does not mention, in the question's
    own words: the run of adjacent content words holding the first word the paper's
    words come nowhere near (`support`: content word -> its best similarity to a word
    of the paper). Empty when the paper speaks of every word."""
    weak = [w for w in content_words(question) if w not in _ASKING_WORDS and support.get(w, 1.0) < WORD_SUPPORT]
    if not weak:
        return ""
    tokens = [t for t in words(question, keep_case=True) if t.lower() != "s"]  # "Intel's Loihi chip" is one phrase
    keep = {w for w in content_words(question) if w not in _ASKING_WORDS}
    start = next(i for i, t in enumerate(tokens) if t.lower() == weak[0])
    lo = start
    while lo > 0 and tokens[lo - 1].lower() in keep:
        lo -= 1
    hi = start
    while hi + 1 < len(tokens) and (tokens[hi + 1].lower() in keep or tokens[hi + 1].lower() in _TRAILING):
        hi += 1
    return " ".join(tokens[lo:hi + 1])
