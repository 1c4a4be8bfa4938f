# Ketnoi — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
# uv comes from PyPI into a project-local tool venv unless one is already on PATH.
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)
VENV := .venv
BIN := $(VENV)/bin

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: $(if $(findstring .tools,$(UV)),.tools/bin/uv) pyproject.toml uv.lock shared/pyproject.toml $(wildcard services/*/pyproject.toml)
	$(UV) sync --locked --all-packages
	@touch $@

.PHONY: install
install: $(VENV)/.synced ##@Setup Install every package and tool into .venv (uv, locked)

.PHONY: lock
lock: $(if $(findstring .tools,$(UV)),.tools/bin/uv) ##@Setup Re-resolve dependencies into uv.lock
	$(UV) lock

.PHONY: run
run: install ##@Run Start the whole system on embedded Kafka + PostgreSQL (Ctrl-C stops all)
	$(BIN)/ketnoi up

.PHONY: test
test: install browser ##@Test Run the whole test suite (real broker and PostgreSQL, a real browser)
	$(BIN)/pytest -q -ra

# The console's browser test drives Debian's Chromium (Playwright cannot download browsers
# here): install the package when it is missing (needs root or sudo, and Debian's registry).
CHROMIUM ?= /usr/bin/chromium
.PHONY: browser
browser: ##@Setup Install Debian's chromium for the browser tests when it is missing
	@test -x $(CHROMIUM) || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium; }

.PHONY: test-fast
test-fast: install ##@Test Unit tests only (no broker, no database)
	$(BIN)/pytest -q -m "not integration"

.PHONY: reliability
reliability: install ##@Test Fault-injection harness: every scenario 3 times, table into docs/reliability.md (~85 min)
	$(BIN)/python -m tests.reliability.scenarios --reps $(or $(REPS),3)

.PHONY: lint
lint: install ##@Quality ruff on everything, mypy --strict on shared/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared/src

.PHONY: format
format: install ##@Quality Format the code with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: docs
docs: install ##@Docs Generate docs/asyncapi.json from the FastStream apps
	$(BIN)/ketnoi docs --out docs/asyncapi.json

.PHONY: bench
bench: install ##@Benchmarks Run the benchmark scripts (figures with same-run baselines)
	$(BIN)/python benchmarks/ingest_bench.py
	$(BIN)/python benchmarks/triage_bench.py
	$(BIN)/python benchmarks/e2e_bench.py
	$(BIN)/python benchmarks/e2e_bench.py --kind question --rates 10,30
	$(BIN)/python benchmarks/notifier_bench.py
	$(BIN)/python benchmarks/news_bench.py

# ---- Deployment (deploy/): docker compose on a Docker host; validated offline by `make test`.
COMPOSE := docker compose -f deploy/compose.yaml
KAFKA ?= single
ZALO ?= sandbox
COMPOSE_PROFILES_ARGS := $(if $(filter cluster,$(KAFKA)),--profile kafka-cluster) \
	$(if $(filter sandbox,$(ZALO)),--profile sandbox) \
	$(if $(OBSERVABILITY),--profile observability)
COMPOSE_ENV := --env-file deploy/env/kafka-$(KAFKA).env

.PHONY: up
up: ##@Deploy Compose up: Kafka (KAFKA=single|cluster), PostgreSQL, every service (OBSERVABILITY=1, ZALO=real)
	$(PYTHON) deploy/gen_secrets.py
	$(if $(filter real,$(ZALO)),KETNOI_ZALO_ENV=env/zalo-production.env) \
	  $(COMPOSE) $(COMPOSE_ENV) $(COMPOSE_PROFILES_ARGS) up --build --detach --wait

.PHONY: down
down: ##@Deploy Compose down (every profile; VOLUMES=1 also deletes Kafka/PostgreSQL data)
	$(COMPOSE) $(COMPOSE_ENV) --profile kafka-cluster --profile sandbox --profile observability \
	  down --remove-orphans $(if $(VOLUMES),--volumes)

.PHONY: scale-demo
scale-demo: install ##@Deploy Horizontal scaling on one machine: 2 ingest, 3 triage, 2 notifier, kills mid-run
	$(BIN)/python deploy/scale_demo.py

.PHONY: clean
clean: ##@Setup Remove the venv, caches and local state (.ketnoi: embedded database!)
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache .ketnoi

.PHONY: help
help: ##@Help Show this help
	@for g in Setup Run Test Quality Docs Benchmarks Deploy Help; do \
		echo "$$g:"; \
		grep -hE "^[a-zA-Z_-]+:.*##@$$g " $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*##@[A-Za-z]+ "} {printf "  %-12s %s\n", $$1, $$2}'; \
	done
