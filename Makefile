# The two commands of README.md:
#   make run   - set up and run the app on SQLite with a demo account (sign-in and API key printed)
#   make test  - set up and run the whole test suite (PostgreSQL too: TEST_DATABASE_URL=...)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
export FLASK_APP := billing_app

.PHONY: run test lint setup setup-dev bench clean

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

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
