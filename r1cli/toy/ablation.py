"""The stage-3b ablation of `make demo`: the stage-3 SFT with and without `rs_general`, on the
toy's held-out general prompts. Reads the manifests the Makefile's ablation rules write:

    python -m r1cli.toy.ablation runs/demo-ablation

ABL/general_<model> (r1 eval on general_eval: format rate = share of replies with a CoT; right
reply = share whose reply after the CoT is the reference reply, up to the normalization of
reject-sample's `rule` verifier) and ABL/rm_<model> (r1 score: helpfulness and harmlessness RM
scores, raw logits, as align reports them).
"""

from __future__ import annotations

import sys
from pathlib import Path

from r1cli.artifacts import read_manifest
from r1cli.errors import UserError

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


def right_reply(evaluated: Path) -> float:
    """Share of samples whose reply (the summary after the CoT, or the whole completion) is the reference."""
    from datasets import load_from_disk

    from r1cli.rejection.filters import parse, same_reply

    data = load_from_disk(str(evaluated))
    hits = [same_reply(parse(c).summary, a) for c, a in zip(data["completion"], data["answer"])]
    return sum(hits) / len(hits)


def safe_rate(scored: Path) -> float:
    """Share of samples the harmlessness RM scores > 0 (P(safe) > 0.5), as align's safe rate."""
    from datasets import load_from_disk

    values = [v for v in load_from_disk(str(scored))["reward_harmlessness"] if v is not None]
    return sum(v > 0 for v in values) / len(values)


def main(argv: list[str]) -> int:
    abl = Path(argv[0]) if argv else Path("runs/demo-ablation")
    try:
        table = rows(abl)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"stage 3b ablation ({table[0]['prompts']} held-out general prompts x {table[0]['samples'] // table[0]['prompts']}):")
    print(f"{'model':<32} {'CoT share':>9} {'right reply':>11} {'helpful RM':>10} {'safe rate':>9}")
    for r in table:
        h = "-" if r["helpfulness"] is None else f"{r['helpfulness']:.3f}"
        print(f"{r['model']:<32} {r['cot_share']:>9.1%} {r['right_reply']:>11.1%} {h:>10} {r['safe_rate']:>9.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
