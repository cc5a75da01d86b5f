"""Runs inside the sandbox: the system calls that a child running student code may not make.

The zygote builds the filter once (libseccomp, through pyseccomp) and loads it into each child just
before student code runs. What it denies is nothing a lesson needs, and each is a way to leave state
that outlives the child where the zygote's reset cannot reach it (kernel keyrings, POSIX message
queues), to reach other processes (tracing, reading or copying their memory and descriptors), or to
change the sandbox itself (namespaces, mounts).
"""
import errno

DENIED = (
    "add_key", "request_key", "keyctl",
    "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot",
)


def build():
    import pyseccomp

    syscall_filter = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for name in DENIED:
        syscall_filter.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
    return syscall_filter
