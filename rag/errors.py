"""The few exceptions the package raises; the CLI and UI translate them at the edge.

Example: ``raise QuestionError("The question is empty.")``
"""
from __future__ import annotations


# Appended to every "index file is broken" message: what fixes it.
REBUILD_HINT = "Rebuild it with `rag ingest PATH... --index DIR --rebuild`."


class RagError(Exception):
    """Base of every error this package raises on purpose; its message is for users."""


class InputPathError(RagError):
    """A path given to ingest is missing, empty or unusable."""


class IndexNotFoundError(RagError):
    """No index exists at the given folder."""


class IndexCorruptError(RagError):
    """An index file is unreadable or inconsistent; the message names the file."""


class IndexMismatchError(RagError):
    """The index was built with another embedding model, dimension or format version."""


class IndexAccessError(RagError):
    """The index folder or a file in it cannot be read or written: permissions, a full or read-only disk."""


class IndexLockedError(RagError):
    """Another process is writing to the same index."""


class QuestionError(RagError):
    """The question is empty, too long or otherwise unusable."""


class BackendError(RagError):
    """The answering backend (an LLM server) failed: down, slow or returned garbage."""


class ConfigError(RagError):
    """A setting has an invalid value (an unknown answerer name, say)."""


class EvalSetError(RagError):
    """An eval set cannot be read."""


class IngestCancelled(RagError):
    """Someone stopped an ingest before it finished; the index was left as it was."""
