"""Which confinement grading uses: bubblewrap's namespaces, else a user of its own (as root), else none.

Where neither is possible the grader refuses to run student code, unless the instructor asks for
"none" (unconfined) explicitly.
"""
from __future__ import annotations

from autograder.sandbox import uid_confinement
from autograder.sandbox.bwrap import bwrap_path

MODES = ("auto", "bwrap", "uid", "none")


class NoConfinement(RuntimeError):
    """Student code cannot be confined here, and running it unconfined was not asked for."""


def sandbox_mode(requested: str = "auto") -> str:
    """bwrap where bubblewrap can create namespaces, else uid where we are root; "none" only when asked."""
    if requested not in MODES:
        raise ValueError(f"unknown sandbox mode {requested!r}")
    if requested == "none":
        return "none"
    if requested in ("auto", "bwrap") and bwrap_path():
        return "bwrap"
    if requested == "bwrap":
        raise NoConfinement("bubblewrap (bwrap) is required but cannot create namespaces here "
                            "(apt-get install bubblewrap, or a container that allows user namespaces)")
    problem = uid_confinement.problem()
    if problem is None:
        return "uid"
    raise NoConfinement(f"student code cannot be confined here: bubblewrap cannot create namespaces and {problem}. "
                        "Run the grader as root (student code then runs as a user of its own), or allow "
                        "bubblewrap's namespaces; --unsafe-no-sandbox grades unconfined, for trusted code only.")


NO_SANDBOX_WARNING = ("WARNING: no sandbox (--unsafe-no-sandbox): student code ran as an ordinary process with "
                      "resource limits only; it could read the grader's files and use the network.")
