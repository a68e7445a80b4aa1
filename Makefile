# Nexus: one command set for humans and CI. `make help` lists every target.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
PROFILE ?= ci
VOTES ?= 100k
SEED ?= 0
PREFIX ?= gen_
BROWSER_TESTS ?= tests/browser
FUZZ_EXAMPLES ?= 200
export PYTHONDONTWRITEBYTECODE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.DEFAULT_GOAL := help

help: ## List every target
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1mmake %-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  Variables: PROFILE=ci|full (notebook parameters), DATABASE_URL / REDIS_URL / CELERY_BROKER_URL (services)"
	@echo "             BENCH_ARGS / BENCH_CACHE_ARGS (manage.py bench / bench_cache options, e.g. --votes 100000)"
	@echo "             LOAD_ARGS (manage.py load options, e.g. --duration 60 or --quick)"

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 2; }
	@echo "==> creating $(VENV) and installing Nexus (first run takes about a minute)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install Nexus with its dev tools

env: ## Write .env with fresh secrets (SECRET_KEY, service passwords, JupyterLab token); keeps values already set
	@$(PYTHON) scripts/make_env.py

services: $(STAMP) ## Start the embedded PostgreSQL and Redis (no-op for services you configured)
	@$(PY) manage.py embedded start

stop: $(STAMP) ## Stop the embedded PostgreSQL and Redis
	@$(PY) manage.py embedded stop

doctor: $(STAMP) ## Show which mode is active and whether each service answers
	@$(PY) manage.py doctor

migrate: $(STAMP) ## Apply database migrations
	@$(PY) manage.py migrate --no-input -v 0

seed: migrate ## Load the demo polls and users
	@$(PY) manage.py seed_demo

reports: seed ## Run every notebook (PROFILE=ci|full) and render reports/index.html
	@$(PY) manage.py run_notebooks --profile $(PROFILE)

notebooks: seed ## Re-execute the notebooks from the ci profile and write them back into notebooks/ (to commit)
	@$(PY) manage.py run_notebooks --profile ci --write-back

test: migrate ## Run the whole test suite (pytest, including the notebooks under nbval)
	@$(BIN)/pytest $(PYTEST_ARGS)

browser: $(STAMP) ## Headless Chromium opens the API docs, GraphiQL and (after make reports) every report; screenshots in artifacts/browser/
	@$(BIN)/pytest $(BROWSER_TESTS) -m browser $(PYTEST_ARGS); status=$$?; \
	  echo "browser screenshots: $(CURDIR)/artifacts/browser/"; exit $$status

vendor-graphiql: ## Re-fetch GraphiQL's JS/CSS from npm into nexus_backend/core/static/graphiql/ (maintainers; needs npm)
	@scripts/vendor-graphiql.sh

faults: migrate ## Only the fault tests (tests/faults): broker down, worker killed, PostgreSQL restarted, embedded servers killed
	@$(BIN)/pytest tests/faults -p no:randomly $(PYTEST_ARGS)

# mypy's Django plugin imports the settings, which would start the embedded servers: NEXUS_EMBEDDED_AUTOSTART=0
# only points at where they would be, so the type check needs no running service.
lint: $(STAMP) ## ruff check, ruff format check, the import contract (lint-imports) and mypy ([tool.importlinter], [tool.mypy] in pyproject.toml)
	@$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports --no-cache && NEXUS_EMBEDDED_AUTOSTART=0 $(BIN)/mypy

hooks: $(STAMP) ## Install the pre-commit hooks (ruff check, ruff format, the notebook checks; .pre-commit-config.yaml)
	@$(BIN)/pre-commit install

format: $(STAMP) ## Format the code with ruff
	@$(BIN)/ruff check --fix . && $(BIN)/ruff format .

schema: $(STAMP) ## Regenerate the committed API contracts: openapi.yaml, schema.graphql and the Postman collection
	@$(PY) manage.py spectacular --file openapi.yaml --validate
	@echo "wrote openapi.yaml"
	@$(PY) manage.py graphql_schema
	@$(PY) manage.py postman

postman: $(STAMP) ## Regenerate postman/nexus.postman_collection.json from openapi.yaml
	@$(PY) manage.py postman

fuzz: migrate ## schemathesis over openapi.yaml, every operation as anonymous/user/staff (FUZZ_EXAMPLES=200)
	@FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/core/test_fuzz.py -p no:randomly -q --timeout 1800

serve: migrate ## Run web (:8000) + Celery worker + beat; Ctrl-C stops all three
	@$(PY) manage.py serve

worker: $(STAMP) ## Run a Celery worker against the active broker
	@$(BIN)/celery -A nexus_backend worker -l info

beat: $(STAMP) ## Run Celery beat (the schedule lives in settings)
	@$(BIN)/celery -A nexus_backend beat -l info

lab: migrate ## Open JupyterLab on notebooks/ at the course index, notebooks/README.md (127.0.0.1 only; works as root too, as in containers and cloud workspaces)
	@$(BIN)/jupyter lab --notebook-dir=notebooks --LabApp.default_url=/lab/tree/README.md --ip=127.0.0.1 --no-browser $(if $(filter 0,$(shell id -u)),--allow-root,)

bench: migrate ## Benchmarks under gunicorn: API vs bare view, then poll results cached vs uncached vs bare (1M votes); then vote counting strategies at 10k/100k/1M (BENCH_VOTES_ARGS)
	@$(PY) manage.py bench $(BENCH_ARGS)
	@$(PY) manage.py bench_cache $(BENCH_CACHE_ARGS)
	@$(PY) manage.py bench_votes $(BENCH_VOTES_ARGS)
	@$(PY) manage.py bench_detect $(BENCH_DETECT_ARGS)

load: migrate ## Load with abuse: normal users, then normal users + attackers, against gunicorn (LOAD_ARGS, e.g. --duration 60)
	@$(PY) manage.py load $(LOAD_ARGS)

data: migrate ## Generate seeded polls, users and votes with COPY (VOTES=100k SEED=0 PREFIX=gen_; DELETE=1 removes them)
	@$(PY) manage.py gen_votes --votes $(VOTES) --seed $(SEED) --prefix $(PREFIX) $(if $(DELETE),--delete,)

clean: ## Remove generated reports and caches (keeps .venv and .nexus)
	@find . -name __pycache__ -prune -exec rm -rf {} + ; rm -rf .pytest_cache .ruff_cache
	@find reports -mindepth 1 ! -name .gitkeep -exec rm -rf {} +

.PHONY: help install env services stop doctor migrate seed reports notebooks test faults fuzz lint hooks format schema postman serve worker beat lab bench load data clean browser vendor-graphiql
