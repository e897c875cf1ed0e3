# kfp-bot: `make demo` and `make test` are the two commands a new machine needs.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck venv bench clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m examples.demo

# Test processes (pytest-xdist). More than the cores: most of a test's time is spent waiting on the
# processes it starts (bot instances, sandboxed compiles and runs, the emulator), not on the CPU.
# TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 4

# Lint and types first: they take seconds, the suite minutes.
test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks.plan_bench
	$(BIN)/python -m benchmarks.webhook_bench
	$(BIN)/python -m benchmarks.edge_memory
	$(BIN)/python -m benchmarks.sandbox_memory
	$(BIN)/python -m benchmarks.burst
	$(BIN)/python -m benchmarks.burst --rate 200
	$(BIN)/python -m benchmarks.compile_bench
	$(BIN)/python -m benchmarks.compile_latency

clean:
	rm -rf $(VENV) .pytest_cache
