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

.PHONY: install bench test test-slow speed drift retrain-tiny clean

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

# Rebuilds the shipped tiny editors in place with the commands in their manifests (about 203 + 51
# + 28 + 48 min on the 2-core AMD EPYC); LGIE- and MGIE-tiny start from the InstructPix2Pix-tiny the
# first seven lines leave in baselines/checkpoints/ (56,000 steps; the last two weigh what a
# background swap keeps, docs/tiny-models.md "Background swaps").
# Then `editbench check-drift --update --reason ...` (DEVELOPERS.md, "Retraining a shipped tiny model").
IP2P_16K = runs/instruct-pix2pix-tiny-16k
IP2P_24K = runs/instruct-pix2pix-tiny-24k
IP2P_32K = runs/instruct-pix2pix-tiny-32k
IP2P_40K = runs/instruct-pix2pix-tiny-40k
IP2P_48K = runs/instruct-pix2pix-tiny-48k
IP2P_52K = runs/instruct-pix2pix-tiny-52k
KEPT_WEIGHTED = --recipe learning_rate=2.5e-4 --recipe kept_weight=10 --recipe 'category_weights={background: 4}'
retrain-tiny: install
	$(BIN)/editbench train --model instruct-pix2pix --preset tiny --steps 16000 --threads 2 --output-dir $(IP2P_16K)
	$(BIN)/editbench train --model instruct-pix2pix --preset tiny --base-checkpoint $(IP2P_16K) --steps 8000 --threads 2 --recipe learning_rate=5e-4 --output-dir $(IP2P_24K)
	$(BIN)/editbench train --model instruct-pix2pix --preset tiny --base-checkpoint $(IP2P_24K) --steps 8000 --threads 2 --recipe learning_rate=2.5e-4 --output-dir $(IP2P_32K)
	$(BIN)/editbench train --model instruct-pix2pix --preset tiny --base-checkpoint $(IP2P_32K) --steps 8000 --threads 2 --recipe learning_rate=2.5e-4 --output-dir $(IP2P_40K)
	$(BIN)/editbench train --model instruct-pix2pix --preset tiny --base-checkpoint $(IP2P_40K) --steps 8000 --threads 2 --recipe learning_rate=2.5e-4 --output-dir $(IP2P_48K)
	$(BIN)/editbench train --model instruct-pix2pix --preset tiny --base-checkpoint $(IP2P_48K) --steps 4000 --threads 2 $(KEPT_WEIGHTED) --output-dir $(IP2P_52K)
	$(BIN)/editbench train --model instruct-pix2pix --preset tiny --base-checkpoint $(IP2P_52K) --steps 4000 --threads 2 $(KEPT_WEIGHTED)
	$(BIN)/editbench train --model lgie --preset tiny --steps 3000 --threads 2
	$(BIN)/editbench train --model mgie --preset tiny --steps 3000 --threads 2 --recipe vision_pretrain_steps=1500 --recipe pretrain_steps=3000

clean:
	rm -rf .editbench-cache results build
