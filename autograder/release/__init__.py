"""Release: the student notebooks and solutions made with nbgrader (nbgrader_release.py) and the student
edition of the lesson library with its wheel (student_library.py). Imported by the CLI, platforms and sandbox.
"""
