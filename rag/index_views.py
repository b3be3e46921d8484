"""Read-only views the index gives over its docstore: chunks by position, documents by id, vector ids to
positions, and each document's indexed paths. Each reads what is asked for, never the whole index.

Example: ``ChunksView(docstore)[0].text``
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .chunking import Chunk
from .documents import Document

if TYPE_CHECKING:
    from .docstore import Docstore


class ChunksView(Sequence[Chunk]):
    """The docstore's chunks as a read-only sequence; each is read when asked for (slices in batches)."""

    def __init__(self, docstore: Docstore):
        self._docstore = docstore

    def __len__(self) -> int:
        return self._docstore.chunk_count

    def __getitem__(self, item):
        if isinstance(item, slice):
            start, stop, step = item.indices(len(self))
            if step == 1:
                return list(self._docstore.iter_chunks(start, stop))
            return self._docstore.chunks_at(range(start, stop, step))
        position = item + len(self) if item < 0 else item
        return self._docstore.chunk(position)

    def __iter__(self) -> Iterator[Chunk]:
        return self._docstore.iter_chunks()


class DocumentsView(Mapping[str, Document]):
    """The docstore's documents by id, read when asked for (a few hundred kept decoded)."""

    def __init__(self, docstore: Docstore):
        self._docstore = docstore

    def __getitem__(self, doc_id: str) -> Document:
        doc = self._docstore.document(doc_id)
        if doc is None:
            raise KeyError(doc_id)
        return doc

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self._docstore.contains(doc_id)

    def __iter__(self) -> Iterator[str]:
        return self._docstore.doc_ids()

    def __len__(self) -> int:
        return self._docstore.document_count


class VectorPositions(Mapping[int, int]):
    """Vector id -> chunk position, looked up in one sorted array (no dict of a million entries)."""

    def __init__(self, docstore: Docstore):
        self._docstore = docstore

    def __getitem__(self, vid: int) -> int:
        position = int(self._docstore.position_of_vids(np.array([vid], np.int64))[0])
        if position < 0:
            raise KeyError(vid)
        return position

    def __contains__(self, vid: object) -> bool:
        return isinstance(vid, (int, np.integer)) and self._docstore.position_of_vids(
            np.array([vid], np.int64))[0] >= 0

    def __iter__(self) -> Iterator[int]:
        return iter(self._docstore.vector_ids().tolist())

    def __len__(self) -> int:
        return self._docstore.chunk_count


class PathsByDocument:
    """Document id -> its indexed paths, sorted, from the manifest's path list (recomputed after a change).

    Example: ``PathsByDocument({"documents": {"/a.txt": "ab12..."}})("ab12...")[:1] == ["/a.txt"]``"""

    def __init__(self, manifest: dict):
        self._manifest = manifest
        self._by_doc: dict[str, list[str]] | None = None

    def __call__(self, doc_id: str) -> list[str]:
        if self._by_doc is None:
            by_doc: dict[str, list[str]] = {}
            for path, content_hash in sorted(self._manifest["documents"].items()):
                by_doc.setdefault(content_hash[:16], []).append(path)
            self._by_doc = by_doc
        return list(self._by_doc.get(doc_id, []))

    def add(self, paths: list[str], content_hash: str) -> None:
        """Record ``paths`` as holding ``content_hash`` (also in the manifest's list, which the caller updates)."""
        if self._by_doc is not None:
            held = self._by_doc.setdefault(content_hash[:16], [])
            held[:] = sorted({*held, *paths})

    def forget(self) -> None:
        self._by_doc = None
