"""Moving an index into another vector store (a Milvus cluster, say) without embedding anything again.

Example: ``move_index(Path("indexes/default"), Settings(vector_store="milvus", milvus_uri="http://milvus:19530"))``
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Settings
    from ..index import Index


def move_index(index_dir: Path, settings: Settings) -> tuple[Index, float]:
    """Copy the index at ``index_dir`` (documents, chunks, vectors as stored) into the store
    ``settings.vector_store`` names, as a new generation committed like an ingest; returns it and the seconds
    taken. The index then opens only with that store. Example: ``move_index(index_dir, settings)[0].stats()``
    """
    from ..index import Index, store_name
    from ..integrity import read_manifest
    from ..storage import IndexLock, current_generation

    started = time.perf_counter()
    with IndexLock(index_dir, timeout=settings.lock_timeout):
        built_with = store_name(read_manifest(current_generation(index_dir)))
        # Read where it was written (a Milvus Lite file moving to a server: RAG_MILVUS_URI names the target).
        source = Index.load(index_dir, settings.model_copy(update={"vector_store": built_with, "milvus_uri": None}))
        target = Index.empty(settings, source.manifest["dimension"])
        target.manifest["chunker"] = source.manifest["chunker"]  # chunked as it was, whatever settings say now
        positions: dict[str, list[int]] = {}
        for position, chunk in enumerate(source.chunks):
            positions.setdefault(chunk.doc_id, []).append(position)
        for doc_id, document in source.documents.items():
            mine = positions.get(doc_id, [])
            target.add_document(document, [source.chunks[p] for p in mine], source.chunk_vectors(mine))
        target.set_paths(source.paths)
        target.save(index_dir)
    return target, time.perf_counter() - started
