# editbench: `make bench MODEL=m [TASK=t]` and `make test` work on a fresh clone; each creates
# .venv and installs what it needs on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MODEL ?= oracle
TASK ?= synth
# The torch build this project is tested with (CPU machines here take it from local disk).
# Override with TORCH_PIN= to keep whatever torch your environment already has.
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1

BENCH_ARGS = $(if $(PRESET),--preset $(PRESET)) $(if $(LIMIT),--limit $(LIMIT)) \
             $(if $(SEEDS),--seeds $(SEEDS)) $(if $(DEVICE),--device $(DEVICE)) \
             $(if $(BATCH),--batch-size $(BATCH)) $(if $(DTYPE),--dtype $(DTYPE)) \
             $(if $(COMPILE),--compile)

.PHONY: install bench test test-slow speed drift clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH_PIN)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

bench: install
	$(BIN)/editbench run --model $(MODEL) --task $(TASK) $(BENCH_ARGS)
	$(BIN)/editbench leaderboard add results/$(MODEL)-*
	$(BIN)/editbench leaderboard render --output build/leaderboard

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

speed: install
	$(BIN)/python scripts/bench_synth.py

drift: install
	$(BIN)/editbench check-drift

clean:
	rm -rf .editbench-cache results build
