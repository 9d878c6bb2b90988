# loanwatch developer entry points. `make help` lists them.
# A fresh machine needs only python3.11, Java 17 + Maven (installed by `stack up` if missing) and
# root for apt: `make test` / `make run` install and start everything else, idempotently.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.loanwatch-setup.stamp
LINT_PATHS := loanwatch tests
PYTEST_ARGS ?=

.PHONY: help setup test run lint typecheck unit integration chaos stack-up stack-down stack-status bench clean-run

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-installs only when pyproject.toml changes (or the venv is new).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

setup: $(STAMP) ## Create .venv (python3.11) and install loanwatch with its dev extras

stack-up: setup ## Start Kafka, Redis, Prometheus, Alertmanager on 127.0.0.1 (installs if missing)
	$(BIN)/loanwatch stack up

stack-down: setup ## Stop the services the stack started (by pid file)
	$(BIN)/loanwatch stack down

stack-status: setup ## Show each service: state, pid, port, log
	$(BIN)/loanwatch stack status

lint: setup ## ruff check + ruff format --check + mypy --strict
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy loanwatch

test: stack-up lint ## Everything: setup, stack up, lint, then pytest over tests/
	$(BIN)/pytest tests $(PYTEST_ARGS)

unit: setup ## Only the fast tiers (no stack needed)
	$(BIN)/pytest tests -m "not integration" $(PYTEST_ARGS)

integration: stack-up ## Only the integration tier (real broker, Redis, Prometheus)
	$(BIN)/pytest tests -m integration $(PYTEST_ARGS)

CHAOS_TESTS := tests/integration/test_live_kill_loop.py tests/integration/test_live_broker_restart.py \
	tests/integration/test_live_bad_input.py tests/integration/test_live_scenarios.py

chaos: stack-up ## The long fault suite (more kills, bigger backlog, rounds); prints one table
	set -o pipefail; for round in $$(seq $${CHAOS_ROUNDS:-2}); do \
	LOANWATCH_KILL_LOOP_LOANS=$${LOANWATCH_KILL_LOOP_LOANS:-30000} \
	LOANWATCH_KILL_LOOP_KILLS=$${LOANWATCH_KILL_LOOP_KILLS:-15} \
	LOANWATCH_FUZZ_MESSAGES=$${LOANWATCH_FUZZ_MESSAGES:-50000} \
	$(BIN)/pytest -s -q -p no:cacheprovider --timeout=3600 $(CHAOS_TESTS) -k "kill or broker or fuzz or starved"; \
	done 2>&1 | $(BIN)/python bench/chaos_table.py

run: stack-up ## Setup, stack up, then run loanwatch (workers + simulator)
	$(BIN)/loanwatch run

bench: setup ## Run every bench/*.py that exists
	@shopt -s nullglob; files=(bench/*.py); \
	if [ $${#files[@]} -eq 0 ]; then echo "no benchmarks in bench/"; fi; \
	for f in "$${files[@]}"; do echo "== $$f"; $(BIN)/python "$$f" || exit 1; done

clean-run: ## Stop the stack and delete run/ (all local data, logs, pid files)
	-$(BIN)/loanwatch stack down
	rm -rf run
