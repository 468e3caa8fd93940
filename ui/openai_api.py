"""The OpenAI face of `assistant serve`: `POST /v1/chat/completions` and
`GET /v1/models`, so chat front ends and SDKs that speak the OpenAI protocol get
cited answers. Every answer comes from `pipeline.Assistant` through the JSON API's
limiter (ui/api.py); this module only translates.

What crosses the protocol (README: OpenAI-compatible endpoint):
- `messages` -> question and history: the last user message is the question,
  earlier user/assistant pairs the history; system and tool messages are ignored.
  A client sends back only the assistant's text, so a previous answer's citations
  are read back from the Sources list this module appended to it (or taken from
  `citations` when the client kept that field).
- The answer -> `content`: notices as "> Note:" lines, the answer with its [n]
  markers, then "Sources:" with title, link and the quoted sentence of each; the
  same citations and notices as data in `message.citations` / `message.notices`.
- Streaming sends only text the pipeline has committed. An LLM's draft is never
  sent as content: the pipeline verifies it as a whole, then renumbers, strips or
  replaces it (a reset), and an OpenAI client cannot take back text it was shown.
  While a draft is written the stream carries SSE comments, then the verified text.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from typing import Any, Literal

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.decide import PARTIAL_DISCARDED
from assistant.index import IndexProblem
from assistant.models import Answer, Citation, Notice
from assistant.pipeline import AnswerReader, Event, QuestionError, QuestionTooLong, Turn
from ui.api import Api, CitationIn, HistoryTurn, PreviousAnswer, to_turns, validation_message

log = logging.getLogger(__name__)

MODELS: dict[str, Literal["offline", "llm"] | None] = {"assistant": None, "assistant-offline": "offline",
                                                       "assistant-llm": "llm"}
MAX_TURNS = 50  # history kept: the most recent turns (a chat front end sends the whole conversation)
KEEPALIVE_S = 5.0  # an SSE comment after this long without a byte sent keeps proxies from closing the stream
SOURCES_HEAD = "Sources:"
NOTE_PREFIX = "> Note: "
_SOURCE_LINE = re.compile(r"^- \[(?P<n>\d+)\] (?P<title>.+?)(?: — (?P<url>https?://\S+))? — “(?P<quote>.*)”$")


# ---------------------------------------------------------------- errors


class ChatError(Exception):
    """A request this endpoint answers with an OpenAI error object."""

    def __init__(self, status: int, message: str, code: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.code, self.kind = status, code, kind

    def body(self) -> dict[str, Any]:
        return openai_error_body(str(self), self.kind, self.code)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


def openai_error_body(message: str, kind: str, code: str) -> dict[str, Any]:
    """The OpenAI error shape, for the auth and body-size middlewares (ui/server.py)."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def as_chat_error(exc: Exception) -> ChatError:
    """Pipeline failures as OpenAI errors: the client's mistakes 4xx, a missing or
    damaged index 503, anything else 500 (logged with its trace)."""
    if isinstance(exc, ChatError):
        return exc
    if isinstance(exc, QuestionTooLong):
        return ChatError(413, str(exc), "question_too_long")
    if isinstance(exc, QuestionError):
        return ChatError(400, str(exc), "invalid_question")
    if isinstance(exc, IndexProblem):
        return ChatError(503, str(exc), "index_unavailable", "server_error")
    log.error("answering failed", exc_info=exc)
    return ChatError(500, "Internal error; the server log has the details.", "internal_error", "server_error")


# ---------------------------------------------------------------- request


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, ...: accepted and ignored

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    citations: list[CitationIn] | None = None  # what this endpoint returned, when the client kept it

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        if any(part.get("type") != "text" for part in self.content):
            raise ChatError(400, "Only text content is supported (no images, audio or files).", "unsupported_content")
        return "\n".join(str(part.get("text", "")) for part in self.content)


class ChatRequest(BaseModel):
    """The OpenAI request; sampling options (temperature, max_tokens, ...) are accepted
    and ignored: the answer is extracted or verified, not sampled."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    n: int = Field(1, ge=1, le=1, description="One answer per request.")


def parse_request(raw: bytes, llm_configured: bool) -> tuple[ChatRequest, Literal["offline", "llm"] | None]:
    """The validated request and the answer mode its model names."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ChatError(400, "The request body is not valid JSON.", "invalid_json") from None
    try:
        request = ChatRequest.model_validate(data)
    except ValidationError as exc:
        raise ChatError(400, validation_message(exc.errors()), "invalid_request") from None
    if request.model not in MODELS:
        raise ChatError(400, f"Unknown model {request.model[:100]!r}; use one of: {', '.join(MODELS)} "
                        "(GET /v1/models).", "model_not_found")
    mode = MODELS[request.model]
    if mode == "llm" and not llm_configured:
        raise ChatError(400, "Model assistant-llm needs an LLM endpoint (ASSISTANT_LLM_BASE_URL or OPENAI_API_KEY on "
                        "the server); use assistant-offline.", "llm_not_configured")
    return request, mode


def conversation(messages: list[ChatMessage]) -> tuple[str, list[HistoryTurn]]:
    """The question (the last message, a user's) and the earlier user/assistant turns."""
    talk = [m for m in messages if m.role in ("user", "assistant")]
    if not talk or talk[-1].role != "user":
        raise ChatError(400, "The last message must be the user's question (role \"user\").", "no_user_message")
    history: list[HistoryTurn] = []
    for message in talk[:-1]:
        if message.role == "user":
            try:
                history.append(HistoryTurn(question=message.text()))
            except ValidationError:
                raise ChatError(413, "An earlier user message is longer than 20000 characters.",
                                "message_too_long") from None
        elif history:  # an assistant message answers the user message before it
            history[-1].answer = previous_answer(message)
    return talk[-1].text(), history[-MAX_TURNS:]


def previous_answer(message: ChatMessage) -> PreviousAnswer:
    """A previous answer as the pipeline's follow-up handling reads it: its text and
    citations (kept by the client, or read back from the Sources list)."""
    text, cited = split_content(message.text())
    citations = message.citations if message.citations is not None else cited
    return PreviousAnswer(answer=text, abstained=not citations, citations=citations)


def split_content(content: str) -> tuple[str, list[CitationIn]]:
    """`render`'s inverse: the answer text without notes and Sources, and the cited papers."""
    body, _, sources = content.partition(f"\n\n{SOURCES_HEAD}\n")
    lines = body.split("\n")
    while lines and (lines[0].startswith(NOTE_PREFIX) or not lines[0].strip()):
        lines.pop(0)
    citations = [CitationIn(n=int(m["n"]), title=m["title"], url=m["url"], quote=m["quote"])
                 for m in map(_SOURCE_LINE.match, sources.split("\n")) if m]
    return "\n".join(lines).strip(), citations


def with_paper_ids(turns: list[Turn], titles: dict[str, str]) -> list[Turn]:
    """Citations read back from text carry titles only; the paper ids come from the index."""
    for turn in turns:
        for c in turn.answer.citations:
            c.paper_id = c.paper_id or titles.get(c.title, "")
    return turns


# ---------------------------------------------------------------- response


def shown(notice: Notice) -> Notice:
    """The notice as this face's client sees it: it never saw a draft, so nothing
    "above" was discarded."""
    return notice.model_copy(update={"message": notice.message.replace(PARTIAL_DISCARDED, "")})


def note(notice: Notice) -> str:
    return f"{NOTE_PREFIX}{shown(notice).message}\n\n"


def sources(citations: list[Citation]) -> str:
    """The Sources list a plain chat front end shows under the answer."""
    if not citations:
        return ""
    lines = [f"- [{c.n}] {c.title}{f' — {c.url}' if c.url else ''} — “{c.quote}”" for c in citations]
    return f"\n\n{SOURCES_HEAD}\n" + "\n".join(lines)


def render(answer: Answer) -> str:
    return "".join(map(note, answer.notices)) + answer.answer + sources(answer.citations)


def extras(answer: Answer) -> dict[str, Any]:
    """The contract's citations and notices, beside the text."""
    contract = answer.contract().model_dump(mode="json")
    return {"citations": contract["citations"], "notices": [shown(n).model_dump(mode="json") for n in answer.notices]}


class Completion:
    """Ids and envelopes of one completion, streamed or not."""

    def __init__(self, model: str) -> None:
        self.id, self.model, self.created = f"chatcmpl-{uuid.uuid4().hex}", model, int(time.time())

    def _envelope(self, obj: str, choice: dict[str, Any]) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model,
                "choices": [{"index": 0, "logprobs": None, **choice}]}

    def message(self, answer: Answer) -> dict[str, Any]:
        message = {"role": "assistant", "content": render(answer), "refusal": None, **extras(answer)}
        return self._envelope("chat.completion", {"message": message, "finish_reason": "stop"})

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = self._envelope("chat.completion.chunk", {"delta": delta, "finish_reason": finish})
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


# ---------------------------------------------------------------- streaming


Item = Event | Exception
IDLE = "idle"  # what `_receive` returns when its wait ends without an event


class ChatStream(Response):
    """Server-sent `chat.completion.chunk` events of one answer, ending `data: [DONE]`.

    The pipeline runs in the API's answer thread pool and hands its events over a
    memory stream. The HTTP status waits for the first event, so a question the
    pipeline refuses or an index it cannot open still gets a 4xx/5xx JSON error;
    a client that goes away cancels the answer."""

    def __init__(self, api: Api, completion: Completion, events: Callable[[], Iterator[Event]]) -> None:
        super().__init__()
        self.raw_headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                            (b"x-accel-buffering", b"no")]
        self.api, self.completion, self.events = api, completion, events

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        sender, items = anyio.create_memory_object_stream[Item](math.inf)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._produce, sender)
            tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope)
            with items:
                first = await _receive(items, None)
                if isinstance(first, Event):
                    await self._stream(first, items, send)
                else:
                    failure = first if isinstance(first, Exception) else RuntimeError("the pipeline sent no event")
                    await as_chat_error(failure).response()(scope, receive, send)
            tg.cancel_scope.cancel()

    async def _produce(self, sender: MemoryObjectSendStream[Item]) -> None:
        def emit(item: Item) -> bool:
            try:
                anyio.from_thread.run_sync(sender.send_nowait, item)
                return True
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):  # the client went away
                return False

        def work() -> None:
            events = None
            try:
                events = self.events()
                for event in events:
                    if not emit(event):
                        break
            except Exception as exc:
                emit(exc)
            finally:
                if isinstance(events, Generator):  # stops the pipeline (and its LLM call) early
                    events.close()

        with sender:
            await self.api.run(work)

    async def _stream(self, first: Event, items: MemoryObjectReceiveStream[Item], send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        last = time.monotonic()

        async def body(data: bytes, more: bool = True) -> None:
            nonlocal last
            last = time.monotonic()
            await send({"type": "http.response.body", "body": data, "more_body": more})

        chunk, reader = self.completion.chunk, AnswerReader()
        await body(chunk({"role": "assistant", "content": ""}))
        item: Item | str | None = first
        while isinstance(item, Event) or item == IDLE:
            if isinstance(item, Event) and reader.read(item).kind == "notice" and item.notice is not None:
                await body(chunk({"content": note(item.notice)}))
            elif reader.answer is not None:
                answer = reader.answer
                late = "".join(note(n) for n in answer.notices if n not in reader.notices)
                await body(chunk({"content": late + answer.answer + sources(answer.citations)}))
                await body(chunk(extras(answer), finish="stop"))
                break
            if time.monotonic() - last >= KEEPALIVE_S:  # withheld draft tokens send nothing
                await body(b": the answer is being written and verified\n\n")
            item = await _receive(items, KEEPALIVE_S - (time.monotonic() - last))
        else:  # the pipeline failed (or ended without an answer) after the status was sent
            failure = item if isinstance(item, Exception) else RuntimeError("the pipeline ended without an answer")
            await body(_sse(as_chat_error(failure).body()))
        await body(b"data: [DONE]\n\n", more=False)


async def _receive(items: MemoryObjectReceiveStream[Item], timeout: float | None) -> Item | str | None:
    """The next item; IDLE after `timeout` seconds without one; None at the end."""
    with anyio.move_on_after(max(timeout, 0.0) if timeout is not None else None):
        try:
            return await items.receive()
        except anyio.EndOfStream:
            return None
    return IDLE


async def _cancel_on_disconnect(receive: Any, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


def _sse(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


# ---------------------------------------------------------------- routes


class OpenAIApi:
    """The /v1 routes, sharing the JSON API's assistant and answer limiter."""

    def __init__(self, api: Api) -> None:
        self.api, self.assistant = api, api.assistant
        self.created = int(time.time())

    def router(self) -> APIRouter:
        r = APIRouter(prefix="/v1", tags=["openai"])
        r.add_api_route("/chat/completions", self.chat, methods=["POST"],
                        summary="OpenAI-compatible chat completion with citations (streamed with stream: true)")
        r.add_api_route("/models", self.models, methods=["GET"], summary="The assistant's models")
        r.add_api_route("/models/{model}", self.model, methods=["GET"], summary="One model")
        r.add_api_route("/{rest:path}", self.unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                        include_in_schema=False)
        return r

    def _model(self, name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": self.created, "owned_by": "assistant"}

    def available(self) -> list[str]:
        return [m for m, mode in MODELS.items() if mode != "llm" or self.assistant.settings.llm_configured]

    async def models(self) -> Any:
        return {"object": "list", "data": [self._model(m) for m in self.available()]}

    async def model(self, model: str) -> Any:
        if model not in self.available():
            return ChatError(404, f"No model {model[:100]!r}; see GET /v1/models.", "model_not_found").response()
        return self._model(model)

    async def unknown(self, request: Request, rest: str) -> Any:
        if rest.rstrip("/") == "chat/completions":
            return ChatError(405, "Use POST /v1/chat/completions.", "method_not_allowed").response()
        return ChatError(404, f"No route /v1/{rest[:100]}; this server has /v1/chat/completions and /v1/models.",
                         "not_found").response()

    async def chat(self, request: Request) -> Any:
        try:
            body, mode = parse_request(await request.body(), self.assistant.settings.llm_configured)
            question, history = conversation(body.messages)
            self.assistant.clean_question(question)  # a refused question is a 4xx before any work
        except (ChatError, QuestionError) as exc:
            return as_chat_error(exc).response()
        completion = Completion(body.model)

        def turns() -> list[Turn]:
            titles = {p.title: pid for pid, p in self.assistant.index.papers.items()} if history else {}
            return with_paper_ids(to_turns(history), titles)

        if body.stream:
            return ChatStream(self.api, completion, lambda: self.assistant.stream(question, turns(), mode=mode))
        try:
            answer = await self.api.run(lambda: self.assistant.ask(question, turns(), mode=mode))
        except Exception as exc:
            return as_chat_error(exc).response()
        return completion.message(answer)
