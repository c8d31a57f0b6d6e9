# The two commands of README.md:
#   make run   - set up and run the app on SQLite with a demo account (sign-in and API key printed)
#                (HOST=0.0.0.0 PORT=8080 make run: another address)
#   make test  - set up and run the whole test suite (PostgreSQL too: TEST_DATABASE_URL=...)
# And: make lint; make bench (the one-off benchmark, quiet machine only); make bench-smoke
# (every bench script end to end in seconds, as CI runs them); make mutation (mutmut on the
# money code, survivors listed). PostgreSQL for the benchmarks: PG_ADMIN_URL below.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
export FLASK_APP := billing_app

PG_ADMIN_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
BEFORE ?= 0714851

.PHONY: run test lint setup setup-dev bench bench-smoke mutation clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Installs are stamped, so repeated runs skip pip unless pyproject.toml changed.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

run: setup
	$(BIN)/flask db upgrade
	@echo "== Demo account (sign in at http://$(HOST):$(PORT)/ ; use the API key with the JSON API) =="
	@$(BIN)/flask billing demo
	$(BIN)/gunicorn -c gunicorn.conf.py --bind $(HOST):$(PORT) "billing_app:create_app()"

test: setup-dev
	$(BIN)/pytest

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The current code, the code before issue 14 and the fair floor (docs/performance.md).
bench: setup-dev
	$(BIN)/python bench/oneoff.py --rounds 3 --before $(BEFORE) --json bench/results/oneoff.json

# Without the commit $(BEFORE) (a shallow clone) oneoff.py runs without the code before.
bench-smoke: setup-dev
	@if git cat-file -e "$(BEFORE)^{commit}" 2>/dev/null; then before="--before $(BEFORE)"; \
	  else echo "(commit $(BEFORE) is not in this clone: oneoff.py runs without the code before)"; \
	  before=--no-before; fi; \
	set -x; $(BIN)/python bench/oneoff.py --smoke --db both $$before
	$(BIN)/python bench/subscription_invoice.py --smoke --db both
	$(BIN)/python bench/pages.py --smoke --db both
	$(BIN)/python bench/pdf.py --smoke
	psql "$(PG_ADMIN_URL)" -qc "DROP DATABASE IF EXISTS bench_pdf_smoke WITH (FORCE)"
	psql "$(PG_ADMIN_URL)" -qc "CREATE DATABASE bench_pdf_smoke"
	$(BIN)/python bench/pdf.py --smoke --database-url "$(dir $(PG_ADMIN_URL))bench_pdf_smoke"
	psql "$(PG_ADMIN_URL)" -qc "DROP DATABASE IF EXISTS bench_pdf_smoke WITH (FORCE)"

# Mutation testing of money.py and invoices/calc.py ([tool.mutmut] in pyproject.toml).
# Prints the survivors; does not fail on them (some survive today).
mutation: setup-dev
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 > mutants.log 2>&1 || { tail -n 40 mutants.log; exit 1; }
	@$(BIN)/mutmut results --all true > mutants.txt; \
	echo "mutants: $$(awk -F': ' '{print $$2}' mutants.txt | sort | uniq -c | tr -s ' ' | paste -sd, -)"; \
	echo "survivors (no test failed with these changes; $(BIN)/mutmut show NAME shows one):"; \
	grep ': survived$$' mutants.txt || echo "  none"; \
	rm -f mutants.log mutants.txt

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache mutants
