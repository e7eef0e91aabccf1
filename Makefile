# The course's commands. `make lab` opens the course, `make test` checks all of it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LAB_ARGS ?=
PYTEST_ARGS ?=

.PHONY: help install data-offline data lab test test-unit test-notebooks bench exercises baselines clean

help:
	@echo "make lab        set up .venv and the offline data, then start JupyterLab on notebooks/"
	@echo "make test       the same set-up, then every test (unit, notebooks in fast mode, browser)"
	@echo "make data       download the full datasets (needs internet)"
	@echo "make bench      run the benchmarks in benchmarks/ and write benchmarks/results/"
	@echo "make exercises  regenerate the learner copies in notebooks/exercises/"
	@echo "make baselines  retrain the shipped dense baselines (slow)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

data-offline: $(STAMP)
	$(PY) -m course.data prepare

data: $(STAMP)
	$(PY) -m course.data download

lab: data-offline
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(LAB_ARGS)

test: data-offline
	$(PY) -m pytest $(PYTEST_ARGS)
	COURSE_FAST=1 $(PY) -m pytest --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider notebooks/*.ipynb

test-unit: data-offline
	$(PY) -m pytest -m "not browser" $(PYTEST_ARGS)

test-notebooks: data-offline
	COURSE_FAST=1 $(PY) -m pytest --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider notebooks/*.ipynb

bench: data-offline
	$(PY) benchmarks/run_all.py

exercises: $(STAMP)
	$(PY) -m scripts.exercises notebooks

baselines: data-offline
	$(PY) -m course.checkpoints --all

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts
