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
RECIPE_VERSION = 3


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
        self._model_file, self._bulk = model_file, None  # int8's one-thread session for many texts, made on need
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
        if self.one_per_run and self.threads > 1 and len(texts) >= 2 * self.threads:
            self._run_in_parallel([encodings[i].ids for i in order], order, vectors)
            return vectors
        for begin in range(0, len(order), batch_size):
            rows = order[begin:begin + batch_size]
            vectors[rows] = self._run([encodings[i].ids for i in rows])
        return vectors

    def _run_in_parallel(self, token_ids: list[list[int]], rows: list[int], vectors: np.ndarray) -> None:
        """int8's texts, one per run, on every core: one single-threaded session run from a thread per core
        (ONNX Runtime releases the GIL in a run). A run of one short text cannot keep two cores busy, so its
        own threads gained 7%; a text per core at a time gains what the cores allow."""
        from concurrent.futures import ThreadPoolExecutor

        if self._bulk is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
            self._bulk = ort.InferenceSession(str(self._model_file), options, providers=["CPUExecutionProvider"])
        session = self._bulk

        def run_share(share: int) -> None:
            for at in range(share, len(rows), self.threads):  # interleaved: each thread gets long and short
                vectors[rows[at]] = self._run([token_ids[at]], session)[0]

        with ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(run_share, range(self.threads)))

    def _run(self, batch: list[list[int]], session=None) -> np.ndarray:
        length = max(len(ids) for ids in batch)
        ids = np.zeros((len(batch), length), dtype=np.int64)
        mask = np.zeros((len(batch), length), dtype=np.int64)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        pooled = (session or self.session).run(None, {"input_ids": ids, "attention_mask": mask})[0]
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


def _quantize(source: Path, target: Path, tokenizer_json: Path) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic
    from tokenizers import Tokenizer

    partial = target.with_name(target.name + ".partial")
    smoothed = target.with_name(target.name + ".smoothed")
    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    tokenizer.no_padding()  # the file may pad to a fixed length: padding would count as text here
    tokenizer.no_truncation()  # the calibration texts are at most 150 tokens
    smooth_matmul_inputs(source, smoothed, [e.ids for e in tokenizer.encode_batch(calibration_texts())])
    # Per-channel weights: per-tensor scales lose too much (mean cosine to fp32 0.94 vs 0.995 on SciFact);
    # MatMul only: a quantized word-embedding table costs short texts (queries) most.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # silence a hint about pre-processing
    try:
        quantize_dynamic(str(smoothed), str(partial), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])
    finally:
        root.setLevel(level)
        smoothed.unlink(missing_ok=True)
    os.replace(partial, target)


# Smoothing before int8 (SmoothQuant, Xiao et al. 2023). int8 gives a MatMul's input one scale per text, set by
# its largest value; a few channels (after LayerNorm, after GELU) run far larger than the rest and leave the
# others a handful of levels. Dividing input channel j by s_j and multiplying weight row j by s_j computes the
# same function in fp32 but moves that range into the weights, which are quantized per output channel.
# s_j = peak|x_j|^a / peak|W_j|^(1-a) with a = 0.7, peaks of x over the fixed sentences below (never a
# benchmark's documents). int8 vs fp32 cosine on 1,000 SciFact non-test chunks: mean 0.9949 -> 0.9978, min
# 0.9892 -> 0.9927 (a = 0.5: mean 0.987; a = 0.8: min 0.991), same tokens/s. Full SciFact test corpus, one
# run: cosine mean 0.9978, min 0.9926 over 14,170 chunks; nDCG@10 int8 - fp32: hybrid +0.0047, dense +0.0001
# (unsmoothed: hybrid -0.0053 on a 1,000-document subset).
SMOOTHING_ALPHA = 0.7
CALIBRATION_SENTENCES = (
    "The committee approved the budget for next year after a long debate about schools and roads.",
    "Patients who received the treatment showed a 35% reduction in symptoms compared with placebo (p < 0.01).",
    "How do I reset my password if I no longer have access to the email address on my account?",
    "Gallium and germanium exports fell sharply in March, according to customs data released on Friday.",
    "The protein binds to the receptor and triggers a cascade of signals inside the cell.",
    "She walked along the river at dawn, listening to the birds and the distant sound of traffic.",
    "Install the package with pip, then run the command line tool with the --help flag to see the options.",
    "Revenue for the third quarter was $4.2 billion, up 12 percent from a year earlier.",
    "Mutations in the BRCA1 gene increase the lifetime risk of breast and ovarian cancer.",
    "The court ruled that the contract was void because one party had not signed it.",
    "Temperatures will reach 30 degrees on Tuesday, with thunderstorms likely in the evening.",
    "Section 4.2 describes the sampling method; Table 3 lists the results for each site.",
    "Children learn language by listening, imitating and playing with the sounds they hear.",
    "The algorithm sorts the list in O(n log n) time and uses constant extra memory.",
    "In 1969, two astronauts walked on the Moon while a third orbited above them.",
    "Vitamin D deficiency is common in winter, especially among older adults and people with dark skin.",
    "Please send the signed form back to us by 15 June so that we can process your application.",
    "The new policy restricts the export of graphite, a key material for battery anodes.",
    "Mice lacking the enzyme developed insulin resistance and gained weight on a high-fat diet.",
    "What is the capital of Australia, and why was it chosen over Sydney and Melbourne?",
    "The bridge was closed for repairs after inspectors found cracks in two of its steel supports.",
    "Our results suggest that sleep deprivation impairs memory consolidation in healthy volunteers.",
    "He said the agreement would lower tariffs on semiconductors and strengthen supply chains.",
    "A randomized controlled trial of 1,200 participants found no effect on mortality.",
)


def calibration_texts() -> list[str]:
    """The calibration sentences alone, then runs of six consecutive ones (chunk-sized texts)."""
    n = len(CALIBRATION_SENTENCES)
    runs = [" ".join(CALIBRATION_SENTENCES[(i + j) % n] for j in range(6)) for i in range(n)]
    return list(CALIBRATION_SENTENCES) + runs


def smooth_matmul_inputs(source: Path, target: Path, token_ids: list[list[int]]) -> None:
    """Write ``source`` with each weight MatMul's input divided per channel by s and the weight's rows
    multiplied by s (MatMuls sharing an input share one s): the same outputs, flatter int8 ranges.

    Example: ``smooth_matmul_inputs(fp32_onnx, smoothed_onnx, [[101, 7592, 102]])``
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    weights = {i.name: i for i in model.graph.initializer}
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        if node.op_type == "MatMul" and node.input[1] in weights:
            consumers.setdefault(node.input[0], []).append(node)
    peaks = _channel_peaks(model, list(consumers), token_ids)
    nodes, inserts = list(model.graph.node), []
    for name, users in consumers.items():
        arrays = [numpy_helper.to_array(weights[n.input[1]]) for n in users]
        weight_peak = np.max([np.abs(a).max(1) for a in arrays], axis=0)
        scale = (np.maximum(peaks[name], 1e-5) ** SMOOTHING_ALPHA
                 / np.maximum(weight_peak, 1e-5) ** (1 - SMOOTHING_ALPHA))
        scale = np.clip(scale, 1e-2, 1e2).astype(np.float32)
        model.graph.initializer.append(numpy_helper.from_array(1 / scale, name + "/smoothing"))
        inserts.append((min(nodes.index(n) for n in users),
                        helper.make_node("Mul", [name, name + "/smoothing"], [name + "/smoothed"])))
        for node, array in zip(users, arrays):
            weights[node.input[1]].CopyFrom(numpy_helper.from_array(array * scale[:, None], node.input[1]))
            node.input[0] = name + "/smoothed"
    for position, mul in sorted(inserts, key=lambda pair: -pair[0]):  # before the first user: still in order
        nodes.insert(position, mul)
    model.graph.ClearField("node")
    model.graph.node.extend(nodes)
    onnx.save(model, str(target))


def _channel_peaks(model, names: list[str], token_ids: list[list[int]]) -> dict[str, np.ndarray]:
    """Per channel, the largest |value| each tensor in ``names`` takes over the texts (one text per run)."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    peaks: dict[str, np.ndarray] = {}
    for ids in token_ids:
        feed = {"input_ids": np.array([ids], dtype=np.int64), "attention_mask": np.ones((1, len(ids)), np.int64)}
        for name, value in zip(names, session.run(names, feed)):
            peak = np.abs(value).reshape(-1, value.shape[-1]).max(0)
            peaks[name] = np.maximum(peaks[name], peak) if name in peaks else peak
    return peaks
