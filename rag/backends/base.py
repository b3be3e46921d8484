"""The answerer interface and its registry: one small class per backend, chosen by name.

A new answerer is one module in ``rag/backends/`` with a class decorated ``@register("name")``; every module
there is imported when the registry is first read. Other packages add answerers through the entry-point group
``rag.answerers`` (``name = "package.module:Class"``, or a module whose import runs ``@register``).

Example: ``create_answerer(Settings(answerer="extractive"), embedder).answer(question, sources)``
"""
from __future__ import annotations

import importlib
import pkgutil
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from ..config import Settings
from ..errors import ConfigError
from ..types import Citation

if TYPE_CHECKING:
    from ..embedding import Embedder

ENTRY_POINT_GROUP = "rag.answerers"

_REGISTRY: dict[str, type[Answerer]] = {}
# Earlier turns of a conversation, oldest first, as (question, answer_text) pairs; None for a first question.
History = list[tuple[str, str]] | None


class Answerer(ABC):
    """Writes an answer from numbered sources; every claim ends with ``[n]`` (n = ``Citation.number``)."""

    name: str = ""

    def __init__(self, settings: Settings, embedder: Embedder | None = None):
        self.settings = settings
        self.embedder = embedder  # the index's sentence embedder, for answerers that compare meanings

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


def answerer_names() -> list[str]:
    """The names ``RAG_ANSWERER`` accepts, sorted.

    Example: ``answerer_names()  # ['extractive', 'ollama', 'openai']``
    """
    _discover()
    return sorted(_REGISTRY)


def create_answerer(settings: Settings, embedder: Embedder | None = None) -> Answerer:
    """Instantiate the configured answerer with the index's embedder; an unknown name lists the valid ones."""
    _discover()
    cls = _REGISTRY.get(settings.answerer)
    if cls is None:
        raise ConfigError(f"Unknown answerer {settings.answerer!r}; valid: {', '.join(sorted(_REGISTRY))}")
    return cls(settings, embedder)


_discovered = threading.Event()
_discovering = threading.RLock()  # a plugin may build Settings while it loads


def _discover() -> None:
    """Import every module of this package, then every ``rag.answerers`` entry point, once."""
    with _discovering:
        if not _discovered.is_set():
            _import_answerers()
            _discovered.set()


def _import_answerers() -> None:
    package = __name__.rpartition(".")[0]
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package}.{module.name}")
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
        except Exception as exc:  # noqa: BLE001  (a broken plugin must not take the built-in answerers down)
            warnings.warn(f"Answerer plugin {entry.name!r} ({entry.value}) failed to load: {exc}", stacklevel=2)
            continue
        if isinstance(loaded, type) and issubclass(loaded, Answerer) and entry.name not in _REGISTRY:
            register(entry.name)(loaded)
