#!/usr/bin/env bash
# The test command: installs what the tests need, starts PostgreSQL and Redis if they are down, then
# runs the linters, the type checker and the whole test suite against the real services.
# The deploy tests (tests/deploy) also use terraform and the provider mirror where the machine has them.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
bash scripts/deploy-tools.sh   # the deploy tests' linters into .tools/ (skipped when already there)
bash scripts/services.sh

echo "== ruff" && .venv/bin/ruff check salescast tests bench deploy && .venv/bin/ruff format --check salescast tests bench deploy
echo "== mypy" && .venv/bin/mypy salescast tests bench
echo "== pytest" && .venv/bin/pytest "$@"
