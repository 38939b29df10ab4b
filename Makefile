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
## After a crash, the same command continues: a lock left by a killed run is removed
## first (only when no Snakemake process runs here), and cut-short jobs are redone.
run: install
	$(BIN)/python -m deeprules.config_checks config/config.yaml
	$(BIN)/python -m deeprules.stale_lock
	$(BIN)/snakemake --cores $(CORES) --profile workflow/profiles/local
	$(BIN)/snakemake --cores 1 --profile workflow/profiles/local --report results/report.html

## Rebuild the report from results/ alone (no stage reruns).
report: install
	$(BIN)/python -m deeprules.stale_lock
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

## Delete results/ and Snakemake's state. The test-access ledger (.deeprules/) stays:
## it is the record of every look at a test set (README, "The test set is opened once").
clean:
	rm -rf results .snakemake
