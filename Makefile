# The two commands of README.md: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all

.PHONY: install run report test test-infra lint format clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

## Run the whole workflow on the datasets of config/config.yaml, then build the report.
run: install
	$(BIN)/snakemake --cores $(CORES) --profile workflow/profiles/local
	$(BIN)/snakemake --cores 1 --profile workflow/profiles/local --report results/report.html

## Rebuild the report from results/ alone (no stage reruns).
report: install
	$(BIN)/snakemake --cores 1 --profile workflow/profiles/local --report results/report.html

## Run the test suite (installs test infrastructure from Debian when run as root).
test: install test-infra
	$(BIN)/pytest

test-infra:
	@bash tests/install_infra.sh

lint: install
	$(BIN)/ruff check workflow tests bench
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint --cores 1

format: install
	$(BIN)/ruff format workflow tests bench
	$(BIN)/snakefmt Snakefile workflow/rules

clean:
	rm -rf results .snakemake
