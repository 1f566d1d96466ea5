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
# Re-running skips finished stages; `make clean-demo` starts over. Every stage writes OUT.partial/
# first, so an interrupted target is resumed with the same command plus --resume.

R1RUN := OMP_NUM_THREADS=2 $(R1)
D     := $(RUN)/data

$(D): | install
	$(R1RUN) toy data $@ --seed $(SEED) --force

$(RUN)/base: | $(D)
	$(R1RUN) toy base $@ --seed $(SEED) --force

# R1-Zero: GRPO straight on the base
$(RUN)/r1zero: | $(RUN)/base
	$(R1RUN) grpo --model $(RUN)/base --data $(D)/rl --out $@ --recipe recipes/toy/r1zero.yaml --force

# stage 1: cold start
$(RUN)/coldstart: | $(RUN)/base
	$(R1RUN) coldstart --model $(RUN)/base --data $(D)/coldstart --out $@ --recipe recipes/toy/coldstart.yaml --force

# stage 2: reasoning RL with the language-consistency reward, and the ablation without it
$(RUN)/grpo: | $(RUN)/coldstart
	$(R1RUN) grpo --model $(RUN)/coldstart --data $(D)/rl --out $@ --recipe recipes/toy/grpo.yaml --force
$(RUN)/grpo_nolang: | $(RUN)/coldstart
	$(R1RUN) grpo --model $(RUN)/coldstart --data $(D)/rl --out $@ --recipe recipes/toy/grpo.yaml --set rewards.language=0 --force

# stage 3: rejection sampling (reasoning + general), then SFT of the BASE on both
$(RUN)/rs: | $(RUN)/grpo
	$(R1RUN) reject-sample --model $(RUN)/grpo --data $(D)/rl --out $@ --recipe recipes/toy/reject_sample.yaml --force
$(RUN)/rs_general: | $(RUN)/grpo
	$(R1RUN) reject-sample --mode general --model $(RUN)/grpo --data $(D)/general --out $@ --recipe recipes/toy/reject_sample.yaml --force
$(RUN)/sft: | $(RUN)/rs $(RUN)/rs_general
	$(R1RUN) sft --model $(RUN)/base --data $(RUN)/rs --data $(RUN)/rs_general --out $@ --recipe recipes/toy/sft.yaml --force

# reward models and stage 4
$(RUN)/rm_helpful: | $(RUN)/base
	$(R1RUN) rm --model $(RUN)/base --data $(D)/helpful_pairs --out $@ --recipe recipes/toy/rm.yaml --force
$(RUN)/rm_safety: | $(RUN)/base
	$(R1RUN) rm --pointwise --model $(RUN)/base --data $(D)/safety --out $@ --recipe recipes/toy/rm.yaml --force
$(RUN)/align: | $(RUN)/sft $(RUN)/rm_helpful $(RUN)/rm_safety
	$(R1RUN) align --model $(RUN)/sft --data $(D)/rl --data $(D)/general --helpful-rm $(RUN)/rm_helpful \
	    --harmless-rm $(RUN)/rm_safety --out $@ --recipe recipes/toy/align.yaml --force

# evaluation of every checkpoint on the held-out set (one evaluation path: r1 eval)
CKPTS := base coldstart grpo grpo_nolang sft align
$(RUN)/eval/%: | $(RUN)/%
	$(R1RUN) eval --model $(RUN)/$* --data $(D)/eval --out $@ --recipe recipes/toy/eval.yaml --force
$(RUN)/eval/r1zero: | $(RUN)/r1zero
	$(R1RUN) eval --model $(RUN)/r1zero --data $(D)/eval --out $@ --recipe recipes/toy/eval_r1zero.yaml --force

demo: $(RUN)/eval/r1zero $(addprefix $(RUN)/eval/,$(CKPTS))
	@for c in r1zero $(CKPTS); do $(PY) -c "import json,sys; m=json.load(open('$(RUN)/eval/'+sys.argv[1]+'/r1.json'))['metrics']; \
	  print(f\"{sys.argv[1]:12s} pass@1 {m['pass@1']:.3f}  cons@k {m['cons@k']:.3f}  format {m['format_rate']:.3f}  language {m['language_consistency_rate']:.3f}  tokens {m['mean_completion_tokens']:.1f}\")" $$c; done

clean-demo:
	rm -rf $(RUN)
