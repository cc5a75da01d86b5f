#!/usr/bin/env bash
# Idempotent set-up: bubblewrap for the sandbox, and .venv with the pinned environment.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing bubblewrap (the sandbox for student code)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap libseccomp2 >/dev/null) \
      || echo "setup: WARNING: could not install bubblewrap; grading as root confines student code without namespaces, otherwise it refuses" >&2
  else
    echo "setup: WARNING: bubblewrap (bwrap) is missing; install it (grading as a non-root user refuses without it)" >&2
  fi
fi

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
stamp=".venv/.installed-$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "setup: creating .venv from requirements.lock (about a minute)"
  rm -rf .venv
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip 2>/dev/null || true
  # torch==2.13.0 resolves to the local CPU wheel on the course machines (see README).
  .venv/bin/python -m pip install -q -r requirements.lock
  .venv/bin/python -m pip install -q --no-deps -e .
  touch "$stamp"
fi
