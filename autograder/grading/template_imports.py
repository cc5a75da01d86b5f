"""What the grading template (template.py) imports before it forks its first worker, paid for once.

With the garbage collector off: these imports make some 400,000 objects and hardly a cycle, and the
collections they set off walked them all again and again. Frozen afterwards, so that no worker's
collection walks them (and copies the pages they sit on) either.
"""
import gc

gc.disable()
try:
    import pytest  # noqa: F401
    import torch  # noqa: F401

    import autograder.grading.session_of_submissions  # noqa: F401
    import autograder.grading.worker  # noqa: F401
    import autograder.pipeline.sd_pipeline  # noqa: F401
    import autograder.sandbox.student_process  # noqa: F401
finally:
    gc.freeze()
    gc.enable()
