"""The monthly cost of the Terraform stack for each environment, from a prices table and the tfvars sizings.

    python3 deploy/costs/estimate.py            # print the Markdown that docs/deploy.md shows
    python3 deploy/costs/estimate.py --write    # rewrite that part of docs/deploy.md
    python3 deploy/costs/estimate.py --prices other.csv --env dev

Standard library only (it runs without salescast installed). The sizings come from deploy/terraform/envs/*.tfvars
and, where an environment does not set one, from the module's variable default; the usage (traffic, log
volume, stored data) is the assumptions below, which the output lists beside the figures.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRICES = Path(__file__).with_name("prices.csv")
TERRAFORM = ROOT / "deploy" / "terraform"
DOC = ROOT / "docs" / "deploy.md"
BEGIN, END = "<!-- cost-estimate:begin -->", "<!-- cost-estimate:end -->"
HOURS_PER_MONTH = 730  # AWS's own convention for monthly figures
WEEKS_PER_MONTH = HOURS_PER_MONTH / 168
ENVIRONMENTS = ("dev", "prod")
# Sizings an environment may leave at its module's default: (module, variable).
MODULE_DEFAULTS = {
    "api_cpu": ("ecs", "api_cpu"),
    "api_memory": ("ecs", "api_memory"),
    "worker_cpu": ("ecs", "worker_cpu"),
    "worker_memory": ("ecs", "worker_memory"),
    "allocated_storage_gb": ("database", "allocated_storage_gb"),
    "az_count": ("network", "az_count"),
    "lambda_memory_mb": ("lambda_api", "memory_mb"),
}
INTERFACE_ENDPOINTS = 5  # modules/network: ecr.api, ecr.dkr, logs, secretsmanager, sts
WORKER_EPHEMERAL_GB = 50  # modules/ecs: the worker's ephemeral storage (20 GB are included)
SECRETS = 4  # database URL, read replica URL, Redis AUTH token (modules/secrets), RDS's master password
ALARMS = 5  # modules/cloudwatch: 5xx and p99 latency per target group, stale data
OFF_HOURS_WEEKLY_HOURS = 13 * 5  # modules/ecs scales dev to 0 outside 07:00-20:00 UTC, Monday to Friday


@dataclass(frozen=True)
class Usage:
    """What the prices are multiplied by besides the sizings: assumed, not measured."""

    api_requests_million: float
    alb_lcu: float
    nat_gb: float
    endpoint_gb: float
    logs_gb: float
    s3_gb: float
    ecr_gb: float
    out_gb: float
    ingest_hours_per_day: float  # scheduled worker tasks (worker_service = false)
    retrain_hours_per_week: float
    lambda_requests_million: float
    lambda_seconds: float
    cdn_gb: float
    cdn_requests_million: float
    builds_per_month: int
    build_minutes: float


USAGE = {
    "dev": Usage(1, 1, 20, 20, 5, 20, 5, 10, 0.25, 2, 0, 0.5, 0, 0, 60, 10),
    "prod": Usage(10, 2, 100, 100, 30, 200, 10, 100, 0.25, 2, 1, 0.5, 50, 1, 60, 10),
}
USAGE_TEXT = {
    "api_requests_million": "API requests per month (million), all through the WAF",
    "alb_lcu": "average ALB load balancer capacity units",
    "nat_gb": "GB through the NAT gateways (the worker's external data fetches)",
    "endpoint_gb": "GB through the VPC interface endpoints (image pulls, logs)",
    "logs_gb": "GB of logs ingested (API, worker, WAF, flow logs)",
    "s3_gb": "GB stored in S3 (artifacts, data lake, logs)",
    "ecr_gb": "GB of container images in ECR",
    "out_gb": "GB out to the internet from the ALB",
    "ingest_hours_per_day": "hours of the daily ingest task (scheduled tasks only)",
    "retrain_hours_per_week": "hours of the weekly retraining task (scheduled tasks only)",
    "lambda_requests_million": "Lambda API requests per month (million; enable_lambda_api)",
    "lambda_seconds": "seconds per Lambda request",
    "cdn_gb": "GB served by CloudFront (enable_cdn)",
    "cdn_requests_million": "CloudFront HTTPS requests per month (million)",
    "builds_per_month": "CodeBuild builds per month",
    "build_minutes": "minutes per build",
}


class Prices(dict[str, float]):
    """The prices table; a price it lacks (an instance class the tfvars name) is one clear line."""

    def __missing__(self, key: str) -> float:
        raise SystemExit(f"the prices table has no row {key!r}: add it from the page its service's rows cite")


def read_prices(path: Path) -> dict[str, float]:
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return {row["key"]: float(row["usd"]) for row in csv.DictReader(lines)}


def _value(text: str) -> str | float | bool:
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    if text.startswith('"'):
        return text.strip('"')
    try:
        return float(text)
    except ValueError:
        return text


def read_sizing(env: str) -> dict[str, str | float | bool]:
    """The environment's tfvars, then each module default it does not set."""
    tfvars = (TERRAFORM / "envs" / f"{env}.tfvars").read_text()
    sizing = {name: _value(value) for name, value in re.findall(r"^(\w+)\s*=\s*(.+?)\s*$", tfvars, re.M)}
    for name, (module, variable) in MODULE_DEFAULTS.items():
        if name in sizing:
            continue
        variables = (TERRAFORM / "modules" / module / "variables.tf").read_text()
        block = re.search(rf'variable "{variable}" \{{(.*?)\n\}}', variables, re.S)
        default = re.search(r"^\s*default\s*=\s*(.+?)\s*$", block[1], re.M) if block else None
        if default is None:
            raise SystemExit(f"modules/{module}/variables.tf has no default for {variable}")
        sizing[name] = _value(default[1])
    return sizing


def estimate(env: str, prices: dict[str, float]) -> dict[str, float]:
    """USD per month by line item for `env`."""
    s, u, p = read_sizing(env), USAGE[env], Prices(prices)
    month = HOURS_PER_MONTH
    on_hours = OFF_HOURS_WEEKLY_HOURS * WEEKS_PER_MONTH if s["off_hours_scale_down"] else month

    def fargate(cpu: float, memory: float, hours: float) -> float:
        return (cpu / 1024 * p["fargate_vcpu_hour"] + memory / 1024 * p["fargate_gb_hour"]) * hours

    items: dict[str, float] = {}
    items["ECS Fargate: API tasks"] = float(s["api_min_count"]) * fargate(
        float(s["api_cpu"]), float(s["api_memory"]), on_hours
    )
    worker_hours = (
        on_hours
        if s["worker_service"]
        else u.ingest_hours_per_day * month / 24 + u.retrain_hours_per_week * WEEKS_PER_MONTH
    )
    items["ECS Fargate: worker and training"] = (
        fargate(float(s["worker_cpu"]), float(s["worker_memory"]), worker_hours)
        + (WORKER_EPHEMERAL_GB - 20) * p["fargate_storage_gb_hour"] * worker_hours
    )
    db_hour = p[f"rds_{s['db_instance_class']}_hour"]
    copies = 2 if s["db_multi_az"] else 1
    storage = float(s["allocated_storage_gb"]) * p["rds_gp3_gb_month"]
    items["RDS PostgreSQL (instance, storage)"] = copies * (db_hour * month + storage)
    if s["enable_read_replica"]:
        items["RDS read replica"] = db_hour * month + storage
    items["ElastiCache Redis"] = float(s["cache_nodes"]) * p[f"elasticache_{s['cache_node_type']}_hour"] * month
    nat_gateways = {"none": 0, "single": 1}.get(str(s["nat_gateway_mode"]), float(s["az_count"]))
    items["NAT gateways"] = nat_gateways * p["nat_gateway_hour"] * month + u.nat_gb * p["nat_gateway_gb"]
    items["VPC interface endpoints"] = (
        INTERFACE_ENDPOINTS * float(s["az_count"]) * p["vpc_endpoint_az_hour"] * month
        + u.endpoint_gb * p["vpc_endpoint_gb"]
    )
    public_ips = nat_gateways + float(s["az_count"])  # the NAT gateways' and the ALB's (one per AZ)
    items["Public IPv4 addresses"] = public_ips * p["public_ipv4_hour"] * month
    items["Application Load Balancer"] = (p["alb_hour"] + u.alb_lcu * p["alb_lcu_hour"]) * month
    acls = [4]  # the ALB's: the rate rule and three managed groups (modules/waf)
    acls += [4] if s["enable_lambda_api"] else []
    acls += [3] if s["enable_cdn"] else []
    items["WAF"] = (
        sum(p["waf_web_acl_month"] + rules * p["waf_rule_month"] for rules in acls)
        + (u.api_requests_million + u.lambda_requests_million + u.cdn_requests_million) * p["waf_million_requests"]
    )
    items["KMS and Secrets Manager"] = p["kms_key_month"] + SECRETS * p["secret_month"]
    items["CloudWatch (logs, alarms, dashboard)"] = (
        u.logs_gb * (p["logs_ingest_gb"] + p["logs_storage_gb_month"])
        + ALARMS * p["cloudwatch_alarm_month"]
        + p["cloudwatch_dashboard_month"]
    )
    items["S3 and ECR storage"] = u.s3_gb * p["s3_standard_gb_month"] + u.ecr_gb * p["ecr_gb_month"]
    items["Data transfer out"] = u.out_gb * p["data_transfer_out_gb"]
    if s["enable_lambda_api"]:
        gb_seconds = u.lambda_requests_million * 1e6 * u.lambda_seconds * float(s["lambda_memory_mb"]) / 1024
        items["Lambda and API Gateway"] = gb_seconds * p["lambda_gb_second"] + u.lambda_requests_million * (
            p["lambda_million_requests"] + p["apigw_rest_million_requests"]
        )
    if s["enable_cdn"]:
        items["CloudFront"] = (
            u.cdn_gb * p["cloudfront_gb"] + u.cdn_requests_million * 100 * p["cloudfront_10k_https_requests"]
        )
    items["CodeBuild"] = u.builds_per_month * u.build_minutes * p["codebuild_small_minute"]
    return items


def markdown(prices: dict[str, float]) -> str:
    """The assumptions and the estimate of every environment, as the Markdown docs/deploy.md shows."""
    estimates = {env: estimate(env, prices) for env in ENVIRONMENTS}
    sizings = {env: read_sizing(env) for env in ENVIRONMENTS}
    lines = ["| assumption | dev | prod |", "|---|---:|---:|"]
    shown = [
        ("api_min_count", "API tasks (live color)"),
        ("api_cpu", "CPU units per API task"),
        ("api_memory", "MiB per API task"),
        ("worker_service", "worker as a service (else scheduled tasks)"),
        ("off_hours_scale_down", "scaled to 0 outside 07:00-20:00 on weekdays"),
        ("db_instance_class", "RDS instance class"),
        ("db_multi_az", "RDS Multi-AZ"),
        ("enable_read_replica", "RDS read replica"),
        ("allocated_storage_gb", "RDS storage (GB)"),
        ("cache_node_type", "ElastiCache node type"),
        ("cache_nodes", "ElastiCache nodes"),
        ("nat_gateway_mode", "NAT gateways"),
        ("enable_lambda_api", "Lambda + API Gateway path"),
        ("enable_cdn", "CloudFront front end"),
    ]
    for name, text in shown:
        lines.append(f"| {text} (tfvars) | {_cell(sizings['dev'][name])} | {_cell(sizings['prod'][name])} |")
    for name, text in USAGE_TEXT.items():
        lines.append(f"| {text} | {_cell(getattr(USAGE['dev'], name))} | {_cell(getattr(USAGE['prod'], name))} |")
    lines += ["", "| USD per month | dev | prod |", "|---|---:|---:|"]
    names = list(dict.fromkeys(name for env in reversed(ENVIRONMENTS) for name in estimates[env]))
    for name in names:
        cells = [f"{estimates[env][name]:,.2f}" if name in estimates[env] else "-" for env in ENVIRONMENTS]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    totals = [f"**{sum(estimates[env].values()):,.2f}**" for env in ENVIRONMENTS]
    lines.append(f"| **total** | {' | '.join(totals)} |")
    return "\n".join(lines) + "\n"


def _cell(value: str | float | bool) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def totals(prices: dict[str, float]) -> dict[str, float]:
    return {env: round(sum(estimate(env, prices).values()), 2) for env in ENVIRONMENTS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prices", type=Path, default=PRICES, help="prices table (CSV: key,usd,unit,source)")
    parser.add_argument("--write", action="store_true", help=f"rewrite the estimate in {DOC.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    table = markdown(read_prices(args.prices))
    if not args.write:
        sys.stdout.write(table)
        return 0
    text = DOC.read_text()
    if BEGIN not in text or END not in text:
        print(f"{DOC} has no {BEGIN} ... {END} block", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    DOC.write_text(f"{head}{BEGIN}\n{table}{END}{rest.split(END, 1)[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
