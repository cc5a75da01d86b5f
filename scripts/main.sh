#!/usr/bin/env bash
# The main job: release the assignment with nbgrader, then grade the sample submissions and print scores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
python -m autograder release
python -m autograder grade samples/text_conditioning_guidance --out grading-output "$@"
