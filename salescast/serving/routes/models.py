"""Model registry routes: models, their versions, and alias changes (promote, rollback) for admins."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from salescast.config import Settings
from salescast.data.database import as_utc
from salescast.data.schema import AliasEvent, ModelVersion
from salescast.errors import ArtifactIntegrityError, NotFoundError
from salescast.models.ensemble import EnsembleModel
from salescast.registry.versions import PRODUCTION, ModelRegistry, accepted_aliases
from salescast.serving.encoding import json_response
from salescast.serving.problems import CLIENT_PROBLEMS, PROBLEM_SCHEMA
from salescast.serving.routes import API_PREFIX
from salescast.serving.schemas import TEXT, AliasChange, AliasEventOut, ModelSummary, RollbackAlias, VersionSummary
from salescast.serving.security import Caller, admin_access, read_access, serving_state

router = APIRouter(prefix=f"{API_PREFIX}/models", tags=["models"], responses=CLIENT_PROBLEMS)
ModelName = Annotated[str, Path(min_length=1, max_length=200, pattern=TEXT)]


def model_summaries(registry: ModelRegistry) -> list[dict[str, Any]]:
    by_name: dict[str, list[ModelVersion]] = {}
    for row in registry.versions():
        by_name.setdefault(row.name, []).append(row)
    return [
        {
            "name": name,
            "versions": len(rows),
            "aliases": registry.aliases(name),
            "latest_version": max(r.version for r in rows),
        }
        for name, rows in sorted(by_name.items())
    ]


def version_summaries(registry: ModelRegistry, name: str) -> list[dict[str, Any]]:
    rows = registry.versions(name)
    if not rows:
        raise NotFoundError(f"no model named {name!r}")
    aliases: dict[int, list[str]] = {}
    for alias, number in registry.aliases(name).items():
        aliases.setdefault(number, []).append(alias)
    return [
        {
            "version": r.version,
            "status": r.status,
            "created_at": r.created_at.isoformat(),
            "families": r.families,
            "weights": r.weights,
            "freq": r.freq,
            "horizon": r.horizon,
            "series": r.series,
            "data_start": r.data_start.isoformat() if r.data_start else None,
            "data_end": r.data_end.isoformat() if r.data_end else None,
            "metrics": r.metrics,
            "reason": r.reason,
            "gate": r.gate,
            "aliases": sorted(aliases.get(r.version, [])),
        }
        for r in rows
    ]


def _event(registry: ModelRegistry, event: AliasEvent) -> dict[str, Any]:
    numbers = {row.id: row.version for row in registry.versions(event.name)}
    return {
        "name": event.name,
        "alias": event.alias,
        "from_version": numbers.get(event.from_version_id) if event.from_version_id else None,
        "to_version": numbers.get(event.to_version_id) if event.to_version_id else None,
        "actor": event.actor,
        "reason": event.reason,
        "at": as_utc(event.at).isoformat(),
        # A move to where the alias points already is answered, not audited.
        "changed": event.id is not None,
    }


@router.get("", response_model=list[ModelSummary])
async def models(request: Request, caller: Caller = Depends(read_access)) -> Response:
    """Registered models with their number of versions and where each alias points."""
    return json_response(await run_in_threadpool(model_summaries, serving_state(request).read_registry))


@router.get("/{name}/versions", response_model=list[VersionSummary], responses={404: PROBLEM_SCHEMA})
async def versions(request: Request, name: ModelName, caller: Caller = Depends(read_access)) -> Response:
    """Every version of a model: status, families, ensemble weights, data range, hold-out metrics, aliases."""
    return json_response(await run_in_threadpool(version_summaries, serving_state(request).read_registry, name))


def alias_history(registry: ModelRegistry, name: str, alias: str | None) -> list[dict[str, Any]]:
    if not registry.versions(name):
        raise NotFoundError(f"no model named {name!r}")
    return [_event(registry, event) for event in reversed(registry.history(name, alias))]


@router.get("/{name}/history", response_model=list[AliasEventOut], responses={404: PROBLEM_SCHEMA})
async def history(
    request: Request,
    name: ModelName,
    alias: Annotated[str | None, Query(min_length=1, max_length=100, pattern=TEXT)] = None,
    caller: Caller = Depends(read_access),
) -> Response:
    """The audit trail of the model's alias changes, newest first: who moved which alias from which
    version to which, when and why (`salescast models history`)."""
    registry = serving_state(request).registry
    return json_response(await run_in_threadpool(alias_history, registry, name, alias))


@router.post(
    "/{name}/aliases",
    response_model=AliasEventOut,
    responses={
        404: PROBLEM_SCHEMA,
        409: PROBLEM_SCHEMA,
        422: PROBLEM_SCHEMA,
        ArtifactIntegrityError.http_status: PROBLEM_SCHEMA,
    },
)
async def change_alias(
    request: Request, name: ModelName, change: AliasChange, caller: Caller = Depends(admin_access)
) -> Response:
    """Point an alias at a version, or roll it back to the last different version it pointed to. The version's
    artifact must match its checksum (production: and load); a rejected version, or a rollback with nothing
    to return to, is a 409. A change is audited and this server switches at once, other replicas within
    deployment_check_seconds; a move to where the alias points already answers `changed: false` and is not
    audited."""
    state = serving_state(request)
    actor = f"api:{caller.prefix or caller.name}"

    def apply() -> dict[str, Any]:
        registry = state.registry
        # Production must load before it serves; every move checks the alias name, the version's status
        # and its artifact's checksum first, before any work (see ModelRegistry.aliasable). Forecasts are
        # stored before the flip: the alias must never point at a version that has nothing to serve.
        verify = EnsembleModel.load if change.alias == PRODUCTION else None
        if isinstance(change, RollbackAlias):
            event = registry.rollback(
                name, actor, alias=change.alias, reason=change.reason, verify=verify, prepare=state.ensure_forecasts
            )
        else:
            event = registry.set_alias(
                name, change.alias, change.version, actor, change.reason, verify=verify, prepare=state.ensure_forecasts
            )
        state.plans.refresh()
        return _event(registry, event)

    return json_response(await run_in_threadpool(apply))


def document_aliases(document: dict[str, Any], settings: Settings) -> None:
    """Name in an OpenAPI document made from the routes (in place) the alias names the registry accepts:
    the settings choose them, so the request models, made at import, can only give their pattern."""
    names = sorted(accepted_aliases(settings.alias_names))
    for model in ("SetAlias", "RollbackAlias"):
        document["components"]["schemas"][model]["properties"]["alias"]["enum"] = names
