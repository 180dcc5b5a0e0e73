# OpenMesh Pool. `make run` starts the whole pool locally; `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export REFLEX_TELEMETRY_ENABLED := false
export REFLEX_CHECK_LATEST_VERSION := false
export REFLEX_USE_NPM := 1
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install run test test-fast test-pg bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch is pinned to the CPU build (an unpinned torch pulls a multi-GB CUDA build).
	$(BIN)/python -m pip install -q 'torch==2.13.0'
	$(BIN)/python -m pip install -q -e '.[worker,dashboard,dev]'
	@touch $(STAMP)

run: install
	$(BIN)/openmesh up

# Every test on SQLite (Redis tests use TEST_REDIS_URL when set); then, when TEST_DATABASE_URL names a
# PostgreSQL server, the database-facing suites again on PostgreSQL (each run creates and drops its own DB).
test: install
	env -u TEST_DATABASE_URL $(BIN)/python -m pytest -q
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
	  echo "== again on PostgreSQL ($$TEST_DATABASE_URL) =="; \
	  $(BIN)/python -m pytest -q -m "not browser" tests/backend tests/integration/test_backends.py \
	    tests/integration/test_two_gateways_two_coordinators.py; \
	fi

test-fast: install
	$(BIN)/python -m pytest -q -m "not browser and not e2e"

bench: install
	$(BIN)/python -m benchmarks.run

lint: install
	$(BIN)/ruff check backend worker dashboard tests

clean:
	rm -rf .openmesh .web .states
