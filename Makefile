# Set-up and entry points. Every target creates .venv and installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
# The CPU build of PyTorch: here pip finds it as a local wheel; elsewhere this pin still installs.
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
UI_PORT ?= 4200

.PHONY: install run test test-fast bench clean-data ui

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev,dask]"
	touch $@

run: install  ## the main job: the full pipeline on the real data
	$(BIN)/reviewlstm run

test: install  ## every test, including the end-to-end run on ../shared/data
	$(BIN)/python -m pytest -q

test-fast: install  ## the library tests and one quick end-to-end run: about 2 minutes
	$(BIN)/python -m pytest -q -m "not server or quick_e2e"

bench: install  ## the quick benchmarks (a few minutes), on the data folder a `make run` finished
	$(BIN)/python bench/local_commands.py --data-dir data --reps 5
	$(BIN)/python bench/lstm_steps.py

ui: install  ## the Prefect UI: server on 127.0.0.1:$(UI_PORT), work pool, deployments, worker; Ctrl-C stops them
	$(BIN)/reviewlstm ui --port $(UI_PORT)

clean-data:  ## remove every stage output and Prefect's project-local home (data/01_raw stays)
	rm -rf data/0[2-9]* data/1* .prefect
