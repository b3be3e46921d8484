"""The FAISS store: inner-product search in this process over immutable parts, saved so that a write
costs what changed, not what the store holds.

Layout in a generation folder: ``vectors/parts.json`` (the listing: each part's file, kind, size and
removed ids) and ``vectors/part-<uuid>.faiss`` files. A save writes the new part and the listing and
hard-links the unchanged parts from the folder the store came from. Removals of saved vectors are
tombstones, dropped at search time; merges keep the number of parts small; ``compact`` folds everything
into one part. Parts of ``IVF_THRESHOLD`` vectors or more are approximate (IVF), smaller ones exact.

Example: ``store = FaissStore.create(384); store.add(ids, vectors); store.search(query_vectors, 10)``
"""
from __future__ import annotations

import json
import math
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import REBUILD_HINT, IndexCorruptError
from ..storage import _TMP_PREFIX, access_error, link_or_copy
from .base import VectorStore, register
from .faiss_parts import FLAT, IVF, NO_SCORE, Part, build_part, new_flat, read_part

_CPU_THREADS = os.cpu_count() or 1
LISTING = "parts.json"
LEGACY = "vectors.faiss"  # the single file of indexes written before parts (IndexIDMap2)
_FORMAT = 1
_PART_NAME = re.compile(r"part-[0-9a-f]{32}\.faiss")


@register("faiss")
class FaissStore(VectorStore):
    """Exact float16 search in parts below ``IVF_THRESHOLD`` vectors, IVF in larger ones, with
    tombstones. Tests lower the thresholds through the constructor's keywords.

    Why float16: a scan is bound by memory bandwidth; half the bytes halves query time (100k chunks:
    10.9 -> 4.5 ms) while scores move by about 1e-5, so rankings are those of exact float32 search.
    Why 250k: one exact query over 300k vectors takes ~8 ms here (2 cores), over 1M ~27 ms, ~40 ms when
    the cores are busy; an IVF part of 1M answers in 3.5-7 ms at recall@10 >= 0.96 (bench/ann_bench.py).
    Building it costs ~35-50 s, paid when merges or ``compact`` first cross the threshold."""

    FILE = "vectors"  # the folder of parts and listing in a generation (named in messages and checks)
    IVF_THRESHOLD = 250_000
    MERGE_FACTOR = 4  # parts of similar size (one tier: within a factor of 4) merged 4 at a time
    MAX_PARTS = 8
    TIER_FLOOR = 8192  # parts below this size count as one tier: merging them is cheap
    EXPUNGE_SHARE = 0.25  # a part with this share of its vectors removed is rewritten without them

    def __init__(self, dimension: int, parts: list[Part] | None = None, ivf_threshold: int | None = None,
                 max_parts: int | None = None) -> None:
        self._dimension = int(dimension)
        self._parts = list(parts or [])  # oldest first; new and merged parts have no file name yet
        self._fresh = Part(new_flat(self._dimension), FLAT)  # where additions go until the next save
        # Its ids as a set, for the part it was made from (rebuilt when _fresh is replaced): see _fresh_ids.
        self._fresh_set: set[int] = set()
        self._fresh_set_of: Part | None = None
        self.ivf_threshold = ivf_threshold or self.IVF_THRESHOLD
        self.max_parts = max_parts or self.MAX_PARTS

    @classmethod
    def create(cls, dimension: int, **options) -> FaissStore:
        return cls(dimension, **options)

    @classmethod
    def load(cls, folder: Path) -> FaissStore:
        listing = folder / cls.FILE / LISTING
        if not listing.exists() and (folder / LEGACY).exists():
            return cls._load_legacy(folder / LEGACY)
        entries, dimension = _read_listing(listing)
        parts = []
        for entry in entries:
            path = folder / cls.FILE / entry["file"]
            index = read_part(path, entry["kind"], entry["bytes"], entry["count"])
            if index.d != dimension:
                raise IndexCorruptError(f"The vector file {path} holds vectors of dimension {index.d}, the "
                                        f"listing {listing} records {dimension}. {REBUILD_HINT}")
            parts.append(Part(index, entry["kind"], entry["file"], path, entry["removed"], entry["nprobe"]))
        return cls(dimension, parts)

    @classmethod
    def _load_legacy(cls, path: Path) -> FaissStore:
        """A store saved as one IndexIDMap2 file: one exact part, linked into the new layout on save."""
        index = read_part(path, None, None, None)
        return cls(int(index.d), [Part(index, FLAT, _new_name(), path)])

    def save(self, folder: Path) -> None:
        import faiss

        self._merge()
        target = folder / self.FILE
        target.mkdir(parents=True, exist_ok=True)
        for number, part in enumerate(self._parts):
            if part.name is not None and _place(part, target):
                continue
            if part.name is not None:  # its file is gone (a generation deleted since): write it anew
                part = self._parts[number] = self._merged([part])
            part.name = _new_name()
            part.source = target / part.name
            faiss.write_index(part.index, str(part.source))
            # Reopened memory-mapped: the process keeps no second copy of what it just wrote.
            part.index = read_part(part.source, part.kind, None, part.total)
        entries = [_entry(p) for p in self._parts]
        listing = target / LISTING
        listing.unlink(missing_ok=True)  # never rewrite a file in place: it may be another folder's link
        listing.write_text(json.dumps({"format": _FORMAT, "dimension": self._dimension, "parts": entries}))

    @property
    def dimension(self) -> int:
        return self._dimension

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = np.asarray(ids, dtype=np.int64), np.asarray(vectors, dtype=np.float32)
        self.check_addition(ids, vectors)
        stored = [int(i) for i in ids[self._stored(ids)]]
        if stored:
            raise ValueError(f"{len(stored)} id(s) already stored (first: {stored[0]}); remove them first")
        if len(ids):
            import faiss

            # One document's few vectors: OpenMP's hand-off to a second (busy) core costs more than encoding
            # them (an ingest of 13k chunks spent 1.8 s here with two threads).
            faiss.omp_set_num_threads(1 if len(ids) < 4096 else _CPU_THREADS)
            self._fresh.index.add_with_ids(np.ascontiguousarray(vectors), ids)
            self._fresh.changed()
            self._fresh_ids().update(ids.tolist())

    def remove(self, ids: np.ndarray) -> int:
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        if not len(ids):
            return 0
        removed = 0
        fresh = self._fresh_ids()
        here = ids[np.fromiter((i in fresh for i in ids.tolist()), bool, len(ids))]
        if len(here):  # not saved yet: simply dropped
            removed += int(self._fresh.index.remove_ids(here))
            self._fresh.changed()
            fresh.difference_update(here.tolist())
        for part in self._parts:
            hit = ids[part.positions(ids) >= 0]
            if len(hit):
                part.removed = np.union1d(part.removed, hit)
                removed += len(hit)
        return removed

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = max(1, min(k, self.count()))
        # One query is a single scan: OpenMP threads only add hand-off cost (5x slower on 2 busy cores).
        faiss.omp_set_num_threads(1 if len(queries) == 1 else _CPU_THREADS)
        found = [part.search(queries, k) for part in self._all() if part.total]
        scores = np.hstack([s for s, _ in found] + [np.full((len(queries), k), NO_SCORE, np.float32)])
        ids = np.hstack([i for _, i in found] + [np.full((len(queries), k), -1, np.int64)])
        best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, best, axis=1), np.take_along_axis(ids, best, axis=1)

    def ids(self) -> np.ndarray:
        return np.concatenate([part.live_ids() for part in self._all()]).astype(np.int64)

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        out, missing = np.zeros((len(ids), self._dimension), np.float32), np.ones(len(ids), bool)
        for part in self._all():
            positions = part.positions(ids)
            hit = (positions >= 0) & missing
            if hit.any():
                out[hit] = part.reconstruct(positions[hit])
                missing &= ~hit
        if missing.any():
            raise KeyError(f"vector id {int(ids[missing][0])} is not stored")
        return out

    def count(self) -> int:
        return sum(part.live for part in self._all())

    def parts(self) -> list[dict]:
        """Each part's kind, vectors and removed vectors, oldest first (the unsaved one last).

        Example: ``[p["kind"] for p in store.parts()] == ["ivf", "flat"]``
        """
        return [{"file": p.name, "kind": p.kind, "count": p.total, "removed": len(p.removed), "nprobe": p.nprobe,
                 "lists": int(p.index.nlist) if p.kind == IVF else None} for p in self._all() if p.total]

    def compact(self) -> None:
        """Merge every part into one and drop the removed vectors (IVF from ``ivf_threshold`` vectors);
        the next save writes it. Example: ``index.store.compact(); index.save(index_dir)``"""
        parts = [part for part in self._all() if part.live]
        kind = IVF if sum(p.live for p in parts) >= self.ivf_threshold else FLAT
        if len(parts) == 1 and not len(parts[0].removed) and parts[0].kind == kind:
            self._parts, self._fresh = parts, Part(new_flat(self._dimension), FLAT)
            return
        self._parts, self._fresh = ([self._merged(parts)] if parts else []), Part(new_flat(self._dimension), FLAT)

    def _all(self) -> list[Part]:
        return [*self._parts, self._fresh]

    def _stored(self, ids: np.ndarray) -> np.ndarray:
        """Which of ``ids`` are stored (and not removed) in any part."""
        stored = np.zeros(len(ids), bool)
        for part in self._parts:
            stored |= part.positions(ids) >= 0
        fresh = self._fresh_ids()
        return stored | np.fromiter((i in fresh for i in ids.tolist()), bool, len(ids))

    def _fresh_ids(self) -> set[int]:
        """The ids of the unsaved part, kept as a set: an ingest adds one document at a time, and listing
        and sorting the part's ids on each add would make a bulk ingest quadratic."""
        if self._fresh_set_of is not self._fresh:
            self._fresh_set, self._fresh_set_of = set(self._fresh.stored_ids().tolist()), self._fresh
        return self._fresh_set

    def _merged(self, parts: list[Part]) -> Part:
        def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for part in parts:
                yield from part.blocks()

        return build_part(self._dimension, blocks, sum(p.live for p in parts), self.ivf_threshold)

    def _merge(self) -> None:
        """The merge policy, run on save: the new part joins the others (IVF when large); parts mostly
        removed are rewritten; tiers of MERGE_FACTOR similar-sized parts merge; then the smallest parts
        merge until at most ``max_parts`` remain. Each merge costs the size of what it merges."""
        if self._fresh.total:
            big = self._fresh.total >= self.ivf_threshold
            self._parts.append(self._merged([self._fresh]) if big else self._fresh)
            self._fresh = Part(new_flat(self._dimension), FLAT)
        self._parts = [p for p in self._parts if p.live]
        for number, part in enumerate(self._parts):
            if len(part.removed) >= self.EXPUNGE_SHARE * part.total:
                self._parts[number] = self._merged([part])
        while group := _tier_group(self._parts, self.MERGE_FACTOR, self.TIER_FLOOR) or \
                _smallest_group(self._parts, self.max_parts):
            first = min(self._parts.index(p) for p in group)
            merged = self._merged(group)
            self._parts = [p for p in self._parts if all(p is not g for g in group)]
            self._parts.insert(min(first, len(self._parts)), merged)


def _tier_group(parts: list[Part], factor: int, floor: int) -> list[Part]:
    """The parts of the lowest tier (sizes within a factor of each other) that holds ``factor`` of them."""
    tiers: dict[int, list[Part]] = {}
    for part in parts:
        tiers.setdefault(int(math.log(max(part.live, floor) / floor, factor)), []).append(part)
    full = [tier for tier, members in tiers.items() if len(members) >= factor]
    return tiers[min(full)] if full else []


def _smallest_group(parts: list[Part], limit: int) -> list[Part]:
    """The smallest parts to merge so that at most ``limit`` remain ([] when there are not too many)."""
    if len(parts) <= limit:
        return []
    return sorted(parts, key=lambda p: p.live)[:len(parts) - limit + 1]


def _entry(part: Part) -> dict:
    """The listing's record of a part that save() has written or linked into place."""
    assert part.source is not None  # save() gives every part its file before listing them
    return {"file": part.name, "kind": part.kind, "count": part.total, "bytes": part.source.stat().st_size,
            "nprobe": part.nprobe, "removed": part.removed.tolist()}


def _place(part: Part, target: Path) -> bool:
    """Hard-link a saved part's file into ``target``; False when that file no longer exists."""
    assert part.name is not None  # save() places only parts that were saved before
    source, destination = _located(part.source), target / part.name
    if source is None:
        return False
    if not destination.exists():
        link_or_copy(source, destination)
    part.source = destination
    return True


def _located(path: Path | None) -> Path | None:
    """Where a part's file is now: a generation is written as ``.tmp-gen-N`` and renamed to ``gen-N``."""
    if path is None or path.exists():
        return path
    generation = path.parent.parent
    if generation.name.startswith(_TMP_PREFIX):
        moved = generation.with_name(generation.name[len(_TMP_PREFIX):]) / path.parent.name / path.name
        if moved.exists():
            return moved
    return None


def _new_name() -> str:
    return f"part-{uuid.uuid4().hex}.faiss"


def _read_listing(path: Path) -> tuple[list[dict], int]:
    """The parts a listing names, checked; IndexCorruptError naming it when missing or malformed."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
        dimension, entries = int(data["dimension"]), data["parts"]
        for entry in entries:
            if not (_PART_NAME.fullmatch(entry["file"]) and entry["kind"] in (FLAT, IVF)):
                raise ValueError(f"a part entry names {str(entry['file'])[:60]!r} ({entry['kind']!r})")
            entry["count"], entry["bytes"] = int(entry["count"]), int(entry["bytes"])
            entry["removed"] = np.asarray(entry["removed"], dtype=np.int64)
            entry["nprobe"] = None if entry["nprobe"] is None else int(entry["nprobe"])
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"The vector listing {path} is missing. {REBUILD_HINT}") from exc
    except OSError as exc:
        raise access_error(exc, path) or exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IndexCorruptError(f"The vector listing {path} is corrupt ({exc}). {REBUILD_HINT}") from exc
    return entries, dimension
