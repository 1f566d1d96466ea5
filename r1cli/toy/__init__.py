"""The embedded toy world: a task a ~1M-parameter model can learn on 2 CPU cores, with every
part of the R1 recipe present (reasoning prompts with references, cold-start CoT, general chat,
preference pairs, safety labels) and a tiny base model pretrained from scratch.

    problems.py  the arithmetic and calculator tasks, their held-out splits and cold-start trajectories
    general.py   general chat, helpfulness pairs, safety labels
    corpus.py    the base model's pretraining documents
    base.py      the character tokenizer, the tiny Llama and its pretraining loop
"""
