"""A NumPy forward pass for BERT-style sentence-transformers models (mean pooling, normalised).

Why by hand: importing torch and sentence-transformers costs about 7 s per process. Vectors for
questions and documents now come from ONNX Runtime (rag/onnx_encoder.py); this pass gives the nearly
free static vectors (``encode_static``) and is the reference the ONNX export is checked against. The
vectors match sentence-transformers to within 1e-5 (tests/test_embedding.py).

Example: ``NumpyEncoder.from_folder(path).encode(["a question"])  # (1, 384), unit norm``
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

_EXPECTED_MODULES = [
    "sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
]


class NumpyEncoder:
    """Embeds texts with a BertModel's weights using NumPy only."""

    def __init__(self, weights: dict[str, np.ndarray], config: dict, tokenizer, max_seq_length: int):
        self.w = weights
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.dimension = int(config["hidden_size"])
        self.max_seq_length = max_seq_length
        self.tokenizer = tokenizer
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_seq_length)

    @classmethod
    def from_folder(cls, folder: str | Path) -> NumpyEncoder | None:
        """Load if ``folder`` holds a plain BERT + mean pooling + normalise model; None otherwise."""
        folder = Path(folder)
        if not is_plain_bert(folder):
            return None
        config = json.loads((folder / "config.json").read_text())
        max_len = json.loads((folder / "sentence_bert_config.json").read_text()).get("max_seq_length", 256)
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        stored = load_file(folder / "model.safetensors")
        weights = {k.removeprefix("bert."): v.astype(np.float32) for k, v in stored.items()}
        # Linear weights are stored (out, in); keep them transposed and contiguous for x @ W.
        weights = {k: np.ascontiguousarray(v.T) if k.endswith("dense.weight") or ".self." in k and k.endswith("weight")
                   else v for k, v in weights.items()}
        return cls(weights, config, Tokenizer.from_file(str(folder / "tokenizer.json")), int(max_len))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-norm float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(list(texts))
        length = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), length), dtype=np.int64)
        mask = np.zeros((len(texts), length), dtype=np.float32)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1.0
        hidden = self._embed(ids)
        for layer in range(self.layers):
            hidden = self._layer(hidden, mask, f"encoder.layer.{layer}.")
        pooled = (hidden * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def encode_static(self, texts: list[str]) -> np.ndarray:
        """Mean of the input word-piece embeddings, unit norm: a rough, nearly free meaning vector
        (no transformer layers), good enough to pick which sentences deserve a full encoding."""
        table = self.w["embeddings.word_embeddings.weight"]
        special = {self.tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]")}
        rows = []
        for encoding in self.tokenizer.encode_batch(list(texts)):
            ids = [i for i in encoding.ids if i not in special] or [0]
            rows.append(table[ids].mean(0))
        vectors = np.array(rows, dtype=np.float32).reshape(len(rows), self.dimension)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def _embed(self, ids: np.ndarray) -> np.ndarray:
        w = self.w
        positions = np.arange(ids.shape[1])
        hidden = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][positions]
                  + w["embeddings.token_type_embeddings.weight"][0])
        return self._norm(hidden, "embeddings.LayerNorm.")

    def _layer(self, hidden: np.ndarray, mask: np.ndarray, p: str) -> np.ndarray:
        batch, length, size = hidden.shape
        head = size // self.heads

        def project(name: str) -> np.ndarray:
            out = self._dense(hidden, f"{p}attention.self.{name}.")
            return np.ascontiguousarray(out.reshape(batch, length, self.heads, head).transpose(0, 2, 1, 3))

        q, k, v = project("query"), project("key"), project("value")
        # math.sqrt, not np.sqrt: a NumPy float64 scalar would upcast everything after it to float64 (2x slower).
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head) + (1.0 - mask)[:, None, None, :] * -1e9
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        context = (scores / scores.sum(-1, keepdims=True)) @ v
        context = context.transpose(0, 2, 1, 3).reshape(batch, length, size)
        attended = self._norm(hidden + self._dense(context, f"{p}attention.output.dense."),
                              f"{p}attention.output.LayerNorm.")
        inner = _gelu(self._dense(attended, f"{p}intermediate.dense."))
        return self._norm(attended + self._dense(inner, f"{p}output.dense."), f"{p}output.LayerNorm.")

    def _dense(self, x: np.ndarray, p: str) -> np.ndarray:
        # 2-D matmul: NumPy's stacked (3-D) matmul skips BLAS and is 20x slower here.
        flat = x.reshape(-1, x.shape[-1]) @ self.w[f"{p}weight"] + self.w[f"{p}bias"]
        return flat.reshape(*x.shape[:-1], flat.shape[-1])

    def _norm(self, x: np.ndarray, p: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[f"{p}weight"] + self.w[f"{p}bias"]


def is_plain_bert(folder: Path) -> bool:
    """True when ``folder`` holds a BERT + mean pooling + normalise sentence-transformers model with
    safetensors weights and a tokenizer.json. Example: ``is_plain_bert(Path("/tmp"))  # False``"""
    try:
        modules = [m["type"] for m in json.loads((folder / "modules.json").read_text())]
        config = json.loads((folder / "config.json").read_text())
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
        json.loads((folder / "sentence_bert_config.json").read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return (modules == _EXPECTED_MODULES and config.get("model_type") == "bert" and config.get("hidden_act") == "gelu"
            and bool(pooling.get("pooling_mode_mean_tokens"))
            and config.get("position_embedding_type", "absolute") == "absolute"
            and (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file())


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
