"""Grading: long-lived workers (worker.py) running the hidden checks through a pytest plugin (pytest_plugin.py)
with the checks' vocabulary (expectations.py). Trusted; talks to student code only through sandbox/.
"""
