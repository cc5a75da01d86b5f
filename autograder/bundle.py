"""Packages the grader for engines that already grade at scale. Gradescope: a zip with setup.sh and
run_autograder at its root; Gradescope unpacks it into /autograder/source, runs setup.sh once when
building the image, then run_autograder for each submission in /autograder/submission."""
from __future__ import annotations

import zipfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope image set-up: bubblewrap for the sandbox, Python 3.11, the pinned environment.
set -euxo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y bubblewrap libseccomp2 software-properties-common
if ! command -v python3.11 >/dev/null; then
  add-apt-repository -y ppa:deadsnakes/ppa && apt-get update
  apt-get install -y python3.11 python3.11-venv python3.11-dev
fi
python3.11 -m venv /autograder/venv
/autograder/venv/bin/pip install --upgrade pip
/autograder/venv/bin/pip install -r /autograder/source/requirements.lock \
  --extra-index-url https://download.pytorch.org/whl/cpu
# Editable on purpose: the hidden checks stay in /autograder/source, which the sandbox never mounts
# (a regular install would copy them into the venv, which it does mount, read-only).
/autograder/venv/bin/pip install --no-deps -e /autograder/source
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Grade the upload's {assignment}.ipynb (found at any depth) into /autograder/results/results.json.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}"
cd "$ROOT/source" 2>/dev/null || cd "$(dirname "$0")"
exec "$PYTHON" -m autograder gradescope-run --assignment {assignment} \
  --submission-dir "$ROOT/submission" --results "$ROOT/results/results.json"
"""


def gradescope_bundle(out: Path, course_dir: Path, assignment: str) -> Path:
    """One Gradescope autograder per assignment: run_autograder names the assignment it grades."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        run_autograder = RUN_AUTOGRADER.replace("{assignment}", assignment)
        for name, text in (("setup.sh", SETUP_SH), ("run_autograder", run_autograder)):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16
            bundle.writestr(info, text)
        for name in ("pyproject.toml", "requirements.lock", "README.md"):
            bundle.write(course_dir / name, name)
        for path in sorted(PACKAGE_DIR.rglob("*.py")):
            bundle.write(path, str(Path("autograder") / path.relative_to(PACKAGE_DIR)))
    return out
