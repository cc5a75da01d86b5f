"""The class's totals in the gradebook import formats of Canvas and Moodle, from the same totals as grades.csv.

Canvas (Grades > Import, "How do I import grades in the Gradebook?"): a header row with Student, ID,
SIS User ID, SIS Login ID, Section and one column per assignment; the row under it may give the
assignment's Points Possible. Canvas matches a student by ID, SIS User ID or SIS Login ID; the grader
knows students only by their submission folder's name, so that name goes into the column the course
uses for it (`--canvas-id`, default SIS Login ID) and the others stay empty.

Moodle (Grades > Import > CSV file): a header row, one row per student; on import the instructor maps
the identifier column to the user field it holds (username by default here) and the grade column to
the grade item; the feedback column to that item's feedback.

Every cell that can carry student text is made inert for spreadsheets (report.spreadsheet_text).
"""
from __future__ import annotations

import csv
import io

from autograder import assignments
from autograder.reports import report

CANVAS_ID_COLUMNS = {"id": "ID", "sis_user_id": "SIS User ID", "sis_login_id": "SIS Login ID"}
MOODLE_ID_COLUMNS = {"username": "Username", "idnumber": "ID number", "email": "Email address"}
FORMATS = ("canvas", "moodle")


def _writer() -> tuple[io.StringIO, csv.writer]:
    buffer = io.StringIO()
    return buffer, csv.writer(buffer, lineterminator="\r\n")   # RFC 4180 line ends, as both import


def canvas_csv(outcomes: dict[str, dict], assignment: assignments.Assignment, id_column: str = "sis_login_id") -> str:
    buffer, writer = _writer()
    column = f"{assignment.title} ({assignment.name})"
    header = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column]
    writer.writerow(header)
    writer.writerow(["Points Possible", "", "", "", "", f"{assignment.points:g}"])
    at = header.index(CANVAS_ID_COLUMNS[id_column])
    for student in sorted(outcomes):
        row = [report.spreadsheet_text(student), "", "", "", "", f"{report.outcome_totals(outcomes[student])[0]:g}"]
        row[at] = report.spreadsheet_text(student)
        writer.writerow(row)
    return buffer.getvalue()


def moodle_csv(outcomes: dict[str, dict], assignment: assignments.Assignment, id_column: str = "username") -> str:
    buffer, writer = _writer()
    writer.writerow([MOODLE_ID_COLUMNS[id_column], assignment.title, f"{assignment.title} (feedback)"])
    for student in sorted(outcomes):
        outcome = outcomes[student]
        score, maximum = report.outcome_totals(outcome)
        feedback = f"{score:g} / {maximum:g} from the hidden checks"
        if outcome.get("notebook_error") or outcome.get("error"):
            feedback += f"; not graded: {outcome.get('notebook_error') or outcome.get('error')}"
        writer.writerow([report.spreadsheet_text(student), f"{score:g}", report.spreadsheet_text(feedback)])
    return buffer.getvalue()


def export(outcomes: dict[str, dict], assignment: assignments.Assignment, form: str, id_column: str | None = None) -> str:
    if form == "canvas":
        return canvas_csv(outcomes, assignment, id_column or "sis_login_id")
    return moodle_csv(outcomes, assignment, id_column or "username")
