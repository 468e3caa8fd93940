"""The OpenAI-compatible client (OpenAI, vLLM, Ollama, llama.cpp server, ...):
bounded timeouts and retries, streaming, a health check, and errors reduced to
one line that never contains the API key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from assistant.config import Settings


class LLMError(RuntimeError):
    """One-line reason the endpoint could not answer; safe to show to users."""


class LLMClient:
    def __init__(self, settings: Settings) -> None:
        import httpx
        import openai

        self.settings = settings
        self.model = settings.llm_model
        self._secret = settings.llm_api_key.get_secret_value() if settings.llm_api_key else ""
        timeout = httpx.Timeout(settings.llm_timeout, connect=min(settings.llm_timeout, 5.0))
        self.client = openai.OpenAI(
            base_url=settings.llm_base_url or None,
            api_key=self._secret or "not-needed",  # local servers accept any key
            timeout=timeout,
            max_retries=settings.llm_retries,
        )

    @property
    def endpoint(self) -> str:
        return str(self.client.base_url)

    def _clean(self, exc: BaseException) -> LLMError:
        import openai

        kind = {
            openai.APITimeoutError: "timed out",
            openai.APIConnectionError: "unreachable",
            openai.RateLimitError: "rate-limited",
            openai.AuthenticationError: "rejected the API key",
        }
        reason = next((v for k, v in kind.items() if isinstance(exc, k)), None)
        if reason is None and isinstance(exc, openai.APIStatusError):
            reason = f"returned HTTP {exc.status_code}"
        if reason is None:
            reason = f"returned an unusable response ({type(exc).__name__})"
        message = f"LLM endpoint {self.endpoint} {reason}"
        if self._secret:
            message = message.replace(self._secret, "***")
        return LLMError(message)

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """Yields text deltas. Raises LLMError, also mid-stream, with a short reason."""
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                stream=True,
                temperature=self.settings.llm_temperature,
                max_tokens=self.settings.llm_max_tokens,
            )
            for chunk in response:
                choices: Any = getattr(chunk, "choices", None)
                if not choices:
                    continue
                delta = getattr(choices[0], "delta", None)
                text = getattr(delta, "content", None) if delta is not None else None
                if text:
                    yield text
        except LLMError:
            raise
        except Exception as exc:  # every failure of a remote service becomes one clean line
            raise self._clean(exc) from None

    def health(self) -> tuple[bool, str]:
        """Cheap reachability check for status displays (lists models)."""
        try:
            self.client.with_options(timeout=min(self.settings.llm_timeout, 3.0), max_retries=0).models.list()
            return True, f"{self.endpoint} reachable (model {self.model})"
        except Exception as exc:
            return False, str(self._clean(exc))
