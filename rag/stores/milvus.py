"""The Milvus store: each vector with its chunk's text, document id and span in a Milvus collection that every
process and machine opening the index shares. A Milvus Lite database in the index folder (``milvus.db``) by
default; a server or cluster with ``RAG_MILVUS_URI``.

Commits follow the index's generations. Each row carries the number of the commit that added it (``gen``);
a generation's ``milvus.json`` names its collection, its commit number and the ids it removed (tombstones),
so it sees exactly the rows it committed: ``gen <= commit`` and not tombstoned. A writer adds rows under the
next number and only records removals, so a writer killed at any moment leaves the last committed
generation whole (its leftover rows are invisible, and deleted by the next writer, which also deletes the
rows the last commit tombstoned). A rebuild fills a new collection and points the index's alias at it.

Example: ``store = MilvusStore.create(384, uri="http://127.0.0.1:19530", alias="rag_docs")``
"""
from __future__ import annotations

import json
import re
import time
import zlib
from pathlib import Path

import numpy as np

from ..errors import REBUILD_HINT, IndexCorruptError, IndexMismatchError
from .base import VectorStore, register
from .milvus_client import _alias_target, _point_alias, client
from .fulltext import FIELDS
from .milvus_keyword import add_keyword_fields, search_field, search_staged

LITE_DB = "milvus.db"  # the default Milvus Lite database, inside the index folder
_BATCH = 2000  # rows per insert: ~5 MB of vectors and text, far below gRPC's message limit
_MAX_TEXT_BYTES = 65535  # Milvus's longest VARCHAR
_EMPTY_SCORE = float(np.finfo(np.float32).min)  # what FAISS gives a slot without a hit


def alias_for(index_dir: Path) -> str:
    """The alias naming an index's live collection: its folder name and a hash of its path.

    Example: ``alias_for(Path("indexes/default"))`` -> ``"rag_default_1a2b3c4d"``
    """
    resolved = str(index_dir.resolve())
    name = re.sub(r"[^0-9A-Za-z_]", "_", index_dir.resolve().name)[:80]
    return f"rag_{name}_{zlib.crc32(resolved.encode()):08x}"


@register("milvus")
class MilvusStore(VectorStore):
    """Inner-product search (FLAT: exact) in Milvus; see the module docstring for how commits work.

    A store made by ``create(dimension)`` without a URI keeps its vectors in memory until its first
    ``save``, which puts them in a new collection of the configured Milvus (the index folder is known then)."""

    FILE = "milvus.json"

    def __init__(self, dimension: int, uri: str | None = None, collection: str | None = None,
                 alias: str | None = None, commit: int = 0, tombstones: set[int] | None = None,
                 count: int | None = None, keyword: bool = True) -> None:
        self._dimension = dimension
        self._keyword = keyword  # the collection has the keyword fields (one made before them has not)
        self._uri, self._collection, self._alias = uri, collection, alias
        self._commit = commit  # rows with gen <= commit, less the tombstones, are the saved state
        self._tombstones = tombstones or set()  # ids whose rows older than the current view are removed
        self._count = count  # rows seen, kept in step by writes (a committed generation never changes)
        self._writing = False  # True once this process writes rows of commit + 1
        self._staged: dict[int, tuple[np.ndarray, dict]] = {}  # before the first save, without a URI
        self._wanted_uri: str | None = None  # where the first save puts the collection (RAG_MILVUS_URI)

    @classmethod
    def create(cls, dimension: int, uri: str | None = None, alias: str | None = None) -> MilvusStore:
        """A new, empty store; with ``uri`` its collection is made now (under ``alias``), else on ``save``."""
        store = cls(dimension, alias=alias)
        if uri is not None:
            store._bind(uri, alias or f"rag_{time.time_ns()}")
        return store

    @classmethod
    def configured(cls, settings, dimension: int) -> MilvusStore:
        """A new store bound on its first save to ``RAG_MILVUS_URI`` (the index folder's Lite file if unset)."""
        store = cls(dimension)
        store._wanted_uri = settings.milvus_uri
        if settings.milvus_uri:
            client(settings.milvus_uri)  # an unreachable server fails now, not after embedding
        return store

    @classmethod
    def opened(cls, folder: Path, settings) -> MilvusStore:
        """The saved store, reached at ``RAG_MILVUS_URI`` when set (a replica reaches the server by its own
        name for it); IndexMismatchError when the index is in a Milvus Lite file and that names a server."""
        return cls.load(folder, settings.milvus_uri)

    @classmethod
    def load(cls, folder: Path, uri: str | None = None) -> MilvusStore:
        path = folder / cls.FILE
        try:
            saved = json.loads(path.read_text())
            recorded = saved["uri"] if "://" in saved["uri"] or Path(saved["uri"]).is_absolute() else \
                str(folder.parent / saved["uri"])  # the default Lite database moves with the index folder
            if uri and uri != recorded and "://" not in recorded:
                raise IndexMismatchError(
                    f"The index at {folder.parent} keeps its vectors in the Milvus Lite database {recorded}, but "
                    f"RAG_MILVUS_URI is {uri}. Unset it, or rebuild the index there with `rag ingest PATH... "
                    f"--index {folder.parent} --rebuild`.")
            uri = uri or recorded
            store = cls(int(saved["dimension"]), uri, saved["collection"], saved["alias"], int(saved["commit"]),
                        {int(i) for i in saved["tombstones"]}, int(saved["count"]), bool(saved.get("keyword")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(f"The Milvus record {path} is missing or damaged ({exc}). {REBUILD_HINT}") from exc
        milvus = client(uri)
        if not milvus.has_collection(store._collection):
            raise IndexCorruptError(f"The Milvus collection {store._collection} named by {path} is missing "
                                    f"from {uri}. {REBUILD_HINT}")
        milvus.load_collection(store._collection)
        return store

    def save(self, folder: Path) -> None:
        if self._collection is None:
            self._bind(self._default_uri(folder.parent), self._alias or alias_for(folder.parent))
        milvus = self._client()
        milvus.flush(self._collection)  # durable before the generation naming it is
        if self._writing:
            self._commit, self._writing = self._commit + 1, False
        uri = LITE_DB if self._uri == str(folder.parent / LITE_DB) else self._uri
        (folder / self.FILE).write_text(json.dumps({
            "uri": uri, "collection": self._collection, "alias": self._alias, "dimension": self._dimension,
            "commit": self._commit, "tombstones": sorted(self._tombstones), "count": self.count(),
            "keyword": self._keyword}))
        _point_alias(milvus, self._alias, self._collection)

    def location(self) -> dict:
        return {"uri": self._uri, "collection": self._collection, "alias": self._alias} if self._uri else {}

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def keyword_fields(self) -> tuple[str, ...]:
        """The keyword fields ``keyword_search`` searches (rows are added with their terms); () for a
        collection made before they existed, whose index keeps its keyword indexes in local files."""
        return tuple(FIELDS) if self._keyword else ()

    def keyword_search(self, field: str, terms: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), best first, of the top-k visible rows by BM25 of ``terms`` (space-separated, as
        rag/stores/fulltext.py analyzes them) in ``field``; only rows sharing a term are hits.

        Example: ``store.keyword_search("chunk_terms", "gallium export", 10)``
        """
        assert field in self.keyword_fields, f"{self._collection} has no keyword field {field}"
        if self._collection is None:
            staged = list(self._staged.items())
            return search_staged([c.get(field, "") for _, (_, c) in staged], [i for i, _ in staged], field, terms, k)
        return search_field(self._client(), self._collection, field, terms, k, self._visible())

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.add_chunks(ids, vectors, [{} for _ in range(len(ids))])

    def add_chunks(self, ids: np.ndarray, vectors: np.ndarray, chunks: list[dict]) -> None:
        ids, vectors = np.asarray(ids, dtype=np.int64), np.asarray(vectors, dtype=np.float32)
        self.check_addition(ids, vectors)
        stored = [int(i) for i in ids if int(i) in self._staged] if self._collection is None else \
            self._visible_ids(ids)
        if stored:
            raise ValueError(f"{len(stored)} id(s) already stored (first: {stored[0]}); remove them first")
        if self._collection is None:
            self._staged.update({int(i): (v, c) for i, v, c in zip(ids, vectors, chunks)})
            return
        self._begin_write()
        rows = [_row(int(i), v, c, self._view(), self.keyword_fields) for i, v, c in zip(ids, vectors, chunks)]
        count = self.count()
        for start in range(0, len(rows), _BATCH):
            self._insert_rows(rows[start:start + _BATCH])
        self._count = count + len(rows)

    def _insert_rows(self, rows: list[dict]) -> None:
        self._client().insert(self._collection, rows)

    def remove(self, ids: np.ndarray) -> int:
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return 0
        if self._collection is None:
            return sum(self._staged.pop(int(i), None) is not None for i in ids)
        self._begin_write()
        found = self._query(ids, ["vid", "gen"])
        mine = [r["vid"] for r in found if r["gen"] == self._view()]  # never committed: delete outright
        if mine:
            self._client().delete(self._collection, filter=f"gen == {self._view()} and vid in {mine}")
        self._tombstones.update(r["vid"] for r in found if r["gen"] < self._view())
        self._count = self.count() - len(found)
        return len(found)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.asarray(queries, dtype=np.float32)
        if self._collection is None:
            return self._search_staged(queries, k)
        results = self._client().search(
            self._collection, data=queries.tolist(), limit=max(1, min(k, 16384)), filter=self._visible(),
            output_fields=["vid"], search_params={"metric_type": "IP"})
        width = max([1, *(len(hits) for hits in results)])
        scores = np.full((len(queries), width), _EMPTY_SCORE, np.float32)
        ids = np.full((len(queries), width), -1, np.int64)
        for row, hits in enumerate(results):
            for col, hit in enumerate(hits):
                scores[row, col], ids[row, col] = hit["distance"], hit["entity"]["vid"]
        return scores, ids

    def ids(self) -> np.ndarray:
        if self._collection is None:
            return np.array(list(self._staged), dtype=np.int64)
        # One query without a limit returns every match (8 bytes an id: 8 MB at 1M chunks); pymilvus's
        # iterator asks for a timestamp Milvus Lite does not serve, and warns on every open.
        rows = self._client().query(self._collection, filter=self._visible(), output_fields=["vid"])
        return np.array([r["vid"] for r in rows], dtype=np.int64)

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        if not len(ids):
            return np.zeros((0, self._dimension), np.float32)
        if self._collection is None:
            return np.vstack([self._staged[int(i)][0] for i in ids])
        by_id = {r["vid"]: r["vector"] for r in self._query(np.asarray(ids), ["vid", "vector"])}
        return np.array([by_id[int(i)] for i in ids], dtype=np.float32)

    def count(self) -> int:
        if self._collection is None:
            return len(self._staged)
        if self._count is None:
            rows = self._client().query(self._collection, filter=self._visible(), output_fields=["count(*)"])
            self._count = int(rows[0]["count(*)"])
        return self._count

    def _client(self):
        assert self._uri is not None, "a store is bound to its Milvus when created with a URI or first saved"
        return client(self._uri)

    def _default_uri(self, index_dir: Path) -> str:
        return self._uri or self._wanted_uri or str(index_dir / LITE_DB)

    def _bind(self, uri: str, alias: str) -> None:
        """Make this store's collection (``<alias>_c<time>``) and move the staged vectors into it; collections
        of the same alias left by a rebuild that died are dropped (not the one the alias names)."""
        from pymilvus import DataType, MilvusClient

        milvus = client(uri)
        self._uri, self._alias, self._collection = uri, alias, f"{alias}_c{time.time_ns()}"
        live = _alias_target(milvus, alias)
        for name in milvus.list_collections():
            if name.startswith(f"{alias}_c") and name != live:
                milvus.drop_collection(name)
        schema = MilvusClient.create_schema(auto_id=True)
        schema.add_field("pk", DataType.INT64, is_primary=True)
        for name in ("vid", "gen", "span_start", "span_end"):
            schema.add_field(name, DataType.INT64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self._dimension)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=64)
        schema.add_field("text", DataType.VARCHAR, max_length=_MAX_TEXT_BYTES)
        index = milvus.prepare_index_params()
        index.add_index("vector", index_type="FLAT", metric_type="IP")  # exact, as FAISS searches here
        if self._keyword:
            add_keyword_fields(schema, index)
        milvus.create_collection(self._collection, schema=schema)
        # Not waited for: pymilvus polls every 0.5 s, and an index on an empty collection is ready at once.
        milvus.create_index(self._collection, index, sync=False)
        milvus.load_collection(self._collection)
        staged, self._staged, self._count = self._staged, {}, 0
        if staged:
            ids = np.array(list(staged), dtype=np.int64)
            self.add_chunks(ids, np.vstack([v for v, _ in staged.values()]), [c for _, c in staged.values()])

    def _begin_write(self) -> None:
        """Before this process's first write: delete the rows of a writer that died before committing and
        the rows the last commit removed (no generation still read sees them), and realign the alias."""
        if self._writing:
            return
        milvus = self._client()
        milvus.delete(self._collection, filter=f"gen > {self._commit}")
        if self._tombstones:
            milvus.delete(self._collection, filter=f"gen < {self._commit} and vid in {sorted(self._tombstones)}")
            self._tombstones = set()
        if self._commit:  # a committed collection (not one a rebuild is filling): the alias names it
            _point_alias(milvus, self._alias, self._collection)
        self._writing = True

    def _view(self) -> int:
        """The newest commit this store sees: its own uncommitted rows too once it writes."""
        return self._commit + 1 if self._writing else self._commit

    def _visible(self) -> str:
        expression = f"gen <= {self._view()}"
        if self._tombstones:
            expression += f" and not (gen < {self._view()} and vid in {sorted(self._tombstones)})"
        return expression

    def _query(self, ids: np.ndarray, fields: list[str]) -> list[dict]:
        rows: list[dict] = []
        for start in range(0, len(ids), 1000):
            block = [int(i) for i in ids[start:start + 1000]]
            rows += self._client().query(self._collection, filter=f"({self._visible()}) and vid in {block}",
                                            output_fields=fields)
        return rows

    def _visible_ids(self, ids: np.ndarray) -> list[int]:
        return [r["vid"] for r in self._query(ids, ["vid"])]

    def _search_staged(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        ids = np.array(list(self._staged), dtype=np.int64)
        if not len(ids):
            return np.full((len(queries), 1), _EMPTY_SCORE, np.float32), np.full((len(queries), 1), -1, np.int64)
        scores = queries @ np.vstack([v for v, _ in self._staged.values()]).T
        order = np.argsort(-scores, axis=1, kind="stable")[:, :max(1, min(k, len(ids)))]
        return np.take_along_axis(scores, order, axis=1), ids[order]


def _row(vid: int, vector: np.ndarray, chunk: dict, gen: int, keyword_fields: tuple[str, ...]) -> dict:
    text = chunk.get("text", "").encode("utf-8")[:_MAX_TEXT_BYTES].decode("utf-8", "ignore")
    return {"vid": vid, "gen": gen, "vector": vector.tolist(), "doc_id": chunk.get("doc_id", ""), "text": text,
            "span_start": int(chunk.get("start", -1)), "span_end": int(chunk.get("end", -1)),
            **{field: chunk.get(field, "") for field in keyword_fields}}
