"""The sandbox's zygote: one pre-imported process per grader, one forked child per graded function.

Student code here is the hostile kind: each test makes it leave or look for traces, and asserts
what the next submission can see. Each probe is first shown to find what it looks for, so a probe
that cannot see anything would fail the test rather than pass it.
"""
import ast
import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from autograder.sandbox import bwrap
from autograder.sandbox.cgroups import CGROUP_V1
from autograder.sandbox.inside import huge_pages
from autograder.sandbox.bwrap import bwrap_path
from autograder.sandbox.limits import Limits
from autograder.sandbox.student_process import NotebookProcess, StudentError
from autograder.sandbox.zygote_host import Sandbox
from tests.sandbox_processes import process_table, zygotes

needs_bwrap = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap cannot create namespaces on this machine")

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
    me = os.getuid()   # without namespaces the host's files, objects and processes are visible: count ours
    for folder in (".", "/tmp", "/dev/shm"):
        try:
            found += [folder + "/" + name for name in os.listdir(folder)
                      if os.lstat(folder + "/" + name).st_uid == me]
        except OSError:
            pass
    with open("/proc/sysvipc/shm") as handle:
        header, *rows = handle.read().splitlines()
    uid_column = header.split().index("uid")
    found += ["shm " + row.split()[0] for row in rows if int(row.split()[uid_column]) == me]
    others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != 1]
    for pid in others:
        try:
            status = open("/proc/%s/status" % pid).read()
            state = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()[0]
            group = os.getpgid(int(pid))
        except OSError:
            continue
        uid = int(status.split("Uid:")[1].split()[0])
        if uid == me and state != "Z" and group != os.getpgid(0):   # not one of this notebook's own processes
            found.append("process " + pid)
    return len(found)
'''

REACH_THE_ZYGOTE = '''
import ctypes, os, signal, stat, time
def reach():
    """Everything a child can get hold of in any other process of the sandbox (the zygote above all)."""
    me, reached = os.getpid(), []
    libc = ctypes.CDLL(None, use_errno=True)
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            if os.getpgid(int(entry)) == os.getpgid(0):   # this notebook's own processes hold nothing of others
                continue
        except OSError:
            continue
        pid = int(entry)
        for path in ("/proc/%d/mem" % pid, "/proc/%d/environ" % pid):
            try:
                open(path, "rb").read(1)
                reached.append(path)
            except OSError:
                pass
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            fds = []
        for fd in fds:   # e.g. a copy of the zygote's control socket
            try:
                os.close(os.open("/proc/%d/fd/%s" % (pid, fd), os.O_RDWR))
                reached.append("fd %d/%s" % (pid, fd))
            except OSError:
                pass
        if libc.ptrace(16, pid, None, None) == 0:     # PTRACE_ATTACH
            reached.append("ptrace %d" % pid)
        pidfd = libc.syscall(434, pid, 0)              # pidfd_open, then pidfd_getfd: copy its descriptors
        for fd in range(8) if pidfd >= 0 else ():
            if libc.syscall(438, pidfd, fd, 0) >= 0:
                reached.append("copied fd %d of %d" % (fd, pid))
        try:   # pausing the zygote would let a student answer the grader in its place
            os.kill(pid, signal.SIGSTOP)
            time.sleep(0.1)
            if open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] == "T":
                reached.append("stopped %d" % pid)
            os.kill(pid, signal.SIGCONT)
        except OSError:
            pass
    sockets = sum(stat.S_ISSOCK(os.fstat(int(fd)).st_mode) for fd in os.listdir("/proc/self/fd")
                  if fd.isdigit() and int(fd) > 2 and _is_open(int(fd)))
    return reached + ["socket"] * sockets

def _is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False
'''


def start_sandbox(request, mode: str) -> Sandbox:
    if mode == "bwrap" and bwrap_path() is None:
        pytest.skip("bubblewrap cannot create namespaces on this machine")
    if mode == "uid":
        request.getfixturevalue("others_can_run_python")
    return Sandbox(mode, Limits(call_seconds=3))


@pytest.fixture(params=["bwrap", "uid"])
def sandbox(request):
    """Each test runs in both confinements: bubblewrap's namespaces, and a user of its own without them."""
    box = start_sandbox(request, request.param)
    yield box
    box.close()


@contextlib.contextmanager
def opened(sandbox, program, function):
    """`function` of a one-cell notebook holding `program`, run in `sandbox`."""
    with NotebookProcess([{"number": 1, "source": program}], sandbox) as notebook:
        yield notebook.open(function)


def run(sandbox, program, function, *args):
    with opened(sandbox, program, function) as process:
        return process.call(*args)


@pytest.mark.quick
def test_nothing_of_one_submission_reaches_the_next(sandbox):
    fresh = run(sandbox, PROBE, "probe")   # 0, or the read-only folders leading to a Python under /tmp
    assert run(sandbox, LEAVE_TRACES, "leave") == 1
    # Within one submission the traces are there: the probe can see them...
    assert run(sandbox, PROBE, "probe") >= fresh + 6   # ./locked ./link, the same in /dev/shm, shm, daemon
    sandbox.reset()
    # ...and the next submission finds none of them.
    assert run(sandbox, PROBE, "probe") == fresh


def test_children_cannot_read_trace_or_signal_through_the_zygote(sandbox):
    # No process's memory, environment or descriptors (the control socket), no tracing, no pausing.
    assert run(sandbox, REACH_THE_ZYGOTE, "reach") == []


REACH_A_GPU = '''
import ctypes, errno, fcntl, os
def reach():
    """What a child gets of a GPU: the driver's ioctls (NVIDIA's of type 'F', its unified memory's plain
    numbers), the GPU count through torch's own CUDA call and through CUDA's library (each in a process of its
    own: a refused driver may crash it), and what torch says and does."""
    reached = []
    fd = os.open("/dev/null", os.O_RDONLY)
    for name, request in (("driver ioctl", 0xC030462B), ("uvm ioctl", 0x30000001)):   # RM_ALLOC, UVM_INITIALIZE
        try:
            fcntl.ioctl(fd, request)   # /dev/null answers ENOTTY, the filter EPERM
            reached.append(name)
        except OSError as error:
            if error.errno != errno.EPERM:
                reached.append(name)
    os.close(fd)
    os.environ["CUDA_VISIBLE_DEVICES"] = "0"
    for name in ("torch._C", "libcuda"):
        pid = os.fork()
        if pid == 0:
            count = 0
            try:
                if name == "libcuda":
                    cuda, found = ctypes.CDLL("libcuda.so.1"), ctypes.c_int(0)
                    if cuda.cuInit(0) == 0 and cuda.cuDeviceGetCount(ctypes.byref(found)) == 0:
                        count = found.value
                else:
                    import torch
                    count = torch._C._cuda_getDeviceCount()
            finally:
                os._exit(1 if count > 0 else 0)
        if os.waitpid(pid, 0)[1] == 1 << 8:
            reached.append(name)
    import torch
    if torch.cuda.is_available() or torch.cuda.device_count():
        reached.append("torch.cuda")
    try:   # a student's own tensor on the GPU: an error to read, not a crash
        torch.zeros(1, device="cuda")
        reached.append("cuda tensor")
    except (RuntimeError, AssertionError):
        pass
    return reached
'''


@pytest.mark.quick
def test_student_code_reaches_no_gpu(sandbox):
    # The GPU (where the machine has one and its /dev shows it, as without namespaces) holds the grader's pipeline.
    import torch

    outside = subprocess.run([sys.executable, "-c", REACH_A_GPU + "\nprint(reach())"], capture_output=True,
                             text=True, timeout=120)
    found = ast.literal_eval(outside.stdout.strip().splitlines()[-1])
    gpu = torch.version.cuda is not None and os.path.exists("/dev/nvidiactl")
    assert found == ["driver ioctl", "uvm ioctl"] + (["torch._C", "libcuda", "torch.cuda", "cuda tensor"] if gpu
                                                     else []), found
    assert run(sandbox, REACH_A_GPU, "reach") == []


LEAVE_ELSEWHERE = '''
import ctypes, os
def leave():
    """Every place outside /sandbox, /tmp and /dev/shm (which reset() empties) where a trace would stay."""
    left = []
    for folder in ("/", "/dev", "/root", "/etc", "/usr", "/runner"):
        try:
            with open(os.path.join(folder, "note-for-the-next-student"), "w") as handle:
                handle.write("the hidden inputs were ...")
            left.append(folder)
        except OSError:
            pass
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mq_open(b"/note", 0o100 | 0o2, 0o600, None) >= 0:          # O_CREAT | O_RDWR
        left.append("POSIX message queue")
    if libc.syscall(248, b"user", b"note", b"secret", 6, -4) >= 0:   # add_key to the user keyring
        left.append("user keyring")
    if libc.syscall(250, 1, b"shared-notes") >= 0:                   # keyctl: join a named session keyring
        left.append("named keyring")
    return left
'''


def test_nothing_can_be_left_outside_the_places_reset_empties(sandbox):
    assert run(sandbox, LEAVE_ELSEWHERE, "leave") == []


def huge_pages_unsupported() -> str | None:
    """Why this machine cannot collapse memory into huge pages, or None."""
    major, minor = (int(part) for part in os.uname().release.split(".")[:2])
    if (major, minor) < (6, 1):
        return f"MADV_COLLAPSE needs Linux 6.1; this is {os.uname().release}"
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as setting:
            if "[never]" in setting.read():
                return "transparent huge pages are set to never"
    except OSError:
        return "this kernel has no transparent huge pages"
    return None


def zygote_huge_mib(sandbox) -> float:
    """The host's view of the sandbox's zygote: its anonymous memory in huge pages, in MiB."""
    found = zygotes(process_table(), under=sandbox.process.pid)
    assert len(found) == 1, found
    with open(f"/proc/{found[0]}/smaps_rollup") as rollup:
        return int(rollup.read().split("AnonHugePages:")[1].split()[0]) / 1024


def test_the_private_memory_to_collapse_is_the_heap_and_anonymous_mappings():
    maps = """55d0a0000000-55d0a4000000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000800000 rw-p 00000000 00:00 0
7f0000800000-7f0000a00000 r--p 00000000 00:00 0
7f0001000000-7f0001400000 rw-s 00000000 00:05 12                         /dev/zero (deleted)
7f0002000000-7f0002200000 rw-p 00020000 fd:01 77                         /usr/lib/libtorch_cpu.so
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
"""
    assert list(huge_pages.anonymous_writable_ranges(maps)) == [(0x55d0a0000000, 0x55d0a4000000),
                                                                 (0x7f0000000000, 0x7f0000800000)]


def test_once_it_serves_a_class_the_zygote_holds_its_memory_in_huge_pages(sandbox):
    """Forks of a zygote in 4-KiB pages cost 3-4 times the kernel time (benchmarks/fork_cost.py)."""
    reason = huge_pages_unsupported()
    if reason:
        pytest.skip(reason)
    assert run(sandbox, "def f():\n    return 1\n", "f") == 1
    before = zygote_huge_mib(sandbox)   # one submission: no collapse (a Gradescope container grades one)
    assert run(sandbox, "def f():\n    return 2\n", "f") == 2
    deadline = time.monotonic() + 20   # best effort: under memory pressure only part of it may collapse
    while zygote_huge_mib(sandbox) < before + 16 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert zygote_huge_mib(sandbox) >= before + 16, (before, zygote_huge_mib(sandbox))
    assert run(sandbox, "def f(x):\n    return x * 3\n", "f", 5) == 15   # and its children work as before


FIND_THE_PROBE_FONTS = '''
import matplotlib.font_manager
def fonts():
    return sorted(entry.name for entry in matplotlib.font_manager.fontManager.ttflist if "Autograder" in entry.name)
'''


@pytest.mark.parametrize("mode", ["bwrap", "uid"])
def test_the_sandbox_starts_from_the_graders_font_list(request, mode, tmp_path, monkeypatch):
    """Its matplotlib reads the list the grader's matplotlib made instead of scanning the fonts again
    (0.1-0.3 s of every sandbox's start): a font only that list names is there inside, but not one from a
    folder the sandbox does not see (each process would scan again for it, and it names the grader's folders)."""
    import json
    import shutil

    subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], check=True,
                   env={**os.environ, "MPLCONFIGDIR": str(tmp_path)})
    (made,) = tmp_path.glob("fontlist-v*.json")
    fonts = json.loads(made.read_text())
    listed = fonts["ttflist"][0]   # one of matplotlib's own, named relative to its data folder
    hidden = tmp_path / "fonts" / "hidden.ttf"
    hidden.parent.mkdir()
    shutil.copyfile(Path(matplotlib_data()) / listed["fname"], hidden)
    fonts["ttflist"] += [{**listed, "name": "Autograder Probe Sans"},
                         {**listed, "name": "Autograder Hidden Sans", "fname": str(hidden)}]
    made.write_text(json.dumps(fonts))
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path))
    box = start_sandbox(request, mode)
    try:
        assert run(box, FIND_THE_PROBE_FONTS, "fonts") == ["Autograder Probe Sans"]
    finally:
        box.close()


def matplotlib_data() -> str:
    return subprocess.run([sys.executable, "-c", "import matplotlib; print(matplotlib.get_data_path())"],
                          check=True, capture_output=True, text=True).stdout.strip()


def test_a_hung_child_is_killed_and_the_sandbox_serves_the_next(sandbox):
    hang = "def f():\n    while True:\n        pass\n"
    with opened(sandbox, PROBE, "probe") as alive:
        with pytest.raises(StudentError, match="took longer than 3 s"):
            run(sandbox, hang, "f")
        assert alive.call() >= 0        # another notebook in the same sandbox still answers
    assert run(sandbox, "def f(x):\n    return x + 1\n", "f", 41) == 42


def test_a_child_cannot_kill_the_zygote(sandbox):
    # Under bubblewrap the zygote is the namespace's PID 1, which its children cannot kill or stop;
    # without namespaces it stays root while they run as another user.
    killer = "import os, signal\ndef f(pid):\n    for s in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP, 0):\n" \
             "        try:\n            os.kill(pid, s)\n        except PermissionError:\n            pass\n    return 1\n"
    run(sandbox, "def f():\n    return 0\n", "f")   # the sandbox is up
    zygote = sandbox.process.pid
    assert run(sandbox, killer, "f", 1 if sandbox.mode == "bwrap" else zygote) == 1
    assert run(sandbox, "def f(x):\n    return x + 1\n", "f", 41) == 42
    assert sandbox.process.pid == zygote   # the same sandbox still serves


FORKER = """
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


def use_up_the_process_limit(sandbox):
    fresh = run(sandbox, PROBE, "probe")
    with opened(sandbox, FORKER, "f") as greedy:
        assert greedy.call() < sandbox.limits.processes    # the limit held
        assert run(sandbox, "def f():\n    return 5\n", "f") == 5   # its next function still starts
    sandbox.reset()
    assert run(sandbox, PROBE, "probe") == fresh


def test_using_up_the_process_limit_costs_only_that_submission(sandbox):
    if sandbox.mode == "bwrap" and not os.access(CGROUP_V1 / "pids", os.W_OK):
        pytest.skip("no writable v1 pids cgroup: no process limit under bubblewrap here")
    use_up_the_process_limit(sandbox)


def test_without_cgroups_using_up_the_process_limit_costs_only_that_submission(monkeypatch, tmp_path,
                                                                               others_can_run_python):
    # A container that delegates no cgroup (seen on a GPU machine): the limit is RLIMIT_NPROC on the sandbox's user.
    from autograder.sandbox import cgroups

    monkeypatch.setattr(cgroups, "CGROUP_V1", tmp_path / "no-v1")
    monkeypatch.setenv("AUTOGRADER_CGROUP2_PARENT", str(tmp_path / "no-v2"))
    box = Sandbox("uid", Limits(call_seconds=3))
    try:
        use_up_the_process_limit(box)
        assert box._cgroups.paths == []   # the fallback, not a cgroup, was what held
    finally:
        box.close()


@pytest.mark.quick
def test_exit_statuses_are_reported(sandbox):
    with pytest.raises(StudentError, match=r"exited \(status 3\)"):
        run(sandbox, "import os\ndef f():\n    os._exit(3)\n", "f")
    with pytest.raises(StudentError, match="killed by SIGSEGV"):
        run(sandbox, "import ctypes\ndef f():\n    ctypes.string_at(0)\n", "f")


COLLECTED = """
import gc, weakref
def cycle_collected():
    # A cycle, then enough new objects to set off a young collection, as in any Python.
    class Node:
        pass
    node = Node()
    node.me = node
    gone = weakref.ref(node)
    del node
    keep = [[] for _ in range(20 * gc.get_threshold()[0])]
    return gc.isenabled(), gone() is None
WHILE_THE_NOTEBOOK_RAN = cycle_collected()
def collector():
    return WHILE_THE_NOTEBOOK_RAN, cycle_collected()
"""


def test_student_code_runs_with_pythons_usual_garbage_collector(sandbox):
    # The zygote imports with the collector off (zygote.py); the notebook and each graded function get it back.
    assert run(sandbox, COLLECTED, "collector") == ((True, True), (True, True))


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


@needs_bwrap
def test_a_python_installed_under_tmp_cannot_be_moved_away_from_the_next_student(monkeypatch, tmp_path):
    # A clone under /tmp (CI, pytest's tmp_path) puts the venv there: the sandbox mounts it at the same
    # path, so the folders leading to it would sit on the writable /tmp tmpfs.
    if not str(tmp_path).startswith("/tmp/"):
        pytest.skip("pytest's tmp_path is not under /tmp here")
    fake_python = tmp_path / "python-root"
    fake_python.mkdir()
    roots = bwrap.python_roots() + [str(fake_python)]
    monkeypatch.setattr(bwrap, "python_roots", lambda: roots)
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


def test_on_a_cgroup_v2_layout_the_sandbox_gets_its_own_cgroup_and_a_process_limit(monkeypatch, tmp_path,
                                                                                    others_can_run_python):
    from autograder.sandbox import cgroups

    parent = cgroups.v2_parent()
    if parent is None or not os.access(parent, os.W_OK):
        pytest.skip("no writable cgroup v2 hierarchy here")
    monkeypatch.setattr(cgroups, "CGROUP_V1", tmp_path / "no-v1")   # as on Ubuntu 22.04+: v2 only
    box = Sandbox("uid", Limits(call_seconds=10, processes=16))
    try:
        assert run(box, "def f():\n    return 1\n", "f") == 1
        with open(f"/proc/{box.process.pid}/cgroup") as handle:
            own = next(line.strip()[3:] for line in handle if line.startswith("0::"))
        made = [p for p in box._cgroups.paths if str(p).startswith(str(parent))]
        assert made and own.rstrip("/").endswith(made[0].name)   # the zygote and its children live in it
        forker = ("import os, time\ndef f():\n    n = 0\n    while n < 200:\n        try:\n            if os.fork() == 0:\n"
                  "                time.sleep(60)\n        except OSError:\n            return n\n        n += 1\n    return n\n")
        assert run(box, forker, "f") < 16   # pids.max where v2 delegates it, else RLIMIT_NPROC
    finally:
        box.close()
    assert not made[0].exists()


DEEP_TREES = """
import os
def f(levels):
    made = 0
    for top in (".", os.environ.get("TMPDIR", "/tmp"), "/tmp", "/dev/shm"):
        try:
            os.chdir(top)
            os.mkdir("deep")
        except OSError:
            continue
        os.chdir("deep")
        for _ in range(levels):
            os.mkdir("d")
            os.chdir("d")
        open("last", "w").close()
        os.chmod(".", 0o500)
        made += 1
    return made
"""


@pytest.mark.quick
def test_trees_of_any_depth_are_wiped_between_submissions_and_when_the_sandbox_closes(sandbox):
    # Python 3.11's shutil.rmtree and os.walk raise RecursionError past ~1000 levels; the wipe is a loop.
    fresh = run(sandbox, PROBE, "probe")
    assert run(sandbox, DEEP_TREES, "f", 1500) >= 2
    assert run(sandbox, PROBE, "probe") > fresh   # the probe sees them...
    sandbox.reset()
    assert run(sandbox, PROBE, "probe") == fresh  # ...and the next submission does not
    assert run(sandbox, DEEP_TREES, "f", 1500) >= 2
    workdir = sandbox._workdir
    sandbox.close()
    assert not workdir.exists()   # nor does the host keep any of it


WALK_THE_FILESYSTEM = """
import os, stat
def f(forbidden, guesses):
    readable, seen_control, stack = [], False, ["/"]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            path = entry.path
            if path in ("/proc", "/sys", "/dev"):
                continue
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            if stat.S_ISDIR(mode):
                stack.append(path)
            elif stat.S_ISREG(mode):
                try:
                    open(path, "rb").close()
                except OSError:
                    continue
                seen_control = seen_control or path == "/etc/passwd"
                if any(path == p or path.startswith(p.rstrip("/") + "/") for p in forbidden):
                    readable.append(path)
    guessed = []
    for path in guesses:   # paths a student could know without listing a folder
        try:
            open(path, "rb").close()
            guessed.append(path)
        except OSError:
            pass
    return {"readable": readable[:20], "guessed": guessed, "control": seen_control}
"""


@pytest.mark.quick
def test_without_namespaces_student_code_reads_nothing_of_the_grader_course_or_classmates(
        others_can_run_python, tmp_path, monkeypatch):
    from autograder.assignments import COURSE_ROOT
    from autograder.sandbox import private_files

    # What the grade command closes: the class's submissions and the reports, beside the checkout.
    submitted, reports = tmp_path / "submitted" / "ana", tmp_path / "graded"
    for folder in (submitted, reports):
        folder.mkdir(parents=True)
        (folder / "secret.txt").write_text("not for students")
        os.chmod(folder / "secret.txt", 0o644)
    monkeypatch.delenv(private_files.PRIVATE_ENVIRONMENT, raising=False)
    private_files.add_private(submitted.parent, reports)
    classmate, walker = Sandbox("uid", Limits(call_seconds=240)), Sandbox("uid", Limits(call_seconds=240))
    try:
        # A classmate graded at the same time writes into its working folder and /tmp.
        where = run(classmate, "import os\ndef f():\n    open('answers.py', 'w').write('x = 1')\n"
                               "    open('/tmp/answers-in-tmp.py', 'w').write('x = 1')\n    return os.getcwd()\n", "f")
        mine = run(walker, "import os\ndef f():\n    open('mine.txt', 'w').write('x')\n"
                           "    return os.path.abspath('mine.txt')\n", "f")
        forbidden = [str(p) for p in private_files.checkout_entries()] + [
            str(submitted.parent), str(reports), str(classmate._workdir), "/tmp/answers-in-tmp.py"]
        guesses = [f"{where}/answers.py", "/tmp/answers-in-tmp.py", str(submitted / "secret.txt"),
                   str(reports / "secret.txt")] + [str(p) for p in (COURSE_ROOT / "tests" / "submissions.py",
                                                                  COURSE_ROOT / ".git" / "HEAD",
                                                                  COURSE_ROOT / "autograder" / "assignments")]
        found = run(walker, WALK_THE_FILESYSTEM, "f", forbidden, guesses)
        own = run(walker, "def f(path):\n    return open(path).read()\n", "f", mine)
    finally:
        classmate.close()
        walker.close()
    assert found["control"] and own == "x"     # the probe does read what the student may read...
    assert where.startswith(str(classmate._workdir))
    assert found["guessed"] == []
    assert found["readable"] == []             # ...and nothing of anyone else's


def test_the_notebooks_wall_time_is_bounded_whatever_its_cells_do(sandbox):
    # Each cell stays under the per-cell limit, but together they would run for a minute.
    cells = [{"number": n, "source": "import time\ntime.sleep(0.4)\n"} for n in range(1, 150)]
    cells.append({"number": 150, "source": "def f():\n    return 1\n"})
    box = Sandbox(sandbox.mode, Limits(call_seconds=3, cell_seconds=1, run_seconds=2))
    started = time.monotonic()
    try:
        with NotebookProcess(cells, box) as notebook:
            elapsed = time.monotonic() - started
            with pytest.raises(StudentError, match="does not define f"):
                notebook.open("f")
    finally:
        box.close()
    assert elapsed < 15    # budget 2 s, then at most half of it again for cells that start late
    unrun = [n for n in notebook.notes if "time for grading was used up" in n.get("stopped", "")]
    assert len(unrun) > 100 and unrun[-1]["number"] == 150


@pytest.mark.quick
def test_the_wire_carries_arrays_exactly_and_refuses_what_it_cannot_trust():
    import json
    import struct

    import numpy as np
    import torch

    from autograder.sandbox.inside import wire

    arrays = {"a0": np.arange(5, dtype=np.uint8), "a1": np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4),
              "a2": np.arange(6, dtype=np.float16).reshape(2, 3).T, "a3": np.zeros((0, 3), np.int64),
              "a4": np.array([True, False])}
    description, back = wire.unpack(bytearray(wire.pack({"kind": "list", "n": [1, 2.5]}, arrays)))
    assert description == {"kind": "list", "n": [1, 2.5]}
    for name, array in arrays.items():
        assert back[name].dtype == array.dtype and back[name].shape == array.shape
        assert np.array_equal(back[name], array) and back[name].flags.writeable
        assert back[name].ctypes.data % wire.ALIGN == 0
    assert torch.equal(torch.from_numpy(back["a1"]), torch.from_numpy(arrays["a1"]))

    def forged(table, data=b""):
        header = json.dumps({"description": {}, "arrays": table}).encode()
        payload = struct.pack(">I", len(header)) + header
        return payload + bytes(-len(payload) % wire.ALIGN) + data

    refused = {
        "larger than its bytes": forged([["a", "|u1", [1 << 24]]], bytes(16)),
        "disallowed dtype": forged([["a", "|O", [1]]], bytes(8)),
        "disallowed dtype ": forged([["a", "<c8", [1]]], bytes(8)),
        "beyond its arrays": forged([["a", "|u1", [2]]], bytes(9)),
        "more than": forged([["a", "|u1", [1 << 13, (1 << 12) + 1]]]),   # counted before any byte is read
        "dimensions": forged([["a", "|u1", [1] * 9]], bytes(1)),
        "malformed shape": forged([["a", "|u1", [-1]]]),
        "malformed array entry": forged([["a", "|u1", [1]], ["a", "|u1", [1]]], bytes(9)),
        "unreadable message": b"\x00\x00\xff\xff{}",
    }
    for reason, payload in refused.items():
        with pytest.raises(wire.WireError, match=reason.strip()):
            wire.unpack(bytearray(payload))
    with pytest.raises(wire.WireError, match="unreadable"):   # nested past Python's recursion limit
        wire.unpack(bytearray(struct.pack(">I", 100_000) + b"[" * 50_000 + b"]" * 50_000))


def test_a_sandbox_waits_for_a_start_slot_before_it_starts(tmp_path, monkeypatch):
    from autograder.sandbox import start_slots

    for name, value in start_slots.prepare(tmp_path / "start-slots", 1, pipeline_loading=False).items():
        monkeypatch.setenv(name, value)
    box, started = Sandbox("auto", Limits(call_seconds=10)), threading.Event()

    def first_call():
        assert run(box, "def f(n):\n    return n + 1\n", "f", 1) == 2
        started.set()
    taken = start_slots.slot()
    taken.__enter__()   # another worker's sandbox is starting on the only CPU
    caller = threading.Thread(target=first_call, daemon=True)
    try:
        caller.start()
        assert not started.wait(3) and box.process is None   # not even its bubblewrap has started
        taken.__exit__(None, None, None)
        assert started.wait(60)
    finally:
        caller.join(60)
        box.close()
