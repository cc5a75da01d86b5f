"""Runs a command where no namespace can be made, as inside Docker under its default seccomp profile
(Gradescope's case): `python -m tests.no_namespaces COMMAND...`. bubblewrap then fails as it does there."""
import errno
import os
import sys

import pyseccomp

from autograder.sandbox.inside.syscall_filter import NAMESPACE_FLAGS


def forbid_namespaces() -> None:
    syscall_filter = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for name in ("unshare", "setns", "mount"):
        syscall_filter.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
    for flag in NAMESPACE_FLAGS:
        syscall_filter.add_rule(pyseccomp.ERRNO(errno.EPERM), "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, flag, flag))
    syscall_filter.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    syscall_filter.load()


if __name__ == "__main__":
    forbid_namespaces()
    os.execvp(sys.argv[1], sys.argv[1:])
