# Two commands from a fresh clone: `make run` (the main job) and `make test` (lint + tests).
# Each creates .venv on first use and installs the project with every framework, the Hydra
# launchers and the peer libraries the tests compare against.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup run test test-fast lint bench figs clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e ".[all,dev]"
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(PY) -m harness +experiment=paper

# one pytest worker per core of the 2-core CI machine, one thread each (tests/conftest.py)
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -n 2 --dist worksteal

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) benchmarks/scores_sweep.py
	$(PY) benchmarks/throughput.py --device cpu

figs: $(STAMP)
	$(PY) -m harness +experiment=paper_figs

clean-venv:
	rm -rf $(VENV)
