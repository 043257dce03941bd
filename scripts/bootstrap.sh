#!/usr/bin/env bash
# Creates .venv and installs salescast with the pinned versions of requirements.lock.
# Re-running is cheap: the install is skipped when the lock has not changed since the last one.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
        # Debian splits venv out of the interpreter package.
        echo "python3 -m venv failed; installing python3-venv" >&2
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        rm -rf .venv && "$PYTHON" -m venv .venv
    fi
fi

stamp=.venv/.salescast-lock.sha256
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install -q --upgrade pip uv==0.13.9
    .venv/bin/uv pip install -q --python .venv/bin/python -r requirements.lock
    .venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
    echo "$want" > "$stamp"
fi

# The dashboard's charting library (npm); the API runs without it, so a failure here only warns.
bash scripts/web-deps.sh || echo "warning: the dashboard's charting library could not be installed (scripts/web-deps.sh)" >&2
