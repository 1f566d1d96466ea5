"""The sandbox launcher: the process between r1cli and one untrusted program.

r1cli/rewards/sandbox.py starts it as `python -I -S sandbox_jail.py STATUS_FD` and writes a
header to its stdin (one line with a byte count, then that many bytes of JSON: the program's
files, command, environment, uid and limits); the rest of stdin is the program's input. It
runs as root (or the user) and does, in order:

  1. unshare mount, network, pid, ipc and uts namespaces (plus a user namespace when not
     root); if the kernel refuses, fall back to "basic" mode (below) unless namespaces
     were required;
  2. fork; the child is pid 1 of the new pid namespace, so when it exits the kernel kills
     everything the program started (a `setsid` double-fork included);
  3. in the child: every mount read-only, a fresh size-capped tmpfs at /tmp as the working
     dir (gone with the namespace: nothing is left on disk), a fresh /proc that shows only
     the sandbox; rlimits; a new session; drop to the sandbox uid/gid with no supplementary
     groups (the kernel does not apply RLIMIT_NPROC to root, so the uid is what makes the
     process limit real); no_new_privs (setuid binaries grant nothing); a seccomp filter
     against new user namespaces and io_uring; death signal tied to this launcher; a
     scrubbed environment; exec;
  4. wait with the wall-time limit (or a SIGTERM from r1cli), kill, and write a JSON status
     line to STATUS_FD: exit code or signal, timed_out, cpu seconds, the mode used.

Basic mode (no namespaces: a container that forbids unshare, or a kernel without user
namespaces for a normal user) keeps rlimits, the scrubbed env, the uid drop when root, a
temp dir made by r1cli, and kills leftovers through PR_SET_CHILD_SUBREAPER; sockets other
than AF_UNIX are refused with a seccomp filter (x86_64 and aarch64). It cannot stop writes
to world-writable dirs (/tmp, /dev/shm) nor hide other processes.

Standard library only: it runs with `-I -S` before any of r1cli can be imported.
"""

import ctypes
import json
import os
import select
import signal
import struct
import sys
import time

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
# per-mount flags a read-only remount must keep (in a user namespace they are locked)
MOUNT_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": 1024,
               "nodiratime": 2048, "relatime": 1 << 21, "strictatime": 1 << 24}
PR_SET_PDEATHSIG, PR_SET_SECCOMP, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 22, 36, 38

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source, target, fstype, flags, data=None):
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _prctl(option, arg):
    _check(libc.prctl(option, arg, 0, 0, 0), f"prctl {option}")


# --- namespaces and the filesystem view --------------------------------------------------


def _enter_namespaces(user_ns: bool) -> None:
    """unshare(2); as a normal user also a user namespace that maps our own uid/gid."""
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    _check(libc.unshare(flags | (CLONE_NEWUSER if user_ns else 0)), "unshare")
    if user_ns:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)


def _unescape(path: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    return path.encode().decode("unicode_escape").encode("latin-1").decode("utf-8", "replace")


def _read_only_root(tmpfs_mb: int, uid: int, gid: int) -> None:
    """Private mounts, all read-only, a fresh tmpfs at /tmp (the working dir), a fresh /proc."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split() for line in f]
    for fields in mounts:
        target, options = _unescape(fields[4]), fields[5].split(",")
        if target.startswith(("/proc", "/sys/")) or "ro" in options:
            continue  # /proc is replaced below; sysfs files are root-only to write
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for opt in options:
            flags |= MOUNT_FLAGS.get(opt, 0)
        try:
            _mount(None, target, None, flags)
        except OSError as e:
            if e.errno != 2:  # a mount point hidden under another mount: nothing to do
                raise
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmpfs_mb}m,nr_inodes=4096,mode=700,uid={uid},gid={gid}")
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


# syscall numbers: (audit arch, socket, clone, unshare); clone3 (435) and io_uring_setup (425)
# are the same on both
SYSCALLS = {"x86_64": (0xC000003E, 41, 56, 272), "aarch64": (0xC00000B7, 198, 220, 97)}


def _seccomp(refuse_sockets: bool) -> None:
    """A seccomp filter: no new user namespaces (unshare, clone with CLONE_NEWUSER; clone3 says
    ENOSYS so libc falls back to clone, whose flags a filter can read), no io_uring (it can
    open sockets behind the filter's back), and in basic mode no socket but AF_UNIX (EACCES).
    A nested user namespace would hand the program capabilities over its own namespaces:
    kernel attack surface it has no use for."""
    arch = SYSCALLS.get(os.uname().machine)
    if arch is None:
        return  # another architecture: no filter (documented in sandbox.py)
    audit, nr_socket, nr_clone, nr_unshare = arch
    ops = {"ld": 0x20, "jeq": 0x15, "jge": 0x35, "jset": 0x45, "ret": 0x06}  # BPF_LD|W|ABS, BPF_JMP|..|K, BPF_RET|K
    results = {"allow": 0x7FFF0000, "eperm": 0x00050000 | 1, "eacces": 0x00050000 | 13, "enosys": 0x00050000 | 38}
    program = [  # (op, k, jump-if-true label, jump-if-false label); None = the next instruction
        ("ld", 4, None, None), ("jeq", audit, None, "eperm"),            # native ABI only
        ("ld", 0, None, None), ("jge", 0x40000000, "eperm", None),       # no x32 syscalls
        ("jeq", 435, "enosys", None), ("jeq", 425, "eperm", None), ("jeq", nr_unshare, "eperm", None),
        ("jeq", nr_clone, "clone", None),
        ("jeq", nr_socket, "socket" if refuse_sockets else "allow", "allow"),
        "clone", ("ld", 16, None, None), ("jset", CLONE_NEWUSER, "eperm", "allow"),
        "socket", ("ld", 16, None, None), ("jeq", 1, "allow", "eacces"),  # AF_UNIX only
    ]
    for name in results:
        program += [name, ("ret", results[name], None, None)]
    labels, n = {}, 0
    for item in program:
        if isinstance(item, str):
            labels[item] = n
        else:
            n += 1
    code, n = [], 0
    for item in program:
        if isinstance(item, str):
            continue
        op, k, jt, jf = item
        offset = lambda label: 0 if label is None else labels[label] - n - 1  # noqa: E731
        code.append(struct.pack("HBBI", ops[op], offset(jt), offset(jf), k))
        n += 1
    buf = ctypes.create_string_buffer(b"".join(code))
    fprog = ctypes.create_string_buffer(struct.pack("HxxxxxxQ", len(code), ctypes.addressof(buf)))
    _check(libc.prctl(PR_SET_SECCOMP, 2, ctypes.addressof(fprog), 0, 0), "seccomp")


# --- the child: pid 1 of the sandbox -----------------------------------------------------


def _child(spec: dict, mode: str, err_w: int, alive_r: int) -> None:
    """Set up the jail and exec the program; any failure goes to err_w (close-on-exec)."""
    import resource

    try:
        uid, gid = spec["uid"], spec["gid"]
        owner_uid = uid if uid is not None else os.getuid()
        owner_gid = gid if gid is not None else os.getgid()
        if mode == "namespaces":
            _read_only_root(spec["tmpfs_mb"], owner_uid, owner_gid)
            workdir = "/tmp"
        else:
            workdir = spec["workdir"]
        for name, (soft, hard) in spec["rlimits"].items():
            resource.setrlimit(getattr(resource, name), (soft, hard))
        os.setsid()  # its own session and process group: kill(0, ...) reaches only the sandbox
        if uid is not None:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        _seccomp(refuse_sockets=mode == "basic")
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after setuid, which clears it
        if select.select([alive_r], [], [], 0)[0]:
            os._exit(1)  # the launcher died before the death signal was armed
        os.chdir(workdir)
        for name, text in spec["files"].items():
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
            with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as f:  # lone surrogates
                f.write(text)
        for sig in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(sig, signal.SIG_DFL)  # python ignores these; the program should not inherit that
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.closerange(3, err_w)
        os.closerange(err_w + 1, 65536)
        os.execve(spec["argv"][0], spec["argv"], dict(spec["env"], HOME=workdir, TMPDIR=workdir))
    except BaseException as e:  # noqa: BLE001 - everything must reach the launcher
        os.write(err_w, f"sandbox setup: {type(e).__name__}: {e}".encode()[:2000])
    os._exit(127)


# --- the launcher ------------------------------------------------------------------------


def _read_spec() -> dict:
    """Header from stdin, read exactly: the rest of stdin belongs to the program."""
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(0, 1)
        if not chunk:
            raise SystemExit("sandbox launcher: no spec on stdin")
        line += chunk
    size, data = int(line), b""
    while len(data) < size:
        chunk = os.read(0, size - len(data))
        if not chunk:
            raise SystemExit("sandbox launcher: truncated spec")
        data += chunk
    return json.loads(data)


def _proc_fields(pid: str):
    """(ppid, real uid) of a process from /proc, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{pid}/status") as f:
            uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
        return ppid, uid
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _pids():
    return [p for p in os.listdir("/proc") if p.isdigit()]


def _kill(pid: int, group: bool) -> None:
    """SIGKILL the program; in basic mode its whole process group (in a pid namespace, pid 1
    dying takes every process of the namespace with it)."""
    for target, fn in ((pid, os.killpg), (pid, os.kill)) if group else ((pid, os.kill),):
        try:
            fn(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _reap_descendants() -> None:
    """Basic mode: orphans re-parent to us (child subreaper); kill them until none is left."""
    me = os.getpid()
    for _ in range(10000):
        kids = [int(p) for p in _pids() if (_proc_fields(p) or (0, 0))[0] == me]
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        if not kids:
            return
        time.sleep(0.005)


def main() -> None:
    status_fd = int(sys.argv[1])
    spec = _read_spec()
    status = {"mode": spec["isolation"], "note": "", "returncode": None, "signal": None,
              "timed_out": False, "killed": False, "cpu": 0.0, "wall": 0.0, "error": ""}
    if spec["isolation"] != "basic":
        try:
            _enter_namespaces(user_ns=os.geteuid() != 0)
            status["mode"] = "namespaces"
        except OSError as e:
            if spec["isolation"] == "namespaces":
                status["error"] = f"sandbox setup: namespaces required but {e}"
                os.write(status_fd, json.dumps(status).encode())
                return
            status["mode"], status["note"] = "basic", f"no namespaces ({e})"
    if status["mode"] == "basic":
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
    waited = {signal.SIGCHLD, signal.SIGTERM}  # SIGTERM: r1cli wants the run stopped (output cap)
    signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    err_r, err_w = os.pipe()      # both close-on-exec: EOF without data means exec worked
    alive_r, alive_w = os.pipe()  # the child sees EOF on alive_r once we are gone
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(err_r)
        os.close(alive_w)
        _child(spec, status["mode"], err_w, alive_r)
    os.close(err_w)
    os.close(alive_r)
    with os.fdopen(err_r, "rb") as f:
        status["error"] = f.read().decode("utf-8", "replace")
    deadline, result = start + spec["wall"], None
    while result is None:
        got, wstatus, usage = os.wait4(pid, os.WNOHANG)
        if got:
            result = (wstatus, usage)
            break
        remaining = deadline - time.monotonic()
        info = signal.sigtimedwait(waited, remaining) if remaining > 0 else None
        if info is None or info.si_signo == signal.SIGTERM:
            status["timed_out" if info is None else "killed"] = True
            _kill(pid, group=status["mode"] == "basic")
            _, wstatus, usage = os.wait4(pid, 0)
            result = (wstatus, usage)
    status["wall"] = time.monotonic() - start
    wstatus, usage = result
    status["cpu"] = usage.ru_utime + usage.ru_stime
    if os.WIFSIGNALED(wstatus):
        status["signal"] = os.WTERMSIG(wstatus)
    else:
        status["returncode"] = os.WEXITSTATUS(wstatus)
    if status["mode"] == "basic":
        _reap_descendants()
    os.write(status_fd, json.dumps(status).encode())


if __name__ == "__main__":
    main()
