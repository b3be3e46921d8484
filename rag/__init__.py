"""Question answering over your documents, with a checked citation for every claim.

Example: ``from rag import Assistant; Assistant.open("indexes/default").ask("What changed in July 2023?")``
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from .errors import (
    BackendError, ConfigError, EvalSetError, IndexAccessError, IndexCorruptError, IndexLockedError, IndexMismatchError,
    IndexNotFoundError, InputPathError, QuestionError, RagError,
)

if TYPE_CHECKING:
    from .assistant import Assistant
    from .config import Settings
    from .response import Response
    from .retrieval import Filters
    from .types import Answer, Citation, SentenceCheck

# Imported on first use: `import rag` (and so the `rag` command) starts in milliseconds, not after numpy,
# pydantic and the answerers are loaded; a Ctrl-C that early meets the command's own signal handling.
_LAZY = {"Assistant": "assistant", "Settings": "config", "Response": "response", "Filters": "retrieval",
         "Answer": "types", "Citation": "types", "SentenceCheck": "types"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Assistant", "Answer", "Citation", "Response", "SentenceCheck", "Settings", "Filters",
    "RagError", "BackendError", "ConfigError", "EvalSetError", "IndexAccessError", "IndexCorruptError",
    "IndexLockedError", "IndexMismatchError", "IndexNotFoundError", "InputPathError", "QuestionError",
]
