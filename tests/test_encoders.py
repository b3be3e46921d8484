"""The ONNX encoders: int8 close to fp32, batching that does not change vectors, precision recorded in the
manifest and enforced, token counting without torch, streaming ingestion with progress and bounded memory."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from rag import Assistant, Settings
from rag.config import BUNDLED_MODEL
from rag.embedding import Embedder, embedder_for, get_embedder, resolve_model_path
from rag.errors import IndexMismatchError
from rag.fast_encoder import NumpyEncoder
from rag.index import Index, int8_recipe
from rag.documents import Document
from rag.ingest import IngestProgress, ingest
from rag.streaming import embed_documents
from rag.onnx_encoder import WordPieceTokenizer
from rag.storage import current_generation
from rag.text import split_sentences

from conftest import ROOT, SEED_FILE, write_unsealed_manifest


def _seed_sentences(limit: int = 60) -> list[str]:
    text = SEED_FILE.read_text(encoding="utf-8")
    return [text[s:e] for s, e in split_sentences(text)][:limit] + ["tea", "When did China impose controls?"]


@pytest.mark.slow
def test_onnx_fp32_matches_the_reference_pass_and_int8_stays_close():
    texts = _seed_sentences()
    reference = NumpyEncoder.from_folder(resolve_model_path(BUNDLED_MODEL)).encode(texts)
    fp32 = get_embedder(BUNDLED_MODEL, 64, "fp32").encode(texts)
    int8 = get_embedder(BUNDLED_MODEL, 64, "int8").encode(texts)
    assert float(np.abs(fp32 - reference).max()) < 1e-5
    cosines = (int8 * fp32).sum(1)
    assert cosines.mean() > 0.99 and cosines.min() > 0.97, (cosines.mean(), cosines.min())
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_length_bucketing_gives_the_vectors_of_one_text_at_a_time(precision):
    embedder = get_embedder(BUNDLED_MODEL, 64, precision)
    texts = _seed_sentences(40)
    together = embedder.encode(texts)
    alone = np.vstack([embedder.encode([t]) for t in texts])
    assert float(np.abs(together - alone).max()) < 1e-5  # the same arithmetic up to summation order


@pytest.mark.slow
def test_word_pieces_match_the_transformers_tokenizer():
    from transformers import AutoTokenizer

    path = resolve_model_path(BUNDLED_MODEL)
    texts = _seed_sentences(20) + ["Gallium-germanium (GaGe) 2023年 exports…", ""]
    ours = WordPieceTokenizer(Path(path) / "tokenizer.json")(
        texts, add_special_tokens=False, return_offsets_mapping=True)
    theirs = AutoTokenizer.from_pretrained(path)(texts, add_special_tokens=False, return_offsets_mapping=True)
    assert ours["input_ids"] == theirs["input_ids"]
    assert [list(map(tuple, o)) for o in ours["offset_mapping"]] == [
        list(map(tuple, o)) for o in theirs["offset_mapping"]]


@pytest.mark.slow
def test_counting_tokens_and_encoding_do_not_import_torch():
    embedder_for(Settings()).encode(["warm the export cache"])  # first use exports; later processes load it
    script = ("import sys; from rag.config import Settings; from rag.embedding import embedder_for; "
              "e = embedder_for(Settings()); n = e.count_tokens('Gallium export controls'); "
              "v = e.encode_query(['When?']); "
              "print(n, v.shape, 'torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    # gall ##ium export controls: 4 tokens
    assert out.stdout.split() == ["4", "(1,", "384)", "False", "False"], out.stderr[-2000:]


@pytest.mark.slow
def test_manifest_records_precision_and_other_precision_is_refused(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("Gallium exports were restricted in 2023. Germanium followed.", encoding="utf-8")
    index_dir = tmp_path / "idx"
    ingest([folder], index_dir, Settings(index=index_dir, embed_precision="int8"))
    index = Index.load(index_dir, Settings(index=index_dir, embed_precision="int8"))
    assert index.manifest["embed_precision"] == "int8"
    with pytest.raises(IndexMismatchError, match="holds int8 vectors, but RAG_EMBED_PRECISION is 'fp32'"):
        Assistant.open(index_dir, Settings(index=index_dir, embed_precision="fp32"))
    with pytest.raises(IndexMismatchError, match="RAG_EMBED_PRECISION"):  # nor may fp32 vectors be added
        ingest([folder], index_dir, Settings(index=index_dir, embed_precision="fp32"))
    # An int8 index from another quantization recipe: its vectors differ from the questions' now.
    folder_now = current_generation(index_dir)
    manifest = json.loads((folder_now / "manifest.json").read_text())
    assert manifest["embed_recipe"] == int8_recipe()
    write_unsealed_manifest(folder_now, {**manifest, "embed_recipe": int8_recipe() - 1})
    with pytest.raises(IndexMismatchError, match="another int8 encoder recipe"):
        Index.load(index_dir, Settings(index=index_dir, embed_precision="int8"))


class _HashEncoder(Embedder):
    """The real tokenizer with cheap deterministic vectors: ingestion's own costs, without the model's."""

    def encode(self, texts, show_progress=False):
        seeds = [int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "big") for t in texts]
        vectors = np.array([np.random.default_rng(s).standard_normal(384) for s in seeds], dtype=np.float32)
        return vectors.reshape(len(texts), 384) / np.linalg.norm(vectors, axis=1, keepdims=True).reshape(-1, 1)

    @property
    def dimension(self) -> int:
        return 384

    @property
    def max_tokens(self) -> int:
        return 254


def _words(n_chars: int) -> str:
    rng = np.random.default_rng(0)
    words = "gallium germanium export control dialogue supply chain Tokyo Beijing restriction".split()
    sentences, size = [], 0
    while size < n_chars:
        sentence = " ".join(rng.choice(words, 14)).capitalize() + "."
        sentences.append(sentence + ("\n\n" if len(sentences) % 6 == 5 else " "))
        size += len(sentences[-1])
    return "".join(sentences)


def test_progress_is_reported_with_sane_figures(tmp_path, monkeypatch):
    monkeypatch.setattr("rag.ingest.embedder_for", lambda settings: _HashEncoder(BUNDLED_MODEL))
    monkeypatch.setattr("rag.streaming.GROUP_CHUNKS", 16)
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(3):
        (folder / f"d{i}.txt").write_text(_words(20_000 * (i + 1)), encoding="utf-8")
    seen: list[IngestProgress] = []
    report, _ = ingest([folder], tmp_path / "idx", Settings(index=tmp_path / "idx"), progress=seen.append)
    assert len(seen) > 5
    assert all(a.chunks_done <= b.chunks_done and a.chars_done <= b.chars_done for a, b in zip(seen, seen[1:]))
    last = seen[-1]
    assert (last.files_done, last.files_total, last.chunks_done) == (3, 3, report.chunks_embedded)
    assert last.tokens_done == report.tokens_embedded and last.fraction == 1.0 and last.eta_s == 0
    middle = seen[len(seen) // 2]
    assert 0 < middle.fraction < 1 and middle.eta_s > 0 and middle.chunks_per_s > 0


def test_a_large_file_streams_in_bounded_memory():
    text = _words(2_000_000)
    doc = Document("0" * 16, "0" * 64, text, ["/data/big.txt"], "Big")
    tracemalloc.start()
    try:
        done = [(len(chunks), len(vectors)) for _, chunks, vectors in
                embed_documents([doc], _HashEncoder(BUNDLED_MODEL), Settings())]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert done[0][0] == done[0][1] > 2000
    # The chunks and their vectors are a few times 2 MB (measured 12 MB); the whole file's token offsets
    # at once took 48 MB.
    assert peak < 30e6, peak


def test_the_assistant_and_the_answerer_share_one_encoder():
    settings = Settings()
    assert embedder_for(settings) is get_embedder(settings.embed_model, settings.embed_batch_size)


def _toy_encoder(path: Path) -> None:
    """A tiny ONNX encoder shaped like the exported one: ids -> embeddings (channel 0 a hundred times the
    others, like a BERT outlier channel) -> two MatMuls sharing that input, one more after a Relu -> mean."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    table = rng.normal(size=(50, 8)).astype(np.float32)
    table[:, 0] *= 100
    weights = {"table": table, "w1": rng.normal(size=(8, 6)), "w2": rng.normal(size=(6, 4)),
               "w3": rng.normal(size=(8, 4))}
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["x"]),
             helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["y2"]), helper.make_node("MatMul", ["x", "w3"], ["y3"]),
             helper.make_node("Add", ["y2", "y3"], ["y"]),
             helper.make_node("ReduceMean", ["y"], ["pooled"], axes=[1], keepdims=0)]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, [1, "T"]) for n in ("input_ids", "attention_mask")]
    graph = helper.make_graph(
        nodes, "toy", inputs,
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(np.asarray(a, np.float32), n) for n, a in weights.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


@pytest.mark.slow  # loads ONNX models (tiny ones: well under a second)
def test_smoothing_keeps_the_fp32_outputs_and_brings_int8_closer(tmp_path):
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from rag.onnx_encoder import smooth_matmul_inputs

    plain, smoothed = tmp_path / "plain.onnx", tmp_path / "smoothed.onnx"
    _toy_encoder(plain)
    smooth_matmul_inputs(plain, smoothed, [[1, 2, 3, 4, 5], [6, 7, 8]])
    for source in (plain, smoothed):
        quantize_dynamic(str(source), str(source.with_suffix(".int8")), weight_type=QuantType.QInt8,
                         per_channel=True, op_types_to_quantize=["MatMul"])
    ids = np.array([[9, 10, 11, 12, 13, 14, 15]], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}

    def pooled(path):
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)[0][0]

    reference = pooled(plain)
    assert np.allclose(pooled(smoothed), reference, rtol=1e-4, atol=1e-3)
    plain_error = np.abs(pooled(plain.with_suffix(".int8")) - reference).max()
    smoothed_error = np.abs(pooled(smoothed.with_suffix(".int8")) - reference).max()
    assert smoothed_error < plain_error / 2, (smoothed_error, plain_error)


@pytest.mark.slow
def test_int8_texts_run_on_every_core_get_the_vectors_they_get_alone():
    encoder = embedder_for(Settings(embed_precision="int8")).onnx
    assert encoder and encoder.one_per_run
    texts = [f"Gallium exports were reviewed in week {i}." * (1 + i % 4) for i in range(12)]
    threads, encoder.threads = encoder.threads, 2  # as on a 2-core machine, whatever this one has
    try:
        together = encoder.encode(texts)
    finally:
        encoder.threads = threads
    assert encoder._bulk is not None, "the texts ran on the one-thread session, a text per core"
    alone = np.vstack([encoder.encode([text]) for text in texts])
    assert np.allclose(together, alone, atol=1e-5)
