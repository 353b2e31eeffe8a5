# Everything runs from the project's own virtualenv; a machine needs only python3 and pip.
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
# dagster-dbt and our own tooling find `dbt` on PATH: the venv's comes first.
export PATH := $(BIN):$(PATH)

.PHONY: install up test bench demo dbt-build dbt-docs lint clean chromium posthog-js postgresql nginx

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

up: install
	$(BIN)/loom up

test: install chromium posthog-js postgresql nginx
	$(BIN)/python -m pytest

# The Dagster UI test drives Debian's headless chromium. Install it when it is missing and apt is
# there (CI runs as root); if that is impossible the test skips and says why, the rest still runs.
chromium:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium is missing and apt could not install it: the Dagster UI test will be skipped"

# The shared-catalog test and the Dagster storage benchmark run a real PostgreSQL server: Debian's
# package, installed when missing (each starts its own server in a temporary directory; nothing is
# configured system-wide).
postgresql:
	@{ command -v pg_ctl || ls /usr/lib/postgresql/*/bin/pg_ctl; } >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } || \
	  echo "PostgreSQL is missing and apt could not install it: the shared-catalog test will fail"

# The ingest-replicas test puts Debian's nginx in front of two APIs (it runs its own nginx in a
# temporary directory, in the foreground; nothing is configured or started system-wide).
nginx:
	@{ command -v nginx || ls /usr/sbin/nginx; } >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; } || \
	  echo "nginx is missing and apt could not install it: the ingest-replicas test will be skipped"

# The posthog-js browser test loads the SDK releases its lockfile pins (and playwright-core to
# drive chromium, which the dashboard test uses too) from npm. Install them when they are
# missing or the lockfile changed; without npm those tests skip and say why, the rest still runs.
BROWSER_TEST := tests/ingest_api/utils/browser
posthog-js: $(BROWSER_TEST)/node_modules/.package-lock.json

$(BROWSER_TEST)/node_modules/.package-lock.json: $(BROWSER_TEST)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  cd $(BROWSER_TEST) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; \
	else echo "npm is missing: the posthog-js browser test will be skipped"; fi

bench: install postgresql
	$(BIN)/python -m bench

demo: install
	$(BIN)/loom demo

dbt-build: install
	$(BIN)/loom dbt build

dbt-docs: install
	$(BIN)/loom dbt docs generate

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) data dbt_project/target dbt_project/logs $(BROWSER_TEST)/node_modules
