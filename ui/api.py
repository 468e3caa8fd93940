"""The JSON API served beside the UI: /api/ask, /api/papers/{id}, /api/search,
/api/health. Every answer comes from `pipeline.Assistant`; this module only
validates input, runs the blocking calls in a bounded thread pool, and turns every
failure into a short JSON error (`{"error": "..."}`), never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import anyio
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.index import IndexProblem
from assistant.models import Answer, AnswerContract, Citation, RetrievedContract
from assistant.pipeline import Assistant, QuestionError, Turn, UnknownPaper
from assistant.retrieve import Filters

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BODY_BYTES = 256 * 1024  # a question is at most a few KB; anything larger is refused unread
MAX_CITE_IDS = 200
ISO_DATE = r"^\d{4}(-\d{2}(-\d{2})?)?$"


# ---------------------------------------------------------------- request and response models


class CitationIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    n: int = 1
    paper_id: str = ""
    title: str = ""
    quote: str = ""
    url: str | None = None


class PreviousAnswer(BaseModel):
    """A previous answer: the full object /api/ask returned, or just its text."""

    model_config = ConfigDict(extra="ignore")
    answer: str = ""
    abstained: bool = False
    citations: list[CitationIn] = Field(default_factory=list)
    shape: Literal["text", "list"] = "text"


class HistoryTurn(BaseModel):
    question: str = Field(max_length=20000)
    answer: str | PreviousAnswer = ""


class AskRequest(BaseModel):
    """Body of POST /api/ask. `history` lists earlier turns (oldest first) so
    follow-ups ("and how fast is it?") resolve; pass back what /api/ask returned."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(description="The question (at most ASSISTANT_MAX_QUESTION_CHARS characters).")
    history: list[HistoryTurn] = Field(default_factory=list, max_length=50)
    mode: Literal["offline", "llm"] | None = Field(None, description="Default: llm when an endpoint is configured.")
    top_k: int | None = Field(None, ge=1, le=20, description="Most papers to cite.")
    retriever: Literal["hybrid", "dense", "bm25"] | None = None
    date_from: str | None = Field(None, pattern=ISO_DATE, description="Only papers published on or after (YYYY[-MM[-DD]]).")
    date_to: str | None = Field(None, pattern=ISO_DATE, description="Only papers published on or before (YYYY[-MM[-DD]]).")


class TopicOut(BaseModel):
    id: int
    label: str = Field(description="The topic's most distinctive terms, as shown on the map.")
    terms: list[str]
    size: int
    query: str = Field(description="The label as a search query.")
    paper_ids: list[str] = Field(description="Most central paper first.")


class TopicsOut(BaseModel):
    papers: int
    method: dict[str, Any]
    topics: list[TopicOut]


class Error(BaseModel):
    error: str


ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": Error} for code in (400, 404, 413, 422, 503)}


# ---------------------------------------------------------------- helpers


def to_turns(history: list[HistoryTurn]) -> list[Turn]:
    """API history items as pipeline turns (only question, text, citations and shape matter)."""
    turns = []
    for item in history:
        prev = item.answer if isinstance(item.answer, PreviousAnswer) else PreviousAnswer(answer=item.answer)
        citations = [Citation(n=c.n, paper_id=c.paper_id, title=c.title, quote=c.quote, url=c.url) for c in prev.citations]
        answer = Answer(question=item.question, answer=prev.answer, abstained=prev.abstained, citations=citations,
                        retrieved=[], mode="offline", timings_ms={}, shape=prev.shape)
        turns.append(Turn(item.question, answer))
    return turns


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def validation_message(errors: Sequence[Any]) -> str:
    """One readable line from pydantic's error list, without echoing the input."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return "The request body is not valid JSON."
    parts = []
    for e in errors[:3]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return "Invalid request: " + "; ".join(parts)


# ---------------------------------------------------------------- the routes


class Api:
    """Routes bound to one Assistant, with a limiter so at most `concurrency`
    pipeline calls run at once (the rest wait their turn instead of piling up
    threads and memory)."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.concurrency = assistant.settings.concurrency
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._limiter is None:  # created inside the event loop
            self._limiter = anyio.CapacityLimiter(self.concurrency)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    def router(self) -> APIRouter:
        r = APIRouter(prefix="/api", tags=["api"])
        r.add_api_route("/ask", self.ask, methods=["POST"], response_model=AnswerContract, responses=ERRORS,
                        summary="Answer a question with verified citations")
        r.add_api_route("/papers/{paper_id}", self.paper, methods=["GET"], responses=ERRORS,
                        summary="A paper with its five most related papers")
        r.add_api_route("/papers/{paper_id}/bibtex", self.bibtex, methods=["GET"], responses=ERRORS,
                        response_class=PlainTextResponse, summary="The paper's BibTeX entry")
        r.add_api_route("/cite", self.cite, methods=["GET"], responses=ERRORS, response_class=PlainTextResponse,
                        summary="Citations for papers by id: BibTeX (default), RIS or CSL-JSON")
        r.add_api_route("/search", self.search, methods=["GET"], responses=ERRORS, summary="Rank papers for a query")
        r.add_api_route("/topics", self.topics, methods=["GET"], response_model=TopicsOut, responses=ERRORS,
                        summary="The corpus map's topics: label, size and paper ids")
        r.add_api_route("/health", self.health, methods=["GET"], summary="Index, Chroma and LLM endpoint status")
        # Last: unknown API paths get a JSON 404 here instead of falling through to the UI.
        r.add_api_route("/{rest:path}", self.unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                        include_in_schema=False)
        return r

    async def unknown(self, request: Request, rest: str) -> JSONResponse:
        if rest.rstrip("/") == "ask":
            return _error(405, "Use POST /api/ask with a JSON body {\"question\": ...}.")
        if request.method != "GET" and (rest.startswith("papers/") or rest.rstrip("/") in ("search", "health", "topics", "cite")):
            return _error(405, f"Use GET /api/{rest}.")
        return _error(404, f"No API route /api/{rest}; see /api/docs.")

    async def ask(self, body: AskRequest) -> Any:
        """Returns exactly the `ask --json` contract."""
        options: dict[str, Any] = {"mode": body.mode, "top_k": body.top_k, "retriever": body.retriever}
        try:
            options["filters"] = Filters.parse(body.date_from, body.date_to)
        except ValueError as exc:  # only the request's dates: a ValueError from the pipeline is our bug, a 500
            return _error(400, str(exc))
        try:
            answer = await self.run(lambda: self.assistant.ask(body.question, to_turns(body.history), **options))
        except QuestionError as exc:
            return _error(400, str(exc))
        except IndexProblem as exc:
            return _error(503, str(exc))
        return answer.contract()

    async def paper(self, paper_id: str) -> Any:
        def get() -> dict[str, Any]:
            paper = self.assistant.paper(paper_id)
            related = self.assistant.related(paper_id)
            return {"paper": paper.model_dump(), "related": [RetrievedContract(paper_id=h.paper_id, title=h.title, score=h.score).model_dump() for h in related]}

        try:
            return await self.run(get)
        except UnknownPaper as exc:
            return _error(404, str(exc))
        except IndexProblem as exc:
            return _error(503, str(exc))

    async def bibtex(self, paper_id: str) -> Any:
        return await self.cite(ids=[paper_id], fmt="bibtex")

    async def cite(self, ids: list[str] = Query(..., description="Paper ids, comma-separated or repeated; at most "
                                                 f"{MAX_CITE_IDS}."),
                   fmt: Literal["bibtex", "ris", "csl-json"] = Query("bibtex", alias="format")) -> Any:
        """Papers from a library carry their authors, venue and DOI; papers known only
        from a listing page are written as `@misc` with a note saying so. Keys are stable."""
        from assistant.cite import cite, media_type

        wanted = list(dict.fromkeys(i.strip() for part in ids for i in part.split(",") if i.strip()))
        if not wanted:
            return _error(400, "Give at least one paper id: /api/cite?ids=ID1,ID2")
        if len(wanted) > MAX_CITE_IDS:
            return _error(400, f"At most {MAX_CITE_IDS} papers per request; {len(wanted)} were asked for.")
        try:
            papers = await self.run(lambda: [self.assistant.paper(pid) for pid in wanted])
        except UnknownPaper as exc:
            return _error(404, str(exc))
        except IndexProblem as exc:
            return _error(503, str(exc))
        return PlainTextResponse(cite(papers, fmt), media_type=f"{media_type(fmt)}; charset=utf-8")

    async def search(self, q: str = Query(..., description="Title, acronym or description."),
                     k: int = Query(10, ge=1, le=50)) -> Any:
        try:
            hits = await self.run(lambda: self.assistant.search(q, k=k))
        except QuestionError as exc:
            return _error(400, str(exc))
        except IndexProblem as exc:
            return _error(503, str(exc))
        return {"query": q, "hits": [{"paper_id": h.paper_id, "title": h.title, "score": round(h.score, 6),
                                       "dense": round(h.dense, 4), "keyword": round(h.keyword, 4)} for h in hits]}

    async def topics(self) -> Any:
        """The topics the corpus map shows, largest first; `query` is the label as a
        search (`/api/search?q=`, or a question to /api/ask)."""
        from assistant.topics import load_map

        def get() -> dict[str, Any]:
            index = self.assistant.index
            corpus_map = load_map(self.assistant.settings, papers=index.papers, store=index.store)
            method = {k: corpus_map.method.get(k) for k in ("layout", "clustering", "naming", "trustworthiness_at_10")}
            return {"papers": len(corpus_map.points), "method": method,
                    "topics": [{"id": t.id, "label": t.label, "terms": t.terms, "size": t.size, "query": t.query,
                                "paper_ids": t.paper_ids} for t in corpus_map.topics]}

        try:
            return await self.run(get)
        except IndexProblem as exc:
            return _error(503, str(exc))

    async def health(self) -> Any:
        """200 when questions can be answered (the LLM is optional: its outage only
        means offline answers), 503 otherwise."""
        # Not behind the answer limiter: a health probe must not queue behind busy answers.
        report = await anyio.to_thread.run_sync(health_report, self.assistant)
        return JSONResponse(report, status_code=200 if report["status"] != "error" else 503)


def health_report(assistant: Assistant) -> dict[str, Any]:
    s = assistant.settings
    index: dict[str, Any] = {"ok": False, "dir": str(s.index_dir)}
    chroma: dict[str, Any] = {"ok": False, "store": s.chroma_url or "embedded"}
    try:
        idx = assistant.index
        _ = idx.keyword  # loaded on first use: a damaged keyword index fails every question, so health says so
        index.update(ok=True, papers=len(idx.papers), built_at=idx.manifest.get("built_at"),
                     corpus_fingerprint=idx.manifest.get("corpus_fingerprint"), stale=idx.files.stale_notice())
        idx.store.client.heartbeat()
        chroma.update(ok=True, papers=idx.store.papers.count(), sentences=idx.store.sentences.count())
    except IndexProblem as exc:
        index["message"] = str(exc)
    except Exception as exc:  # Chroma server down or damaged store: a reason, not a trace
        chroma["message"] = f"{type(exc).__name__}: {exc}"[:300]
    configured = s.llm_configured
    ok, message = assistant.llm_status()
    llm = {"configured": configured, "ok": ok, "message": message, "default_mode": s.answer_mode()}
    status = "ok" if index["ok"] and chroma["ok"] and (ok or not configured) else "degraded"
    if not (index["ok"] and chroma["ok"]):
        status = "error"
    return {"status": status, "index": index, "chroma": chroma, "llm": llm}


def install_error_handlers(app: FastAPI) -> None:
    """Every error of the API routes as `{"error": ...}` JSON with a 4xx/5xx status."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, validation_message(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return _error(500, "Internal error; the server log has the details.")
