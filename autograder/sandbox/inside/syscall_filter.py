"""Runs inside the sandbox: the system calls that a child running student code may not make.

The zygote builds the filter once (libseccomp, through pyseccomp) and loads it into each child just
before student code runs. What it denies is nothing a lesson needs, and each is a way to leave state
that outlives the child where the zygote's reset cannot reach it (kernel keyrings, POSIX message
queues), to reach other processes (tracing, reading or copying their memory and descriptors), to
change the sandbox itself (namespaces, mounts), or to reach a network. Under bubblewrap the network
namespace is empty anyway; without namespaces (a container that forbids them) the filter is what
keeps student code off the network: only local (AF_UNIX) sockets can be made, and io_uring, which
can open sockets without the socket() call, is unavailable. It also keeps student code off a GPU
that the machine's /dev shows (bubblewrap's /dev has none): the pipeline on it is the grader's, and
a student's allocation could starve it for everyone. NVIDIA's driver is driven through ioctls of
type 'F' (its NV_IOCTL_MAGIC) and its unified memory's through plain numbers (type 0); no lesson
needs either.
"""
import errno
import socket

DENIED = (
    "add_key", "request_key", "keyctl",
    "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "perf_event_open",
)
GPU_IOCTL_TYPES = (0x4600, 0x0000)   # an ioctl request's type byte, bits 8-15: 'F', and 0 (UVM_INITIALIZE is 0x30000001)
NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000,
                   0x00000080)   # CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME


def build():
    import pyseccomp

    syscall_filter = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for name in DENIED:
        syscall_filter.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
    for name in ("socket", "socketpair"):
        syscall_filter.add_rule(pyseccomp.ERRNO(errno.EACCES), name,
                                pyseccomp.Arg(0, pyseccomp.NE, socket.AF_UNIX))
    for flag in NAMESPACE_FLAGS:
        syscall_filter.add_rule(pyseccomp.ERRNO(errno.EPERM), "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, flag, flag))
    for kind in GPU_IOCTL_TYPES:
        syscall_filter.add_rule(pyseccomp.ERRNO(errno.EPERM), "ioctl", pyseccomp.Arg(1, pyseccomp.MASKED_EQ, 0xFF00, kind))
    # clone3 passes its flags in memory, where a filter cannot look: ENOSYS makes libc fall back to
    # clone (Docker's default profile does the same).
    syscall_filter.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    return syscall_filter
