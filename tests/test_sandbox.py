"""The code sandbox and the `code` reward: normal scoring, then adversarial programs.

Every adversarial program is written so that if its attack worked it would print the
expected output (and score 1): a reward of 0 shows the attack failed. After each one the
host is checked: no file it tried to create exists, no process it started is alive.
CI runs as root, so these assert the full (namespaces + own uid) jail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from r1cli.errors import UserError
from r1cli.rewards import sandbox
from r1cli.rewards.code import code_reward, extract_code, normalize_output, parse_tests

ROOT = os.geteuid() == 0
FAST = sandbox.Limits(timeout=1.5)
ADD_TESTS = [{"input": "1 2\n", "output": "3\n"}, {"input": "5 5\n", "output": "10\n"},
             {"input": "0 0\n", "output": "0"}, {"input": "2 2\n", "output": "4"}]
ADD = "a, b = map(int, input().split())\nprint(a + b)"


def answer(src: str, lang: str = "python") -> str:
    return f"<think>\nadd the numbers\n</think>\nHere is my solution:\n```{lang}\n{src}\n```\n"


@pytest.fixture(scope="module")
def code():
    return code_reward(timeout=1.5, workers=2)


def score(code, src, tests=ADD_TESTS, lang="python"):
    return code(["p"], [answer(src, lang)], tests=[tests], domain=["code"])[0]


def marker() -> str:
    return "r1x" + uuid.uuid4().hex[:10]  # fits a 15-character process name


def processes_named(name: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if name in Path(f"/proc/{pid}/comm").read_text() or name in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                found.append(int(pid))
        except OSError:
            pass
    return [p for p in found if p != os.getpid()]


def assert_host_clean(name: str):
    """No process and no file carrying `name` anywhere the program could have reached."""
    assert processes_named(name) == []
    for d in ["/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/", os.path.expanduser("~"), os.getcwd(), "/work/main"]:
        assert not (Path(d) / name).exists(), f"{d}/{name} was written"
    leftovers = [p for p in os.listdir(tempfile.gettempdir()) if p.startswith(f"r1-sandbox-{os.getpid()}-")]
    assert leftovers == []


# --- normal scoring ------------------------------------------------------------------------


def test_correct_program_scores_one(code):
    assert score(code, ADD) == 1.0


def test_half_the_cases_scores_half(code):
    assert score(code, "a, b = map(int, input().split())\nprint(a + b if a < 2 else -1)") == 0.5


def test_no_code_scores_zero_and_other_domains_are_none(code):
    drafted_only = "<think>\n```python\nprint(3)\n```\n</think>\nThe answer is 3."
    completions = ["I think it is 3.", drafted_only, answer(ADD), answer(ADD), answer(ADD)]
    got = code(["p"] * 5, completions, tests=[ADD_TESTS] * 5, domain=["code", "code", "math", None, "general"])
    assert got == [0.0, 0.0, None, 1.0, None]
    # no domain column at all: every row with tests is scored; a row without tests is not
    assert code(["p", "p"], [answer(ADD), answer(ADD)], tests=[ADD_TESTS, None]) == [1.0, None]


def test_test_formats_and_output_normalization(code):
    assert score(code, ADD, json.dumps(ADD_TESTS)) == 1.0
    apps = {"inputs": ["1 2\n", "3 4\n"], "outputs": ["3\n", "7\n"]}
    assert score(code, ADD, apps) == 1.0
    assert score(code, "print('3   \\n\\n\\n')", [{"input": "", "output": "3"}]) == 1.0
    assert score(code, "print('  3')", [{"input": "", "output": "3"}]) == 0.0  # leading space counts
    assert score(code, "print(3)\nraise SystemExit(1)", [{"input": "", "output": "3"}]) == 0.0  # must exit 0
    assert normalize_output("a  \r\nb\t\n\n") == "a\nb"


def test_which_block_runs(code):
    two = "```python\nprint(0)\n```\nBetter:\n```python\n" + ADD + "\n```\nOutput:\n```text\n3\n```"
    assert extract_code(two) == ("python", ADD + "\n")
    assert extract_code("```\nprint(1)\n```") == ("python", "print(1)\n")
    assert extract_code("```cobol\nDISPLAY 1.\n```") is None
    assert extract_code("```python\nprint(1)\n") is None  # unclosed: truncated completion
    chat = [{"role": "assistant", "content": answer(ADD)}]
    assert code(["p"], [chat], tests=[ADD_TESTS]) == [1.0]
    assert score(code, 'read a b; echo $((a + b))', lang="bash") == 1.0


def test_odd_text_does_not_break_the_reward(code):
    odd = ["```python\nprint('\ud800')\n```", "```python\n\x00\n```", "```\n```", "``````", "x" * 50000,
           "```py  extra words\nprint(input())\n```", "\ud800" * 10 + "```python\nprint(1)\n```"]
    tests = [{"input": "\ud800\n", "output": "1"}]
    assert code(["p"] * len(odd), odd, tests=[tests] * len(odd)) == [0.0] * 6 + [1.0]


def test_bad_tests_are_user_errors(code):
    with pytest.raises(UserError, match="tests"):
        code(["p"], [answer(ADD)], domain=["code"])
    for bad in ["{not json", [{"input": "1"}], "3", [{"input": {"a": 1}, "output": "1"}]]:
        with pytest.raises(UserError, match="row 0"):
            code(["p"], [answer(ADD)], tests=[bad])
    assert parse_tests([]) is None and parse_tests("") is None


def test_many_completions_in_one_batch(code):
    progs = [ADD, "print(3)", "x = input()\nprint(sum(map(int, x.split())))"] * 4
    got = code(["p"] * len(progs), [answer(p) for p in progs], tests=[ADD_TESTS] * len(progs))
    assert got == [1.0, 0.25, 1.0] * 4


# --- adversarial programs ----------------------------------------------------------------------


def test_infinite_loop_is_stopped_at_its_limits():
    r = sandbox.run("while True: pass\nprint('done')", limits=FAST)
    assert r.timed_out and r.signal == signal.SIGKILL and r.stdout == ""
    # the CPU limit on its own (a generous wall): the kernel stops it, not the wall clock
    r = sandbox.run("while True: pass", limits=sandbox.Limits(timeout=30, cpu_time=1))
    assert not r.timed_out and r.signal in (signal.SIGXCPU, signal.SIGKILL)


def test_fork_bomb_is_capped_and_leaves_nothing():
    name = marker()
    count = f"""
import os, time
open('/proc/self/comm', 'w').write('{name}')
n = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
except OSError:
    print(n)
"""
    r = sandbox.run(count, limits=FAST)
    assert r.ok and 0 < int(r.stdout) < FAST.max_processes
    bomb = f"import os\nopen('/proc/self/comm', 'w').write('{name}')\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    r = sandbox.run(bomb, limits=FAST)
    assert r.timed_out
    assert_host_clean(name)


def test_memory_bomb_fails():
    r = sandbox.run("x = bytearray(2 * 10**9)\nprint('allocated')", limits=FAST)
    assert r.returncode == 1 and "MemoryError" in r.stderr and "allocated" not in r.stdout
    r = sandbox.run("x = []\nwhile True:\n    x.append(' ' * 10**7)", limits=FAST)
    assert r.returncode == 1 and "MemoryError" in r.stderr


def test_huge_output_is_capped():
    r = sandbox.run("while True: print('x' * 10000)", limits=FAST)
    assert r.output_truncated and not r.ok and len(r.stdout) + len(r.stderr) <= FAST.output_bytes


def test_writes_outside_the_workdir_fail():
    name = marker()
    canary = Path("/work/main" if Path("/work/main").is_dir() else os.getcwd()) / f".{name}"
    canary.write_text("canary\n")
    canary.chmod(0o666)  # writable by anyone: only the read-only mount can stop the write
    try:
        targets = [f"{d}/{name}" for d in ["/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/", "/root", os.getcwd()]]
        src = f"""
import os
for path in {targets!r} + [os.path.expanduser('~/../{name}')]:
    try:
        open(path, 'w').write('x')
    except OSError:
        pass
open('{name}', 'w').write('x')   # its own working dir is fine
try:
    open('{canary}', 'a').write('pwned\\n')
    print('pwned')
except OSError as e:
    print(type(e).__name__)
"""
        r = sandbox.run(src, limits=FAST)
        assert r.ok and r.stdout.strip() in ("OSError", "PermissionError"), r.stdout + r.stderr
        assert canary.read_text() == "canary\n"
        assert_host_clean(name)
    finally:
        canary.unlink()


def test_disk_exhaustion_fails():
    name = marker()
    src = f"""
big = open('{name}', 'wb')
try:
    while True:
        big.write(b'x' * 10**6)
except OSError as e:
    print('fsize', e.errno)
big.close()
try:
    for i in range(1000):
        open(f'{name}{{i}}', 'wb').write(b'y' * 10**7)
except OSError as e:
    print('disk', e.errno)
"""
    r = sandbox.run(src, limits=FAST)
    lines = r.stdout.split()
    assert lines[:2] == ["fsize", "27"]  # EFBIG at the file-size limit
    if r.mode == "namespaces":
        assert lines[2:] == ["disk", "28"]  # ENOSPC when its tmpfs is full
    assert_host_clean(name)


@pytest.fixture
def listener():
    """A real TCP server on the host's loopback: a connect that works would reach it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.5)
    yield server
    server.close()


def test_no_network(listener):
    port = listener.getsockname()[1]
    src = f"""
import socket
for family, addr in [(socket.AF_INET, ('127.0.0.1', {port})), (socket.AF_INET, ('8.8.8.8', 53)), (socket.AF_INET6, ('::1', {port}))]:
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(1)
        s.connect(addr)
        print('connected', addr)
    except OSError as e:
        print('refused', e.errno)
"""
    r = sandbox.run(src, limits=FAST)
    assert r.ok and "connected" not in r.stdout and r.stdout.count("refused") == 3
    with pytest.raises(socket.timeout):
        listener.accept()


def test_environment_is_scrubbed(monkeypatch):
    secret = marker()
    monkeypatch.setenv("R1_SANDBOX_TEST_SECRET", secret)
    src = """
import os
found = [v for v in os.environ.values() if 'r1x' in v]
for pid in os.listdir('/proc'):
    try:
        found += [x for x in open(f'/proc/{pid}/environ', 'rb').read().decode(errors='replace').split('\\0') if 'r1x' in x]
    except OSError:
        pass
print(json.dumps({"names": sorted(os.environ), "found": found}))
"""
    r = sandbox.run("import json" + src, limits=FAST)
    assert r.ok and secret not in r.stdout
    seen = json.loads(r.stdout)
    assert seen["found"] == [] and set(seen["names"]) <= {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL"}


def test_killing_its_parent_or_the_host_fails():
    victim = subprocess.Popen(["sleep", "60"])
    try:
        src = f"""
import os, signal
hit = []
for pid in [os.getppid(), {os.getpid()}, {victim.pid}, -1, 0, 1]:
    try:
        os.kill(pid, signal.SIGKILL)
        hit.append(pid)
    except OSError:
        pass
try:
    os.setuid(0)
    hit.append('root')
except OSError:
    pass
print(os.getuid(), hit)
"""
        r = sandbox.run(src, limits=FAST)
        assert victim.poll() is None  # the host process it aimed at is alive (and so are we)
        assert str(victim.pid) not in r.stdout and "root" not in r.stdout
        if ROOT:
            assert r.stdout.split()[0] != "0"
    finally:
        victim.kill()
        victim.wait()


def test_no_new_namespaces_or_privileges():
    src = """
import ctypes, subprocess
libc = ctypes.CDLL(None, use_errno=True)
print(libc.unshare(0x10000000), ctypes.get_errno())           # CLONE_NEWUSER
print(subprocess.run(['unshare', '-Ur', 'id', '-u'], capture_output=True).returncode != 0)
print(subprocess.run(['su', '-c', 'id -u'], capture_output=True, stdin=subprocess.DEVNULL).returncode != 0)
"""
    r = sandbox.run(src, limits=FAST)
    assert r.ok and r.stdout.split() == ["-1", "1", "True", "True"], r.stdout + r.stderr


def test_setsid_double_fork_does_not_survive():
    name = marker()
    src = f"""
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open('/proc/self/comm', 'w').write('{name}')
        open('started', 'w').write('1')
        time.sleep(60)
        os._exit(0)
    os._exit(0)
while not os.path.exists('started'):
    time.sleep(0.01)
print('daemon started')
"""
    r = sandbox.run(src, limits=FAST)
    assert r.ok and r.stdout == "daemon started\n"
    assert_host_clean(name)


def test_every_attack_scores_zero_in_one_concurrent_batch(code, monkeypatch, listener):
    """The reward path: all attacks at once on the thread pool, each built to print the
    expected output if it got through."""
    name = marker()
    monkeypatch.setenv("R1_SANDBOX_TEST_SECRET", name)
    win = f"print('{name}')"
    attacks = {
        "loop": f"while True: pass\n{win}",
        "fork bomb": f"import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n{win}",
        "memory": f"x = bytearray(2 * 10**9)\n{win}",
        "output": f"{win}\nwhile True: print('x' * 10000)",
        "write": f"open('/tmp/{name}', 'w').write('x')\nopen('/work/main/{name}', 'w').write('x')\n{win}",
        "socket": f"import socket\nsocket.create_connection(('127.0.0.1', {listener.getsockname()[1]}), timeout=1)\n{win}",
        "env": "import os\nprint(os.environ.get('R1_SANDBOX_TEST_SECRET'))",
        "kill parent": f"import os\nos.kill(os.getppid(), 9)\nos.kill({os.getpid()}, 9)\n{win}",
        "disk": f"open('big', 'wb').write(b'x' * 10**9)\n{win}",
    }
    tests = [{"input": "", "output": name}]
    got = code(["p"] * len(attacks), [answer(src) for src in attacks.values()], tests=[tests] * len(attacks))
    assert dict(zip(attacks, got)) == dict.fromkeys(attacks, 0.0)
    assert score(code, win, tests) == 1.0  # the same check does pass an honest program
    assert_host_clean(name)


@pytest.mark.skipif(not ROOT, reason="own uids are a root-only measure")
def test_concurrent_sandboxes_get_their_own_uids():
    uids, threads = [], []
    src = "import os, time\ntime.sleep(0.3)\nprint(os.getuid(), os.getgid(), os.getgroups())"
    for _ in range(4):
        threads.append(threading.Thread(target=lambda: uids.append(sandbox.run(src, limits=FAST).stdout.split(maxsplit=2))))
        threads[-1].start()
    for t in threads:
        t.join()
    assert len({u for u, _, _ in uids}) == 4
    for uid, gid, groups in uids:
        assert sandbox.UID_BASE <= int(uid) < sandbox.UID_BASE + sandbox.UID_SLOTS and gid == uid and groups.strip() == "[]"
        assert sandbox.uid_processes(int(uid)) == []


def test_full_isolation_here():
    """These machines (CI too) give the namespaces jail; `info` says what runs."""
    got = sandbox.info()
    assert got["mode"] == "namespaces" and got["interpreters"]["python"]
    with pytest.raises(ValueError, match="unknown language"):
        sandbox.run("x", language="cobol")


@pytest.mark.skipif(not ROOT, reason="root-only: basic mode as root is the no-namespaces fallback with a uid drop")
def test_basic_mode_still_refuses_sockets_and_kills_leftovers():
    name = marker()
    src = f"""
import os, socket, time
try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    print('socket')
except OSError as e:
    print('refused', e.errno)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open('/proc/self/comm', 'w').write('{name}')
        time.sleep(60)
    os._exit(0)
time.sleep(0.2)
print(sorted(os.environ))
"""
    r = sandbox.run(src, limits=FAST, isolation="basic")
    assert r.mode == "basic" and r.ok and r.stdout.startswith("refused 13")
    assert "SECRET" not in r.stdout
    assert_host_clean(name)


@pytest.mark.skipif(not (ROOT and shutil.which("setpriv")), reason="needs root to become an ordinary user")
def test_as_an_ordinary_user(listener):
    """A laptop user: the sandbox module alone (stdlib only) under uid 65534 with the
    system python; user namespaces give the same jail, else basic mode still refuses
    sockets and kills a setsid daemon."""
    name = marker()
    copy = Path(tempfile.mkdtemp())
    copy.chmod(0o755)  # a checkout under /root would be out of the user's reach: copy the two files
    for f in ("sandbox.py", "sandbox_jail.py"):
        shutil.copy(Path(sandbox.__file__).with_name(f), copy / f)
    script = f"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("sandbox", {str(copy / "sandbox.py")!r})
sb = importlib.util.module_from_spec(spec)
sys.modules["sandbox"] = sb
spec.loader.exec_module(sb)
src = '''
import os, socket, time
try:
    socket.create_connection(("127.0.0.1", {listener.getsockname()[1]}), timeout=1)
    print("connected")
except OSError as e:
    print("refused")
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open("/proc/self/comm", "w").write("{name}")
        time.sleep(60)
    os._exit(0)
time.sleep(0.2)
'''
r = sb.run(src, limits=sb.Limits(timeout=3))
print(json.dumps({{"mode": r.mode, "stdout": r.stdout, "ok": r.ok}}))
"""
    out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-I", "-c", script],
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=60)
    shutil.rmtree(copy)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["ok"] and got["stdout"] == "refused\n" and got["mode"] in ("namespaces", "basic")
    assert processes_named(name) == []


# --- disk exhaustion, daemons that outlive the run, signals to other processes ------------------

# basic mode (no namespaces) is tested as root only: there the program still gets a uid of its own;
# as an ordinary user `kill -9 -1` in basic mode would reach every process of that user (documented)
MODES = ["auto", pytest.param("basic", marks=pytest.mark.skipif(not ROOT, reason="basic mode drops to a uid only as root"))]


def test_disk_exhaustion_in_the_shell_and_by_inodes_fails():
    """dd past the file-size limit, many files up to the tmpfs size, fallocate, and a million empty
    files: each stops with an error inside the sandbox; nothing is left on the host."""
    name = marker()
    sh = f"""
dd if=/dev/zero of={name}.big bs=1M count=100 2>/dev/null; echo "dd $?"
fallocate -l 10G {name}.fa 2>/dev/null; echo "fallocate $?"
for i in $(seq 1 100); do
  dd if=/dev/zero of={name}.$i bs=1M count=15 2>/dev/null || {{ echo "full at $i"; break; }}
done
"""
    r = sandbox.run(sh, language="bash", limits=FAST)
    lines = r.stdout.splitlines()
    assert lines[0] == f"dd {128 + signal.SIGXFSZ}"  # killed by SIGXFSZ at the 16 MB file-size limit
    assert lines[1] == f"fallocate {128 + signal.SIGXFSZ}"  # so is a 10 GB fallocate
    assert lines[2].startswith("full at ") and int(lines[2].split()[-1]) <= FAST.disk_mb // 15 + 1, r.stdout
    py = f"""
import os
n = 0
try:
    while n < 10**6:
        open('{name}%d' % n, 'w').close()
        n += 1
except OSError as e:
    print(e.errno, n < 10**6)
"""
    r = sandbox.run(py, limits=FAST)
    assert r.ok and r.stdout.split() == ["28", "True"], r.stdout + r.stderr  # ENOSPC: out of inodes
    assert_host_clean(name)


@pytest.mark.parametrize("isolation", MODES)
def test_daemons_do_not_outlive_the_run(isolation):
    """nohup, setsid, a double fork, disown and a process ignoring SIGHUP/SIGTERM: all five are
    running when the program exits (it counts them), none is alive after the run."""
    name = marker()
    src = f"""
count() {{ c=0; for f in /proc/[0-9]*/cmdline; do IFS= read -r -d '' a < "$f" 2>/dev/null && [[ $a == {name} ]] && c=$((c+1)); done; echo $c; }}
nohup bash -c 'exec -a {name} sleep 60' >/dev/null 2>&1 &
setsid bash -c 'exec -a {name} sleep 60' >/dev/null 2>&1 < /dev/null &
( ( exec -a {name} sleep 60 ) & )
bash -c 'exec -a {name} sleep 60' & disown
( trap '' HUP TERM INT; exec -a {name} sleep 60 ) &
for i in $(seq 200); do [ "$(count)" -ge 5 ] && break; sleep 0.02; done
echo "alive $(count)"
"""
    r = sandbox.run(src, language="bash", limits=FAST, isolation=isolation)
    assert r.ok and r.stdout == "alive 5\n", (r.stdout, r.stderr)
    assert_host_clean(name)


@pytest.mark.parametrize("isolation", MODES)
def test_kill_all_and_kill_parent_reach_nothing_outside(isolation):
    """`kill -9 -1`, a kill of its parent, of the test process and of a host process, while another
    sandbox runs beside it: the program goes on, every other process (the other sandbox included)
    is untouched, and the sandbox works afterwards."""
    victim = subprocess.Popen(["sleep", "60"])
    neighbour: list = []
    beside = threading.Thread(target=lambda: neighbour.append(
        sandbox.run("import time\ntime.sleep(1)\nprint('neighbour ok')", limits=sandbox.Limits(timeout=5))))
    beside.start()
    try:
        time.sleep(0.3)  # the neighbour is running
        src = f"""
kill -9 -1 2>/dev/null
kill -9 $PPID 2>/dev/null; echo "parent $?"
kill -9 {os.getpid()} 2>/dev/null; echo "tester $?"
kill -9 {victim.pid} 2>/dev/null; echo "victim $?"
kill -STOP {victim.pid} 2>/dev/null
echo survived
"""
        r = sandbox.run(src, language="bash", limits=FAST, isolation=isolation)
        beside.join(10)
        assert r.stdout.splitlines()[-1] == "survived" and "victim 0" not in r.stdout and "tester 0" not in r.stdout
        assert victim.poll() is None and Path(f"/proc/{victim.pid}/status").read_text().count("State:\tS") == 1
        assert neighbour and neighbour[0].ok and neighbour[0].stdout == "neighbour ok\n"
        assert sandbox.run("print(6 * 7)", limits=FAST, isolation=isolation).stdout == "42\n"
    finally:
        victim.kill()
        victim.wait()
