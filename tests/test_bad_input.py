"""The bad-input matrix: a user's mistake, in any command, costs seconds and leaves nothing behind.

Each case runs the real CLI in a subprocess (what a user sees) and asserts: exit code 2, stderr
is ONE line `error: ...` naming the problem and the fix (a distinctive substring of it), no
traceback, no OUT and no OUT.partial, and every input byte-for-byte as it was (the fixtures,
the toy data and the toy base are fingerprinted before and after). The cases are a table;
one parametrized test runs them. Inputs are built once per module from the toy world.

Run as root, so "unreadable" is covered by what root cannot read either: bytes that are not
UTF-8, corrupt Parquet/Arrow files, a saved dataset whose Arrow file is cut off.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from pathlib import Path

import pytest

# --- the inputs -------------------------------------------------------------------------------------


def _jsonl(path: Path, rows: list) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _copy_model(src: Path, dst: Path, drop: tuple[str, ...] = ()) -> None:
    shutil.copytree(src, dst)
    for name in drop:
        (dst / name).unlink(missing_ok=True)
    (dst / "r1.json").unlink(missing_ok=True)  # a plain HF dir, as one made elsewhere


@pytest.fixture(scope="module")
def world(tmp_path_factory, toy_data, toy_base, request) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    w = tmp_path_factory.mktemp("bad_input")
    q = [{"role": "user", "content": "What is (1+2)*3?"}]
    good = {"prompt": q, "answer": "9", "domain": "math", "language": "en"}

    _copy_model(toy_base, w / "no_weights", drop=("model.safetensors",))
    _copy_model(toy_base, w / "no_tokenizer", drop=("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"))
    _copy_model(toy_base, w / "no_template", drop=("chat_template.jinja",))
    tc = json.loads((w / "no_template" / "tokenizer_config.json").read_text())
    tc.pop("chat_template", None)
    (w / "no_template" / "tokenizer_config.json").write_text(json.dumps(tc))
    _copy_model(toy_base, w / "broken_template")  # a template shipped in the checkpoint that does not render
    (w / "broken_template" / "chat_template.jinja").write_text("{% for m in messages %}{{ m.content }")
    tc = json.loads((w / "broken_template" / "tokenizer_config.json").read_text())
    tc.pop("chat_template", None)
    (w / "broken_template" / "tokenizer_config.json").write_text(json.dumps(tc))
    _copy_model(toy_base, w / "cut_weights")
    weights = w / "cut_weights" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a copy cut short
    _copy_model(toy_base, w / "bad_config")
    (w / "bad_config" / "config.json").write_text('{"model_type": "llama",')
    _copy_model(toy_base, w / "bad_tokenizer")
    (w / "bad_tokenizer" / "tokenizer.json").write_text("{")
    shutil.copytree(toy_base, w / "base.partial")
    shutil.copytree(toy_data / "rl", w / "rl.partial")
    shutil.copytree(toy_data / "rl", w / "unfinished")
    m = json.loads((w / "unfinished" / "r1.json").read_text())
    (w / "unfinished" / "r1.json").write_text(json.dumps({**m, "status": "running"}))
    shutil.copytree(toy_data / "rl", w / "cut_saved")
    arrow = next((w / "cut_saved").glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:200])

    (w / "bad_line.jsonl").write_text(json.dumps(good) + "\n{\"prompt\": \"unclosed\n")
    (w / "latin1.jsonl").write_bytes('{"prompt": "caf\u00e9 cr\u00e8me"}\n'.encode("latin-1"))
    (w / "corrupt.parquet").write_bytes(b"PAR1" + os.urandom(300))
    (w / "corrupt.arrow").write_bytes(os.urandom(300))
    (w / "empty.jsonl").write_text("")
    pq.write_table(pa.table({"prompt": pa.array([], pa.string()), "answer": pa.array([], pa.string())}),
                   w / "zero_rows.parquet")
    _jsonl(w / "no_prompt.jsonl", [{"question": "What is 1+1?", "answer": "2"}])
    _jsonl(w / "prompt_int.jsonl", [{"prompt": 5, "answer": "2"}])
    _jsonl(w / "mixed_types.jsonl", [good, {**good, "domain": 3}])
    _jsonl(w / "bad_domain.jsonl", [{**good, "domain": "physics"}])
    _jsonl(w / "no_domain.jsonl", [{"prompt": q, "answer": "9"}])
    _jsonl(w / "plain_sft.jsonl", [{"messages": q + [{"role": "assistant", "content": "It is 9."}]}])
    _jsonl(w / "user_last.jsonl", [{"messages": q + [{"role": "assistant", "content": "9"}, {"role": "user", "content": "?"}]}])
    _jsonl(w / "sharegpt.jsonl", [{"messages": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}])
    _jsonl(w / "no_completion.jsonl", [good])
    _jsonl(w / "no_answer.jsonl", [{"prompt": q, "completion": "<think>\n3*3\n</think>\n\\boxed{9}"}])
    _jsonl(w / "label5.jsonl", [{"prompt": q, "completion": "9", "label": 5}])
    _jsonl(w / "gsm8k_bad.jsonl", [{"question": "What is 1+1?", "answer": "It is two."}])
    # a prompt past the row-size limit (1,000,000 characters): refused before anything tokenizes it
    _jsonl(w / "huge_prompt.jsonl", [good, {**good, "prompt": [{"role": "user", "content": "x" * 1_100_000}]}])
    from datasets import Dataset

    from r1cli.artifacts import stage_output
    from r1cli.data import save_dataset

    with stage_output(w / "eval_rl", kind="eval", stage="eval", config={}) as run:  # an eval of other prompts
        save_dataset(Dataset.from_list([{"id": "other", "prompt": "q", "sample_index": 0, "reward_accuracy": 1.0}]),
                     run.partial)
    _jsonl(w / "qa_caps.jsonl", [{"Question": "What is 1+1?", "Answer": "2"}])
    for split in ("train", "test"):  # a dataset as downloaded from the Hub: one file per split
        (w / "hub" / "main").mkdir(parents=True, exist_ok=True)
        _jsonl(w / "hub" / "main" / f"{split}.jsonl", [good])
    (w / "hub_cut").mkdir()
    pq.write_table(pa.table({"prompt": ["What is 1+1?"]}), w / "hub_cut" / "train-00000-of-00002.parquet")
    # one prompt far past the toy base's 512-token context, beside a short one
    _jsonl(w / "long_prompt.jsonl", [good, {**good, "id": "huge", "prompt": [{"role": "user", "content": "1 + " * 600}]}])

    (w / "typo_trl.yaml").write_text("stage: sft\ntrl:\n  learning_rat: 0.001\n")
    (w / "typo_key.yaml").write_text("stage: grpo\nseeed: 1\n")
    (w / "broken.yaml").write_text("k: [1, 2\nseed: 0\n")
    (w / "exists").mkdir()
    (w / "exists" / "keep.txt").write_text("a finished result\n")
    (w / "exported.jsonl").write_text(json.dumps(good) + "\n")
    (w / "left.partial").mkdir()
    (w / "left.partial" / "r1.json").write_text(json.dumps({"status": "running"}))
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    from fake_rm_server import FakeRM

    rm_server = FakeRM(None, name="helpful")  # a served RM under another name than the default "rm"
    request.addfinalizer(rm_server.close)
    return {"w": w, "model": toy_base, "data": toy_data, "rl": toy_data / "rl", "cs": toy_data / "coldstart",
            "rm_url": rm_server.url,
            "eval": toy_data / "eval", "general": toy_data / "general", "pairs": toy_data / "helpful_pairs",
            "safety": toy_data / "safety", "port": closed_port, "recipes": Path(__file__).parents[1] / "recipes" / "toy"}


# --- the cases: (id, argv with {placeholders}, a distinctive part of the one-line message) -------------

OUT = "{w}/out"
CASES = [
    # missing / unreadable / unfinished paths
    ("missing data", "eval --model {model} --data {w}/nope.jsonl --out " + OUT, "does not exist"),
    ("missing model", "grpo --model {w}/no_such_model --data {rl} --out " + OUT, "does not exist"),
    ("partial data dir", "sft --model {model} --data {w}/rl.partial --out " + OUT, "--resume"),
    ("partial model dir", "grpo --model {w}/base.partial --data {rl} --out " + OUT, "unfinished"),
    ("manifest says running", "eval --model {model} --data {w}/unfinished --out " + OUT, "re-run that stage"),
    ("not UTF-8", "score {w}/latin1.jsonl --out " + OUT, "re-save it as UTF-8"),
    # corrupt files
    ("corrupt JSONL line", "eval --model {model} --data {w}/bad_line.jsonl --out " + OUT, "line 2 is not JSON"),
    ("corrupt Parquet", "eval --model {model} --data {w}/corrupt.parquet --out " + OUT, "not a readable Parquet"),
    ("corrupt Arrow", "data inspect {w}/corrupt.arrow", "not a readable Arrow"),
    ("cut-off saved dataset", "data export {w}/cut_saved --to {w}/out.jsonl", "not a readable saved dataset"),
    ("several datasets", "grpo --model {model} --data {data} --out " + OUT, "holds several datasets"),
    ("model as data", "reject-sample --model {model} --data {model} --out " + OUT, "not a dataset"),
    # empty, missing and mistyped columns
    ("empty JSONL", "eval --model {model} --data {w}/empty.jsonl --out " + OUT, "is empty"),
    ("zero-row Parquet", "grpo --model {model} --data {w}/zero_rows.parquet --out " + OUT, "has no rows"),
    ("no prompt column", "grpo --model {model} --data {w}/no_prompt.jsonl --out " + OUT, "has no column 'prompt'"),
    ("prompt is a number", "eval --model {model} --data {w}/prompt_int.jsonl --out " + OUT, "column 'prompt' is a number"),
    ("type changes between rows", "reject-sample --model {model} --data {w}/mixed_types.jsonl --out " + OUT,
     "give every row the same type"),
    ("unknown domain", "grpo --model {model} --data {w}/bad_domain.jsonl --out " + OUT, "use one of math"),
    ("ShareGPT messages", "sft --model {model} --data {w}/sharegpt.jsonl --out " + OUT, "ShareGPT"),
    ("bad --eval-data", "grpo --model {model} --data {rl} --eval-data {w}/no_prompt.jsonl --out " + OUT,
     "no_prompt.jsonl has no column 'prompt'"),
    ("no completion column", "score {w}/no_completion.jsonl --out " + OUT, "has no column 'completion'"),
    ("reward needs answer", "score {w}/no_answer.jsonl --rewards accuracy --out " + OUT, "needs column 'answer'"),
    ("label not 0/1", "rm --pointwise --model {model} --data {w}/label5.jsonl --out " + OUT, "1 (safe) or 0 (unsafe)"),
    ("align row without domain", "align --model {model} --data {w}/no_domain.jsonl --out " + OUT, "have no `domain`"),
    # SFT turns
    ("non-R1 cold start", "coldstart --model {model} --data {w}/plain_sft.jsonl --out " + OUT, "not in the R1 format"),
    ("last turn is the user's", "sft --model {model} --data {w}/user_last.jsonl --out " + OUT,
     "last message must be the assistant"),
    # model dirs
    ("model without weights", "eval --model {w}/no_weights --data {eval} --out " + OUT, "has no weights"),
    ("model without tokenizer", "sft --model {w}/no_tokenizer --data {cs} --out " + OUT, "no tokenizer files"),
    ("weights cut short", "grpo --model {w}/cut_weights --data {rl} --out " + OUT, "is cut short"),
    ("config.json not JSON", "sft --model {w}/bad_config --data {cs} --out " + OUT, "config.json is not valid JSON"),
    ("tokenizer.json not JSON", "rm --model {w}/bad_tokenizer --data {pairs} --out " + OUT,
     "tokenizer.json is not valid JSON"),
    ("chat template does not render", "sft --model {model} --data {cs} --set chat_template={{%for%}} --out " + OUT,
     "does not render"),
    ("tokenizer without chat template", "coldstart --model {w}/no_template --data {cs} --out " + OUT,
     "no chat template"),
    ("checkpoint's chat template does not render", "grpo --model {w}/broken_template --data {rl} --out " + OUT,
     "does not render"),
    ("dataset as model", "eval --model {rl} --data {eval} --out " + OUT, "not a model checkpoint"),
    ("causal LM as RM (align)", "align --model {model} --data {rl} --data {general} --helpful-rm {model} "
     "--harmless-rm {model} --out " + OUT, "not a sequence-classification model"),
    ("causal LM as RM (score)", "score {w}/no_answer.jsonl --rewards harmlessness --harmless-rm {model} --out " + OUT,
     "not a sequence-classification model"),
    ("pairs with --pointwise", "rm --pointwise --model {model} --data {pairs} --out " + OUT, "drop --pointwise"),
    ("labels without --pointwise", "rm --model {model} --data {safety} --out " + OUT, "add --pointwise"),
    # recipes, --set, rewards
    ("unknown trl key", "sft --model {model} --data {cs} --recipe {w}/typo_trl.yaml --out " + OUT,
     "did you mean 'learning_rate'"),
    ("unknown recipe key", "grpo --model {model} --data {rl} --recipe {w}/typo_key.yaml --out " + OUT,
     "unknown recipe key 'seeed'"),
    ("recipe is not YAML", "eval --model {model} --data {eval} --recipe {w}/broken.yaml --out " + OUT, "fix the syntax"),
    ("recipe of another stage", "sft --model {model} --data {cs} --recipe {recipes}/grpo.yaml --out " + OUT,
     "pick the sft recipe"),
    ("unknown reward", "grpo --model {model} --data {rl} --set rewards.acuracy=1 --out " + OUT,
     "did you mean 'accuracy'"),
    ("unknown reward (score)", "score {w}/no_answer.jsonl --rewards formt --out " + OUT, "unknown reward 'formt'"),
    ("unknown reward option", "grpo --model {model} --data {rl} --set reward_options.timout=1 --out " + OUT,
     "unknown reward option 'timout'"),
    ("--set int gets a word", "eval --model {model} --data {eval} --set k=two --out " + OUT, "k must be an integer"),
    ("--set float gets a word", "grpo --model {model} --data {rl} --set trl.learning_rate=fast --out " + OUT,
     "must be a number"),
    ("--set without =", "toy base {w}/out --set hidden_size", "must look like key=value"),
    ("--k 0", "eval --model {model} --data {eval} --k 0 --out " + OUT, "--k must be >= 1"),
    ("toy sizes", "toy data {w}/out --set n_rl=0", "n_rl must be >= 1"),
    # incompatible batch / generation sizes
    ("generation batch vs group size", "grpo --model {model} --data {rl} --set trl.per_device_train_batch_size=3 "
     "--set trl.num_generations=2 --out " + OUT, "num_generations"),
    ("global batch > rows", "sft --model {model} --data {cs} --set trl.per_device_train_batch_size=5000 --out " + OUT,
     "lower trl.per_device_train_batch_size"),
    ("a zero group size", "grpo --model {model} --data {rl} --set trl.num_generations=0 --out " + OUT,
     "trl.num_generations must be >= 1"),
    ("--n 0", "reject-sample --model {model} --data {rl} --n 0 --out " + OUT, "--n must be >= 1"),
    # OUT
    ("OUT exists", "eval --model {model} --data {eval} --out {w}/exists", "pass --force"),
    ("--to exists (export)", "data export {rl} --to {w}/exported.jsonl", "pass --force"),
    ("--to exists (import)", "data import {w}/exported.jsonl --to {w}/exists", "pass --force"),
    ("OUT.partial left over", "grpo --model {model} --data {rl} --out {w}/left", "pass --resume"),
    ("OUT named *.partial", "sft --model {model} --data {cs} --out {w}/new.partial", "choose another name"),
    ("export to .csv", "data export {rl} --to {w}/out.csv", ".jsonl or .parquet"),
    ("filter from a dataset", "data filter --from {rl} --pass-rate 0.1..0.9 --to {w}/out",
     "not an r1 eval or r1 reject-sample dir"),
    ("columns named otherwise", "eval --model {model} --data {w}/qa_caps.jsonl --out " + OUT,
     "--map prompt=Question --map answer=Answer"),
    ("--map onto a column that exists", "data import {w}/exported.jsonl --map answer=prompt --to " + OUT,
     "has a column 'answer' already"),
    ("--map without =", "data import {w}/qa_caps.jsonl --map prompt --to " + OUT, "CANONICAL=SOURCE"),
    ("import format", "data import {w}/exported.jsonl --to {w}/out --format alpaca", "--format 'alpaca'"),
    ("gsm8k without ####", "data import {w}/gsm8k_bad.jsonl --format gsm8k --to {w}/out", "####"),
    ("merge different kinds", "data merge {rl} {cs} --to {w}/out", "different kinds"),
    # huge input
    ("a huge prompt (eval)", "eval --model {model} --data {w}/huge_prompt.jsonl --out " + OUT, "R1_MAX_ROW_CHARS"),
    ("a huge prompt (grpo)", "grpo --model {model} --data {w}/huge_prompt.jsonl --out " + OUT, "1,100,0"),
    # datasets as downloaded from the Hub
    ("several splits", "data import {w}/hub/main --to " + OUT, "--split test"),
    ("unknown split", "data inspect {w}/hub/main --split dev", "no such split"),
    ("configs above the splits", "eval --model {model} --data {w}/hub --out " + OUT, "configs main (test, train)"),
    ("a shard missing", "data export {w}/hub_cut --to {w}/out.jsonl", "finish the download"),
    # prompts that leave the completion no room in the model's context
    ("prompt fills the context (eval)", "eval --model {model} --data {w}/long_prompt.jsonl --out " + OUT,
     "--set drop_long_prompts=true"),
    ("budget fills the context", "eval --model {model} --data {eval} --max-new-tokens 600 --out " + OUT,
     "leaves no room for a prompt"),
    ("prompt fills the context (reject-sample)", "reject-sample --model {model} --data {w}/long_prompt.jsonl --out "
     + OUT, "r1 data filter"),
    ("filter by an eval of other prompts", "data filter {w}/exported.jsonl --from {w}/eval_rl --pass-rate 0..1 --to "
     + OUT, "measured none of the 1 prompts"),
    ("filter with no measure", "data filter {rl} --to {w}/out", "--max-prompt-tokens N --model M"),
    ("filter by tokens without a model", "data filter {rl} --max-prompt-tokens 100 --to {w}/out", "needs the prompts"),
    # the report
    ("report of a stage output", "report {rl} --out " + OUT, "give the dir that holds it"),
    ("report OUT exists", "report {data} --out {w}/exists", "pass --force"),
    # the judge
    ("judge URL unreachable", "reject-sample --mode general --model {model} --data {general} "
     "--judge-url http://127.0.0.1:{port}/v1 --out " + OUT, "unreachable"),
    # served reward models
    ("RM URL unreachable (align)", "align --model {model} --data {rl} --data {general} --helpful-rm "
     "http://127.0.0.1:{port}/v1 --harmless-rm http://127.0.0.1:{port}/v1 --out " + OUT, "unreachable"),
    ("RM URL of another scheme (score)", "score {w}/no_answer.jsonl --rewards harmlessness --harmless-rm "
     "grpc://127.0.0.1:{port} --out " + OUT, "or an http:// URL"),
    ("served RM of another name (align)", "align --model {model} --data {rl} --data {general} --helpful-rm {rm_url} "
     "--harmless-rm {rm_url} --out " + OUT, "not 'rm': set rm_http.served_model"),
]


# --- the check ------------------------------------------------------------------------------------------


def snapshot(*roots: Path) -> dict:
    """path -> (size, mtime, sha256) of every file and dir under `roots`: inputs must not change,
    and no OUT / OUT.partial may appear."""
    out = {}
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            out[dirpath] = "dir"
            for f in files:
                p = os.path.join(dirpath, f)
                st = os.stat(p)
                out[p] = (st.st_size, st.st_mtime_ns, hashlib.sha256(Path(p).read_bytes()).hexdigest())
    return out


@pytest.mark.parametrize("argv, expect", [pytest.param(a, e, id=i) for i, a, e in CASES])
def test_bad_input_exits_2_with_one_line(world, run_r1, argv, expect):
    args = [a.format(**world) for a in argv.split()]
    roots = (world["w"], world["data"], world["model"])
    before = snapshot(*roots)
    r = run_r1(*args, timeout=120)
    err = r.stderr.strip()
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert err.startswith("error: ") and "\n" not in err, err
    assert expect in err, err
    after = snapshot(*roots)
    assert sorted(set(after) - set(before)) == [], "created"
    assert sorted(set(before) - set(after)) == [], "removed"
    assert [p for p in before if before[p] != after[p]] == [], "changed"


def test_every_command_is_in_the_matrix():
    """A new command gets its bad-input cases here."""
    from typer.main import get_command

    from r1cli.cli import app

    commands = set()
    for name, cmd in get_command(app).commands.items():
        commands |= {f"{name} {sub}" for sub in cmd.commands} if hasattr(cmd, "commands") else {name}
    covered = {" ".join(a.split()[:2]) if a.startswith(("data", "toy")) else a.split()[0] for _, a, _ in CASES}
    assert commands - covered == set()
    assert len(CASES) >= 30
