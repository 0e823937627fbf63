# Sluice — every target creates the pinned virtualenv first if it is missing or stale.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PYTHONDONTWRITEBYTECODE := 1
# The embedded cloud and the tests never talk to AWS: dummy credentials, one region.
export AWS_DEFAULT_REGION ?= us-east-1
export AWS_ACCESS_KEY_ID ?= testing
export AWS_SECRET_ACCESS_KEY ?= testing
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: help venv browser synth local demo test test-suite lint format typecheck unit integration infra e2e bench clean

help:
	@echo "make demo    run the whole loop on the embedded cloud (no AWS account, no Docker)"
	@echo "make test    lint, type-check and run the whole test suite"
	@echo "make synth   synthesize the CDK app into cdk.out/ (cached on its inputs)"
	@echo "make local   serve the embedded cloud until Ctrl-C (outputs in .local/outputs.json)"
	@echo "make bench   run the benchmarks (results in bench/results/)"

venv: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	@$(PY) -m pip install --quiet -r requirements.txt 2>&1 | grep -v "^WARNING: Location"; test $${PIPESTATUS[0]} -eq 0
	@touch $(STAMP)

synth: venv
	$(PY) -m infra.assembly

# The browser tests (tests/browser) drive Debian's chromium through the pinned playwright package: no browser is
# downloaded at run time. Installed once, quietly, when /usr/bin/chromium is missing (through sudo unless root).
CHROMIUM := /usr/bin/chromium
AS_ROOT := $(shell test "$$(id -u)" -eq 0 || echo sudo)

browser:
	@test -x $(CHROMIUM) || { $(AS_ROOT) apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
		$(AS_ROOT) apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
		|| { echo "cannot install chromium" >&2; exit 1; }

# SLUICE_USECASE=path/to/usecase.toml (or a use-case name) chooses the use case of synth, local and demo;
# `python -m local --usecase ...` (and `python -m local.demo --usecase ...`) beats it.
local: synth
	$(PY) -m local

demo: synth
	$(PY) -m local.demo

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: venv
	$(VENV)/bin/mypy app.py infra shared functions local training bench cli

unit: venv
	$(PY) -m pytest tests/unit -q

integration: venv
	$(PY) -m pytest tests/integration -q

infra: synth
	$(PY) -m pytest tests/infra -q

e2e: synth
	$(PY) -m pytest tests/e2e -q

# The suite on two xdist workers, one a core (a third made the machine slow enough for the heavy e2e's
# 250 ms latency alarm to roll its candidate back): each e2e test runs in the group of the embedded cloud it
# uses (one worker starts each cloud, on a free port); everything else is spread over the workers. Lint and mypy run
# beside synth and the suite (mypy needs a minute from a cold cache while the e2e tests mostly wait);
# each target's output is printed whole when it finishes.
PYTEST_WORKERS ?= 2

test: venv
	@$(MAKE) --no-print-directory -j 3 --output-sync=target lint typecheck test-suite

test-suite: synth browser
	$(PY) -m pytest tests -q -n $(PYTEST_WORKERS) --dist loadgroup --durations=25

# Evidently (the monitor benchmark's comparison) lives in its own virtualenv: never beside the runtime.
BENCH_VENV := bench/.venv-evidently

bench: venv
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	@$(BENCH_VENV)/bin/python -m pip install -q -r bench/requirements.txt 2>&1 | grep -v "^WARNING: Location"; test $${PIPESTATUS[0]} -eq 0
	$(PY) -m bench

clean:
	rm -rf cdk.out .local .build test-artifacts .pytest_cache .mypy_cache .ruff_cache bench/results bench/.venv-evidently
