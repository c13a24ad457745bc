# Gatehouse developer entry points. Python tools run from .venv, made by scripts/bootstrap.sh.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv/bin

.PHONY: help bootstrap dev demo env test lint bench up down clean

help:
	@echo "make dev     run NATS, MongoDB (or FerretDB) and the Gatehouse services on 127.0.0.1; Ctrl-C stops"
	@echo "make demo    make dev + a demo identity provider, demo MCP servers and a demo gateway; prints what to try"
	@echo "make env     write .env for docker compose with fresh secrets (FORCE=1 overwrites)"
	@echo "make test    install test tools, then ruff, mypy and the whole pytest suite"
	@echo "make lint    ruff and mypy only"
	@echo "make bench   benchmarks of the real stack under wrk load, with py-spy profiles (BENCHMARKS.md)"
	@echo "make eval    tool search quality (recall@5, MRR) and speed at 10,000 tools (bench/search_eval.py)"
	@echo "make eval-mcp  the search tool through the MCP endpoint at 10,000 tools (bench/search_mcp.py; starts the stack)"
	@echo "make up      the whole stack from images (docker compose up --build); make down stops it"
	@echo "make clean   remove .venv, .tools, .data (dev databases!), tests/node_modules and caches"

bootstrap:
	bash scripts/bootstrap.sh

dev:
	bash scripts/dev.sh

demo:
	bash scripts/demo.sh

env:
	python3 scripts/env.py $(if $(FORCE),--force)

# mypy checks the packages listed in pyproject.toml ([tool.mypy] files).
test:
	bash scripts/bootstrap.sh --test
	$(VENV)/ruff check .
	$(VENV)/mypy
	$(VENV)/pytest

# BENCH_ARGS: see `python bench/run.py --help` (e.g. BENCH_ARGS="--duration 5", or "" for no profiles).
BENCH_ARGS ?= --profile
bench:
	bash scripts/bootstrap.sh --test
	bash bench/setup.sh
	$(VENV)/python bench/run.py $(BENCH_ARGS)

# EVAL_ARGS: see `python bench/search_eval.py --help` (e.g. EVAL_ARGS="--misses --rounds 50").
EVAL_ARGS ?=
.PHONY: eval
eval: bootstrap
	$(VENV)/python bench/search_eval.py $(EVAL_ARGS)

# the search tool's latency through the MCP endpoint (BENCHMARKS.md §7.5); about 5 minutes
.PHONY: eval-mcp
eval-mcp: bootstrap
	$(VENV)/python bench/search_mcp.py

lint: bootstrap
	$(VENV)/ruff check .
	$(VENV)/mypy

up:
	docker compose up --build

down:
	docker compose down

clean:
	rm -rf .venv .tools .data tests/node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find contracts services -maxdepth 2 -name '*.egg-info' -type d -prune -exec rm -rf {} +
