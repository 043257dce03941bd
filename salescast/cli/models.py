"""The `models` group: the registry's versions and aliases, promotion, rollback and their audit trail."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from salescast.cli.output import FormatOption, OutputFormat, console, emit, format_metric, print_table
from salescast.cli.services import open_registry
from salescast.config import get_settings

group = typer.Typer(
    help="Trained model versions: list, compare, promote to production, roll back.",
    epilog="Example: salescast models list demand",
    no_args_is_help=True,
)

LIST_FIELDS = ("name", "version", "created", "status", "aliases", "families", "series", "mase", "naive_mase")


@group.command("list")
def models_list(
    name: Annotated[str | None, typer.Argument(help="Model name (all when omitted)")] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Registered versions with their status, aliases and hold-out MASE (and the naive model's).

    Example: salescast models list demand --format json
    """
    from salescast.data.database import as_utc

    registry = open_registry(get_settings())
    aliases: dict[str, dict[int, list[str]]] = {}
    rows = registry.versions(name)
    records = []
    for row in rows:
        if row.name not in aliases:
            aliases[row.name] = {}
            for alias, number in registry.aliases(row.name).items():
                aliases[row.name].setdefault(number, []).append(alias)
        candidate = (row.metrics or {}).get("candidate") or {}
        baseline = (row.metrics or {}).get("baseline") or {}
        records.append(
            {
                "name": row.name,
                "version": row.version,
                "created": as_utc(row.created_at),
                "status": row.status,
                "aliases": aliases[row.name].get(row.version, []),
                "families": list(row.families),
                "series": row.series,
                "mase": candidate.get("mase"),
                "naive_mase": baseline.get("mase"),
            }
        )

    def table() -> None:
        out = Table(title="model versions")
        for column in ("name", "version", "created", "status", "aliases", "families", "series", "MASE", "vs naive"):
            out.add_column(column, no_wrap=column in {"version", "created", "series", "MASE"})
        for row, record in zip(rows, records, strict=True):
            out.add_row(
                record["name"],
                str(record["version"]),
                f"{row.created_at:%Y-%m-%d %H:%M}",
                record["status"],
                ",".join(record["aliases"]),
                ",".join(record["families"]),
                f"{record['series']:,}",
                format_metric("mase", record["mase"]),
                format_metric("mase", record["naive_mase"]),
            )
        print_table(out)

    emit(fmt, LIST_FIELDS, records, table)


SHOW_FIELDS = (
    "status",
    "reason",
    "created_at",
    "families",
    "weights",
    "params",
    "features",
    "freq",
    "horizon",
    "series",
    "data_start",
    "data_end",
    "data_fingerprint",
    "package_version",
    "git_commit",
    "artifact_uri",
    "artifact_sha256",
    "artifact_size",
    "artifact_version_id",
)


@group.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help="Model name")],
    version: Annotated[str, typer.Argument(help="Version number or alias")] = "production",
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Everything recorded about one version: lineage, metrics, gate verdict, artifact.

    json gives one object: the fields below plus `metrics` (per group) and `card`.

    Example: salescast models show demand production --format json
    """
    from salescast.data.database import as_utc

    row = open_registry(get_settings()).version(name, version)
    metrics = dict(row.metrics or {})
    card = metrics.pop("card", None)
    record = {
        "name": row.name,
        "version": row.version,
        **{field: getattr(row, field) for field in SHOW_FIELDS},
        "created_at": as_utc(row.created_at),
        "metrics": metrics,
        "card": card,
    }

    def table() -> None:
        out = Table(title=f"{name} v{row.version}", show_header=False)
        for field in SHOW_FIELDS:
            out.add_row(field, str(getattr(row, field)))
        for group_name, values in metrics.items():
            if values:
                text = ", ".join(f"{k} {format_metric(k, v)}" for k, v in values.items())
                out.add_row(f"metrics ({group_name})", text)
        if card:
            from salescast.training.card import card_rows

            for label, text in card_rows(card):
                out.add_row(label, text)
        print_table(out)

    emit(fmt, ("name", "version", *SHOW_FIELDS, "metrics", "card"), [record], table, one=True)


@group.command("promote")
def models_promote(
    name: Annotated[str, typer.Argument(help="Model name")],
    version: Annotated[int, typer.Argument(help="Version number")],
    alias: Annotated[str, typer.Option(help="Alias to set")] = "production",
    reason: Annotated[str | None, typer.Option(help="Why (kept in the audit trail)")] = None,
    actor: Annotated[str, typer.Option(help="Who")] = "cli",
) -> None:
    """Point an alias at a version (production: only after its artifact verifies and loads).

    Example: salescast models promote demand 7 --reason "beats v6 on MASE"
    """
    from salescast.models.ensemble import EnsembleModel

    registry = open_registry(get_settings())
    if alias == "production":
        event = registry.promote(name, version, actor, reason, verify=EnsembleModel.load)
    else:
        event = registry.set_alias(name, alias, version, actor, reason)
    _print_move(name, alias, version, event)


@group.command("rollback")
def models_rollback(
    name: Annotated[str, typer.Argument(help="Model name")],
    alias: Annotated[str, typer.Option(help="Alias to roll back")] = "production",
    reason: Annotated[str | None, typer.Option(help="Why")] = None,
    actor: Annotated[str, typer.Option(help="Who")] = "cli",
) -> None:
    """Point an alias back at the last different version it pointed to (its artifact checked first).

    Example: salescast models rollback demand --reason "v7 over-forecasts"
    """
    from salescast.models.ensemble import EnsembleModel

    registry = open_registry(get_settings())
    verify = EnsembleModel.load if alias == "production" else None
    registry.rollback(name, actor, alias, reason, verify=verify)
    console.print(f"[green]{name} @{alias}[/] -> v{registry.alias(name, alias).version}")


def _print_move(name: str, alias: str, version: int, event: Any) -> None:
    if event.id is None:  # the registry writes no audit row for a move that changes nothing
        console.print(f"{name} @{alias} is v{version} already: nothing changed")
    else:
        console.print(f"[green]{name} @{alias}[/] -> v{version}")


DIFF_FIELDS = (
    "status",
    "families",
    "weights",
    "params",
    "freq",
    "horizon",
    "series",
    "data_start",
    "data_end",
    "data_fingerprint",
    "git_commit",
)


@group.command("diff")
def models_diff(
    name: Annotated[str, typer.Argument(help="Model name")],
    version_a: Annotated[str, typer.Argument(help="Version or alias")],
    version_b: Annotated[str, typer.Argument(help="Version or alias")],
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """Two versions side by side: configuration, data and hold-out metrics.

    json and csv give one record per field, keyed `field`, `vA` and `vB` as the table's columns.

    Example: salescast models diff demand production 8
    """
    registry = open_registry(get_settings())
    a, b = registry.version(name, version_a), registry.version(name, version_b)
    left_key, right_key = f"v{a.version}", f"v{b.version}"
    records: list[dict[str, Any]] = [
        {"field": field, left_key: getattr(a, field), right_key: getattr(b, field)} for field in DIFF_FIELDS
    ]
    metrics_a = (a.metrics or {}).get("candidate") or {}
    metrics_b = (b.metrics or {}).get("candidate") or {}
    metric_names = sorted(set(metrics_a) | set(metrics_b))
    records += [{"field": m, left_key: metrics_a.get(m), right_key: metrics_b.get(m)} for m in metric_names]

    def table() -> None:
        out = Table(title=f"{name}: v{a.version} vs v{b.version}")
        for column in ("field", left_key, right_key):
            out.add_column(column)
        for field in DIFF_FIELDS:
            left, right = str(getattr(a, field)), str(getattr(b, field))
            out.add_row(field, left, right if right == left else f"[yellow]{right}[/]")
        for metric in metric_names:
            out.add_row(
                metric, format_metric(metric, metrics_a.get(metric)), format_metric(metric, metrics_b.get(metric))
            )
        print_table(out)

    emit(fmt, ("field", left_key, right_key), records, table)


HISTORY_FIELDS = ("at", "alias", "from", "to", "actor", "reason")


@group.command("history")
def models_history(
    name: Annotated[str, typer.Argument(help="Model name")],
    alias: Annotated[str | None, typer.Option(help="Only this alias")] = None,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """The audit trail of alias changes: who moved which alias from which version to which, when, why.

    Example: salescast models history demand --alias production --format csv
    """
    from salescast.data.database import as_utc

    registry = open_registry(get_settings())
    numbers = {row.id: row.version for row in registry.versions(name)}
    events = registry.history(name, alias)
    records = [
        {
            "at": as_utc(event.at),
            "alias": event.alias,
            "from": numbers.get(event.from_version_id),
            "to": numbers.get(event.to_version_id),
            "actor": event.actor,
            "reason": event.reason,
        }
        for event in events
    ]

    def table() -> None:
        out = Table(title=f"{name}: alias changes")
        for column in HISTORY_FIELDS:
            out.add_column(column, no_wrap=column == "at")
        for event, record in zip(events, records, strict=True):
            out.add_row(
                f"{event.at:%Y-%m-%d %H:%M:%S}",
                record["alias"],
                "-" if record["from"] is None else str(record["from"]),
                "-" if record["to"] is None else str(record["to"]),
                record["actor"],
                record["reason"] or "",
            )
        print_table(out)

    emit(fmt, HISTORY_FIELDS, records, table)
