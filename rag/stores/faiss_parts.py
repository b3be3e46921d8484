"""Immutable parts of the FAISS store: one FAISS file each, searched, listed and merged on their own.

A part is exact (``flat``: float16 vectors scanned in full) or approximate (``ivf``: float16 vectors in
inverted lists, of which ``nprobe`` are scanned per query). Removed ids stay in the file and are dropped
at search time (tombstones). Example: ``part = build_part(384, blocks, n, ivf_threshold=250_000)``
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import REBUILD_HINT, IndexCorruptError
from ..storage import access_error

if TYPE_CHECKING:
    import faiss

FLAT, IVF = "flat", "ivf"
BLOCK = 65536  # vectors decoded at a time when merging: bounded memory whatever the part's size
NO_SCORE = float(np.finfo(np.float32).min)  # score of an empty result slot (as FAISS fills them)
RECALL_TARGET = 0.96  # recall@10 of the chosen nprobe on calibration queries (see _between)
CALIBRATION_QUERIES = 128
PROBE_SHARES = (0.02, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.12, 0.16, 0.2, 0.25, 0.33, 0.5, 1.0)  # of the lists
OVERFETCH_LIMIT = 256  # up to this many tombstones a search asks for k + t hits; beyond, an IDSelector
EXHAUSTIVE_K = 1024  # a deeper search (e.g. under a filter) probes every list: exact, as a flat part
Blocks = Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]  # yields (ids, float32 vectors) blocks


def ivf_lists(n: int) -> int:
    """How many inverted lists an IVF part of ``n`` vectors gets: ~sqrt(n), lists of ~sqrt(n) vectors
    (4x more lists cut the vectors scanned per query, but cost 4x the training and adding time).

    Example: ``ivf_lists(1_000_000) == 1000``
    """
    return max(16, int(round(math.sqrt(n))))


class Part:
    """One FAISS index (IndexIDMap over float16 vectors, or IVF with float16 codes) and its tombstones.

    ``name`` is its file name once saved (None while only in memory); ``source`` the file it was read
    from or last written to, from which the next save links it. Example: ``part.search(queries, 10)``
    """

    def __init__(self, index, kind: str, name: str | None = None, source: Path | None = None,
                 removed: np.ndarray | None = None, nprobe: int | None = None) -> None:
        self.index, self.kind, self.name, self.source, self.nprobe = index, kind, name, source, nprobe
        self.removed = np.zeros(0, np.int64) if removed is None else np.unique(np.asarray(removed, np.int64))
        self._ids: np.ndarray | None = None  # stored ids by row
        self._where: tuple[np.ndarray, np.ndarray] | None = None  # ivf: (list number, offset) per row
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None  # (rows in id order, ids in order)

    @property
    def total(self) -> int:
        """Vectors in the file, removed ones included."""
        return int(self.index.ntotal)

    @property
    def live(self) -> int:
        return self.total - len(self.removed)

    def changed(self) -> None:
        """Forget the cached id listing (after adding to or removing from an in-memory part)."""
        self._ids = self._where = self._sorted = None

    def stored_ids(self) -> np.ndarray:
        """Every id in the file, in storage order (row positions), removed ones included. Read on first
        use: a process that only searches never pays for it."""
        if self._ids is None:
            if self.kind == FLAT:
                import faiss

                self._ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
            else:
                self._ids, self._where = _ivf_listing(self.index)
        return self._ids

    def live_ids(self) -> np.ndarray:
        ids = self.stored_ids()
        return ids[~np.isin(ids, self.removed)] if len(self.removed) else ids

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Row position of each of ``ids`` that is stored here and not removed; -1 for the others."""
        if self._sorted is None:  # only lookups need the ids sorted (listing them does not)
            order = np.argsort(self.stored_ids(), kind="stable")
            self._sorted = (order, self.stored_ids()[order])
        order, ordered = self._sorted
        ids = np.asarray(ids, np.int64)
        at = np.minimum(np.searchsorted(ordered, ids), max(len(ordered) - 1, 0))
        found = (ordered[at] == ids) if len(ordered) else np.zeros(len(ids), bool)
        if len(self.removed):
            found &= ~np.isin(ids, self.removed)
        return np.where(found, order[at] if len(order) else -1, -1)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of this part's best ``k`` live vectors per query; removed ids come back as -1."""
        import faiss

        tombstones = len(self.removed)
        keep: list[faiss.IDSelector] = []
        params = faiss.SearchParametersIVF() if self.kind == IVF else faiss.SearchParameters()
        if isinstance(params, faiss.SearchParametersIVF):  # self.kind == IVF
            params.nprobe = self.index.nlist if k > EXHAUSTIVE_K else min(self.nprobe or 1, self.index.nlist)
        fetch = k + tombstones if tombstones <= OVERFETCH_LIMIT else k
        if tombstones > OVERFETCH_LIMIT:  # many removed: skip them during the scan rather than fetch past them
            keep = [faiss.IDSelectorBatch(self.removed)]
            keep.append(faiss.IDSelectorNot(keep[0]))
            params.sel = keep[1]
        scores, ids = self.index.search(queries, min(fetch, self.total), params=params)
        if tombstones:
            gone = np.isin(ids, self.removed)
            scores[gone], ids[gone] = NO_SCORE, -1
        return scores, ids

    def reconstruct(self, positions: np.ndarray) -> np.ndarray:
        """The stored vectors at row ``positions`` (float32)."""
        import faiss

        positions = np.asarray(positions, np.int64)
        if self.kind == FLAT:
            return faiss_inner(self.index).reconstruct_batch(positions)
        self.stored_ids()  # lists the rows' (list number, offset) too
        assert self._where is not None  # stored_ids() of an ivf part sets it
        lists, offsets = self._where[0][positions], self._where[1][positions]
        out = np.empty((len(positions), self.index.d), np.float32)
        plain = _float16_codes(self.index)
        order = np.argsort(lists, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(lists[order]) != 0]) if len(order) else np.zeros(0, np.int64)
        for rows in np.split(order, starts[1:]) if len(order) else []:
            number = int(lists[rows[0]])
            if plain:  # float16 codes of the vectors themselves: read the list's rows directly
                codes = faiss.rev_swig_ptr(self.index.invlists.get_codes(number),
                                           self.index.invlists.list_size(number) * self.index.code_size)
                out[rows] = codes.view(np.float16).reshape(-1, self.index.d)[offsets[rows]]
                continue
            for row in rows:
                self.index.reconstruct_from_offset(number, int(offsets[row]), faiss.swig_ptr(out[row]))
        return out

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every live (ids, float32 vectors) in blocks of at most BLOCK rows, in storage order."""
        stored = self.stored_ids()
        for begin in range(0, len(stored), BLOCK):
            ids = stored[begin:begin + BLOCK]
            vectors = self._rows(begin, len(ids))
            if len(self.removed):
                keep = ~np.isin(ids, self.removed)
                ids, vectors = ids[keep], vectors[keep]
            yield ids, vectors

    def _rows(self, begin: int, count: int) -> np.ndarray:
        if self.kind == FLAT:
            return faiss_inner(self.index).reconstruct_n(begin, count)
        return self.reconstruct(np.arange(begin, begin + count))


def faiss_inner(index):
    """The index an IndexIDMap wraps, as its own type."""
    import faiss

    return faiss.downcast_index(index.index)


def _float16_codes(index) -> bool:
    """Whether an IVF index stores each vector as plain float16 (no residual to add back)."""
    import faiss

    return (isinstance(index, faiss.IndexIVFScalarQuantizer) and not index.by_residual
            and index.sq.qtype == faiss.ScalarQuantizer.QT_fp16)


def _ivf_listing(index) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Ids of an IVF index list by list, with each row's (list number, offset)."""
    import faiss

    lists = index.invlists
    sizes = np.array([lists.list_size(number) for number in range(index.nlist)], np.int64)
    ids = [faiss.rev_swig_ptr(lists.get_ids(number), int(size)).copy()
           for number, size in enumerate(sizes) if size]
    stored = np.concatenate(ids).astype(np.int64) if ids else np.zeros(0, np.int64)
    numbers = np.repeat(np.arange(index.nlist, dtype=np.int64), sizes)
    offsets = np.arange(len(stored), dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return stored, (numbers, offsets)


def new_flat(dimension: int):
    """An empty exact index: float16 vectors (half the bytes to scan; scores move by ~1e-5), under ids."""
    import faiss

    return faiss.IndexIDMap(
        faiss.IndexScalarQuantizer(dimension, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT))


def build_part(dimension: int, blocks: Blocks, count: int, ivf_threshold: int) -> Part:
    """A new in-memory part holding every vector ``blocks()`` yields (``count`` of them): exact below
    ``ivf_threshold`` vectors, IVF from there (trained on a sample, no residuals: float16 codes are exact
    enough to decode back for the next merge). Example: ``build_part(384, part.blocks, part.live, 250_000)``
    """
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    if count < ivf_threshold:
        index = new_flat(dimension)
        for ids, vectors in blocks():
            index.add_with_ids(np.ascontiguousarray(vectors), ids)
        return Part(index, FLAT)
    nlist = ivf_lists(count)
    quantizer = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIVFScalarQuantizer(quantizer, dimension, nlist, faiss.ScalarQuantizer.QT_fp16,
                                          faiss.METRIC_INNER_PRODUCT, False)  # False: no residuals
    index.own_fields = True  # the index frees its quantizer, not Python
    quantizer.this.disown()  # type: ignore[attr-defined]  # SWIG's pointer owner, absent from faiss's stubs
    index.cp.niter = 12  # k-means beyond ~10 iterations moves recall by <0.5% here, and costs seconds
    sample = _sample(blocks, count, min(count, 40 * nlist))
    index.train(sample)
    for ids, vectors in blocks():
        index.add_with_ids(np.ascontiguousarray(vectors), ids)
    return Part(index, IVF, nprobe=_calibrated(index, _between(sample)))


def _between(sample: np.ndarray) -> np.ndarray:
    """Calibration queries: midpoints of random pairs of stored vectors. A stored vector as a query
    finds its own close neighbours and needs too few probes; questions lie further from the text, and
    midpoints further still (SciFact claims over MiniLM vectors, 300k-1M: at an nprobe giving midpoints
    0.95-0.96 of the top 10, claims get 0.96-0.97; stored vectors report 0.98 at half that nprobe)."""
    rng = np.random.default_rng(1)
    pairs = rng.choice(len(sample), (min(len(sample), CALIBRATION_QUERIES), 2))
    between = sample[pairs[:, 0]] + sample[pairs[:, 1]]
    return np.ascontiguousarray(between / np.maximum(np.linalg.norm(between, axis=1, keepdims=True), 1e-12))


def _sample(blocks: Blocks, count: int, size: int) -> np.ndarray:
    """``size`` vectors drawn uniformly (fixed seed: the same input gives the same index)."""
    chosen = np.sort(np.random.default_rng(0).choice(count, size, replace=False))
    picked, seen = [], 0
    for _, vectors in blocks():
        here = chosen[(chosen >= seen) & (chosen < seen + len(vectors))] - seen
        picked.append(vectors[here])
        seen += len(vectors)
    return np.ascontiguousarray(np.vstack(picked))


def _calibrated(index, queries: np.ndarray) -> int:
    """The smallest nprobe (of PROBE_SHARES) whose top 10 holds RECALL_TARGET of the exhaustive top 10
    (every list probed: the exact float16 ranking) for ``queries``. Measured on the part's own data
    because how many lists a query must probe depends on how its vectors cluster."""
    truth = index.search(queries, 10, params=_probe(index.nlist))[1]
    for share in PROBE_SHARES:
        nprobe = min(index.nlist, max(8, int(math.ceil(share * index.nlist))))
        found = index.search(queries, 10, params=_probe(nprobe))[1]
        hits = sum(len(set(want.tolist()) & set(got.tolist())) for want, got in zip(truth, found))
        if hits >= RECALL_TARGET * truth.size:
            return nprobe
    return index.nlist


def _probe(nprobe: int):
    import faiss

    params = faiss.SearchParametersIVF()
    params.nprobe = nprobe
    return params


def read_part(path: Path, kind: str | None, size: int | None, count: int | None) -> faiss.Index:
    """The FAISS index in ``path``, memory-mapped for a part of ``kind`` (opening reads next to nothing;
    pages load as searched), read whole for a file from before parts (``kind`` None); IndexCorruptError
    naming the file when it is missing, truncated or not what the listing records."""
    import faiss

    try:
        actual = os.stat(path).st_size
        open(path, "rb").close()  # faiss reports a permission problem as corruption; ask the OS first
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"The vector file {path} is missing. {REBUILD_HINT}") from exc
    except OSError as exc:
        raise access_error(exc, path) or exc
    if size is not None and actual != size:  # a memory-mapped read would not notice a short file
        raise IndexCorruptError(f"The vector file {path} is corrupt or truncated ({actual} bytes, the listing "
                                f"records {size}). {REBUILD_HINT}")
    flags = 0 if kind is None else (faiss.IO_FLAG_MMAP if kind == IVF else faiss.IO_FLAG_MMAP_IFC)
    try:
        index = faiss.read_index(str(path), flags)
    except Exception as exc:  # faiss raises RuntimeError with C++ text for truncated/corrupt files
        raise IndexCorruptError(
            f"The vector file {path} is corrupt or truncated ({first_line(exc)}). {REBUILD_HINT}") from exc
    expected = faiss.IndexIVF if kind == IVF else faiss.IndexIDMap
    if not isinstance(index, expected) or (count is not None and index.ntotal != count):
        raise IndexCorruptError(f"The vector file {path} is corrupt: it does not hold the {count} vectors "
                                f"the listing records. {REBUILD_HINT}")
    return index


def first_line(exc: Exception) -> str:
    """The last non-empty line of an exception's text (FAISS puts the reason there)."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__
