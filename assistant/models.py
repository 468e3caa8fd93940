"""Data objects that cross module lines. `AnswerContract` is the one published
shape of an answer: `assistant ask --json`, `POST /api/ask` (and its OpenAPI
schema), the evaluation results and the load test all come from it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Occurrence(BaseModel):
    """One place a paper appeared in the corpus (duplicates keep every place)."""

    file: str
    line: int


LIBRARY_FIELDS = ("authors", "venue", "doi", "arxiv_id", "cite_key", "entry_type")


class Paper(BaseModel):
    paper_id: str
    title: str
    abstract: str
    occurrences: list[Occurrence]
    authors_count: int | None = None
    date: str | None = None  # as printed on the listing: "Oct 10, 2024" or "Nov 25"
    published: str | None = None  # ISO date when the listing gives a year
    counter: int | None = None  # the unlabelled trailing integer of the date line
    org: str | None = None
    page_date: str | None = None  # date of the listing page the paper was first seen on
    urls: list[str] = Field(default_factory=list)
    # From a reference library (assistant/library.py); listing papers leave them unset.
    authors: list[str] = Field(default_factory=list)  # "Family, Given" as the library wrote them
    venue: str | None = None
    doi: str | None = None
    arxiv_id: str | None = None
    cite_key: str | None = None  # the library's citation key, kept for export
    entry_type: str | None = None  # the library's entry type (article, inproceedings, JOUR ...)
    also_in: list[str] = Field(default_factory=list)  # every source beside the first: "file:line"

    @property
    def source_file(self) -> str:
        return self.occurrences[0].file

    @property
    def source_line(self) -> int:
        return self.occurrences[0].line

    @property
    def url(self) -> str | None:
        """The paper's main link: its code or project page when the abstract names one."""
        return self.urls[0] if self.urls else None

    def content_hash(self) -> str:
        """Changes exactly when what is embedded or shown changes, so sync re-embeds only then."""
        import hashlib

        # Library fields enter only when set, so a listing paper keeps the hash it had
        # before they existed (an upgrade re-embeds nothing); `also_in` is where, not what.
        unset = {name for name in LIBRARY_FIELDS if not getattr(self, name)}
        payload = self.model_dump_json(exclude={"occurrences", "page_date", "also_in", *unset})
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


class Hit(BaseModel):
    """A retrieved paper with the evidence retrieval found for it."""

    paper_id: str
    title: str
    score: float
    dense: float = 0.0  # best sentence cosine similarity
    keyword: float = 0.0  # BM25 score of the best unit
    best_sentences: list[tuple[int, float]] = Field(default_factory=list)  # (sentence index, similarity)


class Citation(BaseModel):
    n: int
    paper_id: str
    title: str
    quote: str
    url: str | None = None
    sentence_index: int | None = None
    support: float | None = None  # similarity between the claim and the quote (1.0: quoted verbatim)
    date: str | None = None


NoticeKind = Literal["stale_index", "language", "caution", "llm_fallback", "llm_unusable", "llm_insufficient", "listing",
                     "follow_up", "not_in_paper", "spelling", "unnamed_side", "date_filter",
                     "exclusion"]


class Notice(BaseModel):
    """Something the user should know about an answer, typed so that front ends and
    the evaluation read its kind instead of matching its wording."""

    kind: NoticeKind = Field(description="stale_index: the corpus changed since indexing; language: not English; "
                             "caution: low answerability; llm_fallback: the endpoint failed (unreachable, timeout, "
                             "error status, cut off) and the offline answer is shown; llm_unusable: the model's reply "
                             "was not a verifiable answer and the offline answer is shown; llm_insufficient: the LLM "
                             "said its sources do not answer; listing: the question asks who wrote a paper, where or when, which "
                             "abstracts do not say, and the notice gives what the corpus's listing does; "
                             "follow_up: the question was read as a follow-up about the paper the conversation is "
                             "about, and answered from it; not_in_paper: that paper's abstract does not mention what the "
                             "follow-up asks, and the answer says so; spelling: misspelt words were read as the "
                             "corpus words they were meant for (assistant/spelling.py); unnamed_side: a side of a "
                             "comparison no paper of the corpus is about, quoted from abstracts that mention it; date_filter: a "
                             "year the question states (\"from 2023\") was read as a date filter; exclusion: "
                             "\"papers that don't use X\" was read as leaving out the papers that mention X.")
    message: str


class CitationContract(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int = Field(description="The [n] marker in the answer text; numbered in order of first appearance.")
    paper_id: str
    title: str
    quote: str = Field(description="The abstract sentence the claim rests on, verbatim.")
    url: str | None = None


class RetrievedContract(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paper_id: str
    title: str
    score: float

    @classmethod
    def of(cls, hit: Hit) -> RetrievedContract:
        """A retrieved paper as every front end publishes it (score to 6 decimals)."""
        return cls(paper_id=hit.paper_id, title=hit.title, score=round(hit.score, 6))


class Timings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retrieve: float
    answer: float
    total: float


class AnswerContract(BaseModel):
    """The documented answer object (README: Output contract)."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    question: str
    answer: str = Field(description="Text with [n] citation markers, or the refusal naming the nearest papers.")
    abstained: bool
    answerability: float | None = Field(
        None, description="The abstention model's probability that the corpus answers it (1.0 when it names a paper).")
    citations: list[CitationContract]
    retrieved: list[RetrievedContract]
    mode: Literal["offline", "llm"]
    notices: list[Notice]
    timings_ms: Timings
    shape: Literal["text", "list"] = Field(
        "text", description="list: the question asks for every paper that answers (\"Which papers ...?\"); the "
        "citations, in the answer's order, are the list (one line per paper in the offline answer), for a front end "
        "to show as a table. text: any other answer, and every refusal.")


class Answer(BaseModel):
    """What the pipeline produces: the contract plus what the front ends show
    beside it (where each quote sits in its abstract, what verification removed)."""

    id: str | None = None
    question: str
    answer: str
    abstained: bool
    citations: list[Citation]
    retrieved: list[Hit]
    mode: Literal["offline", "llm"]
    timings_ms: dict[str, float]
    notices: list[Notice] = Field(default_factory=list)
    suggestions: list[Hit] = Field(default_factory=list)
    removed_citations: list[str] = Field(default_factory=list)
    answerability: float | None = None
    shape: Literal["text", "list"] = "text"
    llm_draft: str | None = None  # the LLM's own text before verification replaced it (the evaluation scores it)

    def see_also(self, k: int = 3) -> list[Hit]:
        """The next retrieved papers the answer does not cite, shown apart from the
        citations: when the cited paper is not the one the user meant, the right one is
        usually among them (12 of 21 such answers on the tune questions)."""
        if self.abstained:
            return []  # the refusal names the nearest papers itself
        cited = {c.paper_id for c in self.citations}
        return [h for h in self.retrieved if h.paper_id not in cited][:k]

    def has_notice(self, kind: NoticeKind) -> bool:
        return any(n.kind == kind for n in self.notices)

    def contract(self) -> AnswerContract:
        return AnswerContract(
            id=self.id,
            question=self.question,
            answer=self.answer,
            abstained=self.abstained,
            answerability=None if self.answerability is None else round(self.answerability, 4),
            citations=[CitationContract(n=c.n, paper_id=c.paper_id, title=c.title, quote=c.quote, url=c.url)
                       for c in self.citations],
            retrieved=[RetrievedContract.of(h) for h in self.retrieved],
            mode=self.mode,
            notices=list(self.notices),
            timings_ms=Timings(**{k: round(self.timings_ms.get(k, 0.0), 2) for k in ("retrieve", "answer", "total")}),
            shape=self.shape,
        )
