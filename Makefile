# The two commands of the README: `make quickstart` and `make test`. Both create or reuse .venv,
# install what is missing (a second run skips the install), and print what they do.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.minigpt4-installed
TORCH_PIN := torch==2.13.0
FIND_LINKS := $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS),$(shell pip config get global.find-links 2>/dev/null | sed 's/^/--find-links /'))
PYTEST_ARGS ?=

.PHONY: help install lock system-deps quickstart test test-fast test-slow lint format bench parity clean

help:
	@echo "make quickstart   install, then generate the shapes world, train tiny models, evaluate, print results"
	@echo "make test         install, then run the whole test suite (everything except gpu-marked tests)"
	@echo "make test-fast    the test suite without slow tests"
	@echo "make lint|format  ruff check / ruff format"
	@echo "make lock         re-resolve requirements.lock (the exact versions make install uses) from requirements.txt"
	@echo "make parity       python -m minigpt4.tools.parity over tests/fixtures/parity"
	@echo "make bench        run bench/*.py (one JSON line each)"

install: $(STAMP)

$(STAMP): pyproject.toml requirements.txt requirements.lock
	@echo "==> [1/4] virtual environment $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "==> [2/4] torch"
	@if $(PY) -c "import torch" 2>/dev/null; then \
		echo "    keeping installed torch $$($(PY) -c 'import torch; print(torch.__version__)')"; \
	else \
		echo "    no torch in $(VENV): pip install $(TORCH_PIN) (CPU wheel here; GPU users install their CUDA torch first)"; \
		$(VENV)/bin/pip install --disable-pip-version-check -q $(TORCH_PIN); \
	fi
	@$(PY) -c "import torch; print('torch==' + torch.__version__)" > $(VENV)/torch-constraint.txt
	@echo "==> [3/4] dependencies: the exact versions of requirements.lock (torch kept at the installed $$(cat $(VENV)/torch-constraint.txt))"
	@$(PY) -m uv --version >/dev/null 2>&1 || $(VENV)/bin/pip install --disable-pip-version-check -q uv
	@VIRTUAL_ENV=$(abspath $(VENV)) $(PY) -m uv pip install -q $(FIND_LINKS) -c $(VENV)/torch-constraint.txt \
		-r requirements.lock -e . \
	|| $(VENV)/bin/pip install --disable-pip-version-check -q -c $(VENV)/torch-constraint.txt -r requirements.lock -e .
	@echo "==> [4/4] check"
	@$(PY) -c "import torch, transformers, omegaconf, minigpt4; print('    minigpt4', minigpt4.__version__, '| torch', torch.__version__, '| transformers', transformers.__version__)"
	@touch $(STAMP)

# requirements.lock: every package at the version the tests last passed with, resolved from requirements.txt's
# ranges; torch is left out so a GPU user's CUDA torch is kept. Refresh it with `make lock`, then run `make test`.
lock:
	@$(PY) -m uv pip compile requirements.txt -c constraints.txt $(FIND_LINKS) --python-version 3.11 \
		--no-emit-package torch --upgrade -o requirements.lock
	@echo "==> requirements.lock refreshed: run make test before committing it"

quickstart: $(STAMP)
	@$(PY) -m minigpt4.quickstart

system-deps:
	@# Java runs pycocoevalcap's METEOR and PTB tokenizer (caption metrics); Debian's package when missing
	@command -v java >/dev/null 2>&1 || { echo "==> installing Java (default-jre-headless) for caption metrics"; \
		(apt-get update -qq && apt-get install -y -qq default-jre-headless >/dev/null) \
		|| echo "    could not install Java: caption-metric tests will fail"; }
	@# Chromium runs the browser tests of the demos (Playwright drives this system browser, downloads none)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -n "$$CHROMIUM" ] \
		|| { echo "==> installing Chromium (Debian package) for the demos' browser tests"; \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "    could not install Chromium: the browser tests will fail (set CHROMIUM=/path/to/chrome)"; }

test: $(STAMP) system-deps
	@echo "==> pytest (all tests except gpu)"
	@$(PY) -m pytest -m "not gpu" $(PYTEST_ARGS)

test-fast: $(STAMP)
	@$(PY) -m pytest -m "not gpu and not slow" $(PYTEST_ARGS)

test-slow: $(STAMP) system-deps
	@$(PY) -m pytest -m "slow and not gpu" $(PYTEST_ARGS)

lint: $(STAMP)
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .

format: $(STAMP)
	@$(PY) -m ruff format .
	@$(PY) -m ruff check --fix .

parity: $(STAMP)
	@status=0; for d in tests/fixtures/parity/functions tests/fixtures/parity/models tests/fixtures/parity/minigpt5; do \
		$(PY) -m minigpt4.tools.parity $$d || status=1; done; exit $$status

bench: $(STAMP)
	@for f in bench/bench_*.py; do $(PY) $$f; done

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache
