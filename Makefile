# Everything runs from the project's own virtualenv; a machine needs only python3 and pip.
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
# dagster-dbt and our own tooling find `dbt` on PATH: the venv's comes first.
export PATH := $(BIN):$(PATH)

.PHONY: install up test bench demo dbt-build dbt-docs lint clean chromium

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

up: install
	$(BIN)/loom up

test: install chromium
	$(BIN)/python -m pytest

# The Dagster UI test drives Debian's headless chromium. Install it when it is missing and apt is
# there (CI runs as root); if that is impossible the test skips and says why, the rest still runs.
chromium:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium is missing and apt could not install it: the Dagster UI test will be skipped"

bench: install
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
	rm -rf $(VENV) data dbt_project/target dbt_project/logs
