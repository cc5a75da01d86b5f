"""Runs inside the sandbox: imports torch once, then forks one child per submission to run its notebook.

Starting a Python process that imports torch and matplotlib costs over a second. This process pays
it once per grading worker; the child it forks runs the notebook (notebook_run.py). The grader
talks to it over a SOCK_SEQPACKET socket on fd 0, one message per request:

    spawn {limits}  + 2 fds   -> "child PID"   the child reads requests on the first fd, answers on the second
    kill PID                  -> "ok"          kills that child's process group
    reset                     -> "clean"       between two submissions: see reset()

Nothing of one student reaches the next: a child never sees the control socket, the zygote never
runs student code and cannot be traced, read, stopped or killed by its children (it is not dumpable,
and under bubblewrap it is the sandbox's PID 1; without namespaces it stays root while each child
becomes the sandbox's own user), and reset() kills
every descendant and wipes every writable place and every System V IPC object before the next
submission's first child is forked. If it cannot, the zygote exits and the grader starts a new one.
"""
import ctypes
import errno
import gc
import json
import os
import resource
import shutil
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import huge_pages  # noqa: E402  (copied next to this file inside the sandbox)
import notebook_run  # noqa: E402
import processes  # noqa: E402
import syscall_filter  # noqa: E402
import wipe  # noqa: E402

PR_SET_DUMPABLE = 4
IPC_RMID = 0
LIBC = ctypes.CDLL(None, use_errno=True)
SCRATCH = [path for path in os.environ.get("AUTOGRADER_SCRATCH", "").split(os.pathsep) if path]
# Without namespaces (zygote_host.py's "uid" mode) the zygote stays root and each child becomes this user.
SANDBOX_UID = int(os.environ.get("AUTOGRADER_SANDBOX_UID") or -1)


SYSCALL_FILTER = []   # built once by preload(), loaded into every child


def preload():
    """What nearly every child imports, paid for once. No thread may be running when we fork."""
    if os.environ.get("AUTOGRADER_STUDENT_LIB"):   # the course library the notebooks import
        sys.path.append(os.environ["AUTOGRADER_STUDENT_LIB"])
    import numpy  # noqa: F401
    import PIL.Image  # noqa: F401
    import torch
    import torch.nn.functional  # noqa: F401

    torch.set_num_threads(1)
    import proxies
    import student_runner  # noqa: F401  (imported once here, not in every fork)

    proxies.hide_the_gpu()
    # First uses that set something up lazily (numpy.random is imported on first access, a torch
    # operator builds its dispatch on first call): paid once here, not in every submission's run.
    import numpy.random  # noqa: F401

    seed = torch.initial_seed()
    with torch.no_grad():
        x = torch.randn(3, 4)
        scores = torch.nn.Linear(4, 4, bias=False)(x) @ x.T / 2.0
        torch.allclose(torch.softmax(scores, dim=-1) @ x, x)
        if os.environ.get("AUTOGRADER_WARM_META"):   # device checks: the meta device's first use costs a second
            meta = torch.empty(2, 2, device="meta")
            torch.cat([torch.where(torch.empty(2, 1, dtype=torch.bool, device="meta"), meta, meta) - meta, meta])
    torch.manual_seed(seed)   # the run starts from the generator state a fresh Python has
    restore_font_list()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    # Nobody looks at the grading run's figures: laying them out and showing them only costs time.
    Figure.tight_layout = plt.tight_layout = lambda *args, **kwargs: None
    plt.show = lambda *args, **kwargs: plt.close("all")
    SYSCALL_FILTER.append(syscall_filter.build())
    for folder in SCRATCH:   # caches written by these imports (matplotlib's fonts): the first child finds none
        wipe.empty(folder)


def restore_font_list():
    """Puts the grader's matplotlib font list (the host's font_list.py copied it next to this file) where
    matplotlib looks, so that its import does not scan every font of the machine again."""
    cache, here = os.environ.get("MPLCONFIGDIR"), os.path.dirname(os.path.abspath(__file__))
    if not cache:
        return
    try:   # best effort: without it matplotlib scans the fonts, as it always did
        os.makedirs(cache, exist_ok=True)
        for name in os.listdir(here):
            if name.startswith("fontlist-v") and name.endswith(".json"):
                shutil.copyfile(os.path.join(here, name), os.path.join(cache, name))
    except OSError:
        pass


def run_child(fds, limits):
    os.setsid()
    os.dup2(fds[0], 0)
    os.dup2(fds[1], 1)
    os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])   # the control socket above all
    for name, value in limits.items():
        limit = getattr(resource, name)
        resource.setrlimit(limit, (value, value))
    try:   # the kernel's out-of-memory killer takes a child before the zygote
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")
    except OSError:
        pass
    os.umask(0o077)   # what the student writes anywhere (/tmp too) is theirs alone
    if SANDBOX_UID >= 0:
        os.setgroups([])
        os.setresgid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
        os.setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
    SYSCALL_FILTER[0].load()   # last: no student code has run yet, none will run without it
    notebook_run.main()


# What a notebook needs to start: its supervisor, its run and one function's server.
PROCESSES_TO_START = 3


def out_of_processes(limits):
    """Without namespaces the process limit is RLIMIT_NPROC on the sandbox's user. This process runs as root and
    can always fork, but a child could not start a notebook while the same submission's earlier functions keep
    that user's processes: refused here, the grader starts a fresh sandbox, as where a cgroup refuses the fork."""
    limit = limits.get("RLIMIT_NPROC")
    return SANDBOX_UID >= 0 and limit is not None and processes.count_of_user(SANDBOX_UID) > limit - PROCESSES_TO_START


def spawn(control, fds, limits):
    if out_of_processes(limits):
        raise OSError(errno.EAGAIN, "the sandbox's user is out of processes")
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            control.close()
            run_child(fds, limits)
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    return pid


def remove_ipc_objects():
    for kind, remove in (("shm", lambda ipc_id: LIBC.shmctl(ipc_id, IPC_RMID, None)),
                         ("msg", lambda ipc_id: LIBC.msgctl(ipc_id, IPC_RMID, None)),
                         ("sem", lambda ipc_id: LIBC.semctl(ipc_id, 0, IPC_RMID))):
        try:
            with open(f"/proc/sysvipc/{kind}") as handle:
                header, *rows = handle.read().splitlines()
        except (OSError, ValueError):
            continue
        names = header.split()
        for row in rows:
            fields = dict(zip(names, row.split()))
            # Without a namespace of our own the host's objects are not ours: only our user's go.
            if SANDBOX_UID >= 0 and str(SANDBOX_UID) not in (fields.get("uid"), fields.get("cuid")):
                continue
            remove(int(row.split()[1]))   # the second column is the object's id


def reset():
    if not processes.kill_all_children():
        return False
    for folder in SCRATCH:
        wipe.empty(folder)
    remove_ipc_objects()
    return True


def main():
    LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    processes.become_subreaper()
    control = socket.socket(fileno=0)
    gc.disable()   # the imports make ~300,000 objects and hardly a cycle: collections during them only cost time
    preload()
    # Its objects are every child's too: a full collection in a child would walk them all and copy each page
    # they sit on (~0.1 s a fork). Frozen, no collection in a child looks at them.
    gc.freeze()
    gc.enable()   # the students' code runs with Python's usual collector
    control.send(b"ready")
    spawned = 0
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 4096, 2)
        except OSError:
            return
        if not message:
            return
        verb, _, argument = message.decode().partition(" ")
        if verb == "spawn" and len(fds) == 2:
            try:
                answer = f"child {spawn(control, fds, json.loads(argument))}"
            except OSError as error:   # out of processes: the grader replaces this sandbox
                for fd in fds:
                    os.close(fd)
                answer = f"error {error}"
        elif verb == "kill":
            processes.kill_group(int(argument))
            answer = "ok"
        elif verb == "reset":
            try:
                clean = reset()
            except OSError:
                clean = False
            if not clean:
                return   # the grader sees the socket close and starts a fresh sandbox
            answer = "clean"
        else:
            for fd in fds:
                os.close(fd)
            answer = "error unknown request"
        control.send(answer.encode())
        if verb == "spawn":
            spawned += 1
            if spawned == 2:   # a class, not one submission: later forks are cheaper (~0.5 s, while the child runs)
                huge_pages.collapse()


if __name__ == "__main__":
    main()
