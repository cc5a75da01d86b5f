#!/usr/bin/env bash
# The main job: check the release against the nbgrader source, grade the sample class, print the scores.
# It changes nothing that git tracks (grading-output/ is ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
python -m autograder release --check
python -m autograder grade samples/submitted --out grading-output "$@"
