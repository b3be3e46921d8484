# Quick start: `make run` (install, build the default index from seeds/ if missing, start the chat UI)
# and `make test` (install, run every test).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install run test test-fast lint index bench eval clean browser screenshot

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# Pinned first: the CPU build lies on this machine's disk; an unpinned torch pulls a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,lint,milvus]'
	touch $(STAMP)

install: $(STAMP)

index: $(STAMP)
	test -f $${RAG_INDEX:-indexes/default}/CURRENT || $(BIN)/rag ingest seeds

run: index
	$(BIN)/python app.py

browser:
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

# The README's screenshots, from the seeds with default settings (not from the test run).
screenshot: $(STAMP) browser
	$(BIN)/python tools/screenshot.py docs

test: $(STAMP) browser
	$(BIN)/python -m pytest -q -rs

# No model, no browser, no subprocess: seconds, for the edit-test loop.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -rs -m "not slow and not browser"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

eval: index
	$(BIN)/rag eval evals/seed.jsonl --baseline evals/baseline.json --report reports/eval

bench: $(STAMP)
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python bench/ingest_bench.py
	$(BIN)/python bench/query_bench.py
	$(BIN)/python bench/pipeline_bench.py --no-profile
	$(BIN)/python bench/scale_bench.py
	mkdir -p reports && test -f reports/scifact-minilm.npz || $(BIN)/python bench/ann_bench.py --real reports/scifact-minilm.npz --embed --sizes 100000
	$(BIN)/python bench/ann_bench.py --real reports/scifact-minilm.npz
	$(BIN)/python bench/beir.py ../shared/benchmarks/scifact --split test --precision fp32,int8
	$(BIN)/python bench/squad_cjk.py ../shared/benchmarks/jsquad/valid-v1.3.json.gz --articles 6 --questions 80
	$(BIN)/python bench/squad_cjk.py ../shared/benchmarks/cmrc2018/trial.json.gz --articles 60 --questions 80
	$(BIN)/python bench/large_files.py --encoder hash
	$(BIN)/python bench/large_files.py --text-mb 0 --pdf-pages 300

clean:
	rm -rf $(VENV) indexes reports
