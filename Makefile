# ConvMixer deployment toolchain. `make demo` and `make test` set up their own venv.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch lies on this project's CI machines' disk. On a GPU machine
# pick your own build, e.g. `make setup TORCH=torch==2.13.0` with your CUDA index.
TORCH ?= torch==2.13.0

# make engine MODEL=... [CHECKPOINT=path] [CALIB=dir|file.npy] [GOLDEN=dir] [PRECISION="fp16 int8"]
#             [SHAPES=MIN:OPT:MAX] [FLAVOUR=tensorrt|tensorrt-rtx] [TARGETS=8.6,8.9]   (tensorrt-rtx target GPUs)
# GOLDEN (images for golden.npz, the parity reference) is its own setting, never taken from
# CALIB: a new calibration set re-calibrates INT8 but does not re-export model.onnx.
# Each step prints one `== step` line before it runs, so an error names its step.
MODEL ?= convmixer_768_32
CHECKPOINT ?=
CALIB ?=
METHOD ?= entropy
SHAPES ?=
FLAVOUR ?=
TARGETS ?=
GOLDEN ?=
PRECISION ?= fp16 $(if $(CALIB),int8,)
B := build/$(MODEL)

.PHONY: setup test test-gpu verify-gpu gpu-check lint typecheck demo engine engine-check engine-parity onnx-parity int8-note clean FORCE

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || { echo "== setup 1/5: create $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "== setup 2/5: upgrade pip"
	@$(PY) -m pip install -q --upgrade pip
	@echo "== setup 3/5: $(TORCH) (the first install takes a few minutes)"
	@$(PY) -m pip install -q "$(TORCH)"
	@echo "== setup 4/5: this package and its extras: export, dev, rtx (about 90 MB), ray, gpu-images"
	@$(PY) -m pip install -q -e '.[export,dev,rtx,ray,gpu-images]'
	@echo "== setup 5/5: TensorRT type stubs (for mypy)"
	@bash tools/install-tensorrt-stubs.sh $(PY)
	@touch $@

lint: setup
	$(PY) -m ruff check .

# scripts/ and benchmarks/ are folders of stand-alone files, not packages: each file is
# checked as a top-level module, so no two of them may share a name.
typecheck: setup
	$(PY) -m mypy convmixer export calibration runtime scripts benchmarks

# What CI runs: lint, type-check (TensorRT code against tensorrt-stubs), then every test
# this machine can run, real TensorRT-RTX builds (marker rtx) included; GPU/TensorRT tests
# are listed as skipped, with the reason.
test: lint typecheck numpy1-venv
	$(PY) -m pytest

# The runtime core's tests also run under numpy 1.26 (JetPack 6's TensorRT needs numpy 1.x):
# tests/test_numpy1.py runs them in this small venv without torch, built once.
NUMPY1 := .venv-numpy1
.PHONY: numpy1-venv
numpy1-venv: $(NUMPY1)/.installed
$(NUMPY1)/.installed: tests/requirements-numpy1.txt
	@test -x $(NUMPY1)/bin/python || $(PYTHON) -m venv $(NUMPY1)
	@echo "== test set-up: $(NUMPY1), the core's tests under numpy 1.26 (once)"
	@$(NUMPY1)/bin/python -m pip install -q --no-compile -r tests/requirements-numpy1.txt
	@touch $@

# On a machine with a CUDA GPU and TensorRT: the GPU and TensorRT tests, none skipped.
# Without a GPU it says so in one line and stops, rather than fail every test.
test-gpu: setup gpu-check
	CONVMIXER_REQUIRE_GPU=1 $(PY) -m pytest -m "gpu or trt"

# On a GPU machine, offline, with the Python already there: `PYTHON=python3 make verify-gpu`
# (never pip-installs: it does not depend on setup). It writes build/verify-gpu.md; pass
# ENGINE=path/model.fp16.engine for classify --decode gpu end to end into a real engine.
VERIFY_PY := $(if $(filter command line environment,$(origin PYTHON)),$(PYTHON),$(if $(wildcard $(PY)),$(PY),$(PYTHON)))
ENGINE ?=
verify-gpu:
	$(eval WHY := $(shell $(VERIFY_PY) scripts/verify_gpu.py --check 2>&1))
	$(if $(WHY),$(error $(WHY)))
	@$(VERIFY_PY) scripts/verify_gpu.py $(if $(ENGINE),--engine $(ENGINE))

# $(error) makes it one line (a failing command would add make's own "Error 1" line).
gpu-check:
	$(eval NO_GPU := $(shell $(PY) -c 'from tests.conftest import _missing; print(_missing("gpu") or "")' 2>&1))
	$(if $(NO_GPU),$(error make test-gpu needs an NVIDIA GPU and finds none here ($(NO_GPU))))

# ---- make engine: export -> FP16 -> INT8 (with CALIB) -> engines -> parity -> table ----
# Engine parity needs a GPU that can run the engines; without one (TensorRT-RTX builds
# ahead of time) the ONNX graphs the engines were built from are checked with ONNX Runtime.
engine: engine-check $(foreach p,$(PRECISION),$(B)/model.$(p).engine)
	@if $(PY) -m export check --run >/dev/null 2>&1; then $(MAKE) --no-print-directory engine-parity; else \
	  echo "== engines built; engine parity needs a GPU that runs them (python -m export check says why)."; \
	  echo "== checking the ONNX graphs they were built from with ONNX Runtime instead"; \
	  $(MAKE) --no-print-directory onnx-parity; fi
	@echo "== summary"
	@$(PY) scripts/engine_summary.py $(B)
	@$(MAKE) --no-print-directory int8-note

# Said at the end of `make engine`, where it is seen: without CALIB there is no INT8 engine.
int8-note:
	@if [[ -z "$(CALIB)" ]]; then \
	  echo "== no INT8 engine: INT8 needs a calibration set, CALIB=PATH: a folder of a few hundred images like"; \
	  echo "   those the model will see (e.g. 512 from its training set; class sub-folders optional) or an .npy"; \
	  echo "   of preprocessed images, e.g. make engine MODEL=$(MODEL) CALIB=/data/calib ($(if $(filter convmixer_digits,$(MODEL)),CALIB=digits here,CALIB=digits for convmixer_digits))"; fi

engine-parity: $(foreach p,$(PRECISION),$(B)/model.$(p).parity.json)
onnx-parity: $(foreach p,$(PRECISION),$(B)/model.$(p).onnx-parity.json)

engine-check: setup
	@if [[ " $(PRECISION) " == *" int8 "* && -z "$(CALIB)" ]]; then \
	  echo "error: INT8 needs a calibration set: make engine MODEL=$(MODEL) CALIB=path/to/images (or PRECISION=fp16)" >&2; exit 2; fi
	@$(PY) -m export check || { echo "make engine needs TensorRT with a CUDA GPU, or TensorRT-RTX (pip install -e '.[rtx]', no GPU needed)" >&2; exit 2; }

# The export arguments live in a stamp file that changes only when they do, so a new
# CHECKPOINT or GOLDEN rebuilds model.onnx and everything after it (CALIB is not one of them).
$(B)/.export-args: FORCE
	@mkdir -p $(B)
	@echo '$(MODEL) $(CHECKPOINT) $(GOLDEN)' | cmp -s - $@ || echo '$(MODEL) $(CHECKPOINT) $(GOLDEN)' > $@

$(B)/model.onnx: $(B)/.export-args $(CHECKPOINT)
	@echo "== export $(MODEL) to ONNX: $@"
	@$(PY) -m export onnx --model $(MODEL) --out $(B) $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT)) $(if $(GOLDEN),--golden-images $(GOLDEN))

$(B)/model.fp16.onnx: $(B)/model.onnx
	@echo "== FP16 graph: $@"
	@$(PY) -m export fp16 $<

# Always asked, but calibration.json's data fingerprint decides: unchanged data and
# settings leave model.int8.onnx untouched, so nothing after it rebuilds.
$(B)/model.int8.onnx: $(B)/model.onnx FORCE
	@echo "== INT8 calibration on $(CALIB): $@"
	@$(PY) -m calibration $< --data $(CALIB) --method $(METHOD)

# The timing cache is a TensorRT option; TensorRT-RTX has none and refuses it.
$(B)/model.%.engine: $(B)/model.%.onnx
	@echo "== engine from $<: $@"
	@f="$(FLAVOUR)"; [[ -n "$$f" ]] || f=$$($(PY) -c 'from runtime.core.flavours import default_flavour as d; print(d())'); \
	$(PY) -m export engine $< --flavour $$f $(if $(SHAPES),--shapes $(SHAPES)) $(if $(TARGETS),--compute-capability $(TARGETS)) \
	  $$([[ $$f == tensorrt ]] && echo --timing-cache $(B)/timing.cache)

$(B)/model.%.parity.json: $(B)/model.%.engine $(B)/model.onnx
	@echo "== engine parity: $<"
	@rc=0; $(PY) -m runtime parity $< --json > $@.tmp || rc=$$?; \
	  if [ $$rc -ge 2 ]; then rm -f $@.tmp; exit $$rc; fi; mv $@.tmp $@

# golden.npz is written with model.onnx: new golden inputs mean new parity.
$(B)/model.%.onnx-parity.json: $(B)/model.%.onnx $(B)/model.onnx
	@echo "== ONNX Runtime parity: $<"
	@rc=0; $(PY) -m runtime parity $< --json --no-cpu-graph > $@.tmp || rc=$$?; \
	  if [ $$rc -ge 2 ]; then rm -f $@.tmp; exit $$rc; fi; mv $@.tmp $@

# ---- make demo: the whole pipeline on convmixer_digits; ONNX Runtime on the CPU, plus ----
# ---- TensorRT-RTX engines built ahead of time (or TensorRT engines where a GPU is) ----
# Steps 1-3 go through the same file targets as `make engine`, so step 7 reuses them.
D := build/convmixer_digits
DEMO := MODEL=convmixer_digits CALIB=digits GOLDEN=$(D)/samples
demo: setup
	@echo "== 1. export convmixer_digits (bundled trained weights) to ONNX"
	@$(PY) scripts/digit_samples.py $(D)/samples 12
	@$(MAKE) --no-print-directory $(DEMO) $(D)/model.onnx
	@echo "== 2. FP16 graph"
	@$(MAKE) --no-print-directory $(DEMO) $(D)/model.fp16.onnx
	@echo "== 3. INT8 calibration on the digits train split"
	@$(MAKE) --no-print-directory $(DEMO) $(D)/model.int8.onnx
	@echo "== 4. parity against the PyTorch golden logits (ONNX Runtime; int8.cpu: the INT8 graph for its CPU)"
	@for m in model model.fp16 model.int8 model.int8.cpu; do printf '%-16s ' $$m; \
	  $(PY) -m runtime parity $(D)/$$m.onnx --no-cpu-graph; done
	@echo "== 5. held-out top-1 (the 359-image digits test split, never trained on)"
	@for m in model model.fp16 model.int8 model.int8.cpu; do printf '%-16s ' $$m; \
	  $(PY) -m runtime evaluate $(D)/$$m.onnx --data digits --no-cpu-graph; done
	@echo "== 6. classify sample images with the INT8 graph (on this CPU: model.int8.cpu.onnx; file names carry the true digit)"
	@$(PY) -m runtime classify $(D)/model.int8.onnx $(D)/samples --topk 1 --workers 0
	@if $(PY) -m export check >/dev/null 2>&1; then \
	  echo "== 7. engines: TensorRT with a GPU, or TensorRT-RTX ahead of time without one"; \
	  $(MAKE) --no-print-directory engine $(DEMO); \
	else echo "== 7. no TensorRT or TensorRT-RTX here: engines skipped (python -m export check says why)"; fi

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
