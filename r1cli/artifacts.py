"""The directory contract every stage output follows (see DESIGN.md).

A stage writes into `OUT.partial/` and renames it to `OUT` only when it has finished, so
a crash leaves `OUT.partial/` (for `--resume`) and never a half-written `OUT`. The
manifest `OUT/r1.json` records kind, stage, inputs with fingerprints, the resolved
config, library versions, counts and metrics. Stages use these helpers and nothing
else to check inputs and write outputs:

    inputs = [check_input(args.model, "--model"), check_input(args.data, "--data")]
    with stage_output(out, kind="checkpoint", stage="sft", config=cfg, inputs=inputs,
                      force=force, resume=resume) as run:
        ...write into run.partial, run.log_metrics({...}), run.metrics["loss"] = ...
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import importlib.metadata
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from r1cli import __version__
from r1cli.errors import DiskFull, UserError
from r1cli.locking import lock_output, unlock_output

MANIFEST = "r1.json"
PARTIAL = ".partial"
KINDS = ("dataset", "checkpoint", "eval", "report")

# files bigger than this are fingerprinted by size + head + tail, not read whole
# (a 7B checkpoint would otherwise take a minute to hash on every stage start)
_FULL_HASH_LIMIT = 64 << 20
_EDGE = 1 << 20


# --- reading ---------------------------------------------------------------------------


def read_manifest(path: str | os.PathLike) -> dict | None:
    """The manifest of an r1 dir, or None for a dir made elsewhere (a plain HF dir)."""
    m = Path(path) / MANIFEST
    if not m.is_file():
        return None
    try:
        return json.loads(m.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{m} is not a readable manifest ({e.__class__.__name__}): re-run the stage that made {path}") from None


def check_input(path: str | os.PathLike, what: str = "input") -> Path:
    """Refuse a missing, unreadable or unfinished input; return it as a Path."""
    p = Path(path)
    if p.name.endswith(PARTIAL):
        raise UserError(f"{what} {p} is an unfinished stage output (*{PARTIAL}): finish it with --resume or use a finished dir")
    if not p.exists():
        raise UserError(f"{what} {p} does not exist: check the path")
    if not os.access(p, os.R_OK) or (p.is_dir() and not os.access(p, os.X_OK)):
        raise UserError(f"{what} {p} is not readable: check its permissions")
    if p.is_dir():
        m = read_manifest(p)
        if m is not None and m.get("status", "finished") != "finished":
            raise UserError(f"{what} {p} is an unfinished stage output (its manifest says {m.get('status')!r}): re-run that stage")
    return p


def check_model_dir(path: str | os.PathLike, what: str = "--model", tokenizer: bool = True) -> Path:
    """Refuse a model dir that is not a loadable HF checkpoint (config, weights, tokenizer)."""
    p = check_input(path, what)
    if not p.is_dir():
        raise UserError(f"{what} {p} is a file: give an HF model dir (config.json + weights + tokenizer)")
    m = read_manifest(p)
    if m is not None and m.get("kind") not in (None, "checkpoint"):
        raise UserError(f"{what} {p} is a {m.get('kind')} dir, not a model checkpoint")
    if not (p / "config.json").is_file():
        raise UserError(f"{what} {p} has no config.json: give an HF model dir saved with save_pretrained")
    weights = [f for f in p.iterdir() if f.suffix in (".safetensors", ".bin", ".pt") or f.name.endswith(".safetensors.index.json")]
    if not weights:
        raise UserError(f"{what} {p} has no weights (*.safetensors or pytorch_model*.bin)")
    for f in weights:
        if f.suffix == ".safetensors":
            _check_safetensors(f, what)
    for f in (p / "config.json", p / "tokenizer.json", p / "tokenizer_config.json"):  # cut short, hand-edited
        try:
            if f.is_file():
                json.loads(f.read_bytes())
        except ValueError as e:
            raise UserError(f"{what} {f} is not valid JSON ({e}): fix it, or save the checkpoint again") from None
    if tokenizer and not any((p / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")):
        raise UserError(f"{what} {p} has no tokenizer files: save the tokenizer into it (tokenizer.save_pretrained)")
    return p


def _check_safetensors(f: Path, what: str) -> None:
    """The header parses and the tensors fit in the file: a copy cut short fails here, in a
    millisecond, not at the model load (after OUT.partial exists)."""
    size = f.stat().st_size
    try:
        with open(f, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(n)) if 0 < n <= min(size - 8, 1 << 28) else None
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except (OSError, ValueError, AttributeError, KeyError, TypeError, IndexError):
        raise UserError(f"{what} {f} is not a readable safetensors file: copy or save the checkpoint again") from None
    if 8 + n + end > size:
        raise UserError(f"{what} {f} is cut short ({size} of {8 + n + end} bytes): copy or save the checkpoint again")


def fingerprint(path: str | os.PathLike) -> str:
    """A content hash of a file or dir; an r1 dir's is the one in its manifest."""
    p = Path(path)
    if p.is_dir():
        m = read_manifest(p)
        if m and m.get("fingerprint"):
            return m["fingerprint"]
    return _hash_files(p)


def _hash_files(p: Path) -> str:
    """A content hash of a file, or of every file in a dir but its manifest."""
    h = hashlib.sha256()
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file() and f.name != MANIFEST)
    for f in files:
        rel = f.name if f == p else f.relative_to(p).as_posix()
        size = f.stat().st_size
        h.update(f"{rel}\0{size}\0".encode())
        with open(f, "rb") as fh:
            if size <= _FULL_HASH_LIMIT:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            else:
                h.update(fh.read(_EDGE))
                fh.seek(size - _EDGE)
                h.update(fh.read(_EDGE))
    return "sha256:" + h.hexdigest()[:32]


def library_versions() -> dict[str, str]:
    """Versions of the libraries a result depends on (vllm only when installed)."""
    out = {}
    for name in ("r1cli", "torch", "transformers", "trl", "datasets", "accelerate", "math-verify", "vllm"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            if name == "r1cli":

                out[name] = __version__
    return out


# --- writing ---------------------------------------------------------------------------


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON so that a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=2, default=str, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)  # a half-written tmp file only takes the space that ran out
        raise _named(e, path)


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """One line; a write cut short leaves a broken last line, which a resume drops."""
    try:
        with open(path, "a") as fh:
            fh.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
            fh.flush()
    except OSError as e:
        raise _named(e, path)


def _named(e: OSError, path) -> OSError:
    if e.filename is None:  # a failed write() does not say which file (open() does)
        e.filename = str(path)
    return e

# libraries do not all keep the errno: safetensors and datasets put it in the message, and
# torch.save reports a short write as "unexpected pos N vs M" with no errno at all
_FULL = ("no space left on device", "os error 28", "disk quota exceeded", "storagefull")


def disk_full(exc: BaseException, where: str | os.PathLike) -> Path | None:
    """The file (else `where`) a write was cut short on because the filesystem is full; None when
    `exc` is something else. An OSError/RuntimeError raised while the filesystem holding `where`
    has under 1 MiB left counts too (that is torch.save's case)."""
    chain, e = [], exc
    while e is not None and e not in chain and len(chain) < 20:
        chain.append(e)
        e = e.__cause__ or e.__context__
    named = next((e.filename for e in chain if isinstance(e, OSError) and e.filename), None)
    full = any(isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT) for e in chain) \
        or any(t in str(e).lower() for e in chain for t in _FULL)
    if not full and any(isinstance(e, (OSError, RuntimeError)) for e in chain):
        full = _free_bytes(where) < (1 << 20)
    return Path(named or where) if full else None


def _free_bytes(where) -> int:
    try:
        return shutil.disk_usage(where).free
    except OSError:
        return 1 << 62


def partial_path(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(out.name + PARTIAL)


def check_output(out: str | os.PathLike, force: bool = False, resume: bool | None = None) -> Path:
    """Refuse an OUT that exists (unless --force) or a leftover OUT.partial (unless --resume/--force).
    resume None: the command has no --resume (its message then offers only --force)."""
    out = Path(out)
    if out.name.endswith(PARTIAL):
        raise UserError(f"--out {out} ends in {PARTIAL}, which r1 keeps for unfinished runs: choose another name")
    if out.exists() and not force:
        raise UserError(f"output {out} exists: pass --force to replace it, or choose another --out")
    part = partial_path(out)
    if part.exists() and not (resume or force):
        how = "pass --resume to continue it, or --force to start over" if resume is not None else "pass --force to start over"
        raise UserError(f"{part} is left from an unfinished run: {how}")
    parent = out.parent if str(out.parent) else Path(".")
    if parent.exists() and not os.access(parent, os.W_OK):
        raise UserError(f"cannot write into {parent}: check its permissions or choose another --out")
    lock_output(out)
    return out


@dataclass
class StageRun:
    """An output being written: files go into `partial`; `finish()` makes it `out`."""

    out: Path
    partial: Path
    kind: str
    stage: str
    config: dict
    inputs: list[dict]
    resumed: bool = False
    # the trained weights are in `partial` (training.save_checkpoint): an error after that keeps them
    saved: bool = False
    counts: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    # a LoRA run: the method, rank, trainable parameters and the adapter's dir (r1cli/training/lora.py)
    peft: dict | None = None
    started: float = field(default_factory=time.time)
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))

    def path(self, name: str) -> Path:
        return self.partial / name

    def log_metrics(self, record: dict) -> None:
        """One line of `metrics.jsonl` (one per logging step)."""
        append_jsonl(self.partial / "metrics.jsonl", record)

    def log_sample(self, record: dict) -> None:
        """One line of `samples.jsonl` (logged completions)."""
        append_jsonl(self.partial / "samples.jsonl", record)

    def manifest(self, status: str) -> dict:
        return {
            "kind": self.kind,
            "stage": self.stage,
            "status": status,
            "created": self.created,
            "inputs": self.inputs,
            "config": self.config,
            "versions": library_versions(),
            "fingerprint": None,
            "counts": self.counts,
            "metrics": self.metrics,
            **({"peft": self.peft} if self.peft else {}),
            "wall_time_s": round(time.time() - self.started, 2),
            **({"saved": True} if self.saved and status != "finished" else {}),
        }

    def mark_saved(self) -> None:
        """The weights are written: record it (and the counts and metrics so far) in the running
        manifest, so that a failure later keeps OUT.partial/ and --resume skips the training."""
        self.saved = True
        write_json_atomic(self.partial / MANIFEST, self.manifest("running"))

    def finish(self, force: bool = False) -> Path:
        m = self.manifest("finished")
        m["fingerprint"] = fingerprint_files(self.partial)
        write_json_atomic(self.partial / MANIFEST, m)
        old = None
        if self.out.exists():
            if not force:  # appeared while we ran
                raise UserError(f"output {self.out} appeared while this stage ran: the result is kept in {self.partial}")
            old = self.out.with_name(f"{self.out.name}.old{os.getpid()}")
            os.replace(self.out, old)
        os.replace(self.partial, self.out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.out


def fingerprint_files(d: Path) -> str:
    """Fingerprint of a dir's files, ignoring any manifest in it: the same before and after the manifest is
    written, so a finished dir's recorded fingerprint can be checked against its files."""
    return _hash_files(Path(d))


def write_sub_manifest(directory: str | os.PathLike, run: "StageRun", kind: str, counts: dict | None = None,
                       metrics: dict | None = None) -> None:
    """Manifest for a dir inside a stage output (e.g. `OUT/eval` of `r1 toy data`), so that
    it is a finished r1 dir of its own once the outer rename happens."""
    d = Path(directory)
    m = run.manifest("finished")
    m.update(kind=kind, counts=counts or {}, metrics=metrics or {}, fingerprint=fingerprint_files(d))
    write_json_atomic(d / MANIFEST, m)


def describe_inputs(paths: list[str | os.PathLike]) -> list[dict]:
    return [{"path": str(p), "fingerprint": fingerprint(p)} for p in paths]


@contextlib.contextmanager
def stage_output(
    out: str | os.PathLike,
    *,
    kind: str,
    stage: str,
    config: dict,
    inputs: list[str | os.PathLike] = (),
    force: bool = False,
    resume: bool | None = None,
) -> Iterator[StageRun]:
    """Open `OUT.partial/`, yield a StageRun, and rename to OUT when the block succeeds.

    A UserError raised inside the block removes a partial dir this run created (nothing
    worth resuming); any other exception leaves it for `--resume`.
    """
    assert kind in KINDS, kind
    out = check_output(out, force, resume)
    part = partial_path(out)
    resumed = part.exists() and bool(resume)
    if part.exists() and not resumed:
        shutil.rmtree(part)
    part.mkdir(parents=True, exist_ok=True)
    run = StageRun(out=out, partial=part, kind=kind, stage=stage, config=config,
                   inputs=describe_inputs(list(inputs)), resumed=resumed)
    if resumed and (part / MANIFEST).exists():
        prev = json.loads((part / MANIFEST).read_text())
        run.created = prev.get("created", run.created)
        if prev.get("saved"):  # the weights were written before the run stopped: keep what it measured
            run.saved, run.counts, run.metrics = True, prev.get("counts", {}), prev.get("metrics", {})
            run.peft = prev.get("peft")
    write_json_atomic(part / MANIFEST, run.manifest("running"))
    lock_output(out)  # again: OUT's parent may have been made just now
    try:
        yield run
    except DiskFull:
        unlock_output(out)
        raise
    except UserError as e:
        if run.saved:  # found after training: the weights are never deleted by an error
            unlock_output(out)
            raise UserError(f"{e}; the trained model is kept in {part}/: fix this, then run the same command "
                            "with --resume to finish the rest") from None
        if not resumed:
            shutil.rmtree(part, ignore_errors=True)
        unlock_output(out)
        raise
    except BaseException as e:  # a full disk is the user's to fix: one line, and OUT.partial/ kept for --resume
        unlock_output(out)
        if isinstance(e, Exception) and (path := disk_full(e, part)) is not None:
            raise DiskFull(path) from e
        raise
    try:
        run.finish(force=force)
    except OSError as e:
        if (path := disk_full(e, part)) is not None:
            raise DiskFull(path) from e
        raise
    finally:
        unlock_output(out)
    # plain text on stdout, whatever the stage printed before it: a log file shows where the result went
    print(f"wrote {out} ({stage}, {_dt.timedelta(seconds=round(time.time() - run.started))})", flush=True)
