"""Autograder for the text-conditioning course: release with nbgrader, grade in a sandbox, report."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("text-conditioning-course")
except PackageNotFoundError:   # run from a checkout that was never installed
    __version__ = "0+unknown"
