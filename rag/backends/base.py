"""The answerer interface and its registry: one small class per backend, chosen by name.

Example: ``create_answerer(Settings(answerer="extractive")).answer(question, sources)``
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator

from ..config import Settings
from ..errors import ConfigError
from ..types import Citation

_REGISTRY: dict[str, type["Answerer"]] = {}
# Earlier turns of a conversation, oldest first, as (question, answer_text) pairs; None for a first question.
History = list[tuple[str, str]] | None


class Answerer(ABC):
    """Writes an answer from numbered sources; every claim ends with ``[n]`` (n = ``Citation.number``)."""

    name: str = ""

    def __init__(self, settings: Settings):
        self.settings = settings

    @abstractmethod
    def answer(self, question: str, sources: list[Citation], history: History = None) -> Iterator[str]:
        """Yield the answer text in pieces; raise BackendError when the backend fails.

        ``question`` already stands on its own (a follow-up is rewritten first, see ``condense``);
        ``history`` is the conversation so far, for answering a follow-up about what it newly asks
        rather than repeating an earlier answer. Backends that need no more than the question ignore it.
        """

    def condense(self, question: str, history: list[tuple[str, str]]) -> str | None:
        """Rewrite a follow-up into a standalone question, or None to use the deterministic rewrite."""
        return None

    @property
    def description(self) -> str:
        """Shown in the UI status area, e.g. 'extractive (offline)' or 'openai: llama3 @ http://...'."""
        return self.name


def register(name: str) -> Callable[[type[Answerer]], type[Answerer]]:
    """Class decorator that makes an answerer selectable as ``RAG_ANSWERER=name``."""

    def wrap(cls: type[Answerer]) -> type[Answerer]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def create_answerer(settings: Settings) -> Answerer:
    """Instantiate the configured answerer; an unknown name lists the valid ones."""
    from . import extractive, ollama, openai_compat  # noqa: F401  (registration side effect)

    cls = _REGISTRY.get(settings.answerer)
    if cls is None:
        raise ConfigError(f"Unknown answerer {settings.answerer!r}; valid: {', '.join(sorted(_REGISTRY))}")
    return cls(settings)
