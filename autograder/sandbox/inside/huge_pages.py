"""Runs inside the sandbox: backs the zygote's private memory with huge pages before it starts forking.

Each submission forks the zygote once, and its notebook's process once per graded function. A fork copies
the page tables of every private page, and after importing torch and matplotlib the zygote holds ~170 MB of
them (~43,000 4-KiB pages): copying them and tearing them down again took 15-20 ms of kernel time per fork
on our 2-core VMs, more than most children's own work. The same memory in 2-MiB pages (MADV_COLLAPSE, Linux
6.1 and later) is ~85 entries: ~6 ms per fork (benchmarks/fork_cost.py). A child's first write to a shared
huge page splits that mapping, so it still copies 4 KiB, not 2 MiB. Best effort: on an older kernel, with
transparent huge pages off, or where no huge page is free, the memory stays as it was.
"""
import ctypes

MADV_COLLAPSE = 25
HUGE_PAGE = 2 << 20


def anonymous_writable_ranges(maps_text: str):
    """(start, end) of the private writable memory that is not a file's: the heap, Python's arenas, torch's buffers."""
    for line in maps_text.splitlines():
        fields = line.split()
        if len(fields) < 5 or not fields[1].startswith("rw") or fields[1][3] != "p":
            continue
        if len(fields) == 5 or fields[5] == "[heap]":
            start, end = (int(address, 16) for address in fields[0].split("-"))
            yield start, end


def collapse() -> int:
    """Collapses what it can into huge pages; returns how many bytes it collapsed."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    with open("/proc/self/maps") as maps:
        ranges = list(anonymous_writable_ranges(maps.read()))
    collapsed = 0
    for start, end in ranges:
        start, end = -(-start // HUGE_PAGE) * HUGE_PAGE, end // HUGE_PAGE * HUGE_PAGE
        if end > start and libc.madvise(start, end - start, MADV_COLLAPSE) == 0:
            collapsed += end - start
    return collapsed
