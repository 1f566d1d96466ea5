# r1cli: set-up, tests and the toy R1 pipeline as file targets.
#   make demo   install, run the whole toy pipeline, print its report
#   make test   install, run the test suite
# GPU users: make install TORCH_SPEC="torch==2.13.0" (or any CUDA build you prefer)

PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY         := $(VENV)/bin/python
R1         := $(VENV)/bin/r1
RUN        ?= runs/demo
SEED       ?= 0

.PHONY: install test demo clean-demo

install: $(VENV)/.installed

# torch is installed first, from TORCH_SPEC, so nothing later pulls a different build
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $@

test: install
	$(PY) -m pytest

# --- the toy pipeline (each target is a stage's output dir) ------------------------------

$(RUN)/data: | install
	$(R1) toy data $@ --seed $(SEED) --force

$(RUN)/base: | install
	$(R1) toy base $@ --seed $(SEED) --force

demo: $(RUN)/data $(RUN)/base
	$(R1) data inspect $(RUN)/data/eval

clean-demo:
	rm -rf $(RUN)
