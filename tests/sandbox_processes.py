"""The host's view of the grader's processes, read from /proc: the sandboxes' zygotes and their forks, any
process's children (the pipeline server's lanes)."""
import contextlib
import os


def stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command's name: state, parent pid, ... (proc(5) numbering minus 3)."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """The process's user and system CPU time so far."""
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_table() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, command line) of every process now."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError), open(f"/proc/{entry}/cmdline", "rb") as command:
                table[int(entry)] = int(stat_fields(int(entry))[1]), command.read()
    return table


def _sandboxed(table, pid) -> bool:
    """A zygote or a fork of it (bubblewrap's own command line names zygote.py too)."""
    command = table.get(pid, (0, b""))[1]
    return b"zygote.py" in command and not command.split(b"\0", 1)[0].endswith(b"bwrap")


def _under(table, pid, root) -> bool:
    """Whether `pid` is `root` or one of its descendants."""
    while pid > 1:
        if pid == root:
            return True
        pid = table.get(pid, (0, b""))[0]
    return False


def zygotes(table, under: int) -> list[int]:
    """The zygotes of the sandboxes started by process `under` (or that are it)."""
    return [pid for pid, (parent, _) in table.items()
            if _sandboxed(table, pid) and not _sandboxed(table, parent) and _under(table, pid, under)]


def zygote_forks(table, under: int) -> list[int]:
    """The notebooks' runs and function servers of the sandboxes started by process `under`."""
    return [pid for pid, (parent, _) in table.items()
            if _sandboxed(table, pid) and _sandboxed(table, parent) and _under(table, pid, under)]


def children(table, pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    return sorted(child for child, (parent, _) in table.items() if parent == pid)
