"""Data objects that cross module lines. `Answer.contract()` is the JSON that
`assistant ask --json`, the HTTP API and the evaluation runner all emit."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Occurrence(BaseModel):
    """One place a paper appeared in the corpus (duplicates keep every place)."""

    file: str
    line: int


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

        payload = self.model_dump_json(exclude={"occurrences", "page_date"})
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
    support: float | None = None  # similarity between the claim and the quote
    supported: bool = True
    date: str | None = None


class Answer(BaseModel):
    id: str | None = None
    question: str
    answer: str
    abstained: bool
    citations: list[Citation]
    retrieved: list[Hit]
    mode: str
    timings_ms: dict[str, float]
    notices: list[str] = Field(default_factory=list)
    suggestions: list[Hit] = Field(default_factory=list)
    removed_citations: list[str] = Field(default_factory=list)
    answerability: float | None = None  # the abstention model's probability that the corpus answers it

    def contract(self) -> dict[str, Any]:
        """Exactly the documented `ask --json` object (README: Output contract)."""
        return {
            "id": self.id,
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "answerability": None if self.answerability is None else round(self.answerability, 4),
            "citations": [
                {"n": c.n, "paper_id": c.paper_id, "title": c.title, "quote": c.quote, "url": c.url}
                for c in self.citations
            ],
            "retrieved": [{"paper_id": h.paper_id, "title": h.title, "score": round(h.score, 6)} for h in self.retrieved],
            "mode": self.mode,
            "notices": list(self.notices),
            "timings_ms": {k: round(self.timings_ms.get(k, 0.0), 2) for k in ("retrieve", "answer", "total")},
        }
