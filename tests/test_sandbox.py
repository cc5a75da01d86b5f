"""The sandbox's zygote: one pre-imported process per grader, one forked child per graded function.

Student code here is the hostile kind: each test makes it leave or look for traces, and asserts
what the next submission can see. Each probe is first shown to find what it looks for, so a probe
that cannot see anything would fail the test rather than pass it.
"""
import os

import pytest

from autograder import sandbox as sandbox_module
from autograder.sandbox import CGROUP_V1, Limits, Sandbox, StudentError, StudentProcess, bwrap_path

pytestmark = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap cannot create namespaces on this machine")

LEAVE_TRACES = '''
import ctypes, os, time
def leave():
    for folder in (".", "/tmp", "/dev/shm"):
        try:
            os.makedirs(folder + "/locked/deeper", exist_ok=True)
            open(folder + "/locked/deeper/answers.txt", "w").write("42")
            os.chmod(folder + "/locked/deeper", 0)
            os.chmod(folder + "/locked", 0)
            os.symlink("/etc/passwd", folder + "/link")
        except OSError:
            pass
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmget(0x5EED, 4096, 0o1666)     # IPC_CREAT | 0666: outlives the process unless removed
    if os.fork() == 0:                    # a daemon that keeps running after the function returns
        os.setsid()
        if os.fork() == 0:
            time.sleep(3600)
        os._exit(0)
    return 1
'''

PROBE = '''
import os
def probe():
    found = []
    for folder in (".", "/tmp", "/dev/shm"):
        try:
            found += [folder + "/" + name for name in os.listdir(folder)]
        except OSError:
            pass
    with open("/proc/sysvipc/shm") as handle:
        found += ["shm " + line.split()[0] for line in handle.read().splitlines()[1:]]
    others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid(), os.getppid())]
    for pid in others:
        try:
            state = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append("process " + pid)
    return len(found)
'''

REACH_THE_ZYGOTE = '''
import ctypes, os, stat
def reach():
    reached = 0
    parent = os.getppid()
    for path in ("/proc/%d/mem" % parent, "/proc/%d/environ" % parent):
        try:
            open(path, "rb").read(1)
            reached += 1
        except OSError:
            pass
    try:   # the zygote's control socket
        os.close(os.open("/proc/%d/fd/0" % parent, os.O_RDWR))
        reached += 1
    except OSError:
        pass
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(16, parent, None, None) == 0:     # PTRACE_ATTACH
        reached += 1
    sockets = sum(stat.S_ISSOCK(os.fstat(int(fd)).st_mode) for fd in os.listdir("/proc/self/fd")
                  if fd.isdigit() and int(fd) > 2 and _is_open(int(fd)))
    return reached * 100 + sockets

def _is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False
'''


@pytest.fixture
def sandbox():
    box = Sandbox("bwrap", Limits(call_seconds=3))
    yield box
    box.close()


def run(sandbox, program, function, *args):
    with StudentProcess(program, function, sandbox) as process:
        return process.call(*args)


def test_nothing_of_one_submission_reaches_the_next(sandbox):
    fresh = run(sandbox, PROBE, "probe")   # 0, or the read-only folders leading to a Python under /tmp
    assert run(sandbox, LEAVE_TRACES, "leave") == 1
    # Within one submission the traces are there: the probe can see them...
    assert run(sandbox, PROBE, "probe") >= fresh + 6   # ./locked ./link, the same in /dev/shm, shm, daemon
    sandbox.reset()
    # ...and the next submission finds none of them.
    assert run(sandbox, PROBE, "probe") == fresh


def test_children_cannot_read_trace_or_signal_through_the_zygote(sandbox):
    # Neither the zygote's memory, environment or descriptors, nor its control socket.
    assert run(sandbox, REACH_THE_ZYGOTE, "reach") == 0


def test_a_hung_child_is_killed_and_the_sandbox_serves_the_next(sandbox):
    hang = "def f():\n    while True:\n        pass\n"
    with StudentProcess(PROBE, "probe", sandbox) as alive:
        with pytest.raises(StudentError, match="took longer than 3 s"):
            run(sandbox, hang, "f")
        assert alive.call() >= 0        # another function of the same submission still answers
    assert run(sandbox, "def f(x):\n    return x + 1\n", "f", 41) == 42


def test_a_child_that_kills_the_zygote_harms_only_its_own_submission(sandbox):
    killer = "import os, signal, time\ndef f():\n    os.kill(os.getppid(), signal.SIGKILL)\n    time.sleep(5)\n"
    with pytest.raises(StudentError, match="stopped answering|killed"):
        run(sandbox, killer, "f")    # the whole sandbox went down with its zygote, this child too
    fresh = run(sandbox, PROBE, "probe")   # a fresh sandbox took its place
    sandbox.reset()
    assert run(sandbox, PROBE, "probe") == fresh


@pytest.mark.skipif(not os.access(CGROUP_V1 / "pids", os.W_OK), reason="no writable v1 pids cgroup: no process limit")
def test_using_up_the_process_limit_costs_only_that_submission(sandbox):
    forker = """
import os, time
def f():
    forked = 0
    while forked < 1000:
        try:
            if os.fork() == 0:
                time.sleep(3600)
        except OSError:
            return forked
        forked += 1
    return forked
"""
    fresh = run(sandbox, PROBE, "probe")
    with StudentProcess(forker, "f", sandbox) as greedy:
        assert greedy.call() < sandbox.limits.processes    # the limit held
        assert run(sandbox, "def f():\n    return 5\n", "f") == 5   # its next function still starts
    sandbox.reset()
    assert run(sandbox, PROBE, "probe") == fresh


def test_exit_statuses_are_reported(sandbox):
    with pytest.raises(StudentError, match=r"exited \(status 3\)"):
        run(sandbox, "import os\ndef f():\n    os._exit(3)\n", "f")
    with pytest.raises(StudentError, match="killed by SIGSEGV"):
        run(sandbox, "import ctypes\ndef f():\n    ctypes.string_at(0)\n", "f")


ATTACK_THE_WAY_TO_PYTHON = """
import os, tempfile
def f(top):
    done = 0
    for action in (lambda: os.rename(top, "/tmp/elsewhere"), lambda: os.chmod(top, 0),
                   lambda: open("/tmp/note.txt", "w")):
        try:
            action()
            done += 1
        except OSError:
            pass
    with tempfile.NamedTemporaryFile() as handle:   # TMPDIR still gives the student a writable place
        handle.write(b"x")
    return done
"""


def test_a_python_installed_under_tmp_cannot_be_moved_away_from_the_next_student(monkeypatch, tmp_path):
    # A clone under /tmp (CI, pytest's tmp_path) puts the venv there: the sandbox mounts it at the same
    # path, so the folders leading to it would sit on the writable /tmp tmpfs.
    if not str(tmp_path).startswith("/tmp/"):
        pytest.skip("pytest's tmp_path is not under /tmp here")
    fake_python = tmp_path / "python-root"
    fake_python.mkdir()
    roots = sandbox_module._python_roots() + [str(fake_python)]
    monkeypatch.setattr(sandbox_module, "_python_roots", lambda: roots)
    box = Sandbox("bwrap", Limits(call_seconds=5))
    try:
        top = "/" + "/".join(fake_python.parts[1:3])     # e.g. /tmp/pytest-of-root
        assert run(box, ATTACK_THE_WAY_TO_PYTHON, "f", top) == 0
        assert run(box, "import os\ndef f(p):\n    return int(os.path.isdir(p))\n", "f", str(fake_python)) == 1
    finally:
        box.close()


def test_unconfined_mode_uses_the_same_zygote(tmp_path):
    box = Sandbox("none", Limits(call_seconds=3))
    try:
        assert run(box, "import torch\ndef f(n):\n    return torch.arange(n).sum()\n", "f", 5).item() == 10
        run(box, "import os\ndef f():\n    open('left.txt', 'w').write('x')\n    return 0\n", "f")
        assert run(box, "import os\ndef f():\n    return len(os.listdir('.'))\n", "f") == 1
        box.reset()
        assert run(box, "import os\ndef f():\n    return len(os.listdir('.'))\n", "f") == 0
    finally:
        box.close()
