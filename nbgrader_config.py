"""nbgrader configuration: exercises/ is the source, release/ the student version, solutions/ the solved one."""
import os

c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "exercises"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.solution_directory = "solutions"
c.CourseDirectory.submitted_directory = "submitted"

c.ClearSolutions.code_stub = {
    "python": '# YOUR CODE HERE\nraise NotImplementedError("Write your solution here, then re-run this cell.")'
}
# Markdown solution cells are the written answers an instructor grades by hand.
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Exercise 4 may load a real pipeline on CPU; give cells room.
c.ExecutePreprocessor.timeout = 1800

# No execution timestamps in solutions/: regenerating an unchanged assignment changes no file.
c.Execute.record_timing = False
