# ConvMixer deployment toolchain. `make demo` and `make test` set up their own venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch lies on this project's CI machines' disk; on a GPU machine
# override it, e.g. `make setup TORCH=torch==2.13.0` with the CUDA index you use.
TORCH ?= torch==2.13.0

.PHONY: setup test test-gpu lint typecheck clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e '.[export,dev]'
	bash tools/install-tensorrt-stubs.sh $(PY)
	@touch $@

lint: setup
	$(PY) -m ruff check .

typecheck: setup
	$(PY) -m mypy convmixer export calibration runtime

# What CI runs: lint, type-check (TensorRT code against tensorrt-stubs), then the tests
# this machine can run; GPU/TensorRT tests are reported as skipped with the reason.
test: lint typecheck
	$(PY) -m pytest

# On a machine with a CUDA GPU and TensorRT: only the GPU and TensorRT tests, none skipped.
test-gpu: setup
	CONVMIXER_REQUIRE_GPU=1 $(PY) -m pytest -m "gpu or trt"

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
