# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= examples/gaffer.ini

.PHONY: run test lint bench bytecode clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.py requirements.txt
	$(BIN)/pip install -q -c requirements.txt -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -c requirements.txt -e '.[test]'
	touch $@

# The package's compiled bytecode, as a regular (non-editable) install has it: gafferd then
# starts without compiling its own modules, faster and about 1 MB smaller (even where
# PYTHONDONTWRITEBYTECODE keeps the interpreter from caching it).
bytecode: $(VENV)/.installed
	$(BIN)/python -m compileall -q gaffer_gevent

run: $(VENV)/.installed bytecode
	$(BIN)/gafferd -v $(CONFIG)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict gaffer_gevent
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

bench: $(VENV)/.installed-test bytecode
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .venv-bench build *.egg-info
