"""The ``openai`` answerer: any OpenAI-compatible chat server (vLLM, llama.cpp server, LM Studio, OpenAI).

Settings: ``llm_model``; ``llm_base_url`` (default: https://api.openai.com/v1 when ``llm_api_key`` is set,
else a local vLLM at http://127.0.0.1:8000/v1); ``llm_api_key`` (a placeholder is sent when unset,
since local servers ignore it); ``llm_timeout`` (seconds to wait for the reply to start and between
streamed pieces); ``llm_retries`` (refused connections retried before the first token);
``llm_temperature``.

Example: ``OpenAIAnswerer(Settings(answerer="openai", llm_base_url="http://127.0.0.1:8000/v1")).description``
"""
from __future__ import annotations

from typing import Any

from .base import register
from .llm_base import MAX_ANSWER_TOKENS, LLMAnswerer, one_line

OPENAI_URL = "https://api.openai.com/v1"
LOCAL_URL = "http://127.0.0.1:8000/v1"  # vLLM's default port; llama.cpp and LM Studio take a --port
PLACEHOLDER_KEY = "not-needed"


@register("openai")
class OpenAIAnswerer(LLMAnswerer):
    """Streams cited answers from ``POST {base_url}/chat/completions`` via llama-index's OpenAILike."""

    label = "OpenAI-compatible server"
    protocol = "OpenAI-compatible"

    def default_base_url(self) -> str:
        return OPENAI_URL if self.settings.llm_api_key else LOCAL_URL

    def _make_llm(self) -> Any:
        from llama_index.llms.openai_like import OpenAILike

        return OpenAILike(
            model=self.settings.llm_model,
            api_base=self.base_url,
            api_key=self.settings.llm_api_key or PLACEHOLDER_KEY,
            is_chat_model=True,
            is_function_calling_model=False,
            temperature=self.settings.llm_temperature,
            max_tokens=MAX_ANSWER_TOKENS,
            timeout=self.settings.llm_timeout,
            # Retries are ours (refused connections, before the first token only): the client's own
            # would also repeat timeouts and multiply the user's wait.
            max_retries=0,
        )

    def _http_error(self, exc: BaseException) -> tuple[int, str] | None:
        import openai

        if isinstance(exc, openai.APIStatusError):
            return exc.status_code, one_line(_server_message(exc))
        if isinstance(exc, openai.APIError) and not isinstance(exc, (openai.APIConnectionError,
                                                                    openai.APIResponseValidationError)):
            # An error event inside the stream: the server refused mid-way and said why.
            return 0, one_line(exc.message)
        return None


def _server_message(exc: Any) -> str:
    """The server's own explanation from an OpenAI-style error body, else the status line."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if body.get("message"):
            return str(body["message"])
    text = exc.response.text if exc.response is not None else ""
    return text or exc.response.reason_phrase
