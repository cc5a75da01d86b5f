# `pytest autograder --submission NOTEBOOK` loads the hidden checks' plugin from here.
from autograder.grading.pytest_plugin import *  # noqa: F401,F403
