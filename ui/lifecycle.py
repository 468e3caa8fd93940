"""How `assistant serve` stops: on SIGTERM (systemd, `docker stop`, a supervisor) or
Ctrl-C, answers already being computed finish, new requests get a JSON 503 with
`Retry-After`, and the process exits 0 once nothing is in flight or after
ASSISTANT_SHUTDOWN_TIMEOUT seconds (default 30), whichever comes first. A second
signal stops at once, as uvicorn alone would.

uvicorn alone closes the listening socket at the first signal (new clients get
"connection refused" rather than an answer), waits only `timeout_graceful_shutdown`
for requests in flight, and re-raises the signal when done, so a SIGTERM'd server
exited with status 143 instead of 0.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from types import FrameType
from typing import Any

import uvicorn

from ui.server import send_json

log = logging.getLogger(__name__)

# Streams that stay open as long as their client does (Gradio's heartbeat, an MCP
# client's GET /mcp notification stream): not requests to finish, so draining does
# not wait for them. (method or None for any, path part)
LONG_LIVED = ((None, "/heartbeat/"), ("GET", "/mcp"))
RETRY_AFTER_S = 5
SOCKET_CLOSE_S = 3  # after draining, uvicorn's own wait for the remaining connections


class DrainGate:
    """ASGI middleware that counts HTTP requests in flight and, once `drain()` is
    called, answers every new one 503. Runs on the event loop, so the counter needs
    no lock."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.in_flight = 0
        self.draining = False

    def drain(self) -> None:
        self.draining = True

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.draining:
            await send_json(send, 503, {"error": "The server is shutting down; try again in a moment."},
                             [(b"retry-after", str(RETRY_AFTER_S).encode()), (b"connection", b"close")])
            return
        counted = not any(method in (None, scope.get("method")) and part in scope.get("path", "")
                          for method, part in LONG_LIVED)
        self.in_flight += counted
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= counted


class GracefulServer(uvicorn.Server):
    """uvicorn's server, keeping its socket open while requests in flight finish."""

    def __init__(self, config: uvicorn.Config, gate: DrainGate, timeout: float) -> None:
        super().__init__(config)
        self.gate, self.timeout = gate, timeout
        self.deadline = 0.0
        self.cut_off = 0  # requests still in flight when the timeout ran out

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.gate.draining:  # a second signal: stop now (uvicorn's own handling)
            super().handle_exit(sig, frame)
            return
        self.deadline = time.monotonic() + self.timeout
        self.gate.drain()
        log.warning("%s: finishing %d request(s) in flight (up to %g s), refusing new ones with 503",
                    signal.Signals(sig).name, self.gate.in_flight, self.timeout)

    async def on_tick(self, counter: int) -> bool:
        """Every 0.1 s: once draining, stop when nothing is in flight or time is up."""
        if self.gate.draining and not self.should_exit:
            if self.gate.in_flight == 0 or time.monotonic() >= self.deadline:
                self.cut_off = self.gate.in_flight
                if self.cut_off:
                    log.warning("shutdown timeout: %d request(s) still in flight are cut off", self.cut_off)
                self.should_exit = True
        return await super().on_tick(counter)


def serve_until_stopped(app: Any, host: str, port: int, timeout: float) -> None:
    """Serves `app` until SIGTERM or SIGINT, then drains as described above."""
    gate = DrainGate(app)
    config = uvicorn.Config(gate, host=host, port=port, log_level="warning", timeout_graceful_shutdown=SOCKET_CLOSE_S)
    server = GracefulServer(config, gate, timeout)
    server.run()
    if server.cut_off:
        # The answers cut off still hold worker threads (blocked in an LLM call, say),
        # and the interpreter would wait for them at exit: leave now instead.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
