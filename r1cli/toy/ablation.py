"""The stage-3b ablation of `make demo`: the stage-3 SFT with and without `rs_general`, on the
toy's held-out general prompts. Reads the manifests the Makefile's ablation rules write:

    python -m r1cli.toy.ablation runs/demo-ablation

ABL/general_<model> (r1 eval on general_eval: format rate = share of replies with a CoT; right
reply = share whose reply after the CoT is the reference reply, up to the normalization of
reject-sample's `rule` verifier) and ABL/rm_<model> (r1 score: helpfulness and harmlessness RM
scores, raw logits, as align reports them). The right-reply difference (with - without) gets a
paired bootstrap 95% CI over the prompts, and holds when the whole CI is above 0; `--check` exits 1
when it does not (`make demo-check`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from r1cli.artifacts import read_manifest
from r1cli.errors import UserError
from r1cli.stats import ratio

MODELS = {"sft": "stage-3 SFT with rs_general", "sft_nogeneral": "stage-3 SFT without rs_general"}


def rows(abl: Path) -> list[dict]:
    out = []
    for name, label in MODELS.items():
        ev, sc = read_manifest(abl / f"general_{name}"), read_manifest(abl / f"rm_{name}")
        if ev is None or sc is None:
            raise UserError(f"{abl}/general_{name} or {abl}/rm_{name} has no manifest: run `make demo` first")
        out.append({"model": label, "cot_share": ev["metrics"]["format_rate"], "right_reply": right_reply(abl / f"general_{name}"),
                    "helpfulness": (sc.get("metrics") or {}).get("helpfulness_mean"),
                    "safe_rate": safe_rate(abl / f"rm_{name}"),
                    "prompts": ev["metrics"]["n_prompts"], "samples": ev["metrics"]["n_samples"]})
    return out


def right_by_prompt(evaluated: Path) -> dict[str, tuple[float, float]]:
    """Per prompt (its id, else its row's place): (samples whose reply is the reference, samples). The reply
    is the summary after the CoT, or the whole completion."""
    from datasets import load_from_disk

    from r1cli.rejection.filters import parse, same_reply

    data = load_from_disk(str(evaluated))
    ids = data["id"] if "id" in data.column_names else [str(i) for i in range(len(data))]
    out: dict[str, tuple[float, float]] = {}
    for key, c, a in zip(ids, data["completion"], data["answer"]):
        hit, n = out.get(key, (0.0, 0.0))
        out[key] = (hit + same_reply(parse(c).summary, a), n + 1)
    return out


def right_reply(evaluated: Path) -> float:
    """Share of samples whose reply is the reference."""
    return ratio(list(right_by_prompt(evaluated).values()))


def difference(abl: Path) -> dict:
    """Right replies with rs_general > without, checked as a claim's comparison is (r1cli/claims.py): on the
    prompts both evals share, `holds` when the whole paired 95% CI of the difference is above 0."""
    from r1cli.claims import Comparison, check_comparison

    per_prompt = {name: {"right_reply": right_by_prompt(abl / f"general_{name}")} for name in MODELS}
    if not set(per_prompt["sft"]["right_reply"]) & set(per_prompt["sft_nogeneral"]["right_reply"]):
        raise UserError(f"{abl}/general_sft and general_sft_nogeneral share no prompt: run both on the same data")
    rows = {name: {"right_reply": ratio(list(n["right_reply"].values()))} for name, n in per_prompt.items()}
    res = check_comparison(Comparison("right_reply", "sft", "sft_nogeneral", ">"), rows, per_prompt)
    return {**res, "holds": res["status"] == "holds"}


def safe_rate(scored: Path) -> float:
    """Share of samples the harmlessness RM scores > 0 (P(safe) > 0.5), as align's safe rate."""
    from datasets import load_from_disk

    values = [v for v in load_from_disk(str(scored))["reward_harmlessness"] if v is not None]
    return sum(v > 0 for v in values) / len(values)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    abl = Path(args[0]) if args else Path("runs/demo-ablation")
    try:
        table = rows(abl)
        diff = difference(abl)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"stage 3b ablation ({table[0]['prompts']} held-out general prompts x {table[0]['samples'] // table[0]['prompts']}):")
    print(f"{'model':<32} {'CoT share':>9} {'right reply':>11} {'helpful RM':>10} {'safe rate':>9}")
    for r in table:
        h = "-" if r["helpfulness"] is None else f"{r['helpfulness']:.3f}"
        print(f"{r['model']:<32} {r['cot_share']:>9.1%} {r['right_reply']:>11.1%} {h:>10} {r['safe_rate']:>9.1%}")
    print(f"with rs_general > without, {diff['status']}: {diff['why']}")
    return 1 if check and not diff["holds"] else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
