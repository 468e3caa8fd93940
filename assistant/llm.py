"""The OpenAI-compatible client (OpenAI, vLLM, Ollama, llama.cpp server, ...):
bounded timeouts and retries, streaming, a health check, and errors reduced to
one line that never contains the API key.

Retries are done here rather than by the `openai` client, which honours a
server's `Retry-After` of up to two minutes: an interactive answer should fall
back to the offline answer instead. Worst case for one answer before the first
token: (retries + 1) x (connect + timeout) + retries x `MAX_BACKOFF`; after that,
`llm_timeout` bounds the wait between any two reads of the stream.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from assistant.config import NO_ENDPOINT, Settings

MAX_BACKOFF = 4.0  # seconds; a longer Retry-After is not waited for
RETRY_STATUS = {408, 409, 429}  # and every 5xx


class LLMError(RuntimeError):
    """One-line reason the endpoint could not answer; safe to show to users."""


class LLMClient:
    def __init__(self, settings: Settings) -> None:
        import httpx
        import openai

        if not settings.llm_configured:
            # openai.OpenAI(base_url=None) means api.openai.com: never send a question
            # there unless the user asked for it with a key.
            raise LLMError(NO_ENDPOINT)
        self.settings = settings
        self.model = settings.llm_model
        self._secret = settings.llm_api_key.get_secret_value() if settings.llm_api_key else ""
        timeout = httpx.Timeout(settings.llm_timeout, connect=min(settings.llm_timeout, 5.0))
        self._config_error: LLMError | None = None
        try:
            self.client = openai.OpenAI(
                base_url=settings.llm_base_url or None,
                api_key=self._secret or "not-needed",  # local servers accept any key
                timeout=timeout,
                max_retries=0,  # see _retry_delay
            )
        except Exception:  # e.g. httpx.InvalidURL; its message may quote the URL, credentials included
            self.client = None  # type: ignore[assignment]  # None only here: every use checks _config_error first
            self._config_error = LLMError(
                "The LLM base URL is not a valid URL (check ASSISTANT_LLM_BASE_URL or OPENAI_BASE_URL)"
            )

    @property
    def endpoint(self) -> str:
        """The base URL without credentials, query or fragment."""
        if self.client is None:
            return "(invalid base URL)"
        url = self.client.base_url
        port = f":{url.port}" if url.port else ""
        return self._redact(f"{url.scheme}://{url.host}{port}{url.path}")

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def _clean(self, exc: BaseException) -> LLMError:
        import httpx
        import openai

        timeout = f"{self.settings.llm_timeout:g}"
        kind: list[tuple[type[BaseException], str]] = [
            (openai.APITimeoutError, f"timed out (no reply within {timeout} s)"),
            (httpx.TimeoutException, f"timed out (no reply within {timeout} s)"),
            (openai.APIConnectionError, "is unreachable"),
            (httpx.ConnectError, "is unreachable"),
            (openai.RateLimitError, "is rate-limiting requests (HTTP 429)"),
            (openai.AuthenticationError, "rejected the API key (HTTP 401)"),
            (openai.PermissionDeniedError, "refused access (HTTP 403)"),
            (openai.NotFoundError, f"has no model {self.model!r} or no chat API there (HTTP 404)"),
            (httpx.TransportError, "closed the connection mid-answer"),  # RemoteProtocolError, ReadError
            (ValueError, "returned a malformed response"),  # JSONDecodeError, pydantic errors
        ]
        reason = next((v for k, v in kind if isinstance(exc, k)), None)
        if reason is None and isinstance(exc, openai.APIStatusError):
            reason = f"returned HTTP {exc.status_code}"
        if reason is None:
            reason = f"returned an unusable response ({type(exc).__name__})"
        return LLMError(self._redact(f"LLM endpoint {self.endpoint} {reason}"))

    def _retry_delay(self, attempt: int, exc: BaseException) -> float | None:
        """Seconds to wait before another attempt, or None when retrying is pointless."""
        import openai

        if isinstance(exc, openai.APIStatusError):
            if exc.status_code not in RETRY_STATUS and exc.status_code < 500:
                return None
            wait = _retry_after(exc.response.headers)
            if wait is not None:
                return wait if wait <= min(MAX_BACKOFF, self.settings.llm_timeout) else None
        elif not isinstance(exc, openai.APIConnectionError):  # includes timeouts
            return None
        return float(min(0.5 * 2**attempt, MAX_BACKOFF, self.settings.llm_timeout))

    def _open(self, messages: list[dict[str, str]]) -> Any:
        """Starts the streamed completion, retrying failures before the first byte."""
        attempt = 0
        while True:
            try:
                return self.client.chat.completions.create(
                    model=self.model,
                    messages=messages,  # type: ignore[arg-type]  # plain role/content dicts are what the API takes
                    stream=True,
                    temperature=self.settings.llm_temperature,
                    max_tokens=self.settings.llm_max_tokens,
                )
            except Exception as exc:
                delay = self._retry_delay(attempt, exc) if attempt < self.settings.llm_retries else None
                if delay is None:
                    raise
                attempt += 1
                time.sleep(delay)

    def stream(self, messages: list[dict[str, str]], info: dict[str, Any] | None = None) -> Iterator[str]:
        """Yields text deltas. Raises LLMError, also mid-stream, with a short reason.
        A stream is never retried once it started (tokens would repeat). `info` gets the
        `finish_reason` ("length": cut off at `llm_max_tokens`), which is how a caller
        tells a finished answer from a truncated one."""
        if self._config_error is not None:
            raise self._config_error
        produced = False
        try:
            with self._open(messages) as response:
                for chunk in response:
                    choices: Any = getattr(chunk, "choices", None)
                    if not choices:
                        continue
                    finish = getattr(choices[0], "finish_reason", None)
                    if info is not None and isinstance(finish, str):
                        info["finish_reason"] = finish
                    delta = getattr(choices[0], "delta", None)
                    text = getattr(delta, "content", None) if delta is not None else None
                    if isinstance(text, str) and text:
                        produced = True
                        yield text
        except LLMError:
            raise
        except Exception as exc:  # every failure of a remote service becomes one clean line
            raise self._clean(exc) from None
        if not produced:
            raise LLMError(f"LLM endpoint {self.endpoint} returned an empty answer")

    def health(self) -> tuple[bool, str]:
        """Cheap reachability check for status displays (lists models)."""
        if self._config_error is not None:
            return False, str(self._config_error)
        try:
            self.client.with_options(timeout=min(self.settings.llm_timeout, 3.0), max_retries=0).models.list()
            return True, f"{self.endpoint} reachable (model {self.model})"
        except Exception as exc:
            return False, str(self._clean(exc))


def _retry_after(headers: Any) -> float | None:
    """The server's requested wait (`retry-after-ms` or `retry-after` in seconds)."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name) if headers is not None else None
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            continue  # an HTTP date: fall back to the normal backoff
        if seconds >= 0:
            return seconds
    return None
