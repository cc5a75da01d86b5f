"""The four pieces of this library that Lesson 2's exercises ask students to write.

The notebook hands each finished exercise to the library with use(); from then on the model, the
trainer and the sampler run on the student's version, so an unfinished exercise shows up wherever
it is needed. The instructor's copy of the library falls back on reference.py; the package students
get is built without that file, so there the fallback is a stub that names the exercise.
"""
from __future__ import annotations

EXERCISES = {   # name -> the notebook's exercise number
    "multi_head_cross_attention": 1,
    "flow_matching_pair": 2,
    "drop_text": 3,
    "euler_cfg_sample": 4,
}
_chosen: dict[str, object] = {}


class ExerciseNotDone(NotImplementedError):
    """The library needed a piece the student has not written (or not handed over) yet."""


def use(**functions) -> None:
    """use(flow_matching_pair=flow_matching_pair): the library calls yours from now on."""
    for name, function in functions.items():
        if name not in EXERCISES:
            raise ValueError(f"{name!r} is not one of the exercises ({', '.join(EXERCISES)})")
        if not callable(function):
            raise TypeError(f"{name} should be a function, not {type(function).__name__}")
        _chosen[name] = function


def forget() -> None:
    """Back to the library's own versions (or stubs)."""
    _chosen.clear()


def implementation(name: str):
    """The student's version of `name` if the notebook handed one over, else the library's own."""
    if name in _chosen:
        return _chosen[name]
    try:
        from . import reference
    except ImportError:
        return _not_done(name)
    return getattr(reference, name)


def _not_done(name: str):
    def stub(*args, **kwargs):
        raise ExerciseNotDone(f"{name} is Exercise {EXERCISES[name]} of the notebook: write it there and run its "
                              "cell and the cell after it, which hands it to the library")
    stub.__name__ = name
    return stub
