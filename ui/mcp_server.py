"""The assistant as an MCP server (the official `mcp` SDK, 2.x: `MCPServer`), for
agents and editors: `assistant mcp` serves it over stdio (what desktop clients
launch) and `assistant serve` mounts its streamable-HTTP transport at /mcp behind
the server's auth.

Tools (typed input, structured output): `ask` (an answer with verified citations,
the same pipeline and contract as /api/ask), `search_papers` (ranked papers with
their best sentence) and `get_paper` (a paper by id, title, acronym or
description, or the candidates). Resources: `paper://{paper_id}`, one per paper.
Every call runs through the JSON API's answer limiter (ui/api.py). A failure is an
MCP error result with a readable message, never a crashed server."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, TypeVar

from fastapi import FastAPI
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, ListResourcesResult, PaginatedRequestParams, Resource, ToolAnnotations
from pydantic import BaseModel, Field

from assistant.index import IndexProblem
from assistant.models import CitationContract, Hit, Notice, Paper, RetrievedContract
from assistant.pipeline import Assistant, QuestionError, UnknownPaper
from assistant.retrieve import Filters
from ui.api import ISO_DATE, Api, HistoryTurn, to_turns

T = TypeVar("T")
MCP_PATH = "/mcp"
INSTRUCTIONS = ("A research assistant over a corpus of machine-learning paper abstracts. `ask` answers a question "
                "with numbered citations to verbatim abstract sentences, or says plainly that the corpus has no "
                "support (abstained: true); quote its citations rather than restating them. `search_papers` ranks "
                "papers for a topic, `get_paper` opens one by id, title or acronym; paper://{paper_id} reads one.")
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


# ---------------------------------------------------------------- structured output


class AskResult(BaseModel):
    answer: str = Field(description="The answer with [n] citation markers, or the refusal naming the nearest papers.")
    abstained: bool = Field(description="True when the corpus does not answer the question.")
    citations: list[CitationContract] = Field(description="What each [n] marker rests on: paper and verbatim quote.")
    notices: list[Notice] = Field(description="What the user should know about this answer (low confidence, ...).")
    mode: Literal["offline", "llm"]


class PaperHit(BaseModel):
    paper_id: str
    title: str
    date: str | None = Field(description="Publication date (ISO when the listing gives a year).")
    url: str | None = Field(description="The paper's code or project page, when its abstract names one.")
    score: float = Field(description="Retrieval score; higher ranks first.")
    best_sentence: str | None = Field(description="The abstract sentence closest to the query.")


class SearchResult(BaseModel):
    query: str
    papers: list[PaperHit]


class PaperOut(BaseModel):
    paper_id: str
    title: str
    abstract: str
    date: str | None
    org: str | None
    authors_count: int | None
    urls: list[str]
    resource: str = Field(description="The paper's MCP resource URI.")
    related: list[RetrievedContract] = Field(description="The most similar papers in the corpus.")


class PaperLookup(BaseModel):
    status: Literal["found", "ambiguous", "not_found"]
    message: str = Field(description="Empty when found; otherwise what matched and what to try.")
    paper: PaperOut | None
    candidates: list[RetrievedContract] = Field(description="Papers the query could mean (ambiguous, not found).")


# ---------------------------------------------------------------- the server


class Tools:
    """The tools and resources, bound to one Api (assistant and answer limiter)."""

    def __init__(self, api: Api) -> None:
        self.api, self.assistant = api, api.assistant

    async def run(self, fn: Callable[[], T]) -> T:
        """`fn` in the answer thread pool; the pipeline's refusals as readable tool errors."""
        try:
            return await self.api.run(fn)
        except (QuestionError, IndexProblem, UnknownPaper) as exc:
            raise ToolError(str(exc)) from exc

    async def ask(self, question: Annotated[str, Field(description="The question, in English.")],
                  history: Annotated[list[HistoryTurn] | None, Field(
                      description="Earlier turns, oldest first, so a follow-up ('and how fast is it?') resolves: "
                                  "each {question, answer}, answer being the earlier ask result or its text.")] = None,
                  ) -> AskResult:
        """Answer a question about machine-learning papers from the corpus, with numbered citations [n] to
        verbatim abstract sentences; abstains (abstained: true) when the corpus has no support."""
        answer = await self.run(lambda: self.assistant.ask(question, to_turns(history or [])))
        contract = answer.contract()
        return AskResult(answer=contract.answer, abstained=contract.abstained, citations=contract.citations,
                         notices=contract.notices, mode=contract.mode)

    async def search_papers(self, query: Annotated[str, Field(description="A topic, method, title or acronym.")],
                            top_k: Annotated[int, Field(ge=1, le=50, description="Papers to return.")] = 10,
                            date_from: Annotated[str | None, Field(pattern=ISO_DATE, description=(
                                "Only papers published on or after (YYYY, YYYY-MM or YYYY-MM-DD)."))] = None,
                            date_to: Annotated[str | None, Field(pattern=ISO_DATE, description=(
                                "Only papers published on or before (YYYY, YYYY-MM or YYYY-MM-DD)."))] = None,
                            ) -> SearchResult:
        """Rank the corpus's papers for a query (hybrid dense + keyword retrieval), each with the abstract
        sentence closest to it."""
        try:
            filters = Filters.parse(date_from, date_to)
        except ValueError as exc:
            raise ToolError(str(exc)) from exc

        def search() -> SearchResult:
            hits = self.assistant.search(query, k=top_k, filters=filters)
            best = best_sentences(self.assistant, query, hits)
            papers = [self.assistant.paper(h.paper_id) for h in hits]
            return SearchResult(query=query, papers=[
                PaperHit(paper_id=h.paper_id, title=h.title, date=p.published or p.date, url=p.url,
                         score=round(h.score, 6), best_sentence=best.get(h.paper_id)) for h, p in zip(hits, papers)])

        return await self.run(search)

    async def get_paper(self, id_or_name: Annotated[str, Field(description=(
            "A paper id, its exact or approximate title, its acronym or method name, or a short description."))],
                        ) -> PaperLookup:
        """Open one paper: abstract, links and related papers. A query that matches several papers or none
        returns status 'ambiguous' or 'not_found' with candidates to choose from."""
        def get() -> PaperLookup:
            found = self.assistant.lookup(id_or_name)
            paper = self.paper_out(found.paper) if found.paper is not None else None
            return PaperLookup(status=found.status, message=found.message, paper=paper,
                               candidates=[RetrievedContract.of(h) for h in found.candidates])

        return await self.run(get)

    def paper_out(self, paper: Paper) -> PaperOut:
        related = [RetrievedContract.of(h) for h in self.assistant.related(paper.paper_id)]
        return PaperOut(paper_id=paper.paper_id, title=paper.title, abstract=paper.abstract,
                        date=paper.published or paper.date, org=paper.org, authors_count=paper.authors_count,
                        urls=paper.urls, resource=f"paper://{paper.paper_id}", related=related)

    async def paper_resource(self, paper_id: str) -> str:
        """A paper as Markdown: title, date, links, abstract and related papers."""
        try:
            out = await self.api.run(lambda: self.paper_out(self.assistant.paper(paper_id)))
        except UnknownPaper as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        except IndexProblem as exc:
            raise ResourceError(str(exc)) from exc
        return paper_markdown(out)

    async def resources(self) -> list[Resource]:
        """Every paper of the index (none while there is no index)."""
        try:
            papers = await self.api.run(lambda: list(self.assistant.index.papers.values()))
        except IndexProblem:
            return []
        return [Resource(uri=f"paper://{p.paper_id}", name=p.paper_id, title=p.title, mime_type="text/markdown")
                for p in papers]


# Resources per resources/list page: a reference library of 50,000 papers would
# otherwise be one ~10 MB reply; clients follow `nextCursor` (the protocol's paging).
RESOURCES_PAGE = 500


class AssistantMCP(MCPServer):
    """MCPServer whose resource list is the index's papers (one template serves them
    all), RESOURCES_PAGE at a time."""

    def __init__(self, tools: Tools) -> None:
        super().__init__("research-assistant", instructions=INSTRUCTIONS, log_level="WARNING")
        self.tools = tools

    async def list_resources(self) -> list[Resource]:
        return await self.tools.resources()

    async def _handle_list_resources(self, ctx: Any, params: PaginatedRequestParams | None) -> ListResourcesResult:
        """One page; the cursor is the offset of the next (MCPServer's own handler sends all)."""
        cursor = params.cursor if params is not None else None
        if cursor is not None and not cursor.isdigit():
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown resources cursor {cursor!r}: pass back nextCursor.")
        start = int(cursor or 0)
        resources = await self.list_resources()
        end = start + RESOURCES_PAGE
        return ListResourcesResult(resources=resources[start:end], next_cursor=str(end) if end < len(resources) else None)


def build_server(api: Api) -> AssistantMCP:
    tools = Tools(api)
    server = AssistantMCP(tools)
    server.add_tool(tools.ask, title="Ask the research assistant", annotations=READ_ONLY)
    server.add_tool(tools.search_papers, title="Search papers", annotations=READ_ONLY)
    server.add_tool(tools.get_paper, title="Get a paper", annotations=READ_ONLY)
    server.resource("paper://{paper_id}", name="paper", title="A paper of the corpus",
                    mime_type="text/markdown")(tools.paper_resource)
    return server


def best_sentences(assistant: Assistant, query: str, hits: list[Hit]) -> dict[str, str]:
    """Each hit's abstract sentence closest to the query: what dense retrieval found,
    or (a paper found by its keywords only) the nearest of its stored sentence vectors."""
    index = assistant.index
    best = {h.paper_id: index.sentences[h.paper_id][h.best_sentences[0][0]] for h in hits if h.best_sentences}
    missing = [h.paper_id for h in hits if h.paper_id not in best and index.sentences[h.paper_id]]
    if missing:
        vector = index.dense.embed_query(query)
        for pid, rows in index.dense.sentence_vectors(missing).items():
            best[pid] = index.sentences[pid][int((rows @ vector).argmax())]
    return best


def paper_markdown(paper: PaperOut) -> str:
    meta = " · ".join(x for x in (paper.date, paper.org) if x)
    lines = [f"# {paper.title}", "", f"id: {paper.paper_id}" + (f" · {meta}" if meta else "")]
    lines += [f"link: {url}" for url in paper.urls]
    lines += ["", paper.abstract, "", "Related papers:"]
    lines += [f"- {r.title} (paper://{r.paper_id})" for r in paper.related]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- transports


def mount(app: FastAPI, api: Api, host: str) -> None:
    """Serves the MCP streamable-HTTP transport at /mcp of `app` (stateless, JSON
    responses: every POST stands alone, so any client and proxy can use it). Call
    before mounting the UI at /, whose catch-all route would otherwise answer /mcp."""
    server = build_server(api)
    http = server.streamable_http_app(streamable_http_path=MCP_PATH, stateless_http=True, json_response=True,
                                      host=host)  # DNS-rebinding checks when bound to loopback
    app.router.routes.extend(http.routes)
    previous = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[None]:
        async with previous(app_), server.session_manager.run():
            yield

    app.router.lifespan_context = lifespan


def serve_stdio(assistant: Assistant) -> None:
    """`assistant mcp`: the server on stdin/stdout until the client closes it. The
    index loads in the background, so the client's handshake is answered at once."""
    threading.Thread(target=_warm, args=(assistant,), name="mcp-warm-up", daemon=True).start()
    build_server(Api(assistant)).run("stdio")


def _warm(assistant: Assistant) -> None:
    try:
        assistant.index.search("warm up", k=1)
    except IndexProblem:
        pass  # each tool call says so
