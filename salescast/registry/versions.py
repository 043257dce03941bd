"""Model versions, aliases and their audit trail in the SQL store; artifacts in an artifact store.

A version is immutable once registered. Its artifact is uploaded under a unique key before the row is
written, and the row is written in one transaction: a crash in between leaves an orphan artifact and
no visible version. Aliases (`production`, `challenger`, ...) are the only mutable pointers; each
change writes an AliasEvent, so "which version served production at time T" is one query. Every move of
an alias (set, promote, rollback, a deployment starting or completing) passes `ModelRegistry.aliasable`
first: a configured alias name, a version that was not rejected, an artifact that matches its checksum.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from salescast.config import DEFAULT_MODEL_ALIASES, Settings
from salescast.data.schema import AliasEvent, ModelAlias, ModelVersion
from salescast.errors import (
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    SalescastError,
)
from salescast.monitoring.alerts import Alert, AlertSink, alert_sink
from salescast.registry.artifacts import ArtifactRef, ArtifactStore, artifact_store

logger = logging.getLogger(__name__)

T = TypeVar("T")
PRODUCTION = "production"
CHALLENGER = "challenger"
# Moved by the registry and by deployments themselves: accepted whatever SALESCAST_MODEL_ALIASES says.
BUILT_IN_ALIASES = (PRODUCTION, CHALLENGER)
DEFAULT_ALIASES = tuple(DEFAULT_MODEL_ALIASES.split(","))


def accepted_aliases(configured: Iterable[str]) -> frozenset[str]:
    """The alias names a registry moves: the configured ones and the built-in ones."""
    return frozenset((*BUILT_IN_ALIASES, *configured))


class RegistryConflictError(SalescastError):
    """A registry write kept colliding with concurrent writers."""


class UnknownAliasError(ConfigurationError):
    """An alias name that is not configured (SALESCAST_MODEL_ALIASES), or one that reads as a version number:
    an invalid option on the command line, invalid input (422) in a request."""

    http_status = 422


class RejectedVersionError(ConflictError):
    """A version the gate (or a person) rejected: no alias may point at it and it gets no traffic."""


class NoEarlierVersionError(ConflictError):
    """An alias never pointed at another version, so there is nothing to roll back to."""


@dataclass(frozen=True)
class AliasTarget:
    """A version that passed every check for `alias` to point at it: what `ModelRegistry.aliasable` hands
    out and the only thing `ModelRegistry.set_alias_in` takes, so that no alias move skips the checks."""

    version: ModelVersion
    alias: str


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
    def __init__(
        self,
        engine: Engine,
        store: ArtifactStore,
        aliases: Iterable[str] = DEFAULT_ALIASES,
        alerts: AlertSink | None = None,
    ) -> None:
        """A registry over `engine` (metadata, aliases, audit) and `store` (artifacts); `aliases` are the
        alias names that may be moved besides the built-in production and challenger; `alerts` hears of
        an alias move refused because the version's artifact is corrupt or missing."""
        self.engine = engine
        self.store = store
        self.alias_names = accepted_aliases(aliases)
        self.alerts = alerts

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> ModelRegistry:
        """The registry the settings describe: their artifact store and alias names, over `engine`."""
        store = artifact_store(settings.resolved_artifact_uri, settings)
        return cls(engine, store, settings.alias_names, alert_sink(settings.alert_url, settings))

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

    def check_alias_name(self, alias: str) -> str:
        """`alias` if aliases of that name may be moved here, else UnknownAliasError."""
        if alias.isdigit():
            raise UnknownAliasError(
                f"alias {alias!r} is a number: every lookup would read it as a version; use a name such as "
                f"{', '.join(sorted(self.alias_names))}"
            )
        if alias not in self.alias_names:
            raise UnknownAliasError(
                f"unknown alias {alias!r}: use one of {', '.join(sorted(self.alias_names))} "
                "(more in SALESCAST_MODEL_ALIASES)"
            )
        return alias

    def aliasable(
        self, name: str, version: int, alias: str, verify: Callable[[Path], object] | None = None
    ) -> AliasTarget:
        """The one gate of every alias move, passed before any work is done: `alias` is a configured name,
        the version exists and was not rejected, its artifact's bytes match the sha256 recorded when it was
        registered and, with `verify` (e.g. `EnsembleModel.load`), the unpacked model loads.

        Args:
            name: the registered model name.
            version: the version number the alias is to point at.
            alias: the alias to move.
            verify: called with the unpacked artifact folder; raises if the model cannot serve.

        Raises:
            UnknownAliasError: `alias` is not configured (or is a number).
            NotFoundError: no such version.
            RejectedVersionError: the version was rejected.
            ArtifactIntegrityError: its artifact is corrupt or was replaced.
            ArtifactNotFoundError: its artifact is missing.
        """
        self.check_alias_name(alias)
        row = self.version(name, version)
        if row.status != "registered":
            raise RejectedVersionError(
                f"{name} v{version} was {row.status} ({row.reason or 'no reason recorded'}); it cannot be {alias}"
            )
        with tempfile.TemporaryDirectory(prefix="salescast-verify-") as tmp:
            try:
                folder = self.fetch(row, Path(tmp) / "model")
            except ArtifactIntegrityError as exc:
                # The path and both checksums are for the operator's log, not for whoever asked.
                logger.error("registry.artifact_refused %s v%s as %s: %s", name, version, alias, exc)
                self._alert_refused(row, alias, "corrupt or replaced", exc)
                raise ArtifactIntegrityError(
                    f"{name} v{version} cannot be {alias}: its artifact is corrupt or was replaced (it does not "
                    f"match the checksum recorded when it was registered); {alias} was not moved",
                    public=True,
                ) from exc
            except ArtifactNotFoundError as exc:
                logger.error("registry.artifact_missing %s v%s as %s: %s", name, version, alias, exc)
                self._alert_refused(row, alias, "missing", exc)
                raise ArtifactNotFoundError(
                    f"{name} v{version} cannot be {alias}: its artifact is missing from the artifact store; "
                    f"{alias} was not moved"
                ) from exc
            if verify is not None:
                verify(folder)
        return AliasTarget(row, alias)

    def _alert_refused(self, row: ModelVersion, alias: str, what: str, error: Exception) -> None:
        """Tell the on-call that `alias` stays where it was because `row`'s artifact is `what`."""
        if self.alerts is None:
            return
        summary = (
            f"{row.name} v{row.version} cannot be {alias}: its artifact is {what} "
            f"(recorded sha256 {row.artifact_sha256}); {alias} was not moved"
        )
        details = {"model": row.name, "version": row.version, "alias": alias, "sha256": row.artifact_sha256}
        try:
            self.alerts.send(Alert("model.artifact_refused", "critical", summary, {**details, "error": str(error)}))
        except Exception:  # the refusal stands whether or not the alert got through
            logger.exception("alert.delivery_failed")

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        actor: str,
        reason: str | None = None,
        *,
        verify: Callable[[Path], object] | None = None,
        prepare: Callable[[ModelVersion], object] | None = None,
    ) -> AliasEvent:
        """Point `alias` at `version` and audit the change, atomically, also against concurrent callers.

        Args:
            name: the registered model name.
            alias: the alias to move (see `check_alias_name`).
            version: the version number it is to point at.
            actor: who moves it (kept in the audit trail).
            reason: why (kept in the audit trail).
            verify: see `aliasable`.
            prepare: work the version needs before the alias may point at it (e.g. storing its forecasts);
                it runs once every check of `aliasable` passed, so a refused move does no work.

        Returns the audit event. A move to where the alias points already changes nothing and writes no
        audit row: the event returned then is not stored (`id` None, from and to the same version).
        """
        target = self.aliasable(name, version, alias, verify)
        if prepare is not None:
            prepare(target.version)

        def attempt() -> AliasEvent:
            with self.engine.begin() as conn:
                return self.set_alias_in(conn, target, actor, reason)

        return retry_conflicts(attempt)

    @staticmethod
    def set_alias_in(conn: Connection, target: AliasTarget, actor: str, reason: str | None = None) -> AliasEvent:
        """set_alias within the caller's transaction, so that the flip commits (or not) with the caller's
        other writes; `target` comes from `aliasable`. A conflict raises: retry the whole transaction."""
        name, alias, version_id = target.version.name, target.alias, target.version.id
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
        if current == version_id:
            # Nothing moves, so nothing is audited: a row "from 1 to 1" would only bury the real changes
            # (and once made rollback return to the version it was on).
            return AliasEvent(
                id=None,
                name=name,
                alias=alias,
                from_version_id=current,
                to_version_id=current,
                actor=actor,
                reason=reason,
                at=now,
            )
        if current is None:
            conn.execute(insert(ModelAlias).values(name=name, alias=alias, version_id=version_id, updated_at=now))
        else:
            conn.execute(
                update(ModelAlias)
                .where(ModelAlias.name == name, ModelAlias.alias == alias)
                .values(version_id=version_id, updated_at=now)
            )
        return _audit(conn, name, alias, current, version_id, actor, reason, now)

    def promote(
        self,
        name: str,
        version: int,
        actor: str,
        reason: str | None = None,
        verify: Callable[[Path], object] | None = None,
        prepare: Callable[[ModelVersion], object] | None = None,
    ) -> AliasEvent:
        """Make `version` production (see `set_alias`); with `verify` (e.g. `EnsembleModel.load`) a version
        whose model does not load is never promoted."""
        return self.set_alias(name, PRODUCTION, version, actor, reason or "promoted", verify=verify, prepare=prepare)

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

    def rollback(
        self,
        name: str,
        actor: str,
        alias: str = PRODUCTION,
        reason: str | None = None,
        *,
        verify: Callable[[Path], object] | None = None,
        prepare: Callable[[ModelVersion], object] | None = None,
    ) -> AliasEvent:
        """Point `alias` back at the last version it pointed to that is not the current one, per its audit
        history, through the same checks as any move (see `aliasable`; `verify` and `prepare` as in
        `set_alias`). Rolling back twice returns to where it started. Audit rows that moved nothing
        (written before such moves were skipped) are passed over.

        Raises:
            NoEarlierVersionError: the alias never pointed at another version.
        """
        self.check_alias_name(alias)
        current = self.current(name, alias)
        current_id = current.id if current is not None else None
        previous_id = next(
            (
                event.from_version_id
                for event in reversed(self.history(name, alias))
                if event.from_version_id is not None and event.from_version_id != current_id
            ),
            None,
        )
        if previous_id is None:
            where = f" than v{current.version}" if current is not None else ""
            raise NoEarlierVersionError(f"{name!r} {alias} has no earlier version{where} to roll back to")
        with Session(self.engine) as session:
            previous = session.get(ModelVersion, previous_id)
            assert previous is not None  # versions are never deleted
            number = previous.version
        return self.set_alias(name, alias, number, actor, reason or "rollback", verify=verify, prepare=prepare)


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
