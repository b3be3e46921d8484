"""Question answering over your documents, with a checked citation for every claim.

Example: ``from rag import Assistant; Assistant.open("indexes/default").ask("What changed in July 2023?")``
"""
from .assistant import Assistant
from .config import Settings
from .errors import (
    BackendError, ConfigError, EvalSetError, IndexAccessError, IndexCorruptError, IndexLockedError, IndexMismatchError,
    IndexNotFoundError, InputPathError, QuestionError, RagError,
)
from .retrieval import Filters
from .types import Answer, Citation, SentenceCheck

__all__ = [
    "Assistant", "Answer", "Citation", "SentenceCheck", "Settings", "Filters",
    "RagError", "BackendError", "ConfigError", "EvalSetError", "IndexAccessError", "IndexCorruptError", "IndexLockedError",
    "IndexMismatchError", "IndexNotFoundError", "InputPathError", "QuestionError",
]
