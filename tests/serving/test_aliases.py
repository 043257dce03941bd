"""The alias route as an admin client sees it: every move checks the alias name, the version and its
artifact before any work; a move that changes nothing is answered, not audited; rollback is a 409 when
there is nothing to return to."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from salescast.data.schema import ModelVersion, StoredForecast
from salescast.errors import ArtifactIntegrityError
from salescast.registry.versions import PRODUCTION, Candidate, ModelRegistry
from tests.registry.test_versions import truncate_artifact
from tests.serving.conftest import Api, ApiFactory

ALIASES = "/api/v1/models/demand/aliases"
TOP = "/api/v1/forecast/top-products"


def register_copy(registry: ModelRegistry, of: int, folder: Path, status: str = "registered") -> ModelVersion:
    """A new version of `demand` with the same (real) model as version `of`."""
    source = registry.version("demand", of)
    unpacked = registry.fetch(source, folder)
    return registry.register(
        Candidate(
            name="demand",
            families=source.families,
            weights=source.weights,
            params=source.params,
            features=source.features,
            freq=source.freq,
            horizon=source.horizon,
            data_fingerprint=source.data_fingerprint,
            data_start=source.data_start,
            data_end=source.data_end,
            series=source.series,
            package_version=source.package_version,
            git_commit=source.git_commit,
            metrics=source.metrics,
            status=status,
            reason="MASE above the champion's" if status == "rejected" else None,
        ),
        unpacked,
    )


def audit_rows(api: Api) -> int:
    return len(api.state.registry.history("demand"))


def test_no_alias_moves_onto_a_corrupt_artifact(api: Api, tmp_path: Path) -> None:
    registry = api.state.registry
    corrupt = register_copy(registry, 1, tmp_path / "v3")
    registry.set_alias("demand", PRODUCTION, corrupt.version, actor="test")
    registry.set_alias("demand", PRODUCTION, 1, actor="test")  # a rollback would return to v3
    truncate_artifact(corrupt)
    before = audit_rows(api)

    rollback = api.post(ALIASES, json={"alias": "production", "action": "rollback"})
    promote = api.post(ALIASES, json={"alias": "production", "version": corrupt.version})
    candidate = api.post(ALIASES, json={"alias": "candidate", "version": corrupt.version})

    for refused in (rollback, promote, candidate):
        assert refused.status_code == ArtifactIntegrityError.http_status, refused.text
        assert "demand v3 cannot be" in refused.json()["detail"]
        assert "corrupt or was replaced" in refused.json()["detail"]
        assert str(corrupt.artifact_uri) not in refused.text
    assert registry.aliases("demand") == {PRODUCTION: 1}
    assert audit_rows(api) == before
    assert api.get(TOP).json()["model_version"] == 1


def test_a_rejected_version_is_a_409_before_its_forecasts_are_stored(api: Api, tmp_path: Path) -> None:
    rejected = register_copy(api.state.registry, 2, tmp_path / "rejected", status="rejected")

    for alias in ("candidate", "production"):
        response = api.post(ALIASES, json={"alias": alias, "version": rejected.version})

        assert response.status_code == 409, response.text
        assert response.json()["detail"] == (
            f"demand v3 was rejected (MASE above the champion's); it cannot be {alias}"
        )
    with Session(api.engine) as session:
        stored = session.scalar(
            select(func.count()).select_from(StoredForecast).where(StoredForecast.version_id == rejected.id)
        )
    assert stored == 0
    assert api.state.registry.aliases("demand") == {PRODUCTION: 1}


def test_only_the_configured_alias_names_are_accepted_and_documented(api_factory: ApiFactory) -> None:
    api = api_factory()
    before = audit_rows(api)

    refused = [api.post(ALIASES, json={"alias": alias, "version": 2}) for alias in ("a", "uw", "s03y_eq", "7")]
    rollback = api.post(ALIASES, json={"alias": "a", "action": "rollback"})
    accepted = api.post(ALIASES, json={"alias": "staging", "version": 2})

    assert [r.status_code for r in refused] == [422, 422, 422, 422]
    assert "unknown alias 'a': use one of candidate, challenger, production, staging" in refused[0].text
    assert rollback.status_code == 422
    assert accepted.status_code == 200, accepted.text
    assert api.state.registry.aliases("demand") == {PRODUCTION: 1, "staging": 2}
    assert audit_rows(api) == before + 1
    document = api.client.get("/api/v1/openapi.json").json()
    for model in ("SetAlias", "RollbackAlias"):
        alias = document["components"]["schemas"][model]["properties"]["alias"]
        assert alias["enum"] == ["candidate", "challenger", "production", "staging"]

    custom = api_factory(model_aliases="qa")
    assert custom.post(ALIASES, json={"alias": "qa", "version": 2}).status_code == 200
    assert custom.post(ALIASES, json={"alias": "staging", "version": 2}).status_code == 422
    enum = custom.client.get("/api/v1/openapi.json").json()["components"]["schemas"]["SetAlias"]
    assert enum["properties"]["alias"]["enum"] == ["challenger", "production", "qa"]


def test_a_move_that_changes_nothing_is_answered_but_not_audited(api: Api) -> None:
    before = audit_rows(api)

    same = api.post(ALIASES, json={"alias": "production", "version": 1, "reason": "again"})

    assert same.status_code == 200, same.text
    body = same.json()
    assert (body["from_version"], body["to_version"], body["changed"]) == (1, 1, False)
    assert audit_rows(api) == before


def test_rollback_returns_to_the_previous_different_version_and_is_a_409_without_one(api: Api) -> None:
    nothing = api.post(ALIASES, json={"alias": "production", "action": "rollback"})
    assert nothing.status_code == 409, nothing.text
    assert nothing.json()["detail"] == "'demand' production has no earlier version than v1 to roll back to"

    api.post(ALIASES, json={"alias": "production", "version": 2})
    for _ in range(2):
        api.post(ALIASES, json={"alias": "production", "version": 1})
    back = api.post(ALIASES, json={"alias": "production", "action": "rollback"})

    assert back.status_code == 200, back.text
    body = back.json()
    assert (body["from_version"], body["to_version"], body["changed"]) == (1, 2, True)
    assert api.get(TOP).json()["model_version"] == 2
    registry = api.state.registry
    number = {row.id: row.version for row in registry.versions("demand")}
    moves = [(number.get(e.from_version_id), number.get(e.to_version_id)) for e in registry.history("demand")]
    assert moves == [(None, 1), (1, 2), (2, 1), (1, 2)]
