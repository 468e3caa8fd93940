"""Citation checking, shared by both answerers: parse `[n]` markers, drop citations
to sources that were not provided, check each cited claim against the cited
paper's sentences, renumber in order of first appearance, and attach the quote
each citation rests on. Unsupported citations are removed from the text and
reported, so every marker a user sees points at a sentence that supports it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from assistant.models import Citation, Paper
from assistant.text import sentence_pieces
from assistant.words import WordSupport

MARKER = re.compile(r"\[(\d{1,3}(?:\s*[,;\-\u2013]\s*\d{1,3})*)\]")  # [1], [1, 2], [1-3]
MAX_RANGE = 20  # a range marker wider than this ([1-999]) is not expanded
_MARKUP = re.compile(r"[*_`#>]+|^\s*[-•]\s*", re.MULTILINE)


@dataclass(frozen=True, eq=False)
class Source:
    """One retrieved paper as the answer sees it, measured once per question
    (assistant/evidence.py): numbered for the answerer (1-based), its abstract
    sentences with their stored vectors and similarity to the question, and what
    retrieval measured of it. Verification needs only the first three (and the
    vectors spare embedding the abstract again)."""

    n: int
    paper: Paper
    sentences: list[str]
    vectors: np.ndarray | None = None  # stored sentence embeddings, rows in abstract order
    similarities: list[float] = field(default_factory=list)  # the question's similarity to each sentence
    part_similarities: list[float] = field(default_factory=list)  # best sentence similarity to each part of a comparison
    support: WordSupport | None = None  # how near its words come to the question's (assistant/words.py)
    keyword: float = 0.0  # its BM25 score (best unit)
    score: float = 0.0  # its fused retrieval score
    named: bool = False  # the question names it

    @property
    def best(self) -> float:
        """Its best sentence similarity to the question."""
        return max(self.similarities, default=0.0)


@dataclass
class Verified:
    text: str
    citations: list[Citation]
    removed: list[str] = field(default_factory=list)  # human-readable reasons
    supported_claims: int = 0
    cited_claims: int = 0

    @property
    def groundedness(self) -> float:
        """Share of cited answer sentences whose citations all hold."""
        return self.supported_claims / self.cited_claims if self.cited_claims else 0.0


Embed = Callable[[list[str]], np.ndarray]


def claim_text(sentence: str) -> str:
    return re.sub(r" ([.,;:!?])", r"\1", " ".join(_MARKUP.sub(" ", MARKER.sub(" ", sentence)).split()))


def strip_markers(text: str) -> str:
    """The text without `[n]` markers, e.g. an abstract's own references ("RoPE [32]"),
    which would otherwise read as citations once the text is in an answer."""
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]*" + MARKER.pattern, "", text))


def marker_numbers(group: str) -> list[int]:
    """The source numbers in a marker's inside: "1, 3" -> [1, 3]; "2-4" -> [2, 3, 4]."""
    out: list[int] = []
    for item in re.split(r"[,;]", group):
        ends = [int(x) for x in re.split(r"[\-\u2013]", item)]
        if len(ends) == 2 and ends[0] < ends[1] and ends[1] - ends[0] < MAX_RANGE:
            out.extend(range(ends[0], ends[1] + 1))
        else:
            out.extend(ends)
    return out


# Other shapes models write for a citation: [Source 1], [source 1, 2], (1), (Source 2), [^1],
# 【1】, 【1†source】, ［1］, [1 and 2], [Sources 1 & 3]. `normalize_markers` rewrites them as
# MARKER shapes so that verify() checks them like any other; abstracts keep their own
# parentheses, since only the LLM's text is normalised.
_PREFIX = r"(?:(?:sources?|src|papers?|refs?|references?|docs?|documents?|abstracts?|citations?|s)\s*[:#]?\s*|#|\^)"
_NUM = rf"{_PREFIX}?\d{{1,3}}(?:\s*\u2020[^\]\)\u3011\uff3d\n]{{0,20}})?"
_SEP = r"(?:\s*(?:[,;&\-\u2013\u2014]|\band\b|\bto\b)\s*)+"
_SHAPE = re.compile(
    rf"(?P<open>[\[\(\u3010\uff3b])\s*(?P<body>{_NUM}(?:{_SEP}{_NUM})*)\s*(?P<close>[\]\)\u3011\uff3d])",
    re.IGNORECASE,
)
_PAIRS = {"[": "]", "(": ")", "\u3010": "\u3011", "\uff3b": "\uff3d"}
OPENERS = "".join(_PAIRS)
_ITEM = re.compile(r"(\d{1,3})(?:\s*\u2020[^,;&]*)?|([\-\u2013\u2014]|\bto\b)|([,;&]|\band\b)", re.IGNORECASE)


def normalize_markers(text: str, renumber: Callable[[int], int] | None = None) -> str:
    """The LLM's citation markers, whatever their shape, as `[1]`, `[1, 2]` or `[1-3]`
    (with `renumber`, ranges are written out: `[2, 5, 3]`). A bare number in
    parentheses counts only where a citation stands (before punctuation, another
    marker or the line's end; after a sentence): "two goals: (1) speed" is an
    enumeration and stays as it is."""

    def rewrite(match: re.Match[str]) -> str:
        opener, closer, body = match.group("open"), match.group("close"), match.group("body")
        if _PAIRS[opener] != closer:
            return match.group(0)
        if opener == "(" and not re.search(r"[a-z#^]", body, re.IGNORECASE):
            after = text[match.end():]
            before = text[max(0, match.start() - 3):match.start()]
            at_citation = re.match(r"[ \t]*(?:[.,;:!?\[\n]|$)", after) is not None
            after_sentence = (re.search(r"[.!?]\s*$", before) is not None
                              and not re.search(r"\b(?:Eqs?|Figs?|Sec|Tab|No|cf)\.\s*$", text[:match.start()]))
            if not (at_citation or after_sentence):
                return match.group(0)
        items: list[str] = []
        pending_range = False
        for num, dash, _comma in _ITEM.findall(body):
            if num:
                if pending_range and items:
                    items[-1] = f"{items[-1]}-{num}"
                else:
                    items.append(num)
                pending_range = False
            elif dash:
                pending_range = True
        if renumber is not None:
            items = [str(renumber(n)) for n in marker_numbers(", ".join(items))]
        return f"[{', '.join(items)}]"

    return _SHAPE.sub(rewrite, text)


class MarkerStream:
    """`normalize_markers` over a token stream: text is passed on as it comes, except
    from an opening bracket that is not closed yet (or closed by the last character,
    when what follows decides), which waits for at most `HOLD` characters. `renumber`
    maps the numbers the model saw to the caller's."""

    HOLD = 40

    def __init__(self, renumber: Callable[[int], int] | None = None) -> None:
        self._buffer = ""
        self._sent = ""
        self._renumber = renumber

    def feed(self, text: str) -> str:
        self._buffer += text
        cut = len(self._buffer)
        last = max(self._buffer.rfind(o) for o in OPENERS)
        if last >= 0 and len(self._buffer) - last <= self.HOLD:
            tail = self._buffer[last:]
            closer = max(tail.rfind(c) for c in _PAIRS.values())
            if closer < 0 or not tail[closer + 1:].strip():  # what follows the closer decides "(1)"
                cut = last
        if cut == 0:
            return ""
        # A match never spans the cut: the held text starts at an unclosed opener.
        ready, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return self._emit(ready)

    def flush(self) -> str:
        ready, self._buffer = self._buffer, ""
        return self._emit(ready)

    def _emit(self, ready: str) -> str:
        """Normalised with the characters before it, which decide "(1)" after a sentence."""
        context = self._sent
        out = normalize_markers(context + ready, self._renumber)
        out = out[len(context):] if out.startswith(context) else normalize_markers(ready, self._renumber)
        self._sent = (self._sent + out)[-12:]
        return out


def best_support(claim: str, sentences: list[str], sentence_vectors: np.ndarray | None,
                 claim_vector: np.ndarray | None) -> tuple[int, float]:
    """Index of the paper sentence that best supports the claim, and how well.
    A claim that quotes a sentence verbatim is supported fully without a model."""
    low = claim.casefold()
    for i, s in enumerate(sentences):
        if _quotes(low, [s]):
            return i, 1.0
    if claim_vector is None or sentence_vectors is None or not len(sentences):
        return -1, 0.0
    sims = sentence_vectors @ claim_vector
    i = int(np.argmax(sims))
    return i, float(sims[i])


def verify(text: str, sources: list[Source], embed: Embed, threshold: float) -> Verified:
    """The sources' stored sentence vectors spare re-embedding their abstracts; the
    claims are embedded only when none quotes its source verbatim."""
    by_n = {s.n: s for s in sources}
    pieces = sentence_pieces(text)
    claim_vecs, sent_vecs = _vectors(pieces, sources, embed)
    check = _Check(by_n, len(sources), threshold, sent_vecs, claim_vecs)
    checked = "".join(check.piece(p) for p in pieces)
    return Verified(checked.strip(), check.citations(), check.removed, check.supported, check.cited)


def _vectors(pieces: list[str], sources: list[Source],
             embed: Embed) -> tuple[dict[str, np.ndarray], dict[int, np.ndarray]]:
    """Claim and source-sentence vectors (the sources' stored ones first), embedded only
    when needed: a claim needs the model unless it quotes a sentence of every source it cites."""
    by_n = {s.n: s for s in sources}
    claims = [(claim_text(p), {n for m in MARKER.finditer(p) for n in marker_numbers(m.group(1))})
              for p in pieces if MARKER.search(p)]
    need_model = [c for c, cited in claims
                  if c and not all(_quotes(c, by_n[n].sentences) for n in cited if n in by_n)]
    claim_vecs = dict(zip(need_model, embed(need_model))) if need_model else {}
    sent_vecs = {src.n: src.vectors for src in sources if src.vectors is not None}
    if need_model:
        for src in sources:
            if src.n not in sent_vecs:
                sent_vecs[src.n] = embed(src.sentences)
    return claim_vecs, sent_vecs


@dataclass
class _Check:
    """Checks the markers of one answer piece by piece, renumbering the ones that hold
    in order of first appearance and keeping each source's best-supported quote."""

    by_n: dict[int, Source]
    provided: int
    threshold: float
    sent_vecs: dict[int, np.ndarray]
    claim_vecs: dict[str, np.ndarray]
    removed: list[str] = field(default_factory=list)
    order: dict[int, int] = field(default_factory=dict)  # original n -> new n
    quotes: dict[int, tuple[int, float]] = field(default_factory=dict)  # original n -> (sentence index, similarity)
    supported: int = 0
    cited: int = 0

    def piece(self, piece: str) -> str:
        """The piece with every marker rewritten to the sources that support its claim."""
        claim = claim_text(piece)
        outcomes: list[bool] = []
        new_piece = MARKER.sub(lambda m: self._marker(m, claim, outcomes), piece)
        if outcomes:
            self.cited += 1
            self.supported += int(all(outcomes))
        return re.sub(r"[ \t]+([.,;:])", r"\1", re.sub(r"[ \t]{2,}", " ", new_piece))

    def _marker(self, match: re.Match[str], claim: str, outcomes: list[bool]) -> str:
        kept: list[str] = []
        for n in marker_numbers(match.group(1)):
            ok = self._holds(n, claim)
            outcomes.append(ok)
            if ok and str(self.order[n]) not in kept:
                kept.append(str(self.order[n]))
        return f"[{', '.join(kept)}]" if kept else ""

    def _holds(self, n: int, claim: str) -> bool:
        if n not in self.by_n:
            self.removed.append(f"[{n}] removed: there is no source {n} (only {self.provided} were provided)")
            return False
        idx, sim = best_support(claim, self.by_n[n].sentences, self.sent_vecs.get(n), self.claim_vecs.get(claim))
        if sim < self.threshold:
            self.removed.append(
                f"[{n}] removed: {self.by_n[n].paper.title!r} does not support {claim[:80]!r} (similarity {sim:.2f})"
            )
            return False
        self.order.setdefault(n, len(self.order) + 1)
        if n not in self.quotes or sim > self.quotes[n][1]:
            self.quotes[n] = (idx, sim)
        return True

    def citations(self) -> list[Citation]:
        out = []
        for n, new in sorted(self.order.items(), key=lambda kv: kv[1]):
            src, (idx, sim) = self.by_n[n], self.quotes[n]
            out.append(Citation(n=new, paper_id=src.paper.paper_id, title=src.paper.title,
                                quote=src.sentences[idx] if idx >= 0 else "", url=src.paper.url,
                                sentence_index=idx, support=round(sim, 4), date=src.paper.date))
        return out


def _quotes(claim: str, sentences: list[str]) -> bool:
    """Whether the claim (as `claim_text` gives it) contains one of the sentences, compared
    the same way: markers and markup dropped, case folded."""
    low = claim.casefold()
    for s in sentences:
        norm = claim_text(s).casefold().rstrip(".")
        if norm and norm in low:
            return True
    return False
