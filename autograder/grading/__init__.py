"""Grading: long-lived workers (worker.py) running the hidden checks through a pytest plugin (pytest_plugin.py)
with the checks' vocabulary (expectations.py) and the submission as they see it (submission_under_test.py).
Trusted; talks to student code only through sandbox/.
"""
