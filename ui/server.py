"""One ASGI app: the JSON API and OpenAPI schema on FastAPI, the OpenAI-compatible
/v1 routes (ui/openai_api.py), the MCP transport at /mcp (ui/mcp_server.py), the
Gradio UI mounted at `/`, optional HTTP basic auth in front of all of them, and a
body-size cap on the APIs.

Auth is an ASGI middleware rather than Gradio's login form so that one check
covers every route (UI, Gradio's own endpoints, /api/*, /v1/*, /mcp, /openapi.json)
and API clients can use a standard `Authorization: Basic` header.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response

from assistant.config import Settings
from assistant.pipeline import Assistant
from ui.openai_api import openai_error_body

log = logging.getLogger(__name__)

Scope = dict[str, Any]


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """ASSISTANT_AUTH=user:password (the password may contain ':'); blank = no auth."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError("ASSISTANT_AUTH must look like user:password")
    return user, password


async def send_json(send: Any, status: int, body: dict[str, Any],
                     headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *headers]})
    await send({"type": "http.response.body", "body": data})


class BasicAuth:
    """HTTP basic auth for every HTTP and websocket request. `Bearer user:password`
    is accepted too: OpenAI-protocol and MCP clients often only let users set a key."""

    def __init__(self, app: Any, user: str, password: str) -> None:
        self.app = app
        self._user, self._password = user.encode(), password.encode()

    def _ok(self, scope: Scope) -> bool:
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        try:
            if scheme.lower() == b"bearer":
                user, _, password = token.strip().partition(b":")
            elif scheme.lower() == b"basic":
                user, _, password = base64.b64decode(token.strip(), validate=True).partition(b":")
            else:
                return False
        except (binascii.Error, ValueError):
            return False
        # both compared in full, so timing says nothing about which part was wrong
        return secrets.compare_digest(user, self._user) & secrets.compare_digest(password, self._password)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or self._ok(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        message = "Authentication required (HTTP basic auth)."
        body = openai_error_body(message, "authentication_error", "invalid_api_key") \
            if scope.get("path", "").startswith("/v1/") else {"error": message}
        await send_json(send, 401, body, [(b"www-authenticate", b'Basic realm="assistant", charset="UTF-8"')])


class BodyLimit:
    """Refuses API requests whose declared body is larger than `limit` bytes, before
    reading them, and counts the bytes of bodies sent without a length."""

    def __init__(self, app: Any, limit: int, prefix: str = "/api/", openai: bool = False) -> None:
        self.app, self.limit, self.prefix, self.openai = app, limit, prefix, openai

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        message = f"The request body is larger than {self.limit // 1024} KiB."
        too_big = openai_error_body(message, "invalid_request_error", "request_too_large") if self.openai \
            else {"error": message}
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await send_json(send, 413, too_big)
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooBig
            return message

        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracking_send)
        except _TooBig:
            if not started:
                await send_json(send, 413, too_big)


class _TooBig(Exception):
    pass


def theme() -> Any:
    """Gradio's default look, with the bundled font's complete regular and bold files
    (its semibold file is a small subset, so bold text mixed in fallback glyphs)."""
    import gradio as gr

    font = gr.themes.LocalFont("Source Sans Pro", weights=(400, 700))
    return gr.themes.Default(font=[font, "ui-sans-serif", "system-ui", "sans-serif"])


def create_app(settings: Settings | None = None, assistant: Assistant | None = None, warm: bool = True) -> FastAPI:
    """The served app. `warm` loads the models and index before the first request,
    so the first question is as fast as the next ones."""
    import gradio as gr

    from ui.api import MAX_BODY_BYTES, Api, install_error_handlers
    from ui.app import AssistantUI, build_ui, warm_up
    from ui.corpus_map import MAP_FIGURE_ROUTE, PLOTLY_JS_ROUTE, plotly_js_path
    from ui.format import CLICK_JS, CSS
    from ui.mcp_server import mount as mount_mcp
    from ui.openai_api import OpenAIApi

    settings = settings or Settings()
    assistant = assistant or Assistant(settings)
    credentials = parse_auth(settings.auth)
    app = FastAPI(
        title="Research assistant API",
        version="1",
        description="Answers questions over ML paper abstracts with verified citations. "
        "Errors are JSON objects `{\"error\": \"...\"}`. With ASSISTANT_AUTH set, every route needs HTTP basic auth.",
        docs_url="/api/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    api = Api(assistant)
    app.include_router(api.router())
    app.include_router(OpenAIApi(api).router())
    mount_mcp(app, api, settings.host)

    @app.get(PLOTLY_JS_ROUTE, include_in_schema=False)
    def _plotly_js() -> FileResponse:
        return FileResponse(plotly_js_path(), media_type="text/javascript",
                            headers={"cache-control": "public, max-age=86400"})

    @app.get(MAP_FIGURE_ROUTE, include_in_schema=False)
    def _map_figure() -> Response:
        return Response(AssistantUI(assistant).map_value() or "null", media_type="application/json",
                        headers={"cache-control": "no-store"})  # a rebuilt index brings a new map

    if warm:
        warm_up(assistant)
    blocks = build_ui(assistant)
    app = gr.mount_gradio_app(app, blocks, path="/", server_name=settings.host, server_port=settings.port,
                              footer_links=[], run_history=False, theme=theme(), css=CSS, head=CLICK_JS, ssr_mode=False,
                              mcp_server=False, show_error=False)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES, prefix="/v1/", openai=True)
    if credentials:
        app.add_middleware(BasicAuth, user=credentials[0], password=credentials[1])
    return app
