# Two set-up commands do everything: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-sdk lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# Pinned CPU torch first: an unpinned torch would pull several GB of CUDA packages.
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev]'
	# fpn_effl0's ImageNet weights: checked and converted once into a ralis safetensors file
	$(BIN)/python -c 'from ralis.models.pretrained import main; main()'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/ralis demo

test: $(STAMP)
	$(BIN)/ruff check ralis tests benchmarks
	$(BIN)/python -m pytest -q

# The 2 checks against label-studio-sdk's own RLE decoder and JSON converter (skipped by
# `make test`): the SDK pulls ~40 packages (OpenCV, nltk, ...) and pins numpy 2.2, so it lives in
# its own venv, .venv-ls, which the tests call. (cvat-sdk is light and in the [dev] extra.)
LS_VENV := .venv-ls
test-sdk: $(STAMP)
	test -x $(LS_VENV)/bin/python || $(PY) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install -q label-studio-sdk==2.1.2
	$(BIN)/python -m pytest -q -rs tests/labelling/test_labelstudio.py tests/labelling/test_cvat.py -k "sdk"

bench: $(STAMP)
	$(BIN)/python benchmarks/step_cost.py

clean:
	rm -rf $(VENV) $(LS_VENV) build *.egg-info .pytest_cache .ruff_cache
