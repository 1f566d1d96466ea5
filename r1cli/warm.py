"""A warm start for a chain of `r1` commands: one process imports torch, transformers, TRL and
datasets once, and every `r1` command of the chain runs in a fork of it instead of importing
them again (about 7 s a command on a 2-core CPU; `make demo` runs two dozen).

    python -m r1cli.warm -- make LANE=chain ...   # runs the command; its `r1` commands start warm

The wrapper starts the warm process, runs the command with R1_WARM set to the warm process's socket,
and stops the warm process when the command ends. An `r1` command that finds R1_WARM (r1cli.cli.main)
sends its arguments, working dir, environment and its stdin / stdout / stderr to the warm process,
which forks; the fork runs the command exactly as `r1` would (same code, same exit code), in the
caller's working dir, environment and files, and the caller passes on the signals it gets
(Ctrl-C, SIGTERM) and exits with the fork's code. A fork is the same process a fresh `r1` would be,
with the libraries already imported: a stage's figures do not change (tests/test_warm.py compares
the checkpoints).

The command runs cold (imports everything itself, as without R1_WARM) when the warm process cannot
be reached, or when the caller's environment differs from the warm process's in a variable that the
libraries read when they are imported (thread counts, HF_*, TORCH_*, ...): the base's pretraining
runs with two threads beside lanes of one, so it runs cold.

Why by hand: multiprocessing's forkserver re-imports `__main__` and runs Python functions, not
commands with their own file descriptors and exit codes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

# what a stage imports; the rest of r1cli is quick to import and some of its modules open a rich Console,
# which reads its terminal when it is made, so they are imported in each fork
PRELOAD = ("torch", "transformers", "datasets", "accelerate", "trl", "transformers.models.llama.modeling_llama",
           "trl.trainer.grpo_trainer", "trl.trainer.sft_trainer", "trl.trainer.reward_trainer")
# environment variables that torch, OpenMP, transformers, datasets or TRL read when they are imported: a
# caller whose value differs from the warm process's runs cold
IMPORT_TIME_ENV = ("OMP_", "MKL_", "KMP_", "GOMP_", "TORCH", "PYTORCH_", "ATEN_", "DNNL_", "ONEDNN_", "CUDA_", "HF_",
                   "TRANSFORMERS_", "HUGGINGFACE_", "DATASETS_", "TOKENIZERS_", "TRL_", "ACCELERATE_", "PYTHON",
                   "LD_", "MALLOC_", "JE_")
ENV_VAR = "R1_WARM"
# at most this many commands run in forks at once (a lane runs one): any more run cold, so the forks of one
# warm process (each a copy of its imported libraries) cannot fill the memory
MAX_FORKS = 4
# set in a fork: its `r1` must run the command, not hand it over again
IN_FORK = False


def _import_time_env(env: dict) -> dict:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_ENV)}


def _send(conn: socket.socket, msg: dict) -> None:
    conn.sendall(json.dumps(msg).encode() + b"\n")


def _recv(conn: socket.socket, buf: bytearray) -> dict | None:
    """The next newline-ended JSON message on conn (None when it closed first)."""
    while b"\n" not in buf:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        buf.extend(chunk)
    line, _, rest = bytes(buf).partition(b"\n")
    buf[:] = rest
    return json.loads(line)


# --- the caller: an `r1` command with R1_WARM set ----------------------------------------------


def run_warm(entry: str, argv: list[str]) -> int | None:
    """Run `r1 ARGV` in a fork of the warm process, which calls ENTRY ("module:function", the caller's own
    main) with ARGV; the command's exit code, or None when it must run cold."""
    path = os.environ.get(ENV_VAR)
    if IN_FORK or not path:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        request = {"entry": entry, "argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}
        socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], [0, 1, 2])
        buf = bytearray()
        reply = _recv(conn, buf)
    except OSError:
        conn.close()
        return None
    if reply is None or "pid" not in reply:  # refused (another environment) or gone: run cold
        conn.close()
        return None
    pid = reply["pid"]

    def forward(sig, _frame):  # to the fork's process group, as the terminal would to a cold `r1` and its children
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    while True:
        try:
            done = _recv(conn, buf)
            break
        except InterruptedError:
            continue
    conn.close()
    if done is None:  # the warm process died under the command
        print("error: the warm r1 process stopped while the command ran; run it again", file=sys.stderr)
        return 1
    return done["exit"]


# --- the warm process ----------------------------------------------------------------------------


def _run_fork(conn: socket.socket, listener: socket.socket, request: dict, fds: list[int]) -> None:
    """In the fork: become the caller's `r1` (its files, dir, environment, signals) and run the command."""
    global IN_FORK
    IN_FORK = True
    code = 1
    try:  # everything, the set-up too: a fork must never return into the warm process's loop
        listener.close()
        conn.close()
        os.setpgid(0, 0)  # the caller passes Ctrl-C on: the terminal's own must not reach this process twice
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL if sig != signal.SIGINT else signal.default_int_handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["r1", *request["argv"]]
        import importlib

        module, _, function = request["entry"].partition(":")
        getattr(importlib.import_module(module), function)(request["argv"])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, (int, type(None))):
            print(e.code, file=sys.stderr)
    except BaseException:  # what an uncaught exception does in a fresh process: a traceback, exit 1
        sys.excepthook(*sys.exc_info())
    finally:
        import atexit

        atexit._run_exitfuncs()
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except Exception:
                pass
        os._exit(code)


def serve(path: str) -> None:
    """Import the libraries, then fork one process per `r1` command that connects to PATH, until SIGTERM."""
    import ctypes
    import importlib

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: end with the wrapper
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the command running, not for this process
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)  # bound before the imports: a caller that comes early waits for them, not runs cold
    before = dict(os.environ)
    for name in PRELOAD:
        importlib.import_module(name)
    # what the imports set themselves (torch: TORCHINDUCTOR_CACHE_DIR) is set again in each fork, as a cold
    # import would; the callers are compared with the environment the imports read
    added = {k: v for k, v in os.environ.items() if k not in before}
    env = _import_time_env(before)
    running: dict[int, socket.socket] = {}  # fork pid -> its caller's connection
    try:
        _serve(listener, env, added, running)
    finally:  # stopped (SIGTERM) with commands running: they stop too, as their callers are told
        for pid in running:
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def _serve(listener: socket.socket, env: dict, added: dict, running: dict[int, socket.socket]) -> None:
    import select

    stopped: set[int] = set()  # forks told to stop: their callers' closed connections are not watched again
    while True:
        watched = [c for p, c in running.items() if p not in stopped]
        ready, _, _ = select.select([listener, *watched], [], [], 0.2)
        for conn in ready:
            if conn is listener:
                conn, _ = listener.accept()
                msg, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
                request = json.loads(msg)
                if len(fds) != 3 or _import_time_env(request["env"]) != env or len(running) >= MAX_FORKS:
                    for fd in fds:
                        os.close(fd)
                    _send(conn, {"cold": "environment"})
                    conn.close()
                    continue
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _run_fork(conn, listener, {**request, "env": {**added, **request["env"]}}, fds)
                for fd in fds:
                    os.close(fd)
                running[pid] = conn
                _send(conn, {"pid": pid})
            else:  # a caller went away before its command ended (killed): stop the command
                pid = next(p for p, c in running.items() if c is conn)
                stopped.add(pid)
                try:
                    os.killpg(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for pid, conn in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                try:
                    _send(conn, {"exit": code if code >= 0 else 128 - code})
                except OSError:
                    pass
                conn.close()
                del running[pid]
                stopped.discard(pid)


# --- the wrapper ----------------------------------------------------------------------------------


def wrap(command: list[str]) -> int:
    """Run COMMAND with R1_WARM set to a warm process started for it; the command's exit code."""
    if sys.platform != "linux":  # fork after torch's imports is safe on Linux only (macOS: Objective-C runtime)
        return subprocess.call(command)
    tmp = tempfile.mkdtemp(prefix="r1-warm-")
    path = os.path.join(tmp, "sock")
    server = subprocess.Popen([sys.executable, "-m", "r1cli.warm", "--serve", path])
    try:
        for _ in range(250):  # the socket is bound before the imports: this takes a fraction of a second
            if os.path.exists(path) or server.poll() is not None:
                break
            time.sleep(0.02)
        env = dict(os.environ, **({ENV_VAR: path} if server.poll() is None else {}))
        proc = subprocess.Popen(command, env=env)
        # Ctrl-C reaches the command from the terminal (make stops its recipes); SIGTERM is passed on. A Python
        # handler, not SIG_IGN: the command was started with the default dispositions
        signal.signal(signal.SIGINT, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda sig, _frame: proc.send_signal(sig))
        code = proc.wait()
        return code if code >= 0 else 128 - code
    finally:
        server.terminate()
        server.wait()
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)


def main(args: list[str]) -> int:
    if len(args) == 2 and args[0] == "--serve":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        serve(args[1])
        return 0
    if len(args) < 2 or args[0] != "--":
        print("usage: python -m r1cli.warm -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    return wrap(args[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
