"""Intake: who submitted what (discover.py) and a notebook turned into the code to run (submission.py).

Trusted host code; reads student files but runs none of them. Imported by the CLI and the grading step.
"""
