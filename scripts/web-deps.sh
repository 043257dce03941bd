#!/usr/bin/env bash
# The dashboard's charting library (chart.js, pinned by salescast/web/package-lock.json) from the npm
# registry into salescast/web/static/assets/vendor/ (gitignored: no third-party code is committed).
# Re-running is cheap: nothing happens while the copied file matches the lock it was installed from.
set -euo pipefail
cd "$(dirname "$0")/../salescast/web"

vendor=static/assets/vendor
stamp=$vendor/.lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$vendor/chart.umd.min.js" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    exit 0
fi
if ! command -v npm >/dev/null; then
    echo "npm is missing; installing Debian's npm" >&2
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
npm ci --prefer-offline --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null
mkdir -p "$vendor"
cp node_modules/chart.js/dist/chart.umd.min.js node_modules/chart.js/LICENSE.md "$vendor/"
echo "$want" > "$stamp"
