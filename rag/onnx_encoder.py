"""The bulk and query encoder for BERT-style sentence-transformers models: ONNX Runtime, fp32 or int8.

The model is exported to ONNX (mean pooling inside the graph) once, on first use, and for int8 smoothed (each
MatMul's outlier input channels moved into its weights) then quantized dynamically (per-channel int8 weights
of every MatMul) with onnxruntime's own quantizer; both files are
cached under ``RAG_CACHE_DIR`` (default ``~/.cache/rag``) keyed by the model's content hash, so nothing is
downloaded and later processes load them in well under a second. Texts are sorted by token length and
batched with their neighbours, so padding costs next to nothing; ONNX Runtime uses every core.

Example: ``OnnxEncoder.for_folder(path, "int8").encode(["a sentence"])  # (1, 384), unit norm``
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import ConfigError

PRECISIONS = ("fp32", "int8")
# Bump when the export or quantization recipe changes: the cache key (and so the vectors) change with it.
RECIPE_VERSION = 2


def cache_dir() -> Path:
    """Where exported models live: ``RAG_CACHE_DIR``, else ``$XDG_CACHE_HOME/rag``, else ``~/.cache/rag``."""
    if os.environ.get("RAG_CACHE_DIR"):
        return Path(os.environ["RAG_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag"


def available_cores() -> int:
    """CPU cores this process may run on (a container's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class WordPieceTokenizer:
    """The model's tokenizer.json through the ``tokenizers`` library (no torch, no transformers), called
    like a Hugging Face tokenizer for the two things ingestion asks: token ids and char offsets.

    Example: ``WordPieceTokenizer(path)("Gallium", return_offsets_mapping=True)["offset_mapping"]  # [(0, 3), (3, 7)]``
    """

    def __init__(self, tokenizer_json: Path):
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(tokenizer_json))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()

    @property
    def backend_tokenizer(self):
        """The ``tokenizers.Tokenizer`` (named as on a Hugging Face fast tokenizer), for its pipeline's parts."""
        return self._tokenizer

    def __call__(self, texts: str | Sequence[str], add_special_tokens: bool = False,
                 return_offsets_mapping: bool = False) -> dict:
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        encodings = self._tokenizer.encode_batch(batch, add_special_tokens=add_special_tokens)
        out: dict = {"input_ids": [e.ids for e in encodings]}
        if return_offsets_mapping:
            out["offset_mapping"] = [e.offsets for e in encodings]
        return {key: value[0] for key, value in out.items()} if single else out


class OnnxEncoder:
    """Mean-pooled, unit-norm sentence vectors from an ONNX export of a BERT sentence-transformer."""

    def __init__(self, model_file: Path, tokenizer_json: Path, max_seq_length: int, threads: int = 0,
                 one_per_run: bool = False):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or available_cores()
        options.inter_op_num_threads = 1
        # Idle workers sleep instead of spinning: ingestion chunks the next files on another thread at the
        # same time, and spinning workers would take the cores it needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.threads = options.intra_op_num_threads
        # int8 quantizes activations with one scale per run: texts batched together would move each
        # other's vectors (cosine ~0.99 to the same text alone). One text per run keeps a text's vector its
        # own, the same at ingest and at question time, and costs no speed (measured: equal throughput).
        self.one_per_run = one_per_run
        self.session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
        self.dimension = int(self.session.get_outputs()[0].shape[-1])
        self.max_seq_length = max_seq_length
        self.tokenizer = Tokenizer.from_file(str(tokenizer_json))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_seq_length)

    @classmethod
    def for_folder(cls, folder: Path, precision: str, threads: int = 0) -> OnnxEncoder:
        """The encoder for a sentence-transformers folder, exporting (and quantizing) it on first use."""
        max_len = int(json.loads((folder / "sentence_bert_config.json").read_text()).get("max_seq_length", 256))
        return cls(exported_model(folder, precision), folder / "tokenizer.json", max_len, threads,
                   one_per_run=precision == "int8")

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Unit-norm float32 vectors, one row per text, in input order. Texts are run shortest first in
        batches of ``batch_size`` (int8: one at a time), so each batch pads only to its own (near-equal)
        lengths, and a text gets the vector it gets alone."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        batch_size = 1 if self.one_per_run else batch_size
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        vectors = np.empty((len(texts), self.dimension), dtype=np.float32)
        for begin in range(0, len(order), batch_size):
            rows = order[begin:begin + batch_size]
            vectors[rows] = self._run([encodings[i].ids for i in rows])
        return vectors

    def _run(self, batch: list[list[int]]) -> np.ndarray:
        length = max(len(ids) for ids in batch)
        ids = np.zeros((len(batch), length), dtype=np.int64)
        mask = np.zeros((len(batch), length), dtype=np.int64)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        pooled = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


_EXPORT_LOCK = threading.Lock()


def exported_model(folder: Path, precision: str) -> Path:
    """The cached ONNX file for ``folder`` at ``precision``, made now if missing (a file lock keeps two
    processes from making it at once; a half-written file is never seen: it is renamed into place)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"Unknown RAG_EMBED_PRECISION {precision!r}; valid: {', '.join(PRECISIONS)}.")
    import onnxruntime
    from filelock import FileLock

    key = f"{model_hash(folder)}-r{RECIPE_VERSION}"
    # The int8 file depends on the quantizer's version too; the fp32 export only on the model.
    name = f"{key}-fp32.onnx" if precision == "fp32" else f"{key}-int8-ort{onnxruntime.__version__}.onnx"
    target = cache_dir() / name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _EXPORT_LOCK, FileLock(str(target) + ".lock"):
        if not target.is_file():
            if precision == "fp32":
                _export(folder, target)
            else:
                _quantize(exported_model(folder, "fp32"), target, folder / "tokenizer.json")
    return target


def model_hash(folder: Path) -> str:
    """First 16 hex digits of the SHA-256 of the weights and tokenizer: a changed model is a new key."""
    digest = hashlib.sha256()
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        with open(folder / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _export(folder: Path, target: Path) -> None:
    # torch is needed only here, once per model; every later process loads the cached file without it.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    class MeanPooled(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)

    model = MeanPooled(AutoModel.from_pretrained(str(folder)).eval())
    # A batch of two with padding in one row, so the traced graph keeps the mask arithmetic general.
    example = (torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]]), torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]))
    partial = target.with_name(target.name + ".partial")
    dynamic = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
               "pooled": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(model, example, str(partial), input_names=["input_ids", "attention_mask"],
                          output_names=["pooled"], dynamic_axes=dynamic, opset_version=17, dynamo=False)
    os.replace(partial, target)


def _quantize(source: Path, target: Path) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = target.with_name(target.name + ".partial")
    # Per-channel weights: per-tensor scales lose too much (mean cosine to fp32 0.94 vs 0.995 on SciFact);
    # MatMul only: a quantized word-embedding table costs short texts (queries) most.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # silence a hint about pre-processing
    try:
        quantize_dynamic(str(source), str(partial), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])
    finally:
        root.setLevel(level)
    os.replace(partial, target)
