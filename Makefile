# PhotoSky developer entry points. `make dev` runs the offline stack, `make test` runs every check CI runs.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# Lambda's runtime is chosen from the interpreter Chalice runs under, and Pillow's Lambda wheels need 3.12+,
# so prefer 3.12 (pyenv installs included), then 3.13, falling back to any python3 >= 3.11.
PYTHON ?= $(shell for p in python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3.13 \
	$(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) python3; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo "$$p"; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CDK app's dependencies (see cdk-synth below), defined here: the rules that depend on it come first.
CDK_STAMP := $(VENV)/.installed-cdk

.PHONY: help dev aws test lint format typecheck unit e2e package clean bench fuzz reliability invariants chalice-deploy \
	cdk-synth

help:
	@echo "make dev        run PhotoSky offline on 127.0.0.1 (moto AWS + API + demo user); Ctrl-C stops"
	@echo "make aws        make dev without its API: serve that with \`.venv/bin/chalice local --stage local\`"
	@echo "make test       lint, type-check and run every test (what CI runs)"
	@echo "make fuzz       the fuzzing and property suites with a large budget (FUZZ_EXAMPLES=$(FUZZ_EXAMPLES))"
	@echo "make reliability every reliability suite at the fuzz budget; rewrites docs/RELIABILITY.md's results"
	@echo "make invariants check the running dev stack's table and bucket agree (python -m ops.invariants)"
	@echo "make package    build the single CloudFormation stack for STAGE=dev|prod into build/STAGE"
	@echo "make chalice-deploy  chalice deploy STAGE=dev|prod, then what it lacks (infra.after_chalice_deploy)"
	@echo "make cdk-synth  the CDK app's stack for STAGE=dev|prod (installs the CDK), into build/cdk/STAGE"
	@echo "make bench      benchmarks vs peers and limits (~6 min; BENCH_ARGS=--quick); writes docs/PERFORMANCE.md"
	@echo "make format     apply ruff's formatting and safe fixes"
	@echo "make clean      remove the virtualenv and caches"

$(STAMP): requirements.txt requirements-worker.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "need Python 3.11+ (3.12+ preferred)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

dev: $(STAMP)
	$(BIN)/python -m devstack

aws: $(STAMP)
	$(BIN)/python -m devstack --no-api

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(CDK_STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit tests/integration

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e

test: $(CDK_STAMP) lint typecheck
	$(BIN)/pytest

# Examples per operation (schemathesis) and per property (hypothesis); `make test` uses a small default.
FUZZ_EXAMPLES ?= 200

fuzz: $(STAMP)
	PHOTOSKY_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -m "suite" tests/e2e/test_fuzz_api.py tests/reliability

reliability: $(STAMP)
	PHOTOSKY_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) PHOTOSKY_RELIABILITY_DOC=docs/RELIABILITY.md $(BIN)/pytest -m "suite"

invariants: $(STAMP)
	$(BIN)/python -m ops.invariants

# Benchmarks: their own, bench-only dependencies (peers, pyvips) on top of the dev ones; CI never needs them.
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	@touch $@

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

STAGE ?= dev
package: $(STAMP)
	$(BIN)/python -m infra.package --stage $(STAGE)

# The `chalice deploy` path (README, Deploy): the after-deploy step re-applies the stage throttling, the gateway
# responses (every `chalice deploy` deletes them) and the bytecode, so it follows every deploy.
chalice-deploy: $(STAMP)
	$(BIN)/chalice deploy --stage $(STAGE)
	$(BIN)/python -m infra.after_chalice_deploy --stage $(STAGE)

# The CDK app (infra/cdk; README, Deploy): its library (requirements-cdk.txt) and CLI (npm, infra/cdk/package-lock.json)
# on top of the dev dependencies, only for what uses them: `make test` (tests/infra/test_cdk.py; mypy reads infra/cdk)
# and the cdk targets. `make dev` never installs them. The CLI's calls home (version check, telemetry, notices) are off.
CDK := cd infra/cdk && CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=1 ./node_modules/.bin/cdk
$(CDK_STAMP): $(STAMP) requirements-cdk.txt infra/cdk/package.json infra/cdk/package-lock.json
	$(BIN)/python -m pip install --quiet -r requirements-cdk.txt
	cd infra/cdk && npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

cdk-synth: $(CDK_STAMP)
	$(CDK) synth -c stage=$(STAGE) --no-notices --no-version-reporting --quiet --output ../../build/cdk/$(STAGE)

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build infra/cdk/node_modules infra/cdk/cdk.out
