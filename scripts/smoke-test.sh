#!/usr/bin/env bash
# Smoke test of a salescast API: liveness, readiness (database and a production model) and the OpenAPI
# document, each REQUESTS times; any failure exits non-zero (release.yml then rolls the weights back).
#   scripts/smoke-test.sh https://api.example.com [REQUESTS]
set -euo pipefail

base=${1:?usage: $0 BASE_URL [REQUESTS]}
requests=${2:-20}
for path in /api/v1/health /api/v1/ready /api/v1/openapi.json; do
    for _ in $(seq 1 "$requests"); do
        # curl prints 000 itself when it gets no answer; `|| true` keeps set -e from ending the loop first.
        status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$base$path" || true)
        if [ "$status" != 200 ]; then
            echo "smoke test failed: GET $path answered $status" >&2
            exit 1
        fi
    done
done
echo "smoke test passed: $requests x 3 requests to $base"
