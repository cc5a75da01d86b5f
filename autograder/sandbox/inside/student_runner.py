"""Runs inside the sandbox: serves calls to one of the student's functions (see notebook_run.py).

After the notebook has run, the grader opens a function by name and sends calls {"args", "kwargs"},
each answered with {"value", "inputs_after"} or {"error"}; {"close": true} ends the server. Everything
here is untrusted once the student's code has run: the grader checks every answer itself and only
ever reads arrays from it.
"""
import builtins
import io
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire  # noqa: E402  (copied next to this file inside the sandbox)
from proxies import CHANNEL, from_array, grader_function, to_numpy  # noqa: E402

OUTPUT_KEEP = 4096
PRISTINE_BUILTINS = dict(vars(builtins))   # taken before any student code runs


class CappedText(io.TextIOBase):
    """Keeps the first OUTPUT_KEEP characters a student prints and counts the rest."""

    def __init__(self):
        self.kept, self.dropped = [], 0
        self.size = 0

    def writable(self):
        return True

    def write(self, text):
        text = str(text)
        room = OUTPUT_KEEP - self.size
        if room > 0:
            self.kept.append(text[:room])
            self.size += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def take(self):
        text = "".join(self.kept)
        if self.dropped:
            text += f"\n[... {self.dropped} more characters of output dropped]"
        self.kept, self.dropped, self.size = [], 0, 0
        return text


AVAILABLE = []   # the packages a graded notebook may import, as the grader told us


def student_traceback(error):
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.startswith("<code cell ")]
    lines = [f"  {f.filename.strip('<>')}, line {f.lineno}, in {f.name}: {(f.line or '').strip()}"
             for f in frames[-4:]]
    message = f"{type(error).__name__}: {error}"[:600]
    if isinstance(error, ImportError) and AVAILABLE:
        missing = (error.name or "").split(".")[0] or "that module"
        message += (f"\nthe grading environment has no {missing}; a graded notebook may import "
                    f"{', '.join(AVAILABLE)} (and Python's standard library)")
    return "\n".join(lines + [message])


CAPTURED = CappedText()


def take_streams():
    """The protocol's fds, moved off 0 and 1; the standard streams then go nowhere or into CAPTURED."""
    requests, replies = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):            # raw writes to the standard streams go nowhere
        os.dup2(devnull, fd)
    sys.stdout = sys.stderr = CAPTURED
    sys.stdin = io.StringIO()
    return requests, replies


def discard_output():
    CAPTURED.take()
    sys.stdout = sys.stderr = CAPTURED   # a cell may have replaced them


def restore_builtins():
    """The notebook may have replaced what this file relies on (isinstance, len...)."""
    for key, value in PRISTINE_BUILTINS.items():
        if vars(builtins).get(key) is not value:
            vars(builtins)[key] = value


def serve(namespace, name, requests, replies, trusted=()):
    """Answers calls to namespace[name] until {"close"} or the end of the stream; the functions named in
    `trusted` are the grader's own while it does."""
    restore_builtins()
    CHANNEL.update(requests=requests, replies=replies)
    discard_output()
    for other in trusted:
        namespace[other] = grader_function(other)

    def reply(description, arrays=None):
        description["output"] = CAPTURED.take()
        wire.write_frame(replies, wire.pack(description, arrays or {}))

    function = namespace.get(name)
    if not callable(function):
        reply({"error": f"{name} is not defined", "missing": True})
        return
    reply({"ok": True})
    while True:
        frame = wire.read_frame(requests)
        if frame is None:
            return
        description, arrays = wire.unpack(frame)
        if description.get("close"):
            return
        args = wire.decode(description["args"], arrays, from_array=from_array)
        kwargs = wire.decode(description["kwargs"], arrays, from_array=from_array)
        try:
            value = function(*args, **kwargs)
            out_arrays = {}
            encoded = wire.encode(value, out_arrays, to_numpy=to_numpy)
            inputs_after = wire.encode([args, kwargs], out_arrays, to_numpy=to_numpy)
        except BaseException as error:
            reply({"error": student_traceback(error)})
            continue
        reply({"value": encoded, "inputs_after": inputs_after}, out_arrays)
