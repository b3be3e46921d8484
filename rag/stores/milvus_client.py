"""Connections to Milvus (one client per URI in a process) and the alias that names an index's live collection.

Example: ``client("http://127.0.0.1:19530").list_collections()``
"""
from __future__ import annotations

import logging
import threading

from ..errors import ConfigError, IndexAccessError

_clients: dict[str, object] = {}
_clients_lock = threading.Lock()


def client(uri: str):
    """One client per URI in this process (connecting takes ~0.7 s; a Milvus Lite file takes one process).

    Example: ``client("http://127.0.0.1:19530").list_collections()``
    """
    with _clients_lock:
        if uri not in _clients:
            _clients[uri] = _connect(uri)
        return _clients[uri]


def _connect(uri: str):
    try:
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise ConfigError("RAG_VECTOR_STORE=milvus needs pymilvus and milvus-lite: "
                          "pip install -e '.[milvus]'.") from exc
    local = "://" not in uri
    quiet = logging.getLogger("milvus_lite.server_manager")
    level = quiet.level
    if local:  # it logs a traceback for a database another process holds; the error below says it in a line
        quiet.setLevel(logging.CRITICAL)
    try:
        return MilvusClient(uri)
    except Exception as exc:  # pymilvus raises MilvusException or grpc errors with long texts
        if local:
            raise IndexAccessError(
                f"Cannot open the Milvus Lite database {uri}: another process has it open (Milvus Lite serves "
                "one process at a time). Close that process, or run a Milvus server for all of them and set "
                "RAG_MILVUS_URI.") from exc
        raise IndexAccessError(f"Cannot reach Milvus at {uri} ({str(exc).splitlines()[0][:200]}). "
                               "Start it, or set RAG_MILVUS_URI to one that runs.") from exc
    finally:
        quiet.setLevel(level)


def _alias_target(milvus, alias: str) -> str | None:
    """The collection ``alias`` names; None when there is no such alias yet."""
    if alias not in milvus.list_aliases().get("aliases", []):
        return None
    return milvus.describe_alias(alias)["collection_name"]


def _point_alias(milvus, alias: str | None, collection: str | None) -> None:
    """Point ``alias`` at ``collection`` (the live one), creating the alias the first time."""
    if alias is None or collection is None:
        return
    target = _alias_target(milvus, alias)
    if target is None:
        milvus.create_alias(collection, alias)
    elif target != collection:
        milvus.alter_alias(collection, alias)
