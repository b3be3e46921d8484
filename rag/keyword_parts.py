"""The immutable parts of a keyword index (like Lucene's segments): each part holds some chunks' term counts
in its own files, written once and never changed, so a write stores only the parts it made and hard-links
the rest from the previous generation.

A part's files, all ``np.save``d arrays that are memory-mapped on open (opening reads none of their data):
``<name>.terms.npy`` (each term's first 16 UTF-8 bytes, sorted: a query term is found by binary search,
with no dictionary of the vocabulary in memory), ``<name>.text.npy`` (the whole terms, each followed by a
newline), ``<name>.ptr.npy`` (per term, where its text and its entries start), ``<name>.rows.npy`` and
``<name>.counts.npy`` (per term, its chunk rows ascending and its count in each) and ``<name>.lengths.npy``
(each chunk's length in terms). Example: ``Part.of(postings).find(["gallium"])``
"""
from __future__ import annotations

import bisect
import re
import uuid
from pathlib import Path

import numpy as np

from .errors import REBUILD_HINT, IndexCorruptError
from .postings import Postings
from .storage import access_error, link_or_copy

_PREFIX = 16  # bytes of each term kept in the sorted table; a longer one is checked against its text
_UTF8, _LONE = "utf-8", "surrogatepass"  # a lone surrogate in a text's words is kept, in code point order
KINDS = ("terms", "text", "ptr", "rows", "counts", "lengths")
_CHECKED = 1 << 21  # entries whose rows structure_problem reads in full (larger parts: on search, verify)

# Merge policy (tiered, as Lucene's): a part's level is how many times _FACTOR its live chunks exceed
# _FLOOR; _FACTOR adjacent parts of one level at the end are merged into one. A one-file add merges only
# small parts, the number of parts stays about _FACTOR per level, and every chunk is rewritten about once
# per level it climbs. A part that has lost _DELETED of its chunks is rewritten without them.
_FACTOR, _FLOOR, _DELETED = 8, 4096, 0.3
_MOST = 4 * _FACTOR  # parts at most, whatever their sizes


class Part:
    """Chunk rows 0..size-1 of one part with their terms (sorted) and, per term, its entries."""

    def __init__(self, name: str, arrays: dict[str, np.ndarray], folder: Path | None = None):
        self.name, self.folder = name, folder  # folder: where its files lie (None: not saved yet)
        self.prefixes, self.text, self.ptr = arrays["terms"], arrays["text"], arrays["ptr"]
        self.rows, self.counts, self.lengths = arrays["rows"], arrays["counts"], arrays["lengths"]

    @classmethod
    def of(cls, postings: Postings) -> Part:
        """A new part holding ``postings`` (terms sorted, as ``Postings.stacked`` gives them)."""
        encoded = [term.encode(_UTF8, _LONE) for term in postings.terms]
        text = np.frombuffer(b"".join(t + b"\n" for t in encoded), np.uint8)
        ptr = np.zeros((2, len(encoded) + 1), np.int64)
        ptr[0, 1:] = np.cumsum([len(t) + 1 for t in encoded], dtype=np.int64)
        ptr[1] = postings.indptr
        arrays = {"terms": np.array([t[:_PREFIX] for t in encoded], f"S{_PREFIX}"), "text": text, "ptr": ptr,
                  "rows": np.asarray(postings.chunks, np.int32), "counts": np.asarray(postings.counts),
                  "lengths": np.asarray(postings.lengths, np.int32)}
        return cls(f"part-{uuid.uuid4().hex}", arrays)  # never reused: a new part is a new name

    @classmethod
    def open(cls, folder: Path, name: str, meta: dict) -> Part:
        """Map the part's files (IndexCorruptError naming a file that is missing, truncated or mis-shaped)."""
        arrays = {}
        for kind in KINDS:
            path = folder / f"{name}.{kind}.npy"
            try:
                arrays[kind] = np.load(path, mmap_mode="r", allow_pickle=False)
            except PermissionError as exc:
                raise access_error(exc, path) or exc
            except Exception as exc:  # numpy reports a damaged header as any of several errors
                raise IndexCorruptError(f"The keyword index file {path} is corrupt or missing ({exc}). "
                                        f"{REBUILD_HINT}") from exc
        part = cls(name, arrays, folder)
        problem = part.shape_problem(meta)
        if problem:
            raise IndexCorruptError(f"The keyword index file {folder / problem[0]} is corrupt ({problem[1]}). "
                                    f"{REBUILD_HINT}")
        return part

    def meta(self) -> dict:
        return {"name": self.name, "rows": self.size, "entries": len(self.rows), "terms": self.term_count}

    def files(self) -> list[str]:
        return [f"{self.name}.{kind}.npy" for kind in KINDS]

    def save(self, folder: Path) -> Part:
        """Put the part's files into ``folder``: hard links to the ones already saved, else written. Returns
        the part mapped from there (its arrays no longer held in memory)."""
        folder.mkdir(parents=True, exist_ok=True)
        for kind, name in zip(KINDS, self.files()):
            if (folder / name).exists():
                continue
            if self.folder is not None and (self.folder / name).exists():
                link_or_copy(self.folder / name, folder / name)
            else:
                np.save(folder / name, self._array(kind))
        return Part.open(folder, self.name, self.meta())

    def _array(self, kind: str) -> np.ndarray:
        if kind == "counts" and self.counts.dtype != np.uint16 and self.counts.max(initial=0) < 1 << 16:
            return self.counts.astype(np.uint16)  # a term rarely occurs 65,536 times in one chunk: half the bytes
        return {"terms": self.prefixes, "text": self.text, "ptr": self.ptr, "rows": self.rows,
                "counts": self.counts, "lengths": self.lengths}[kind]

    @property
    def size(self) -> int:
        return len(self.lengths)

    @property
    def term_count(self) -> int:
        return len(self.prefixes)

    def terms(self) -> list[str]:
        """Every term, in order (decoded at once: a merge or a comparison, never a search, needs them)."""
        return bytes(self.text).decode(_UTF8, _LONE)[:-1].split("\n") if self.term_count else []

    def postings(self) -> Postings:
        return Postings(self.terms(), np.asarray(self.ptr[1]), self.rows, self.counts, self.lengths)

    def find(self, terms: list[str]) -> np.ndarray:
        """The number of each of ``terms`` in this part, -1 where it has none. Example: ``part.find(["chip"])``"""
        found = np.full(len(terms), -1, np.int64)
        if not self.term_count or not terms:
            return found
        keys = [term.encode(_UTF8, _LONE) for term in terms]
        prefixes = np.array([key[:_PREFIX] for key in keys], f"S{_PREFIX}")
        low, high = np.searchsorted(self.prefixes, prefixes, "left"), np.searchsorted(self.prefixes, prefixes, "right")
        for i, key in enumerate(keys):
            lo, hi = int(low[i]), int(high[i])
            if hi - lo == 1 and len(key) < _PREFIX:
                found[i] = lo  # a short term is its own prefix: a match is the term itself
            elif hi > lo:
                at = bisect.bisect_left(range(lo, hi), key, key=self._term_bytes)
                if at < hi - lo and self._term_bytes(lo + at) == key:
                    found[i] = lo + at
        return found

    def _term_bytes(self, t: int) -> bytes:
        return bytes(self.text[self.ptr[0, t]:self.ptr[0, t + 1] - 1])

    def entries(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, counts) of term ``t``; IndexCorruptError when a row lies outside the part."""
        first, last = int(self.ptr[1, t]), int(self.ptr[1, t + 1])
        rows = np.asarray(self.rows[first:last])
        if len(rows) and (rows[0] < 0 or rows[-1] >= self.size):
            raise IndexCorruptError(f"The keyword index file {self._where('rows')} is corrupt (a row lies "
                                    f"outside 0..{self.size - 1}). {REBUILD_HINT}")
        return rows, np.asarray(self.counts[first:last])

    def _where(self, kind: str) -> Path | str:
        name = f"{self.name}.{kind}.npy"
        return self.folder / name if self.folder is not None else name

    def shape_problem(self, meta: dict) -> tuple[str, str] | None:
        """(file, problem) when the arrays' kinds or shapes disagree with each other or with ``meta``."""
        expect = {"terms": (meta["terms"],), "text": None, "ptr": (2, meta["terms"] + 1),
                  "rows": (meta["entries"],), "counts": (meta["entries"],), "lengths": (meta["rows"],)}
        kinds = {"terms": "S", "text": "u", "ptr": "i", "rows": "i", "counts": "iu", "lengths": "i"}
        for kind, shape in expect.items():
            array = self._array(kind) if kind != "counts" else self.counts
            if array.dtype.kind not in kinds[kind] or (shape is None and array.ndim != 1) \
                    or (shape is not None and array.shape != shape):
                return f"{self.name}.{kind}.npy", f"{array.dtype} {array.shape}, the listing says {shape}"
        return None

    def structure_problem(self) -> tuple[str, str] | None:
        """(file, problem) for offsets that are not ascending or out of bounds, a term table out of order,
        a negative length, or (in parts of up to _CHECKED entries) a row outside the part."""
        ptr = np.asarray(self.ptr)
        if ptr[0, 0] != 0 or ptr[1, 0] != 0 or ptr[0, -1] != len(self.text) or ptr[1, -1] != len(self.rows) \
                or np.any(np.diff(ptr, axis=1) <= 0):
            return f"{self.name}.ptr.npy", "its term offsets are inconsistent"
        if self.term_count > 1 and np.any(self.prefixes[1:] < self.prefixes[:-1]):
            return f"{self.name}.terms.npy", "its terms are out of order"
        if text_problem := self._text_problem():
            return f"{self.name}.text.npy", text_problem
        if self.size and np.asarray(self.lengths).min() < 0:
            return f"{self.name}.lengths.npy", "a chunk length is negative"
        if len(self.rows) <= _CHECKED and len(self.rows) and (self.rows.min() < 0 or self.rows.max() >= self.size):
            return f"{self.name}.rows.npy", f"a row lies outside 0..{self.size - 1}"
        return None

    def _text_problem(self) -> str | None:
        """Terms that are not UTF-8 or not one per offset (reads the term text: small beside the entries)."""
        text = np.asarray(self.text)
        if np.count_nonzero(text == 10) != self.term_count or np.any(text[np.asarray(self.ptr[0, 1:]) - 1] != 10):
            return "its terms do not match their offsets"
        try:
            text.tobytes().decode(_UTF8, _LONE)
        except UnicodeDecodeError:
            return "a term is not UTF-8"
        return None

    def counts_problem(self) -> tuple[str, str] | None:
        """(file, problem) when a row is out of range or out of order within its term, or a chunk's counts
        do not add up to its length. Reads every entry (``rag verify``), in blocks."""
        ptr = np.asarray(self.ptr[1])
        total = np.zeros(self.size, np.int64)
        for first in range(0, len(self.rows), _CHECKED):
            rows = np.asarray(self.rows[first:first + _CHECKED], np.int64)
            if len(rows) and (rows.min() < 0 or rows.max() >= self.size):
                return f"{self.name}.rows.npy", f"a row lies outside 0..{self.size - 1}"
            starts = np.zeros(len(rows), bool)  # a term's first entry: its row may be below the previous one
            starts[ptr[(ptr >= first) & (ptr < first + len(rows))] - first] = True
            if np.any((np.diff(rows) <= 0) & ~starts[1:]):
                return f"{self.name}.rows.npy", "a term's rows are not ascending"
            total += np.bincount(rows, np.asarray(self.counts[first:first + len(rows)], np.float64),
                                 minlength=self.size).astype(np.int64)
        if not np.array_equal(total, np.asarray(self.lengths)):
            return f"{self.name}.counts.npy", "its term counts do not add up to the chunk lengths"
        return None


def part_meta(entry: dict) -> dict:
    """A part's entry in the listing, checked (ValueError when it is not one this module wrote)."""
    meta = {"name": entry["name"], **{key: entry[key] for key in ("rows", "entries", "terms")}}
    if not isinstance(meta["name"], str) or not re.fullmatch(r"part-[0-9a-f]{32}", meta["name"]) \
            or not all(type(meta[key]) is int and meta[key] >= 0 for key in ("rows", "entries", "terms")):
        raise ValueError(f"a part is listed as {entry}")
    return meta


def merge_plan(sizes: list[int], lost: list[int]) -> tuple[int, int] | None:
    """The adjacent parts ``[first, last)`` to merge next, or None: one that lost _DELETED of its chunks
    (``lost``), else the newest _FACTOR adjacent parts that share a level, else (over _MOST parts) the
    _FACTOR adjacent ones that hold the fewest chunks. Example: ``merge_plan([9] * 8, [0] * 8)``"""
    for i, (size, gone) in enumerate(zip(sizes, lost)):
        if gone and gone >= _DELETED * size:
            return i, i + 1
    levels = [_level(size - gone) for size, gone in zip(sizes, lost)]
    for first in range(len(levels) - _FACTOR, -1, -1):  # the newest (smallest) parts first
        if len(set(levels[first:first + _FACTOR])) == 1:
            return first, first + _FACTOR
    if len(sizes) > _MOST:  # levels that alternate: merge the smallest run, so the count stays bounded
        live = np.cumsum([0] + [size - gone for size, gone in zip(sizes, lost)])
        first = int(np.argmin(live[_FACTOR:] - live[:-_FACTOR]))
        return first, first + _FACTOR
    return None


def _level(live: int) -> int:
    level, bound = 0, _FLOOR * _FACTOR
    while live >= bound:
        level, bound = level + 1, bound * _FACTOR
    return level
