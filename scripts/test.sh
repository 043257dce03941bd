#!/usr/bin/env bash
# The test command: installs what the tests need, starts PostgreSQL and Redis if they are down, then
# runs the linters, the type checker and the whole test suite against the real services.
# The deploy tests (tests/deploy) also use terraform and the provider mirror where the machine has them.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
bash scripts/deploy-tools.sh   # the deploy tests' linters into .tools/ (skipped when already there)
bash scripts/services.sh

# promtool and amtool check deploy/monitoring/ (tests/deploy/test_monitoring_*.py): Debian's prometheus and
# prometheus-alertmanager packages, installed once when missing.
if ! command -v promtool >/dev/null || ! command -v amtool >/dev/null; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    candidates=$(apt-cache policy prometheus prometheus-alertmanager | grep -c "Candidate: [0-9]" || true)
    [ "$candidates" -eq 2 ] || { echo "Debian's prometheus packages are not available to apt" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
        prometheus prometheus-alertmanager >/dev/null
fi

# The dashboard's charting library from npm (scripts/web-deps.sh) and the Chromium its browser test drives
# (tests/web/test_dashboard_browser.py, Playwright with Debian's chromium), installed once when missing.
bash scripts/web-deps.sh
if [ ! -x /usr/bin/chromium ]; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

echo "== ruff" && .venv/bin/ruff check salescast tests bench deploy && .venv/bin/ruff format --check salescast tests bench deploy
echo "== mypy" && .venv/bin/mypy salescast tests bench
bash scripts/security.sh   # bandit and pip-audit (offline-tolerant)
echo "== pytest" && .venv/bin/pytest "$@"
