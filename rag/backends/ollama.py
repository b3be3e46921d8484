"""The ``ollama`` answerer: a local Ollama server through llama-index's Ollama integration.

Settings: ``llm_model`` (a pulled model, e.g. llama3); ``llm_base_url`` (default http://127.0.0.1:11434);
``llm_timeout`` (seconds to wait for the reply to start and between streamed pieces);
``llm_retries`` (refused connections retried before the first token); ``llm_temperature``.

Example: ``OllamaAnswerer(Settings(answerer="ollama", llm_model="llama3")).description``
"""
from __future__ import annotations

from typing import Any

from .base import register
from .llm_base import MAX_ANSWER_TOKENS, LLMAnswerer, one_line

DEFAULT_URL = "http://127.0.0.1:11434"
# Sent as num_ctx. Ollama's own default (2k-4k) silently cuts the front of a long prompt, rules
# included; the model's full window (often 128k) can exhaust memory. 8k holds the rules and ~20 passages.
CONTEXT_TOKENS = 8192


@register("ollama")
class OllamaAnswerer(LLMAnswerer):
    """Streams cited answers from ``POST {base_url}/api/chat`` (NDJSON) via llama-index's Ollama."""

    label = "Ollama server"
    protocol = "Ollama"
    start_hint = "Start it with `ollama serve` or set RAG_LLM_BASE_URL."

    def default_base_url(self) -> str:
        return DEFAULT_URL

    def _make_llm(self) -> Any:
        from llama_index.llms.ollama import Ollama

        return Ollama(
            model=self.settings.llm_model,
            base_url=self.base_url,
            temperature=self.settings.llm_temperature,
            request_timeout=self.settings.llm_timeout,
            # Known up front, so the integration does not ask /api/show on every request.
            context_window=CONTEXT_TOKENS,
            additional_kwargs={"num_predict": MAX_ANSWER_TOKENS},
        )

    def _http_error(self, exc: BaseException) -> tuple[int, str] | None:
        import ollama

        if isinstance(exc, ollama.ResponseError):
            # status_code is -1 when the error arrived as an {"error": ...} line inside the stream.
            return max(exc.status_code, 0), one_line(exc.error)
        return None

    def _http_hint(self, status: int) -> str:
        if status == 404:
            return (f"Pull the model with `ollama pull {self.settings.llm_model}`, "
                    "or check RAG_LLM_MODEL and RAG_LLM_BASE_URL.")
        return super()._http_hint(status)
