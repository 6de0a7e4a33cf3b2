# ptgen: set-up, demo and tests. `make demo` and `make test` work from a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch + torchvision are installed first and pinned, so pip never swaps in another build.
# (transformers builds Qwen-VL processors only with torchvision.) CPU-only machines elsewhere can
# set TORCH_INDEX=--index-url=https://download.pytorch.org/whl/cpu to avoid the CUDA build.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
TORCH_INDEX ?=

.PHONY: install demo test clean

$(BIN)/ptgen: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_INDEX) $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e ".[train,test]"
	touch $(BIN)/ptgen

install: $(BIN)/ptgen

demo: install
	$(BIN)/ptgen demo

test: install
	bash scripts/ensure-chromium.sh
	$(BIN)/python -m ruff check .
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
