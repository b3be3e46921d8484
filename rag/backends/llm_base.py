"""What every LLM answerer shares: the prompt, the streaming loop, retries and error translation.

A backend only says how to build its llama-index LLM and how to read its library's HTTP errors;
every failure leaves as a one-line ``BackendError`` that names the backend, the URL and what to check.

Example: ``"".join(create_answerer(Settings(answerer="ollama")).answer("Who?", sources))``
"""
from __future__ import annotations

import threading
import time
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..errors import BackendError
from ..prompts import NO_ANSWER, answer_messages, clean_rewrite, condense_messages
from ..types import Citation
from .base import Answerer, History

if TYPE_CHECKING:
    from ..embedding import Embedder

# Answers are a few cited sentences; the cap stops a looping model from streaming forever.
MAX_ANSWER_TOKENS = 1024
# Pause before retry n is BACKOFF_S * 2**n (capped): long enough for a restarting server, short for a user.
BACKOFF_S, MAX_BACKOFF_S = 0.25, 2.0


@dataclass
class Failure:
    """What went wrong with one call: kind is 'connect', 'timeout', 'http', 'garbage' or 'empty'."""

    kind: str
    detail: str = ""
    status: int = 0


class LLMAnswerer(Answerer):
    """An answerer backed by a llama-index LLM; subclasses implement ``_make_llm`` and ``_http_error``."""

    label = "LLM server"
    protocol = "LLM"
    start_hint = "Start it or set RAG_LLM_BASE_URL."

    def __init__(self, settings: Settings, embedder: Embedder | None = None):
        super().__init__(settings, embedder)
        self._llm: Any = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """The server URL: ``settings.llm_base_url`` or the backend's default."""
        return (self.settings.llm_base_url or self.default_base_url()).rstrip("/")

    def default_base_url(self) -> str:
        raise NotImplementedError

    @property
    def description(self) -> str:
        return f"{self.name}: {self.settings.llm_model} @ {self.base_url}"

    @property
    def llm(self) -> Any:
        """The llama-index LLM, built on first use so that ``import rag`` stays fast."""
        if self._llm is None:
            with self._lock:
                if self._llm is None:
                    try:
                        self._llm = self._make_llm()
                    except ImportError as exc:
                        raise BackendError(f"The {self.name} answerer needs {exc.name or 'its llama-index integration'}"
                                           " installed: run `make install`.") from exc
        return self._llm

    @abstractmethod
    def _make_llm(self) -> Any:
        """Build the llama-index LLM for ``self.settings`` (imports the integration lazily)."""

    def _http_error(self, exc: BaseException) -> tuple[int, str] | None:
        """(status, server's message) when ``exc`` is the library's HTTP error, else None."""
        return None

    def answer(self, question: str, sources: list[Citation], history: History = None) -> Iterator[str]:
        """Stream the model's answer; without sources it abstains without calling the server. The
        question comes already rewritten from ``history`` (by ``condense``), so the prompt needs no more."""
        if not sources:
            yield NO_ANSWER
            return
        yield from self._run(answer_messages(question, sources), stream=True)

    def condense(self, question: str, history: list[tuple[str, str]]) -> str:
        """The model's standalone rewrite of a follow-up; raises BackendError when it cannot give one."""
        rewrite = clean_rewrite("".join(self._run(condense_messages(question, history), stream=False)))
        if not rewrite:
            raise BackendError(self._message(Failure("empty", "an empty rewrite of the question"), False))
        return rewrite

    def _run(self, messages: list[dict[str, str]], stream: bool) -> Iterator[str]:
        """Yield the reply's text; retry failed connections until the first piece, then fail loudly."""
        attempt, started = 0, False
        while True:
            try:
                for piece in self._pieces(messages, stream):
                    started = True
                    yield piece
                break
            except BackendError:
                raise
            except Exception as exc:  # the edge: library errors become one BackendError
                failure = self._classify(exc)
                if failure.kind == "connect" and not started and attempt < self.settings.llm_retries:
                    time.sleep(min(BACKOFF_S * 2**attempt, MAX_BACKOFF_S))
                    attempt += 1
                    continue
                raise BackendError(self._message(failure, started)) from exc
        if not started:
            raise BackendError(self._message(Failure("empty", "an empty reply"), False))

    def _pieces(self, messages: list[dict[str, str]], stream: bool) -> Iterator[str]:
        from llama_index.core.llms import ChatMessage

        chat = [ChatMessage(role=m["role"], content=m["content"]) for m in messages]
        if not stream:
            content = self.llm.chat(chat).message.content
            if content:
                yield content
            return
        for chunk in self.llm.stream_chat(chat):
            if chunk.delta:
                yield chunk.delta

    def _classify(self, exc: BaseException) -> Failure:
        import httpx

        chain = _causes(exc)
        if any(isinstance(e, (httpx.TimeoutException, TimeoutError)) for e in chain):
            return Failure("timeout")
        http = next((found for e in chain if (found := self._http_error(e))), None)
        if http:
            return Failure("http", http[1], http[0])
        root = chain[-1]
        if any(isinstance(e, (httpx.ConnectError, ConnectionRefusedError)) for e in chain):
            refused = "refused" in str(root).lower()
            return Failure("connect", "connection refused" if refused else one_line(root))
        if any(isinstance(e, (httpx.RemoteProtocolError, httpx.ReadError, ConnectionError)) for e in chain):
            return Failure("connect", "the server closed the connection without a complete reply")
        if any(isinstance(e, httpx.TransportError) for e in chain):
            return Failure("connect", one_line(root))
        # The outermost error names what the library could not parse; its causes are parser internals.
        return Failure("garbage", f"{type(exc).__name__}: {one_line(exc, 100)}")

    def _message(self, failure: Failure, started: bool) -> str:
        where = f"the {self.label} at {self.base_url}"
        subject, timeout = _cap(where), f"{self.settings.llm_timeout:g} s"
        if failure.kind == "connect" and started:
            return f"Lost {where} mid-answer: {failure.detail}. Check the server's log and ask again."
        if failure.kind == "connect":
            return f"Cannot reach {where}: {failure.detail}. {self.start_hint}"
        if failure.kind == "timeout" and started:
            return f"{subject} stopped sending mid-answer (nothing for {timeout}). Ask again or raise RAG_LLM_TIMEOUT."
        if failure.kind == "timeout":
            return (f"{subject} did not answer within {timeout}; it may be busy or still loading the model. "
                    "Ask again or raise RAG_LLM_TIMEOUT.")
        if failure.kind == "http":
            hint = self._http_hint(failure.status)
            return f"{subject} returned {_status(failure.status)}: {failure.detail}. {hint}"
        check = f"Check that RAG_LLM_BASE_URL points at an {self.protocol} API and RAG_LLM_MODEL is a chat model."
        if failure.kind == "empty":
            return f"{subject} sent {failure.detail}. {check}"
        return f"{subject} sent a reply that is not valid {self.protocol} output ({failure.detail}). {check}"

    def _http_hint(self, status: int) -> str:
        if status in (401, 403):
            return "Check RAG_LLM_API_KEY."
        if status == 404:
            return f"Check RAG_LLM_MODEL ({self.settings.llm_model}) and RAG_LLM_BASE_URL."
        return "Check the server's log."


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions behind it, outermost first (libraries wrap httpx errors)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def one_line(text: object, limit: int = 160) -> str:
    """Error text squeezed onto one short line, for a user message."""
    flat = " ".join(str(text).split()) or type(text).__name__
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _status(status: int) -> str:
    return f"HTTP {status}" if status > 0 else "an error"
