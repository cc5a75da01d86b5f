"""Gradescope: the autograder zip, and the feedback rules of its runs.

The zip holds setup.sh and run_autograder at its root; Gradescope unpacks it into /autograder/source,
runs setup.sh once when it builds the image (Ubuntu 22.04, as root, in Docker), then run_autograder
for each submission in /autograder/submission, which must leave /autograder/results/results.json.
Docker there usually forbids the namespaces bubblewrap needs, so student code runs in the sandbox's
namespace-free mode (a user of its own, a syscall filter, limits): see autograder/sandbox/.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import zipfile
from pathlib import Path

from autograder.reports import report

PACKAGE_DIR = Path(__file__).resolve().parent.parent

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope image set-up (Ubuntu 22.04, root): Ubuntu's own python3.11, bubblewrap and libseccomp for
# the sandbox, and only the packages grading needs (requirements-grader.lock), pinned like the course's.
set -euxo pipefail
export DEBIAN_FRONTEND=noninteractive
SOURCE="${AUTOGRADER_SOURCE:-/autograder/source}"
VENV="${AUTOGRADER_VENV:-/autograder/venv}"
if [ -z "${AUTOGRADER_SKIP_APT:-}" ]; then
  apt-get update
  apt-get install -y --no-install-recommends python3.11 python3.11-venv bubblewrap libseccomp2 ca-certificates
fi
python3.11 -m venv "$VENV"
# torch's CPU wheels (PyPI's default for Linux pulls gigabytes of CUDA libraries Gradescope cannot use)
TORCH_INDEX="${AUTOGRADER_TORCH_INDEX-https://download.pytorch.org/whl/cpu}"
# No pip cache in the image (it would only make it bigger); a test of this script may reuse its machine's.
NO_CACHE="${AUTOGRADER_PIP_NO_CACHE---no-cache-dir}"
"$VENV/bin/pip" install $NO_CACHE -r "$SOURCE/requirements-grader.lock" \
  ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"}
# Editable on purpose: the hidden checks stay in $SOURCE, which student code can never read (the
# sandbox makes them private to root); a regular install would copy them into the venv, which it reads.
"$VENV/bin/pip" install $NO_CACHE --no-deps --no-build-isolation -e "$SOURCE"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Grade the upload's {assignment}.ipynb (found at any depth) into /autograder/results/results.json.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}"
cd "$ROOT/source" 2>/dev/null || cd "$(dirname "$0")"
exec "$PYTHON" -m autograder gradescope-run --assignment {assignment} {options} \
  --submission-dir "$ROOT/submission" --metadata "$ROOT/submission_metadata.json" \
  --results "$ROOT/results/results.json"
"""


def bundle(out: Path, course_dir: Path, assignment: str, hidden_visibility: str = "after_due_date",
           feedback_limit: str | None = None) -> Path:
    """One Gradescope autograder per assignment: run_autograder names the assignment and the feedback rules."""
    options = ["--hidden-visibility", hidden_visibility] + (["--feedback-limit", feedback_limit] if feedback_limit else [])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        run_autograder = RUN_AUTOGRADER.replace("{assignment}", assignment).replace("{options}", shlex.join(options))
        for name, text in (("setup.sh", SETUP_SH), ("run_autograder", run_autograder)):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16
            archive.writestr(info, text)
        for name in ("pyproject.toml", "requirements-grader.lock", "README.md"):
            archive.write(course_dir / name, name)
        # The release's locked cells replace the submission's, as in every other grading path.
        released = Path("release") / assignment / f"{assignment}.ipynb"
        archive.write(course_dir / released, str(released))
        for path in sorted(PACKAGE_DIR.rglob("*.py")):
            archive.write(path, str(Path("autograder") / path.relative_to(PACKAGE_DIR)))
        for library in ("text_to_image",):   # the course library the notebooks import; the sandbox gets a copy
            for path in sorted((course_dir / library).rglob("*.py")):
                archive.write(path, str(path.relative_to(course_dir)))
    return out


class FeedbackLimit:
    """At most `count` fully detailed results per `hours`, counted from Gradescope's submission metadata
    as of the submission's own time (so a rerun decides the same way); later ones are still graded."""

    def __init__(self, text: str):
        match = re.fullmatch(r"(\d+)/(\d+(?:\.\d+)?)h", text.strip())
        if not match or int(match[1]) < 1:
            raise ValueError(f"a feedback limit looks like 3/24h (submissions per hours), not {text!r}")
        self.count, self.hours = int(match[1]), float(match[2])

    def reached(self, metadata: dict, when: str = report.WHEN_SHOWN["after_due_date"]) -> str | None:
        """None while full feedback is allowed, else the sentence that tells the student why and until when
        (`when`: how the further checks are shown meanwhile)."""
        now = _time(metadata.get("created_at"))
        if now is None:
            return None
        window = dt.timedelta(hours=self.hours)
        earlier = sorted(t for t in (_time(p.get("submission_time")) for p in metadata.get("previous_submissions", []))
                         if t is not None and now - window < t <= now)
        if len(earlier) < self.count:
            return None
        again = earlier[-self.count] + window
        return (f"You have had full feedback {self.count} times in the last {self.hours:g} hours: this submission is "
                f"graded, but its further checks {when}. Full feedback again from "
                f"{again.isoformat(timespec='minutes')}.")


def results(outcome: dict, hidden_visibility: str, metadata_path: Path | None, limit: FeedbackLimit | None) -> dict:
    """results.json for one run: the hidden checks follow the course's visibility, or stay hidden until
    the due date when the feedback limit is reached."""
    reason = None
    limited = "after_due_date" if hidden_visibility == "visible" else hidden_visibility
    if limit is not None and metadata_path is not None and metadata_path.is_file():
        try:
            reason = limit.reached(json.loads(metadata_path.read_text()), report.WHEN_SHOWN[limited])
        except (OSError, ValueError, AttributeError, TypeError):
            reason = None
    visibility = limited if reason else hidden_visibility
    answer = report.gradescope_results(outcome, visibility)
    if reason:
        answer["output"] = (reason + "\n" + answer["output"]).strip()
    return answer


def _time(text) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
