# vision3d: `make demo` sets up .venv and runs the main job on the shipped sample; `make test` runs the tests.
# TORCH_SPEC pins torch before anything else so pip never swaps in a different build. On this project's
# machines torch==2.13.0 resolves to a local CPU wheel; elsewhere, on a CPU-only machine, add
# TORCH_INDEX=https://download.pytorch.org/whl/cpu to avoid the multi-GB CUDA build.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
PIP := $(BIN)/python -m pip
PYTEST_ARGS ?= -q

.PHONY: demo test venv install install-test bench clean help

help:
	@echo "make demo   - set up .venv and run the demo job on the shipped sample"
	@echo "make test   - set up .venv with test extras and run the test suite"
	@echo "make bench  - run the benchmarks (writes docs/bench/*.md)"

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	$(PIP) install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)
	@touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(PIP) install -q -e ".[viewer]"
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PIP) install -q -e ".[dev,export,viewer]"
	@touch $@

venv install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(BIN)/v3d demo -o runs/demo

# pytest exits 5 when it collects nothing: that is a failure here, not a pass.
test: $(VENV)/.installed-test
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests - failing"; exit 1; fi; exit $$rc

bench: $(VENV)/.installed-test
	$(BIN)/python scripts/bench_synth.py
	$(BIN)/python scripts/bench_video_memory.py

clean:
	rm -rf $(VENV) runs .pytest_cache
