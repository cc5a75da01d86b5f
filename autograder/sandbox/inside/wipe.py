"""Emptying and removing folders a student may have filled: any depth, any modes, links never followed.

Python 3.11's shutil.rmtree and os.walk recurse once per level, so a tree a few thousand folders deep
raises RecursionError (and paths past 4 KiB fail before that). Here no path is longer than one name
below the folder being emptied and the work is a loop: each sub-folder's entries are renamed up into
that folder, then the emptied sub-folder is removed, so every folder is handled once, two descriptors
at a time. Mount points, and the folders that lead to them, stay where they are.

Used inside the sandbox by the zygote between submissions and on the host by the grader's clean-up.
"""
import os
import stat

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def mount_points() -> list[str]:
    try:
        with open("/proc/self/mountinfo") as handle:
            return [_unescape(line.split()[4]) for line in handle if len(line.split()) > 4]
    except OSError:
        return []


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def empty(folder: str, mounts: list[str] | None = None) -> None:
    """Removes everything inside `folder`, except mount points and the folders leading to them."""
    mounts = mount_points() if mounts is None else mounts
    prefix = folder.rstrip("/") + "/"
    leading = {m for m in mounts if m.startswith(prefix)}
    fd = _open_folder(None, folder)
    if fd is None:
        return
    try:
        _empty_fd(fd, folder, leading, os.fstat(fd).st_dev)
    finally:
        os.close(fd)


def remove(path: str) -> None:
    """Removes `path` and all below it (a link is removed, never followed); quiet when it is gone."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return
    if stat.S_ISDIR(mode):
        empty(path)
        _quietly(os.rmdir, path)
    else:
        _quietly(os.unlink, path)


def _empty_fd(fd: int, path: str, leading: set[str], device: int) -> None:
    """Empties the open folder `fd` (at `path`); `leading` are mount points at or below it."""
    kept: set[str] = set()
    while True:
        names = [name for name in os.listdir(fd) if name not in kept]
        if not names:
            return
        for name in names:
            child = f"{path}/{name}"
            try:
                mode = os.lstat(name, dir_fd=fd).st_mode
            except OSError:
                kept.add(name)
                continue
            if not stat.S_ISDIR(mode):
                if not _quietly(os.unlink, name, dir_fd=fd):
                    kept.add(name)
                continue
            if child in leading or any(m.startswith(child + "/") for m in leading):
                kept.add(name)   # a mount, or on the way to one: empty what is ours beside it, keep the path
                sub = _open_folder(fd, name)
                if sub is not None:
                    try:
                        if os.fstat(sub).st_dev == device and child not in leading:
                            _empty_fd(sub, child, leading, device)   # as deep as the mounts are: a few levels
                    finally:
                        os.close(sub)
                continue
            if not _flatten_into(fd, name):
                kept.add(name)


def _flatten_into(fd: int, name: str) -> bool:
    """Moves the entries of sub-folder `name` up into `fd` under fresh names, then removes `name`."""
    sub = _open_folder(fd, name)
    if sub is None:
        return False
    try:
        for entry in os.listdir(sub):
            if stat.S_ISDIR(os.lstat(entry, dir_fd=sub).st_mode):
                _quietly(os.chmod, entry, 0o700, dir_fd=sub)   # a folder that moves must be writable (its "..")
            os.rename(entry, _fresh_name(fd), src_dir_fd=sub, dst_dir_fd=fd)
    except OSError:
        return False
    finally:
        os.close(sub)
    return _quietly(os.rmdir, name, dir_fd=fd)


_counter = [0]


def _fresh_name(fd: int) -> str:
    while True:
        _counter[0] += 1
        name = f".wipe-{os.getpid()}-{_counter[0]}"
        try:
            os.lstat(name, dir_fd=fd)
        except FileNotFoundError:
            return name


def _open_folder(parent_fd, name):
    """An fd for a folder (never through a link), which we may then change: a student may have taken
    its permissions away."""
    try:
        fd = os.open(name, _DIRECTORY, dir_fd=parent_fd)
    except PermissionError:
        if not _quietly(os.chmod, name, 0o700, dir_fd=parent_fd):   # lstat said folder; its writer is gone
            return None
        try:
            fd = os.open(name, _DIRECTORY, dir_fd=parent_fd)
        except OSError:
            return None
    except OSError:
        return None
    _quietly(os.fchmod, fd, 0o700)
    return fd


def _quietly(operation, *args, **kwargs) -> bool:
    try:
        operation(*args, **kwargs)
        return True
    except OSError:
        return False
