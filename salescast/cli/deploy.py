"""The `deploy` group: move traffic between model versions step by step, watch its health, roll back."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer
from rich.table import Table

from salescast.cli.output import FormatOption, OutputFormat, console, emit, print_table
from salescast.cli.services import open_deployments
from salescast.config import get_settings

group = typer.Typer(
    help="Roll a version out to live traffic step by step (canary, linear, split, shadow), or roll back.",
    epilog="Example: salescast deploy start demand 8 --strategy canary --steps 0.1,0.5,1.0",
    no_args_is_help=True,
)

STATUS_FIELDS = (
    "name",
    "id",
    "strategy",
    "baseline_version",
    "candidate_version",
    "share",
    "step",
    "steps",
    "bake_seconds_left",
    "status",
    "reason",
    "started",
    "actor",
    "health",
    "health_reason",
)


def _bake_seconds_left(deployment: Any, now: dt.datetime) -> float | None:
    from salescast.data.database import as_utc
    from salescast.registry.deployments import ROLLOUTS

    if deployment.status == "active" and deployment.strategy in ROLLOUTS:
        baked = (now - as_utc(deployment.step_started_at)).total_seconds()
        return max(0.0, float(deployment.bake_seconds) - baked)
    return None


def _print_deployment(deployment: Any, now: dt.datetime | None = None) -> None:
    now = now or dt.datetime.now(dt.UTC)
    table = Table(title=f"{deployment.name}: deployment #{deployment.id}", show_header=False)
    table.add_row("strategy", deployment.strategy)
    table.add_row("versions", f"v{deployment.baseline_version} -> v{deployment.candidate_version}")
    table.add_row("share on candidate", f"{deployment.share:.0%}")
    steps = ", ".join(f"{s:.0%}" for s in deployment.steps)
    table.add_row("step", f"{deployment.step + 1} of {len(deployment.steps)} ({steps})")
    if (left := _bake_seconds_left(deployment, now)) is not None:
        table.add_row("baking time left", f"{left:.0f} s")
    status = deployment.status
    colour = {"active": "cyan", "completed": "green", "rolled_back": "red"}.get(status, "yellow")
    table.add_row("status", f"[{colour}]{status}[/]")
    table.add_row("reason", deployment.reason or "")
    table.add_row("started", f"{deployment.created_at:%Y-%m-%d %H:%M:%S} by {deployment.actor}")
    print_table(table)


@group.command("start")
def deploy_start(
    name: Annotated[str, typer.Argument(help="Model name")],
    version: Annotated[int, typer.Argument(help="Candidate version number")],
    strategy: Annotated[
        str, typer.Option(help="all_at_once, canary, linear, split (a fixed share) or shadow (served to nobody)")
    ] = "canary",
    steps: Annotated[
        str | None, typer.Option(help="Candidate share at each step, e.g. 0.1,1.0 (split: the one share)")
    ] = None,
    bake: Annotated[float, typer.Option(min=0, help="Seconds each step runs healthy before the next")] = 600,
    max_error_increase: Annotated[
        float, typer.Option(min=0, help="Roll back when the candidate's error rate is this much higher")
    ] = 0.01,
    max_latency_ratio: Annotated[
        float, typer.Option(min=0, help="Roll back when the candidate's latency is this many times the baseline's")
    ] = 1.5,
    actor: Annotated[str, typer.Option(help="Who")] = "cli",
) -> None:
    """Start moving traffic from production to a candidate version (its forecasts are stored first).

    Example: salescast deploy start demand 8 --strategy linear --steps 0.25,0.5,1.0 --bake 900
    """
    shares: list[float] | None = None
    if steps is not None:
        try:
            shares = [float(part) for part in steps.split(",") if part.strip()]
        except ValueError as exc:
            raise typer.BadParameter(f"--steps expects shares such as 0.1,0.5,1.0; got {steps!r}") from exc
    deployment = open_deployments(get_settings()).start(
        name,
        version,
        strategy,
        steps=shares,
        bake_seconds=bake,
        max_error_rate_increase=max_error_increase,
        max_latency_ratio=max_latency_ratio,
        actor=actor,
    )
    _print_deployment(deployment)


@group.command("status")
def deploy_status(
    name: Annotated[str, typer.Argument(help="Model name")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """The active deployment (or the latest one) with its health so far.

    json gives one object (null when the model has no deployments).

    Example: salescast deploy status demand --format json
    """
    service = open_deployments(get_settings())
    deployment = service.active(name)
    if deployment is None:
        history = service.history(name)
        if not history:
            if fmt is OutputFormat.table:
                console.print(f"{name}: no deployments")
            else:
                emit(fmt, STATUS_FIELDS, [], lambda: None, one=True)
            return
        deployment = history[-1]
    watched = deployment.status == "active" and deployment.strategy != "shadow"
    now = dt.datetime.now(dt.UTC)
    if fmt is OutputFormat.table:
        _print_deployment(deployment, now)
        if watched:
            verdict = service.health(deployment)
            console.print(f"health this step: {verdict.outcome} ({verdict.reason})")
        return
    verdict = service.health(deployment) if watched else None

    record = {
        "name": deployment.name,
        "id": deployment.id,
        "strategy": deployment.strategy,
        "baseline_version": deployment.baseline_version,
        "candidate_version": deployment.candidate_version,
        "share": deployment.share,
        "step": deployment.step + 1,
        "steps": list(deployment.steps),
        "bake_seconds_left": _bake_seconds_left(deployment, now),
        "status": deployment.status,
        "reason": deployment.reason,
        "started": _utc(deployment.created_at),
        "actor": deployment.actor,
        "health": None if verdict is None else verdict.outcome,
        "health_reason": None if verdict is None else verdict.reason,
    }
    emit(fmt, STATUS_FIELDS, [record], lambda: None, one=True)


def _utc(moment: dt.datetime) -> dt.datetime:
    from salescast.data.database import as_utc

    return as_utc(moment)


@group.command("evaluate")
def deploy_evaluate(name: Annotated[str, typer.Argument(help="Model name")]) -> None:
    """One controller step, for cron or CI: roll back on bad health, else advance or complete a baked step.

    Example: salescast deploy evaluate demand
    """
    deployment = open_deployments(get_settings()).evaluate(name)
    if deployment is None:
        console.print(f"{name}: no active deployment")
        return
    _print_deployment(deployment)


@group.command("promote")
def deploy_promote(
    name: Annotated[str, typer.Argument(help="Model name")],
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit trail)")] = None,
    actor: Annotated[str, typer.Option(help="Who")] = "cli",
) -> None:
    """Make the candidate production now, whatever step the deployment is at.

    Example: salescast deploy promote demand --reason "canary healthy for a day"
    """
    _print_deployment(open_deployments(get_settings()).promote_candidate(name, actor, reason))


@group.command("rollback")
def deploy_rollback(
    name: Annotated[str, typer.Argument(help="Model name")],
    reason: Annotated[str, typer.Option(help="Why (kept with the deployment and sent as an alert)")],
    actor: Annotated[str, typer.Option(help="Who")] = "cli",
) -> None:
    """Take all traffic off the candidate now; production stays as it is.

    Example: salescast deploy rollback demand --reason "error rate up"
    """
    _print_deployment(open_deployments(get_settings()).rollback(name, actor, reason))


@group.command("stop")
def deploy_stop(
    name: Annotated[str, typer.Argument(help="Model name")],
    reason: Annotated[str | None, typer.Option(help="Why")] = None,
    actor: Annotated[str, typer.Option(help="Who")] = "cli",
) -> None:
    """End a split or shadow without promoting: production keeps all traffic.

    Example: salescast deploy stop demand --reason "shadow comparison done"
    """
    _print_deployment(open_deployments(get_settings()).stop(name, actor, reason))
