"""Model versions, aliases and their audit trail in the SQL store; artifacts in an artifact store.

A version is immutable once registered. Its artifact is uploaded under a unique key before the row is
written, and the row is written in one transaction: a crash in between leaves an orphan artifact and
no visible version. Aliases (`production`, `challenger`, ...) are the only mutable pointers; each
change writes an AliasEvent, so "which version served production at time T" is one query.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from salescast.data.schema import AliasEvent, ModelAlias, ModelVersion
from salescast.errors import NotFoundError, SalescastError
from salescast.registry.artifacts import ArtifactRef, ArtifactStore

T = TypeVar("T")
PRODUCTION = "production"
CHALLENGER = "challenger"


class RegistryConflictError(SalescastError):
    """A registry write kept colliding with concurrent writers."""


@dataclass
class Candidate:
    """What a training run hands to the registry besides the model folder."""

    name: str
    families: list[str]
    weights: dict[str, float]
    params: dict[str, Any]
    features: list[str]
    freq: str
    horizon: int
    data_fingerprint: str
    data_start: dt.date | None
    data_end: dt.date | None
    series: int
    package_version: str
    git_commit: str | None
    metrics: dict[str, Any]
    gate: dict[str, Any] | None = None
    status: str = "registered"
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def retry_conflicts(action: Callable[[], T], attempts: int = 8) -> T:
    """Run a registry transaction again when a concurrent writer won a unique key or a lock."""
    for attempt in range(attempts):
        try:
            return action()
        except (IntegrityError, OperationalError) as exc:
            if attempt == attempts - 1:
                raise RegistryConflictError(f"registry write kept conflicting: {exc.orig}") from exc
            time.sleep(0.02 * (2**attempt))
    raise AssertionError("unreachable")


class ModelRegistry:
    def __init__(self, engine: Engine, store: ArtifactStore) -> None:
        self.engine = engine
        self.store = store

    # ----------------------------------------------------------------- versions

    def register(self, candidate: Candidate, model_folder: Path) -> ModelVersion:
        """Upload the artifact, then record the version (registered or rejected) in one transaction."""

        def attempt() -> ModelVersion:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                latest = session.scalar(
                    select(func.max(ModelVersion.version)).where(ModelVersion.name == candidate.name)
                )
                number = (latest or 0) + 1
                key = f"models/{candidate.name}/v{number}-{uuid.uuid4().hex[:12]}.tar"
                ref = self.store.put(model_folder, key)
                try:
                    row = ModelVersion(
                        name=candidate.name,
                        version=number,
                        status=candidate.status,
                        reason=candidate.reason,
                        families=candidate.families,
                        weights=candidate.weights,
                        params=candidate.params,
                        features=candidate.features,
                        freq=candidate.freq,
                        horizon=candidate.horizon,
                        data_fingerprint=candidate.data_fingerprint,
                        data_start=candidate.data_start,
                        data_end=candidate.data_end,
                        series=candidate.series,
                        package_version=candidate.package_version,
                        git_commit=candidate.git_commit,
                        metrics=candidate.metrics,
                        gate=candidate.gate,
                        artifact_uri=ref.uri,
                        artifact_sha256=ref.sha256,
                        artifact_size=ref.size,
                        artifact_version_id=ref.version_id,
                    )
                    session.add(row)
                    session.flush()
                except BaseException:
                    self.store.delete(key)  # the version number was taken meanwhile: no orphan
                    raise
                return row

        return retry_conflicts(attempt)

    def versions(self, name: str | None = None) -> list[ModelVersion]:
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(ModelVersion).order_by(ModelVersion.name, ModelVersion.version)
            if name:
                query = query.where(ModelVersion.name == name)
            return list(session.scalars(query))

    def version(self, name: str, version: int | str) -> ModelVersion:
        """A version by number, or by alias when `version` is not a number."""
        if isinstance(version, str) and not version.isdigit():
            return self.alias(name, version.lstrip("@"))
        with Session(self.engine, expire_on_commit=False) as session:
            row = session.scalar(
                select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == int(version))
            )
        if row is None:
            raise NotFoundError(f"model {name!r} has no version {version}")
        return row

    def fetch(self, row: ModelVersion, dest: Path) -> Path:
        """The version's artifact unpacked into `dest`, its sha256 checked first."""
        if row.artifact_uri is None or row.artifact_sha256 is None:
            raise NotFoundError(f"{row.name} v{row.version} has no recorded artifact")
        ref = ArtifactRef(row.artifact_uri, row.artifact_sha256, row.artifact_size or 0, row.artifact_version_id)
        return self.store.get(ref, dest)

    # ----------------------------------------------------------------- aliases

    def alias(self, name: str, alias: str) -> ModelVersion:
        with Session(self.engine, expire_on_commit=False) as session:
            row = session.scalar(
                select(ModelVersion)
                .join(ModelAlias, ModelAlias.version_id == ModelVersion.id)
                .where(ModelAlias.name == name, ModelAlias.alias == alias)
            )
        if row is None:
            raise NotFoundError(f"model {name!r} has no {alias!r} version")
        return row

    def current(self, name: str, alias: str) -> ModelVersion | None:
        """The version `alias` points to now, or None."""
        try:
            return self.alias(name, alias)
        except NotFoundError:
            return None

    def aliases(self, name: str) -> dict[str, int]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(ModelAlias.alias, ModelVersion.version)
                .join(ModelVersion, ModelAlias.version_id == ModelVersion.id)
                .where(ModelAlias.name == name)
            ).all()
        return {str(alias): int(version) for alias, version in rows}

    def set_alias(self, name: str, alias: str, version: int, actor: str, reason: str | None = None) -> AliasEvent:
        """Point `alias` at `version` and audit the change, atomically, also against concurrent callers."""
        target = self.aliasable(name, version, alias)

        def attempt() -> AliasEvent:
            with self.engine.begin() as conn:
                return self.set_alias_in(conn, target, alias, actor, reason)

        return retry_conflicts(attempt)

    def aliasable(self, name: str, version: int, alias: str) -> ModelVersion:
        """The version, if an alias may point at it (registered, not rejected)."""
        target = self.version(name, version)
        if target.status != "registered":
            raise SalescastError(f"{name} v{version} was {target.status} ({target.reason}); it cannot be {alias}")
        return target

    @staticmethod
    def set_alias_in(
        conn: Connection, target: ModelVersion, alias: str, actor: str, reason: str | None = None
    ) -> AliasEvent:
        """set_alias within the caller's transaction, so that the flip commits (or not) with the caller's
        other writes; `target` comes from `aliasable`. A conflict raises: retry the whole transaction."""
        name = target.name
        # Writing first takes the row lock (PostgreSQL) or the write lock (SQLite) before reading;
        # the time is read once the lock is held, so audit order is commit order.
        conn.execute(
            update(ModelAlias)
            .where(ModelAlias.name == name, ModelAlias.alias == alias)
            .values(updated_at=ModelAlias.updated_at)
        )
        now = dt.datetime.now(dt.UTC)
        # FOR UPDATE: a row another caller created after our first statement is locked now too.
        current = conn.scalar(
            select(ModelAlias.version_id).where(ModelAlias.name == name, ModelAlias.alias == alias).with_for_update()
        )
        if current is None:
            conn.execute(insert(ModelAlias).values(name=name, alias=alias, version_id=target.id, updated_at=now))
        else:
            conn.execute(
                update(ModelAlias)
                .where(ModelAlias.name == name, ModelAlias.alias == alias)
                .values(version_id=target.id, updated_at=now)
            )
        return _audit(conn, name, alias, current, target.id, actor, reason, now)

    def promote(
        self,
        name: str,
        version: int,
        actor: str,
        reason: str | None = None,
        verify: Callable[[Path], object] | None = None,
    ) -> AliasEvent:
        """Make `version` production after fetching its artifact (sha256 checked) and, with `verify`
        (e.g. `EnsembleModel.load`), loading it: a version that cannot serve is never promoted."""
        row = self.version(name, version)
        with tempfile.TemporaryDirectory(prefix="salescast-verify-") as tmp:
            folder = self.fetch(row, Path(tmp) / "model")
            if verify is not None:
                verify(folder)
        return self.set_alias(name, PRODUCTION, version, actor, reason or "promoted")

    def remove_alias(self, name: str, alias: str, actor: str, reason: str | None = None) -> None:
        with self.engine.begin() as conn:
            if self.remove_alias_in(conn, name, alias, actor, reason) is None:
                raise NotFoundError(f"model {name!r} has no {alias!r} alias")

    @staticmethod
    def remove_alias_in(
        conn: Connection,
        name: str,
        alias: str,
        actor: str,
        reason: str | None = None,
        *,
        only_if_at: int | None = None,
    ) -> AliasEvent | None:
        """remove_alias within the caller's transaction; with `only_if_at` (a version id), only while the
        alias points there. None when nothing was removed."""
        current = conn.scalar(
            select(ModelAlias.version_id).where(ModelAlias.name == name, ModelAlias.alias == alias).with_for_update()
        )
        if current is None or (only_if_at is not None and current != only_if_at):
            return None
        conn.execute(delete(ModelAlias).where(ModelAlias.name == name, ModelAlias.alias == alias))
        return _audit(conn, name, alias, current, None, actor, reason, dt.datetime.now(dt.UTC))

    def history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(AliasEvent).where(AliasEvent.name == name).order_by(AliasEvent.id)
            if alias:
                query = query.where(AliasEvent.alias == alias)
            return list(session.scalars(query))

    def version_at(self, name: str, alias: str, when: dt.datetime) -> ModelVersion | None:
        """The version `alias` pointed to at `when` (None if it pointed nowhere)."""
        with Session(self.engine, expire_on_commit=False) as session:
            target = session.scalar(
                select(AliasEvent.to_version_id)
                .where(AliasEvent.name == name, AliasEvent.alias == alias, AliasEvent.at <= when)
                .order_by(AliasEvent.at.desc(), AliasEvent.id.desc())
                .limit(1)
            )
            return None if target is None else session.get(ModelVersion, target)

    def rollback(self, name: str, actor: str, alias: str = PRODUCTION, reason: str | None = None) -> AliasEvent:
        """Point `alias` back at the version it pointed to before the current one."""
        events = self.history(name, alias)
        if not events or events[-1].from_version_id is None:
            raise NotFoundError(f"{name!r} {alias} has no earlier version to roll back to")
        with Session(self.engine) as session:
            previous = session.get(ModelVersion, events[-1].from_version_id)
        assert previous is not None
        return self.set_alias(name, alias, previous.version, actor, reason or "rollback")


def _audit(
    conn: Connection,
    name: str,
    alias: str,
    from_id: int | None,
    to_id: int | None,
    actor: str,
    reason: str | None,
    at: dt.datetime,
) -> AliasEvent:
    event_id = conn.execute(
        insert(AliasEvent)
        .values(name=name, alias=alias, from_version_id=from_id, to_version_id=to_id, actor=actor, reason=reason, at=at)
        .returning(AliasEvent.id)
    ).scalar_one()
    return AliasEvent(
        id=event_id,
        name=name,
        alias=alias,
        from_version_id=from_id,
        to_version_id=to_id,
        actor=actor,
        reason=reason,
        at=at,
    )
