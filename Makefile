# Two set-up commands do everything: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH := torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint bench clean

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

bench: $(STAMP)
	$(BIN)/python benchmarks/step_cost.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
