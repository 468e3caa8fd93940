"""The facade every front end calls (CLI, Gradio UI, HTTP API, evaluation runner),
so there is exactly one path from a question to an answer."""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from rapidfuzz import fuzz, process

from assistant.abstain import AbstentionModel, question_signals
from assistant.answer import NO_ANSWER, LLMAnswerer, OfflineAnswerer, UnusableAnswer, short_name
from assistant.citations import Verified, strip_markers, verify
from assistant.config import NO_ENDPOINT, Settings
from assistant.decide import LLMOutcome, Signals, Thresholds, after_llm, decide
from assistant.conversation import (NARROWS, ONE_PAPER, THIN_QUESTION, Reading, discussed, follows_up, listed,
                                    missing_phrase, narrowed, pointed_at, without_pointers, word_list_follows_up)
from assistant.corpus import normalize_title
from assistant.evidence import Evidence, gather, question_vector
from assistant.focus import (ASKS_FOR_LISTING, COMPARE, asks_about_corpus, asks_for_list, asks_for_others,
                             asks_for_several, listing_note, mentioning, side_note)
from assistant.llm import LLMClient, LLMError
from assistant.models import Answer, Hit, Notice, Paper
from assistant.names import paper_names
from assistant.retrieve import (
    NAME_BONUS,
    Filters,
    Index,
    Ranking,
    RetrieverName,
    date_notice,
    date_phrase,
    exclusion_notice,
    exclusion_phrase,
    mentions,
    open_index,
)
from assistant.spelling import corrected, corrections, spelling_notice
from assistant.text import title_rest
from assistant.topics import CorpusMap, read_cached
from assistant.words import content_words


class QuestionError(ValueError):
    """Input the assistant will not process; the message says why and what to do."""


class QuestionTooLong(QuestionError):
    """A question over `max_question_chars` (the HTTP front ends answer it with 413)."""


class UnknownPaper(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class Event:
    """One step of a streamed answer: text tokens, a notice, or the final answer."""

    kind: Literal["token", "notice", "reset", "answer"]
    text: str = ""
    answer: Answer | None = None
    notice: Notice | None = None


@dataclass
class AnswerReader:
    """Reads one answer's events the way every front end must. A "reset" takes back
    the text streamed so far (an LLM draft replaced by its verified text, a fallback
    or a refusal), so only the text after the last reset belongs to the answer, and
    it is final only with the "answer" event; `draft` keeps the text a reset took back."""

    text: str = ""
    draft: str = ""
    notices: list[Notice] = field(default_factory=list)
    answer: Answer | None = None

    def read(self, event: Event) -> Event:
        if event.kind == "reset":
            self.draft, self.text = self.draft or self.text, ""
        elif event.kind == "token":
            self.text += event.text
        elif event.kind == "notice" and event.notice is not None:
            self.notices.append(event.notice)
        elif event.kind == "answer" and event.answer is not None:
            self.answer = event.answer
        return event


def read_answer(events: Iterable[Event]) -> Answer:
    """The final Answer of an event stream (what `Assistant.ask` returns)."""
    reader = AnswerReader()
    for event in events:
        reader.read(event)
        if reader.answer is not None:
            return reader.answer
    raise RuntimeError("the pipeline ended without an answer")  # unreachable by construction


@dataclass
class Measured:
    """What the pipeline measured of one question: what the decision reads and the
    answer is built from."""

    ranking: Ranking
    evidence: Evidence
    signals: Signals
    declined: tuple[str, str] | None = None  # a follow-up its paper does not answer: (notice, plain answer)


@dataclass
class _Output:
    """One answer's bookkeeping while it streams: its notices, its timings and the parts
    of the final `Answer`."""

    t0: float
    qid: str | None
    question: str = ""
    notices: list[Notice] = field(default_factory=list)
    found: Measured | None = None
    t_retrieved: float = 0.0
    llm_draft: str | None = None

    def measured(self, found: Measured) -> None:
        self.found, self.t_retrieved = found, time.perf_counter()

    def notice(self, notice: Notice) -> Event:
        self.notices.append(notice)
        return Event("notice", notice.message, notice=notice)

    def answer(self, text: str, abstained: bool, mode: Literal["offline", "llm"],
               verified: Verified | None = None) -> Answer:
        assert self.found is not None, "measured before answered"
        hits, end = self.found.ranking.hits, time.perf_counter()
        listed = asks_for_list(self.question, len(self.found.evidence.named)) and not abstained
        return Answer(
            id=self.qid, question=self.question, answer=text, abstained=abstained,
            citations=verified.citations if verified else [], retrieved=hits, mode=mode,
            timings_ms={"retrieve": (self.t_retrieved - self.t0) * 1000, "answer": (end - self.t_retrieved) * 1000,
                        "total": (end - self.t0) * 1000},
            notices=self.notices, suggestions=hits[:3] if abstained else [],
            removed_citations=verified.removed if verified else [],
            answerability=self.found.signals.answerability, shape="list" if listed else "text",
            llm_draft=self.llm_draft,
        )

    def refuse(self, mode: Literal["offline", "llm"], drafted: bool) -> Iterator[Event]:
        assert self.found is not None, "measured before refused"
        answer = self.answer(abstain_text(self.found.ranking.hits[:3]), True, mode)
        if drafted:
            yield Event("reset")
        yield Event("token", answer.answer)
        yield Event("answer", answer=answer)

    def about_corpus(self, text: str) -> Iterator[Event]:
        """The answer to a question about the collection itself: its figures, no sources."""
        self.measured(Measured(Ranking(hits=[], query_vector=None), Evidence([]), Signals(answerability=1.0)))
        yield Event("token", text)
        yield Event("answer", answer=self.answer(text, False, "offline"))

    def final(self, verified: Verified, mode: Literal["offline", "llm"], index: Index) -> Iterator[Event]:
        """The verified answer, after what the listing says of its first paper when the
        question asks who wrote it, where or when."""
        first = verified.citations[0]
        if note := listing_note(self.question, index.papers[first.paper_id], f"“{short_name(first.title)}”"):
            yield self.notice(Notice(kind="listing", message=note))
        assert self.found is not None, "measured before answered"
        sources = self.found.evidence.sources
        for name in self.found.evidence.unnamed:
            yield self.notice(Notice(kind="unnamed_side", message=side_note(name, bool(mentioning(name, sources)))))
        yield Event("reset")
        yield Event("token", verified.text)
        yield Event("answer", answer=self.answer(verified.text, False, mode, verified))


@dataclass
class Turn:
    question: str
    answer: Answer


@dataclass
class Lookup:
    status: Literal["found", "ambiguous", "not_found"]
    query: str
    paper: Paper | None = None
    candidates: list[Hit] = field(default_factory=list)
    message: str = ""


# Control and invisible characters, and lone surrogates (JSON "\ud800", undecodable argv bytes) the tokenizer rejects.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


LISTING_MAX = 50  # papers a date-only question ("Which papers were published in 2024?") lists

# A title lookup whose best sentence match is below this finds nothing (the
# similarity of the old single-signal abstention threshold, evals/README.md).
LOOKUP_MIN_SIMILARITY = 0.44


class Assistant:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._llm: LLMClient | None = None
        self._abstention: AbstentionModel | None = None

    @property
    def abstention(self) -> AbstentionModel:
        if self._abstention is None:
            self._abstention = AbstentionModel.load(self.settings.abstain_model)
        return self._abstention

    def answerability(self, evidence: Evidence) -> float:
        """Probability that the corpus answers the question (assistant/abstain.py); 1.0
        when the question names a paper, which is always answered."""
        if evidence.named:
            return 1.0
        return self.abstention.answerability(question_signals(evidence))

    def readable(self, query: str, index: Index | None = None) -> bool:
        """Whether the question is in a language the model reads (assistant/words.py).
        The abstention model is calibrated on such questions only: on any other, every
        similarity is low whatever it asks, so it is answered with a language notice (assistant/decide.py)."""
        return (index or self.index).words.readable(query)

    @property
    def index(self) -> Index:
        return open_index(self.settings)

    def reload(self) -> None:
        open_index(self.settings, reload=True)

    # ------------------------------------------------------------ input

    def clean_question(self, question: str | None) -> str:
        """Strips control characters; refuses empty and over-long questions with a reason."""
        if question is None:
            raise QuestionError("The question is empty. Ask about a topic, method or paper.")
        text = unicodedata.normalize("NFC", _CONTROL.sub("", str(question)))
        text = " ".join(text.split())
        if not text:
            raise QuestionError("The question is empty. Ask about a topic, method or paper.")
        if not any(c.isalnum() for c in text):  # "?" was answered from whichever paper came first
            raise QuestionError(f"The question {text[:20]!r} has no words to search for. "
                                "Ask about a topic, method or paper.")
        if len(text) > self.settings.max_question_chars:
            raise QuestionTooLong(
                f"The question is {len(text)} characters long; the limit is {self.settings.max_question_chars}. "
                "Shorten it to the part you want answered."
            )
        return text

    def word_list_query(self, index: Index, question: str, history: Sequence[Turn]) -> str:
        """The baseline rule before issue 24 (Settings.follow_up_rule = "word_list"): a
        short question with "it", "that", ... is searched glued to the previous question
        and its first cited title."""
        if not history or index.named_papers(question) or not word_list_follows_up(question):
            return question
        previous = history[-1]
        cited = " ".join(short_name(c.title) for c in previous.answer.citations[:1])
        return f"{previous.question} {cited} {question}".strip()

    def search_in_conversation(self, index: Index, text: str, history: Sequence[Turn], retriever: RetrieverName,
                               filters: Filters | None, k: int) -> tuple[str, Ranking, np.ndarray, Reading]:
        """The query searched, its ranking, its vector and how the question was read:
        asked alone, and when it reads as a follow-up (assistant/conversation.py) the
        papers under discussion pinned first, as if named."""
        if self.settings.follow_up_rule == "word_list":
            query = self.word_list_query(index, text, history)
            ranking = index.search(query, k=k, retriever=retriever, filters=filters)
            return query, ranking, question_vector(index, ranking, query), Reading(False)
        ranking = index.search(text, k=k, retriever=retriever, filters=filters)
        vector = question_vector(index, ranking, text)
        reading = self.read(index, text, history, ranking, vector)
        if reading.besides:
            return self.besides(index, text, reading, retriever, filters, k)
        return text, (self.pin(index, ranking, reading.papers) if reading.follow_up else ranking), vector, reading

    def besides(self, index: Index, text: str, reading: Reading, retriever: RetrieverName, filters: Filters | None,
                k: int) -> tuple[str, Ranking, np.ndarray, Reading]:
        """"Are there other fast samplers?" after DPM-Solver: those papers left out, and a
        question too thin to search alone searched with their subject (their titles less
        their own names, which would name them); "Which other papers use Gaussian
        splatting for relighting scenes?" has a subject of its own."""
        subject = " ".join(title_rest(index.papers[pid].title) for pid in reading.papers[:3])
        query = f"{text} {subject}" if len(content_words(text)) <= THIN_QUESTION else text
        found = index.search(query, k=k + len(reading.papers), retriever=retriever, filters=filters)
        ranking = replace(found, hits=[h for h in found.hits if h.paper_id not in reading.papers][:k],
                          named=[pid for pid in found.named if pid not in reading.papers])
        return query, ranking, question_vector(index, ranking, query), reading

    def read(self, index: Index, text: str, history: Sequence[Turn], ranking: Ranking, vector: np.ndarray) -> Reading:
        """Follow-up or a question of its own, from evidence (assistant/conversation.py);
        a question that names a paper is always its own."""
        if not history or ranking.named or self.settings.follow_up_rule == "never":
            return Reading(False)
        turns = [(t.question, t.answer) for t in history]
        papers = [(pid, title) for pid, title in discussed(turns) if pid in index.papers]
        if not papers:
            return Reading(False)
        ids = [pid for pid, _ in papers]
        if asks_for_others(text):
            return replace(self.reading(index, ids), follow_up=False, besides=True)
        if pointed := [pid for pid in pointed_at(text, turns) if pid in index.papers]:  # "And the second one?"
            return self.reading(index, pointed)
        vectors = index.dense.sentence_vectors(ids)
        best = max((float((vectors[p] @ vector).max()) for p in ids if len(vectors[p])), default=0.0)
        # what the question finds alone: the best sentence of the whole corpus, not of the
        # ten hits (whose tenth place a small change of the keyword ranking can swap)
        alone = max([h.dense for h in ranking.hits] + [ranking.sentence_top or 0.0], default=0.0)
        if not follows_up(text, alone, best):
            return Reading(False)
        if len(ids) > 1 and NARROWS.search(text):  # "Which of them learn delays?"
            ids = narrowed(text, dict(zip(ids, (w.per_word for w in index.words.support(
                text, [index.papers[p] for p in ids])))))
        elif listed(turns) and ONE_PAPER.search(text) and not asks_for_several(text):
            ids = ids[:1]  # "What accuracy does it reach?" after a list: the paper it led with
        return self.reading(index, ids)

    @staticmethod
    def reading(index: Index, ids: list[str]) -> Reading:
        """A follow-up about these papers, named for the notice by the first one."""
        more = f" and {len(ids) - 1} more" if len(ids) > 1 else ""
        return Reading(True, ids, short_name(index.papers[ids[0]].title) + more)

    def pin(self, index: Index, ranking: Ranking, paper_ids: list[str]) -> Ranking:
        """The ranking with the papers under discussion first, as named papers are."""
        found = {h.paper_id: h for h in ranking.hits}
        top = ranking.hits[0].score if ranking.hits else 0.0
        first = [(found.get(pid) or Hit(paper_id=pid, title=index.papers[pid].title, score=0.0)).model_copy(
            update={"score": top + NAME_BONUS - 0.01 * i}) for i, pid in enumerate(paper_ids)]
        rest = [h for h in ranking.hits if h.paper_id not in paper_ids]
        return replace(ranking, hits=(first + rest)[:max(len(ranking.hits), len(first))], named=list(paper_ids))

    def not_in_paper(self, text: str, evidence: Evidence, discussed: int = 1) -> tuple[str, str] | None:
        """For a follow-up the paper under discussion does not answer: the notice and the
        plain answer ("The abstract of X does not mention Y.", or "None of the 7 papers
        under discussion mentions Y." for "Which of them ...?"), quoting the first
        paper's nearest sentence with its citation. None when it speaks of what is asked."""
        if ASKS_FOR_LISTING.search(text):  # "Who wrote it?": the listing notice says what the corpus holds
            return None
        source = evidence.sources[0]
        phrase = missing_phrase(without_pointers(text), source.support.per_word if source.support is not None else {})
        if not phrase:
            return None
        sims = source.similarities or [0.0]
        nearest = max(range(len(sims)), key=sims.__getitem__)
        name = short_name(source.paper.title)
        if discussed > 1 and NARROWS.search(text):
            message, lead = f"None of the {discussed} papers under discussion mentions {phrase}.", f"Nearest in {name}:"
        else:
            message, lead = f"The abstract of {name} does not mention {phrase}.", "The nearest it comes:"
        quote = strip_markers(source.sentences[nearest]) if source.sentences else ""
        return message, (f"{message} {lead} {quote} [{source.n}]" if quote else message)

    # ------------------------------------------------------------ answering

    def _llm_client(self) -> LLMClient:
        if self._llm is None:
            self._llm = LLMClient(self.settings)
        return self._llm

    def llm_status(self) -> tuple[bool, str]:
        if not self.settings.llm_configured:
            return False, "no LLM endpoint configured (set ASSISTANT_LLM_BASE_URL or OPENAI_API_KEY)"
        return self._llm_client().health()

    def resolve_mode(self, mode: str | None) -> Literal["offline", "llm"]:
        """The answer mode, decided once for every front end: the requested one, else the
        settings'. LLM mode with no endpoint and no key is refused before any work."""
        resolved = mode or self.settings.answer_mode()
        if resolved not in ("offline", "llm"):
            raise QuestionError(f"Unknown answer mode {mode!r}: use offline or llm.")
        if resolved == "llm" and not self.settings.llm_configured:
            raise QuestionError(NO_ENDPOINT)
        return "llm" if resolved == "llm" else "offline"

    def stream(self, question: str, history: Sequence[Turn] = (), mode: str | None = None,
               retriever: RetrieverName | None = None, top_k: int | None = None,
               filters: Filters | None = None, qid: str | None = None) -> Iterator[Event]:
        """Measures the question's signals, lets `decide` (assistant/decide.py) say what
        to do, and runs it: yields tokens as the answer is drafted, notices, and finally
        the verified `Answer`. Raises QuestionError before any work on bad input. One
        index serves the whole answer, even if a rebuild swaps the shared one meanwhile."""
        out = _Output(time.perf_counter(), qid)
        out.question = text = self.clean_question(question)
        used_mode = self.resolve_mode(mode)
        index = self.index
        if stale := index.files.stale_notice():
            yield out.notice(Notice(kind="stale_index", message=stale))
        text, filters = yield from self.read_question(index, text, filters, out)
        if asks_about_corpus(text):  # "How many papers are in the corpus?" (in the date range, when it says one)
            papers = {pid: p for pid, p in index.papers.items() if filters is None or filters.accepts(p)}
            yield from out.about_corpus(corpus_summary(papers, read_cached(self.settings, index.manifest)))
            return
        measured = self.measure(index, text, history, retriever, top_k, filters)
        out.measured(measured)
        decision = decide(measured.signals, self.thresholds(), used_mode)
        for notice in decision.notices:
            yield out.notice(notice)
        if decision.action == "refuse":
            yield from out.refuse(used_mode, drafted=False)
            return
        if decision.use_llm:
            route, verified = yield from self._llm_stage(index, text, measured.evidence, decision.confident, out)
            if route == "refuse":
                yield from out.refuse("llm", drafted=True)
                return
            if route == "llm" and verified is not None:
                yield from out.final(verified, "llm", index)
                return
        draft = measured.declined[1] if measured.declined else "".join(OfflineAnswerer().draft(text, measured.evidence))
        verified = self._verify(index, draft, measured.evidence)
        if verified is None or not verified.citations:
            yield from out.refuse("offline", drafted=used_mode == "llm")
            return
        yield from out.final(verified, "offline", index)

    @staticmethod
    def read_question(index: Index, text: str, filters: Filters | None,
                      out: _Output) -> Generator[Event, None, tuple[str, Filters | None]]:
        """The question as meant, and the filters it states, each said in a notice:
        misspelt words corrected (the answer keeps the question as asked), a year
        phrase as a date filter unless the caller set one, "papers that don't use X" as
        an exclusion; what is searched is the question without those words."""
        if fixes := corrections(text, index.words.frequencies):
            text = corrected(text, fixes)
            yield out.notice(Notice(kind="spelling", message=spelling_notice(fixes)))
        if not (filters and filters.dated()) and (dated := date_phrase(text)):
            filters = replace(dated.filters, source_file=filters.source_file if filters else None)
            text = dated.rest
            yield out.notice(Notice(kind="date_filter", message=date_notice(dated, index.papers.values())))
        if excluded := exclusion_phrase(text, lambda term: corpus_phrase(index, term)):
            filters, text = replace(filters or Filters(), exclude=(excluded.what,)), excluded.rest
            yield out.notice(Notice(kind="exclusion", message=exclusion_notice(excluded, index.papers.values())))
        return text, filters

    def measure(self, index: Index, text: str, history: Sequence[Turn], retriever: RetrieverName | None,
                top_k: int | None, filters: Filters | None) -> Measured:
        """Search (in the conversation), the evidence of the top papers, and the signals
        the decision reads. List questions and comparisons read more papers."""
        s = self.settings
        if filters is not None and filters.dated() and not content_words(text):
            return self.dated_listing(index, text, filters)
        wide = asks_for_list(text) or bool(COMPARE.search(text))  # every paper that fits, or both sides
        top_k = top_k or (s.list_top_k if wide else s.top_k)
        query, ranking, vector, reading = self.search_in_conversation(index, text, history, retriever or s.retriever,
                                                                      filters, k=max(s.retrieve_k, 10, top_k))
        evidence = gather(index, ranking, query, top_k, vector)
        declined = self.not_in_paper(text, evidence, len(reading.papers)) if reading.follow_up else None
        named = bool(evidence.named)
        signals = Signals(answerability=self.answerability(evidence), named=named,
                          readable=named or self.readable(query, index),
                          follow_up_about=reading.about if reading.follow_up else None,
                          besides=reading.about if reading.besides else None,
                          not_in_paper=declined[0] if declined else None)
        return Measured(ranking, replace(evidence, judged=signals.readable), signals, declined)

    def dated_listing(self, index: Index, text: str, filters: Filters) -> Measured:
        """"Which papers were published in 2024?": a question with a date and no subject
        is answered by every paper dated within it, newest first (at most LISTING_MAX),
        each with its contribution sentence; nothing to judge, so nothing is refused
        but an empty range."""
        papers = sorted((p for p in index.papers.values() if filters.accepts(p)),
                        key=lambda p: p.published or "", reverse=True)[:LISTING_MAX]
        hits = [Hit(paper_id=p.paper_id, title=p.title, score=0.0) for p in papers]
        ranking = Ranking(hits=hits, query_vector=None)
        evidence = replace(gather(index, ranking, text, len(hits)), listing=True, judged=True)
        signals = Signals(answerability=1.0 if hits else 0.0, named=bool(hits), readable=True)
        return Measured(ranking, evidence, signals)

    def thresholds(self) -> Thresholds:
        s = self.settings
        refuse = self.abstention.threshold if s.abstain_threshold is None else s.abstain_threshold
        return Thresholds(refuse=refuse, caution=self.abstention.caution_threshold)

    def _verify(self, index: Index, draft: str, evidence: Evidence) -> Verified | None:
        if not draft:
            return None
        return verify(draft, evidence.sources, index.dense.encode, self.settings.support_threshold)

    def _llm_stage(self, index: Index, text: str, evidence: Evidence, confident: bool,
                   out: _Output) -> Generator[Event, None, tuple[str, Verified | None]]:
        """Streams the LLM's draft, verifies it, and says (assistant/decide.py `after_llm`)
        whether it stands, the offline answer replaces it, or the question is refused."""
        draft, verified = "", None
        try:
            for token in LLMAnswerer(self._llm_client(), self.settings.prompts_dir).draft(text, evidence):
                draft += token
                yield Event("token", token)
        except UnusableAnswer as exc:
            outcome = LLMOutcome("unusable", str(exc))
        except LLMError as exc:
            outcome = LLMOutcome("failed", str(exc), partial=bool(draft))
        else:
            verified = None if NO_ANSWER in draft else self._verify(index, draft, evidence)
            outcome = LLMOutcome("no_answer" if NO_ANSWER in draft
                                 else "verified" if verified and verified.citations else "unverified")
        out.llm_draft = None if outcome.kind == "failed" else draft  # a cut-off draft is no answer to score
        route, notice = after_llm(outcome, confident)
        if notice is not None:
            yield out.notice(notice)
        return route, verified

    def ask(self, question: str, history: Sequence[Turn] = (), **options: Any) -> Answer:
        """`stream`'s final answer; `options` are stream's."""
        return read_answer(self.stream(question, history, **options))

    # ------------------------------------------------------------ papers

    def paper(self, paper_id: str) -> Paper:
        paper = self.index.papers.get(paper_id)
        if paper is None:
            raise UnknownPaper(f"No paper with id {paper_id!r}. Find ids with `assistant paper QUERY`.")
        return paper

    def related(self, paper_id: str, k: int = 5) -> list[Hit]:
        self.paper(paper_id)
        return self.index.dense.related(paper_id, k)

    def search(self, query: str, k: int = 10, retriever: RetrieverName | None = None,
               filters: Filters | None = None) -> list[Hit]:
        text = self.clean_question(query)
        return self.index.search(text, k=k, retriever=retriever or self.settings.retriever, filters=filters).hits

    def lookup(self, query: str) -> Lookup:
        """A paper by id, exact or fuzzy title, name or acronym (typos included), or
        description; ambiguous queries list candidates, unknown ones the nearest titles."""
        q = self.clean_question(query)
        index = self.index
        if q in index.papers:
            return Lookup("found", q, index.papers[q])
        norm = normalize_title(q)
        titles = {normalize_title(p.title): pid for pid, p in index.papers.items()}
        if norm in titles:
            return Lookup("found", q, index.papers[titles[norm]])
        named = index.named_papers(q)
        if len(named) == 1:
            return Lookup("found", q, index.papers[named[0]])
        if len(named) > 1:
            hits = [Hit(paper_id=pid, title=index.papers[pid].title, score=1.0) for pid in named]
            return Lookup("ambiguous", q, None, hits, f"{len(named)} papers match {q!r}.")
        fuzzy = self._fuzzy(q, norm, titles, index.papers)
        if fuzzy:
            return Lookup("found", q, index.papers[fuzzy])
        ranking = index.search(q, k=5)
        hits = ranking.hits
        if not hits:
            return Lookup("not_found", q, message=f"No paper matches {q!r}.")
        if hits[0].dense >= 0.6 and (len(hits) < 2 or hits[0].dense - hits[1].dense >= 0.08):
            return Lookup("found", q, index.papers[hits[0].paper_id], hits[1:])
        if hits[0].dense >= LOOKUP_MIN_SIMILARITY:
            return Lookup("ambiguous", q, None, hits, f"Several papers could match {q!r}:")
        return Lookup("not_found", q, None, hits[:3], f"No paper matches {q!r}. The nearest titles are:")

    def _fuzzy(self, q: str, norm: str, titles: dict[str, str], papers: dict[str, Paper]) -> str | None:
        """Typos in a title ("Atention as an RNN"), part of a title, or a typo in a name
        ("FlashRN"); `papers` is the index the lookup took, so a reload cannot mix two."""
        best = process.extract(norm, list(titles), scorer=fuzz.ratio, limit=2)
        if best and best[0][1] >= 88 and (len(best) < 2 or best[0][1] - best[1][1] >= 3):
            return titles[best[0][0]]
        # Part of a title, or its words reordered ("slowing down the slowdown momentum").
        best = process.extract(norm, list(titles), scorer=fuzz.token_set_ratio, limit=2)
        if len(norm.split()) >= 2 and best and best[0][1] >= 85 and (len(best) < 2 or best[0][1] - best[1][1] >= 8):
            return titles[best[0][0]]
        if len(q.split()) <= 2 and len(q) >= 4:
            # A hyphenated name's parts too: "TFMQ" is what people type for TFMQ-DM.
            names = [(part.casefold(), pid) for pid, p in papers.items() for n in paper_names(p)
                     for part in dict.fromkeys([n, *(x for x in n.split("-") if len(x) >= 3 and x != n)])]
            scored = sorted(((fuzz.ratio(q.casefold(), n), pid) for n, pid in names), reverse=True)
            if scored and scored[0][0] >= 80 and (len(scored) < 2 or scored[0][0] - scored[1][0] >= 5 or scored[0][1] == scored[1][1]):
                return scored[0][1]
        return None


def corpus_phrase(index: Index, term: str) -> bool:
    """Whether at least two papers use a phrase: what an exclusion leaves out is one."""
    return sum(1 for p in index.papers.values() if mentions(p, term)) >= 2


def corpus_summary(papers: dict[str, Paper], corpus_map: CorpusMap | None, topics: int = 6) -> str:
    """What the collection holds, for a question about it: how many papers, from how
    many files, the dates the listings give, and the largest topics of the corpus
    map when it has been drawn (the Corpus map tab draws it)."""
    files = {occurrence.file for p in papers.values() for occurrence in p.occurrences}
    dated = sorted(p.published for p in papers.values() if p.published)
    text = (f"The corpus holds {len(papers)} papers (titles and abstracts, from {len(files)} "
            f"file{'s' if len(files) != 1 else ''}).")
    if dated:
        text += f" {len(dated)} of them carry a publication date, from {dated[0][:7]} to {dated[-1][:7]}."
    if corpus_map is not None and corpus_map.topics:
        largest = sorted(corpus_map.topics, key=lambda t: -t.size)[:topics]
        text += " Its largest topics: " + "; ".join(f"{t.label} ({t.size} paper{'s' if t.size != 1 else ''})"
                                                      for t in largest) + "."
    return text + " Ask about a subject to find its papers, or browse them in the UI's Papers and Corpus map tabs."


def abstain_text(nearest: list[Hit]) -> str:
    text = "The corpus has no paper that answers this question."
    if nearest:
        titles = "; ".join(f"“{h.title}”" for h in nearest)
        text += f" The nearest papers are: {titles}."
    return text
