"""What the grading template (template.py) imports before it forks its first worker, paid for once.

With the garbage collector off: these imports make some 400,000 objects and hardly a cycle, and the
collections they set off walked them all again and again. Frozen afterwards, so that no worker's
collection walks them (and copies the pages they sit on) either.
"""
import gc
import importlib

from autograder.grading.template import IMPORTED_BEFORE_FORKING

gc.disable()
try:
    for name in IMPORTED_BEFORE_FORKING:
        importlib.import_module(name)
finally:
    gc.freeze()
    gc.enable()
