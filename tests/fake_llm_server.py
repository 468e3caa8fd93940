"""A scripted OpenAI-compatible HTTP server for the LLM tests.

It speaks real HTTP on 127.0.0.1 (so the `openai` client, httpx, timeouts, retries
and SSE parsing are all exercised for real) and answers from a script each test
sets: `POST /v1/chat/completions` (streamed as SSE `chat.completion.chunk` events
ending with `data: [DONE]`, or a plain `chat.completion` when `stream` is false)
and `GET /v1/models`.

    with FakeLLM() as llm:
        llm.script = [Reply.text("An answer [1].")]      # every request gets the last entry
        llm.script = [Reply(status=500), Reply.text(...)]  # first fails, the retry succeeds
        llm.script = [lambda request: Reply.text(...)]     # computed from the request
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "fake-model"


@dataclass
class Reply:
    """What the server does for one request."""

    chunks: list[str] = field(default_factory=list)  # text deltas, one SSE event each
    status: int = 200
    body: str | None = None  # sent as is (errors, garbage) instead of a completion
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the response starts
    chunk_delay: float = 0.0  # seconds between SSE events
    die_after: int | None = None  # drop the connection after this many events (no [DONE])
    stall_after: int | None = None  # stop sending, keeping the connection open, after this many events
    raw_events: list[str] | None = None  # SSE `data:` payloads sent verbatim instead of chunks

    @classmethod
    def text(cls, text: str, pieces: int = 0, **kw: Any) -> Reply:
        """Streams `text` in word-sized deltas (or in about `pieces` parts)."""
        words = re.findall(r"\S+\s*|\s+", text)
        if pieces and len(words) > pieces:
            size = -(-len(words) // pieces)
            words = ["".join(words[i : i + size]) for i in range(0, len(words), size)]
        return cls(chunks=words, **kw)

    @classmethod
    def error(cls, status: int, message: str = "error", **kw: Any) -> Reply:
        body = json.dumps({"error": {"message": message, "type": "server_error", "code": status}})
        return cls(status=status, body=body, **kw)


Script = list["Reply | Callable[[dict[str, Any]], Reply]"]


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None

    @property
    def user_prompt(self) -> str:
        return next((m["content"] for m in (self.body or {}).get("messages", []) if m["role"] == "user"), "")

    @property
    def system_prompt(self) -> str:
        return next((m["content"] for m in (self.body or {}).get("messages", []) if m["role"] == "system"), "")

    def sources(self) -> dict[int, tuple[str, str]]:
        """The numbered sources in the prompt: n -> (title, the sentences shown)."""
        return parse_sources(self.user_prompt)


def parse_sources(prompt: str) -> dict[int, tuple[str, str]]:
    block = prompt.split("Sources:", 1)[-1].split("\nQuestion:", 1)[0]
    out: dict[int, tuple[str, str]] = {}
    for m in re.finditer(r"^Source (\d+): (.+?) \([^)\n]*\)\n(.+?)(?=\n\nSource \d+: |\Z)", block.strip(), re.S | re.M):
        out[int(m.group(1))] = (m.group(2), m.group(3).strip())
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out or drop keep-alive connections are part of the tests."""
        import sys

        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class FakeLLM:
    def __init__(self) -> None:
        self.script: Script = [Reply.text("INSUFFICIENT_SOURCES")]
        self.requests: list[Request] = []
        self._served = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.server = _Server(("127.0.0.1", 0), _handler(self))
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()  # wakes handlers that are sleeping or stalled
        self.server.shutdown()
        self.server.server_close()

    @property
    def completions(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def next_reply(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            entry = self.script[min(self._served, len(self.script) - 1)]
            self._served += 1
        return entry(request.body or {}) if callable(entry) else entry

    def sleep(self, seconds: float) -> bool:
        """False when the server is shutting down."""
        return not self._stop.wait(seconds) if seconds > 0 else not self._stop.is_set()


def _chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    return json.dumps({
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    })


def _handler(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            request = Request("GET", self.path, dict(self.headers), None)
            with fake._lock:
                fake.requests.append(request)
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, json.dumps({"object": "list", "data": [
                    {"id": MODEL, "object": "model", "created": 0, "owned_by": "tests"}]}))
            else:
                self._send(404, json.dumps({"error": {"message": "not found"}}))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = None
            request = Request("POST", self.path, dict(self.headers), body)
            if not self.path.rstrip("/").endswith("/chat/completions"):
                with fake._lock:
                    fake.requests.append(request)
                self._send(404, json.dumps({"error": {"message": "not found"}}))
                return
            reply = fake.next_reply(request)
            try:
                if not fake.sleep(reply.delay):
                    return
                if reply.status != 200 or reply.body is not None:
                    self._send(reply.status, reply.body or "", reply.content_type, reply.headers)
                elif (body or {}).get("stream"):
                    self._stream(reply)
                else:
                    text = "".join(reply.chunks)
                    self._send(200, json.dumps({
                        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                        "model": MODEL,
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }), headers=reply.headers)
            except OSError:  # the client gave up (timeout) and closed the socket
                self.close_connection = True

        def _send(self, status: int, body: str, content_type: str = "application/json",
                  headers: dict[str, str] | None = None) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

        def _write_chunk(self, data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def _stream(self, reply: Reply) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.flush()
            if reply.raw_events is not None:
                events = list(reply.raw_events)
            else:
                events = [_chunk({"role": "assistant", "content": ""})]
                events += [_chunk({"content": c}) for c in reply.chunks]
                events += [_chunk({}, "stop"), "[DONE]"]
            for i, event in enumerate(events):
                if reply.die_after is not None and i >= reply.die_after:
                    # Vanish mid-answer: no terminating chunk, so the client sees a truncated body.
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if reply.stall_after is not None and i >= reply.stall_after:
                    fake.sleep(3600)
                    self.close_connection = True
                    return
                if i and not fake.sleep(reply.chunk_delay):
                    return
                self._write_chunk(f"data: {event}\n\n".encode())
            self._write_chunk(b"")

    return Handler
