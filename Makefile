# copier-ai-system: the template's own commands. `make help` lists them.
.DEFAULT_GOAL := help
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
MAKEFLAGS += --no-print-directory

# A fresh machine has python3, pip, git and make but not uv: install a pinned uv into
# .bootstrap/ with pip, and put it first on PATH for every recipe (and the generated projects
# the tests build). An installed, working uv is used as it is.
UV_VERSION := 0.13.9
BOOTSTRAP := $(CURDIR)/.bootstrap
ifneq ($(shell uv --version >/dev/null 2>&1 && echo ok),ok)
export PATH := $(BOOTSTRAP)/bin:$(PATH)
endif
# Tests and demos must never download a Python: use the ones installed here.
export UV_PYTHON_DOWNLOADS := never

# uv only sees pyenv's Pythons that PYENV_VERSION names. When pyenv is present and nothing is
# chosen by hand, name every installed 3.x (the active one first, so `python3` stays the same).
ifeq ($(origin PYENV_VERSION),undefined)
PYENV_ALL := $(shell command -v pyenv >/dev/null 2>&1 && { pyenv version-name 2>/dev/null; pyenv versions --bare --skip-aliases 2>/dev/null; } | grep -E '^3\.[0-9]+\.[0-9]+$$' | awk '!seen[$$0]++' | paste -sd: -)
ifneq ($(PYENV_ALL),)
export PYENV_VERSION := $(PYENV_ALL)
endif
endif

DEMO_DIR := build/my-ai-system
PYTEST_WORKERS ?= auto
# The runtime is tested once, here, by its own tests (DESIGN.md section 1): every run of all of
# them (make test, which CI runs, and make test-runtime) fails below this line coverage. The
# fast tier skips the measurement: tracing slows its tests by a third on Python 3.11.
RUNTIME_COVERAGE_FLOOR := 95
RUNTIME_COVERAGE := --cov=airuntime --cov-config=template/runtime/pyproject.toml \
	--cov-report=term-missing:skip-covered --cov-fail-under=$(RUNTIME_COVERAGE_FLOOR)
RUNTIME_DIR := template/runtime
MUTATION_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: help
help: ## List every target with what it does
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: uv
uv: ## Make sure uv is available (installs a pinned uv into .bootstrap/ when missing)
	@uv --version >/dev/null 2>&1 || { \
		echo "uv not found: installing uv $(UV_VERSION) into .bootstrap/"; \
		python3 -m venv $(BOOTSTRAP) && $(BOOTSTRAP)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"; \
	}
	@uv --version

.PHONY: sync
sync: uv ## Install the template's locked dev environment (copier, pytest, zizmor, ...)
	uv sync --frozen

.PHONY: test
test: sync ## The full suite: render, validation, slow builds of generated projects; the runtime's coverage floor
	uv run --frozen pytest -n $(PYTEST_WORKERS) $(RUNTIME_COVERAGE)

.PHONY: test-fast
test-fast: sync ## The fast tier only: renders and validation, no installs (seconds)
	uv run --frozen pytest -m "not slow" -n $(PYTEST_WORKERS)

.PHONY: test-runtime
test-runtime: sync ## The runtime's own tests alone (template/runtime/tests), under its configuration, with the coverage floor
	uv run --frozen pytest -c template/runtime/pyproject.toml --rootdir template/runtime \
		-p no:cacheprovider -n $(PYTEST_WORKERS) $(RUNTIME_COVERAGE) template/runtime/tests

.PHONY: test-update
test-update: sync ## The update tier only: copier update from version N to N+1 on real projects
	uv run --frozen pytest -m update -n $(PYTEST_WORKERS)

.PHONY: demo
demo: sync ## Render a project with the default answers into build/, then its make init, validate-branch and demo
	rm -rf $(DEMO_DIR)
	mkdir -p build
	uv run --frozen copier copy --trust --defaults --quiet --vcs-ref HEAD . $(DEMO_DIR)
	$(MAKE) -C $(DEMO_DIR) init
	$(MAKE) -C $(DEMO_DIR) validate-branch
	$(MAKE) -C $(DEMO_DIR) demo
	@echo
	@echo "Demo project ready in $(DEMO_DIR): cd $(DEMO_DIR) && make help"

.PHONY: bench
bench: sync ## Benchmarks against issue 12's targets: copy to green, validate again, test-unit, user lines, fast tier, runtime overhead (reports/)
	uv run --frozen python benchmarks/bench_template.py $(BENCH_ARGS)

.PHONY: bench-retrieval
bench-retrieval: sync ## Retrieval: ingest chunks/s, embedded store vs exact numpy at 10k/100k chunks, pgvector HNSW recall@10 and p50 at 100k (reports/, minutes)
	uv run --frozen python template/runtime/benchmarks/bench_retrieval.py --reports-dir reports $(BENCH_ARGS)

.PHONY: bench-full
bench-full: sync ## make bench plus the full suite, timed once (minutes)
	uv run --frozen python benchmarks/bench_template.py --full $(BENCH_ARGS)

.PHONY: mutation
mutation: sync ## Mutation testing of the runtime's resilience core: score and survivors (reports/, ~20 min)
	rm -rf $(RUNTIME_DIR)/mutants
	cd $(RUNTIME_DIR) && start=$$(date +%s) \
		&& uv run --frozen --project $(CURDIR) mutmut run --max-children $(MUTATION_WORKERS) \
		&& uv run --frozen --project $(CURDIR) python $(CURDIR)/mutation/report.py \
			--seconds $$(( $$(date +%s) - start )) $(MUTATION_ARGS)

.PHONY: lint
lint: sync ## Lint and format-check the template's own Python, and lint, type-check and layer-check the runtime
	uv run --frozen ruff check .
	uv run --frozen ruff format --check .
	cd template/runtime && uv run --frozen --project $(CURDIR) ruff check .
	cd template/runtime && uv run --frozen --project $(CURDIR) ruff format --check .
	cd template/runtime && uv run --frozen --project $(CURDIR) mypy
	cd template/runtime && uv run --frozen --project $(CURDIR) lint-imports --no-logo

.PHONY: clean
clean: ## Remove build/, caches and the bootstrapped uv
	rm -rf build reports .pytest_cache .ruff_cache .coverage .coverage.* $(BOOTSTRAP) \
		$(RUNTIME_DIR)/mutants
