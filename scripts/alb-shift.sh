#!/usr/bin/env bash
# Moves the API's traffic between the blue and green target groups by the HTTPS listener's weights.
#   scripts/alb-shift.sh LISTENER_ARN BLUE_TG_ARN GREEN_TG_ARN BLUE_WEIGHT GREEN_WEIGHT
#   scripts/alb-shift.sh --live LISTENER_ARN BLUE_TG_ARN GREEN_TG_ARN    # prints blue or green
# Used by .github/workflows/release.yml (canary 90/10, then 0/100, or back to 100/0 on a failed smoke test).
# Weights are 0-999 each; a request goes to a group with probability weight / sum.
set -euo pipefail

if [ "${1:-}" = "--live" ]; then
    listener=$2 blue=$3 green=$4
    weights=$(aws elbv2 describe-listeners --listener-arns "$listener" \
        --query "Listeners[0].DefaultActions[0].ForwardConfig.TargetGroups[].[TargetGroupArn,Weight]" --output text)
    blue_weight=$(awk -v tg="$blue" '$1 == tg {print $2}' <<<"$weights")
    green_weight=$(awk -v tg="$green" '$1 == tg {print $2}' <<<"$weights")
    if [ "${green_weight:-0}" -gt "${blue_weight:-0}" ]; then echo green; else echo blue; fi
    exit 0
fi

if [ $# -ne 5 ]; then
    echo "usage: $0 LISTENER_ARN BLUE_TG_ARN GREEN_TG_ARN BLUE_WEIGHT GREEN_WEIGHT" >&2
    exit 2
fi
listener=$1 blue=$2 green=$3 blue_weight=$4 green_weight=$5
for w in "$blue_weight" "$green_weight"; do
    [[ "$w" =~ ^[0-9]+$ ]] && [ "$w" -le 999 ] || { echo "weights are integers 0-999, got $w" >&2; exit 2; }
done
[ $((blue_weight + green_weight)) -gt 0 ] || { echo "both weights are 0: nothing would be served" >&2; exit 2; }

aws elbv2 modify-listener --listener-arn "$listener" --default-actions "$(cat <<JSON
[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
  {"TargetGroupArn": "$blue", "Weight": $blue_weight},
  {"TargetGroupArn": "$green", "Weight": $green_weight}],
  "TargetGroupStickinessConfig": {"Enabled": false}}}]
JSON
)" >/dev/null
echo "listener weights: blue $blue_weight, green $green_weight"
