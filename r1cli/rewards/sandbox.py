"""Run untrusted model-written programs: one child process per run, jailed and limited.

    from r1cli.rewards.sandbox import run, Limits
    result = run("print(input()[::-1])", stdin="abc\\n", language="python", limits=Limits(timeout=2))
    result.ok, result.stdout   # True, "cba\\n"

Why by hand: code-RL toolkits send model code to a hosted service (open-r1: E2B, Morph,
Piston) or run it locally with rlimits only (APPS-style `reliability_guard`), whose process
limit root ignores; no library jails a local run on a root CI box.

What a program gets (sandbox_jail.py does the jailing; this module picks the uid, feeds
stdin, caps output, enforces a backstop deadline and cleans up):
- namespaces (root, or a normal user where the kernel allows user namespaces): a pid
  namespace whose pid 1 is the program (when it exits or is killed, the kernel kills every
  process it started, `setsid` daemons included); no network (a fresh network namespace
  with only a down loopback: connect() to 127.0.0.1 fails); every mount read-only, so /tmp,
  /var/tmp, /dev/shm and /run/lock are not writable; the working dir is a fresh tmpfs of
  `disk_mb` at /tmp (HOME and TMPDIR point there) that disappears with the namespace; a fresh
  /proc that shows only the sandbox.
- as root: an unprivileged uid/gid of its own from a dedicated range (one lock file per uid,
  so concurrent sandboxes, in this process or another, never share a process budget), no
  supplementary groups; after the run every process of that uid is killed (a safety net
  behind the pid namespace). The locks live in $TMPDIR/r1cli-sandbox-0/ and are kept.
- always: wall time (`timeout`, enforced by the launcher, with a backstop here), CPU time,
  memory (RLIMIT_AS per process, no cgroup: a tree holds at most max_processes x memory_mb), process
  count (RLIMIT_NPROC), file size, open files, no core dumps, no_new_privs (setuid binaries
  grant nothing), seccomp against nested user namespaces and io_uring (x86_64/aarch64),
  a scrubbed environment (PATH, HOME, TMPDIR, LANG only), stdout+stderr capped
  at `output_bytes` (the run is stopped when it passes the cap).
- weaker without namespaces ("basic" mode: a container that forbids unshare, a kernel without
  unprivileged user namespaces): a temp dir on the host deleted afterwards, sockets other
  than AF_UNIX refused by seccomp (x86_64/aarch64 only), leftovers killed through a child
  subreaper; world-writable dirs stay writable and other processes stay visible. As a normal
  user there is no uid drop and the process limit counts all of the user's processes.

Languages: python (always), bash, perl and javascript (node) when their interpreter exists.
Python runs as `python -I -S -B main.py` (isolated: no site-packages, no PYTHON* variables).
The interpreter is this one (sys.executable) when the sandbox uid can read and execute it
and its standard library; a venv built on an interpreter under /root (mode 700, as pyenv on
these machines) cannot be, and then the first world-readable python3 on the system
(/usr/bin/python3) is used: `info()` says which.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

JAIL = str(Path(__file__).with_name("sandbox_jail.py"))
UID_BASE = int(os.environ.get("R1_SANDBOX_UID_BASE", 1_900_000_000))  # far above any real account
UID_SLOTS = 1024
_BACKSTOP = 5.0  # seconds past the wall limit before we kill the launcher ourselves


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the program): never to be read as a reward of 0."""


@dataclass
class Limits:
    timeout: float = 4.0             # wall seconds per run
    cpu_time: float | None = None    # CPU seconds per process; None = the wall timeout
    memory_mb: int = 256             # address space per process
    max_processes: int = 16          # processes and threads of the sandbox uid
    file_size_mb: int = 16           # largest file it may write
    disk_mb: int = 64                # size of its tmpfs working dir (namespaces mode)
    open_files: int = 64
    output_bytes: int = 1 << 20      # stdout + stderr; past it the run is stopped


@dataclass
class Result:
    stdout: str
    stderr: str
    returncode: int | None           # None when killed by a signal
    signal: int | None
    timed_out: bool
    output_truncated: bool
    cpu: float                       # CPU seconds of the program's main process
    wall: float
    mode: str                        # "namespaces" | "basic"

    @property
    def ok(self) -> bool:
        """Exited 0 by itself within every limit."""
        return self.returncode == 0 and not self.timed_out and not self.output_truncated


# --- languages and interpreters -----------------------------------------------------------

# name -> (file name, interpreter candidates, argv after the interpreter, memory rlimit).
# node reserves gigabytes of address space at startup (V8's code range) and aborts under
# RLIMIT_AS, so it gets RLIMIT_DATA (its heap) instead.
LANGUAGES = {
    "python": ("main.py", ["/usr/bin/python3", "/usr/local/bin/python3"], ["-I", "-S", "-B", "main.py"], "RLIMIT_AS"),
    "bash": ("main.sh", ["/bin/bash", "/usr/bin/bash"], ["--noprofile", "--norc", "main.sh"], "RLIMIT_AS"),
    "perl": ("main.pl", ["/usr/bin/perl"], ["main.pl"], "RLIMIT_AS"),
    "javascript": ("main.js", ["/usr/bin/node", "/usr/local/bin/node"], ["main.js"], "RLIMIT_DATA"),
}
ALIASES = {"py": "python", "python3": "python", "sh": "bash", "shell": "bash", "js": "javascript",
           "node": "javascript", "pl": "perl"}


def _world_usable(path: str) -> bool:
    """Can a uid that owns nothing and is in no group read (and execute) path?"""
    p = Path(os.path.realpath(path))
    try:
        if not (p.stat().st_mode & stat.S_IROTH):
            return False
        if p.is_file() and p.suffix != ".py" and not (p.stat().st_mode & stat.S_IXOTH):
            return False
        return all(d.stat().st_mode & stat.S_IXOTH for d in p.parents)
    except OSError:
        return False


def _own_python_usable() -> bool:
    stdlib = Path(sys.base_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "os.py"
    return _world_usable(sys.executable) and _world_usable(str(stdlib))


_INTERPRETERS: dict[str, str | None] = {}


def interpreter(language: str) -> str | None:
    """Absolute path of the interpreter the sandbox runs `language` with (None: not installed)."""
    language = ALIASES.get(language, language)
    if language not in _INTERPRETERS:
        candidates = LANGUAGES[language][1]
        dropping = os.geteuid() == 0
        if language == "python" and (not dropping or _own_python_usable()):
            candidates = [sys.executable] + candidates
        found = [c for c in candidates if os.path.isfile(c) and os.access(c, os.X_OK) and (not dropping or _world_usable(c))]
        _INTERPRETERS[language] = os.path.realpath(found[0]) if found else None
    return _INTERPRETERS[language]


def available_languages() -> list[str]:
    return [name for name in LANGUAGES if interpreter(name)]


def info() -> dict:
    """What the sandbox does on this machine: the mode it gets (one trial run), root or not,
    and which interpreter runs each language."""
    if _MODE_SEEN is None:
        run("pass")
    return {"mode": _MODE_SEEN, "root": os.geteuid() == 0,
            "interpreters": {name: interpreter(name) for name in LANGUAGES}}


# --- a uid of its own (root only) ------------------------------------------------------------


class _UidSlot:
    """An exclusive sandbox uid: a flock on one file per uid, held for the whole run."""

    def __init__(self):
        lock_dir = Path(tempfile.gettempdir()) / f"r1cli-sandbox-{os.geteuid()}"
        lock_dir.mkdir(mode=0o700, exist_ok=True)
        st = lock_dir.lstat()
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise SandboxError(f"{lock_dir} must be a directory of ours with mode 700: remove it")
        start = int.from_bytes(os.urandom(2), "little") % UID_SLOTS  # not `random`: leave the trainer's seed alone
        for i in range(UID_SLOTS):
            slot = (start + i) % UID_SLOTS
            fd = os.open(lock_dir / f"{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.fd, self.uid = fd, UID_BASE + slot
            try:
                kill_uid(self.uid)  # leftovers of a crashed earlier run
            except BaseException:
                os.close(fd)
                raise
            return
        raise SandboxError(f"all {UID_SLOTS} sandbox uids are in use")

    def release(self):
        os.close(self.fd)


def uid_processes(uid: int) -> list[int]:
    """Live (non-zombie) processes with `uid` as real, effective, saved or fs uid."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            text = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if str(uid) in fields.get("Uid", "").split() and not fields.get("State", "").strip().startswith("Z"):
            found.append(int(pid))
    return found


def kill_uid(uid: int, patience: float = 3.0) -> None:
    """SIGKILL every process of `uid` until none is left; SandboxError if some survive."""
    deadline = time.monotonic() + patience
    while pids := uid_processes(uid):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if time.monotonic() > deadline:
            raise SandboxError(f"sandbox uid {uid}: processes {pids[:5]} survived SIGKILL")
        time.sleep(0.01)


# --- one run -------------------------------------------------------------------------------

_MODE_SEEN: str | None = None
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def _rlimits(limits: Limits, uid: int | None, memory_rlimit: str) -> dict:
    cpu = max(1, math.ceil(limits.cpu_time or limits.timeout))  # RLIMIT_CPU counts whole seconds
    mem = limits.memory_mb << 20
    nproc = limits.max_processes
    if uid is None:  # no uid of its own: the limit counts every process of this user
        nproc += sum(1 for p in os.listdir("/proc") if p.isdigit() and _owned(p))
    return {"RLIMIT_CPU": (cpu, cpu + 1), memory_rlimit: (mem, mem), "RLIMIT_NPROC": (nproc, nproc),
            "RLIMIT_FSIZE": (limits.file_size_mb << 20,) * 2, "RLIMIT_NOFILE": (limits.open_files,) * 2,
            "RLIMIT_CORE": (0, 0), "RLIMIT_MEMLOCK": (0, 0), "RLIMIT_MSGQUEUE": (0, 0),
            "RLIMIT_STACK": (min(8 << 20, mem),) * 2}


def _owned(pid: str) -> bool:
    try:
        return os.stat(f"/proc/{pid}").st_uid == os.getuid()
    except OSError:
        return False


def run(source: str, stdin: str = "", language: str = "python", limits: Limits | None = None,
        isolation: str = "auto") -> Result:
    """Run `source` as a program in `language` with `stdin`; never raises for the program's
    behaviour (a crash, a hang, a bomb is a Result), SandboxError if the sandbox breaks.

    isolation: "auto" (namespaces if the kernel allows, else basic), "namespaces" (refuse to
    run without them) or "basic".
    """
    global _MODE_SEEN
    limits = limits or Limits()
    language = ALIASES.get(language, language)
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}: one of {', '.join(LANGUAGES)}")
    exe = interpreter(language)
    if exe is None:
        raise SandboxError(f"no interpreter for {language} usable by the sandbox")
    filename, _, args, memory_rlimit = LANGUAGES[language]
    slot = _UidSlot() if os.geteuid() == 0 else None
    uid = slot.uid if slot else None
    workdir = tempfile.mkdtemp(prefix=f"r1-sandbox-{os.getpid()}-")  # the working dir in basic mode only
    try:
        if uid is not None:
            os.chown(workdir, uid, uid)
        spec = {"argv": [exe] + args, "files": {filename: source}, "env": _ENV, "uid": uid, "gid": uid,
                "isolation": isolation, "workdir": workdir, "tmpfs_mb": limits.disk_mb,
                "rlimits": _rlimits(limits, uid, memory_rlimit), "wall": limits.timeout}
        header = json.dumps(spec).encode()
        payload = str(len(header)).encode() + b"\n" + header + stdin.encode("utf-8", "replace")
        out, err, truncated, status = _launch(payload, limits)
    finally:
        if slot:
            try:
                kill_uid(slot.uid)
            finally:
                slot.release()
        _remove_tree(workdir)
    if status.get("error"):
        raise SandboxError(status["error"])
    _MODE_SEEN = status["mode"]
    return Result(out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), status["returncode"],
                  status["signal"], status["timed_out"], truncated, status["cpu"], status["wall"], status["mode"])


def _remove_tree(top: str) -> None:
    """rmtree that a program cannot block by making its own dirs unreadable (basic mode
    as a normal user; root is not stopped by modes)."""
    for parent, dirs, _ in os.walk(top):
        for d in dirs:
            try:
                os.chmod(os.path.join(parent, d), 0o700, follow_symlinks=False)
            except OSError:
                pass
    shutil.rmtree(top, ignore_errors=True)


def _launch(payload: bytes, limits: Limits) -> tuple[bytes, bytes, bool, dict]:
    """Start the launcher, write its stdin, read capped output, enforce the backstop."""
    status_r, status_w = os.pipe()
    os.set_inheritable(status_w, True)
    proc = subprocess.Popen([sys.executable, "-I", "-S", JAIL, str(status_w)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(status_w,),
                            start_new_session=True, env={"PATH": _ENV["PATH"]}, cwd="/")
    os.close(status_w)
    chunks = {proc.stdout: [], proc.stderr: []}
    size, truncated, stopped = 0, False, False
    backstop = time.monotonic() + limits.timeout + _BACKSTOP
    with selectors.DefaultSelector() as sel:
        os.set_blocking(proc.stdin.fileno(), False)
        sel.register(proc.stdin, selectors.EVENT_WRITE)
        sel.register(proc.stdout, selectors.EVENT_READ)
        sel.register(proc.stderr, selectors.EVENT_READ)
        view = memoryview(payload)
        if not view:
            sel.unregister(proc.stdin)
            proc.stdin.close()
        while sel.get_map():
            remaining = backstop - time.monotonic()
            if remaining <= 0:
                proc.kill()  # the launcher hung: its pid-namespace child dies with it
                break
            for key, _ in sel.select(remaining):
                if key.fileobj is proc.stdin:
                    try:
                        view = view[os.write(proc.stdin.fileno(), view[:65536]):]
                    except (BrokenPipeError, OSError):
                        view = view[:0]  # the program stopped reading: fine
                    if not view:
                        sel.unregister(proc.stdin)
                        proc.stdin.close()
                    continue
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                if size < limits.output_bytes:
                    chunks[key.fileobj].append(data[: limits.output_bytes - size])
                size += len(data)
                if size > limits.output_bytes and not stopped:
                    truncated = stopped = True
                    proc.send_signal(signal.SIGTERM)  # the launcher kills the program and reports
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if not f.closed:
            f.close()
    try:
        proc.wait(max(0.1, backstop - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    with os.fdopen(status_r, "rb") as f:
        raw = f.read()
    if not raw:  # killed before reporting: by us at the backstop, or from inside
        status = {"mode": _MODE_SEEN or "unknown", "returncode": None, "signal": signal.SIGKILL,
                  "timed_out": True, "cpu": 0.0, "wall": limits.timeout + _BACKSTOP, "error": ""}
        if proc.returncode not in (-signal.SIGKILL, None):
            status["error"] = f"sandbox launcher exited {proc.returncode}: {b''.join(chunks[proc.stderr])[-500:]!r}"
    else:
        status = json.loads(raw)
    return b"".join(chunks[proc.stdout]), b"".join(chunks[proc.stderr]), truncated, status
