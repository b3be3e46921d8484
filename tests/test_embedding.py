"""The NumPy encoder gives the vectors sentence-transformers gives; the Embedder picks it only when it can."""
from __future__ import annotations

import numpy as np
import pytest

from rag.config import BUNDLED_MODEL
from rag.embedding import Embedder, resolve_model_path
from rag.fast_encoder import NumpyEncoder

TEXTS = [
    "When did China impose the rare metals controls?",
    "Japan and China held their fifth export control dialogue amid escalating disputes over Beijing’s "
    "restrictions on critical rare metals, as Tokyo seeks to balance US alliance commitments.",
    "x",
    "中国はいつ規制を導入しましたか",
    " ".join(["gallium"] * 400),  # longer than the window: truncated the same way
]


@pytest.mark.slow
def test_numpy_encoder_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    path = resolve_model_path(BUNDLED_MODEL)
    fast = NumpyEncoder.from_folder(path)
    assert fast is not None and fast.dimension == 384
    reference = SentenceTransformer(path, device="cpu").encode(TEXTS, normalize_embeddings=True)
    ours = fast.encode(TEXTS)
    assert ours.shape == reference.shape
    assert float(np.abs(ours - reference).max()) < 1e-5
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_static_vectors_are_unit_norm_and_rank_related_text_higher():
    fast = NumpyEncoder.from_folder(resolve_model_path(BUNDLED_MODEL))
    vectors = fast.encode_static(["rare metal export controls", "restrictions on exports of rare metals",
                                  "the recipe needs two eggs"])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[1] @ vectors[0] > vectors[2] @ vectors[0]


def test_other_models_fall_back_to_sentence_transformers(tmp_path):
    assert NumpyEncoder.from_folder(tmp_path) is None
    assert Embedder(str(tmp_path)).fast is None


@pytest.mark.slow
def test_cache_returns_the_same_vectors():
    embedder = Embedder(BUNDLED_MODEL)
    first = embedder.encode_cached(["gallium controls", "tea"])
    again = embedder.encode_cached(["tea", "gallium controls"])
    assert np.array_equal(first[0], again[1]) and np.array_equal(first[1], again[0])
    embedder.clear_cache()
    assert np.allclose(embedder.encode_cached(["tea"])[0], first[1], atol=1e-6)


class _CountingEmbedder(Embedder):
    """Deterministic vectors per text, slow enough that threads interleave; records the cache size."""

    CACHE_SIZE = 8

    def __init__(self):
        super().__init__("unused")
        self.largest = 0

    def encode(self, texts, show_progress=False):
        import time

        self.largest = max(self.largest, len(self._cache))
        time.sleep(0.001)
        return np.stack([_vector(t) for t in texts]) if texts else np.zeros((0, 4), dtype=np.float32)


def _vector(text: str) -> np.ndarray:
    return np.array([len(text), sum(map(ord, text)), hash(text) % 997, 1.0], dtype=np.float32)


def test_cache_is_a_thread_safe_lru_past_its_capacity():
    from concurrent.futures import ThreadPoolExecutor

    embedder = _CountingEmbedder()
    texts = [f"sentence {i}" for i in range(40)]

    def work(seed: int) -> bool:
        ok = True
        for step in range(60):
            batch = [texts[(seed * 7 + step * j) % len(texts)] for j in range(1, 4)]
            ok &= np.array_equal(embedder.encode_cached(batch), np.stack([_vector(t) for t in batch]))
            embedder.largest = max(embedder.largest, len(embedder._cache))
        return ok

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert all(pool.map(work, range(6)))
    assert embedder.largest <= embedder.CACHE_SIZE
    assert len(embedder._cache) == embedder.CACHE_SIZE
    # A hit is refreshed: the text used last survives the next round of new texts.
    embedder.encode_cached(["kept"])
    for i in range(embedder.CACHE_SIZE + 3):
        embedder.encode_cached([f"new {i}", "kept"])
    assert "kept" in embedder._cache and "new 0" not in embedder._cache
