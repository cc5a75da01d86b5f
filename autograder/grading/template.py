"""The process grading workers are forked from: torch and pytest imported once, in multiprocessing's forkserver.

A grading worker started as a fresh Python paid ~1.9 s of CPU for those imports before its first piece
of work, each of them at the same moment on the same CPUs. Forked from this template, it starts in
milliseconds with them loaded. (The pipeline server is a fresh Python that starts at once instead:
server.py says why.) The template never runs torch, so no
OpenMP thread exists when it forks; its OpenMP reads its settings once, here, so threads sleep when
they wait (see worker.compute_environment) and each process sets its own thread count.
"""
from __future__ import annotations

import functools
import multiprocessing
import multiprocessing.util
import os
import tempfile

# What the template imports before its first fork (template_imports.py imports them with the collector off).
IMPORTED_BEFORE_FORKING = ("pytest", "torch", "autograder.grading.session_of_submissions", "autograder.grading.worker",
                           "autograder.pipeline.sd_pipeline", "autograder.sandbox.student_process")
PRELOADED = ["autograder.grading.template_imports"]


# A Unix socket's address holds 107 bytes. Ours lie two short names below the folder (the template's
# pymp-*/listener-*, the pipeline server's autograder-run-*/pipeline.sock), so the folder may take 60.
SOCKET_FOLDER_ROOM = 60


def socket_folder() -> str:
    """Where the grader's Unix sockets go: the temporary folder, unless its path is too deep to hold a
    socket's address (TMPDIR inside a deep build or test folder), then /tmp."""
    usual = tempfile.gettempdir()
    return usual if len(usual) <= SOCKET_FOLDER_ROOM else "/tmp"


@functools.cache
def context():
    """multiprocessing's forkserver context; the template itself starts with the first process."""
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    if socket_folder() != tempfile.gettempdir():   # multiprocessing's own folder, made once, holds its sockets
        usual, tempfile.tempdir = tempfile.tempdir, socket_folder()
        try:
            multiprocessing.util.get_temp_dir()
        finally:
            tempfile.tempdir = usual
    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload(PRELOADED)
    return forkserver


def become(environment: dict[str, str], log_path: str | None) -> None:
    """In a forked (or spawned) process: its own session, environment, thread count and log (stdout and stderr)."""
    import sys
    import tempfile

    os.setsid()   # its own session: killing it takes whatever it started (a sandbox) along
    os.environ.update(environment)
    log = open(log_path or os.devnull, "a")
    for fd in (1, 2):
        os.dup2(log.fileno(), fd)
    sys.stdout = sys.stderr = log
    import torch   # loaded already in a fork of the template; a spawned process loads it with its environment set

    tempfile.tempdir = None   # TMPDIR may have changed
    sys.dont_write_bytecode = True
    if "OMP_NUM_THREADS" in environment:   # the template's OpenMP read its own count
        torch.set_num_threads(int(environment["OMP_NUM_THREADS"]))
