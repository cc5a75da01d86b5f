"""nbgrader configuration for this course (copy it into a course folder of your own and adjust).

exercises/ is the source, release/ the student version, solutions/ the solved one, submitted/ what
`nbgrader collect` gathers. `nbgrader generate_assignment` names the exercise in each stub and puts
the student library and a requirements file beside a notebook that imports it. `nbgrader autograde` and formgrader's Autograde button grade through the
sandbox (autograder/platforms/nbgrader_autograde.py): student code never runs in nbgrader's own
kernel, and the hidden-check slots get the checks' scores, never zeros. Hand-graded scores keep their
review across regrades. See docs/platforms.md.
"""
import os

from autograder.platforms.nbgrader_autograde import grade_through_the_sandbox
from autograder.release.nbgrader_release import STUB_MESSAGE, course_release_steps

c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "exercises"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.solution_directory = "solutions"
c.CourseDirectory.submitted_directory = "submitted"

c.ClearSolutions.code_stub = {"python": f'# YOUR CODE HERE\nraise NotImplementedError("{STUB_MESSAGE}")'}
# Markdown solution cells are the written answers an instructor grades by hand.
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Exercise 4 may load a real pipeline on CPU; give cells room.
c.ExecutePreprocessor.timeout = 1800

# No execution timestamps in solutions/: regenerating an unchanged assignment changes no file.
c.Execute.record_timing = False

# Results go to graded/ (the folder `nbgrader-sync --graded` reads); options of `python -m autograder grade`
# for every autograde, e.g. ["--sd-device", "cuda", "--require-gpu"] on a GPU machine.
grade_through_the_sandbox(c, graded_dir="graded", grade_options=[])

# Each stub names its exercise; Lesson 2's release folder gets the text_to_image wheel and requirements.txt.
course_release_steps(c)
