"""What /ready reports: whether this server can serve, and what it serves with.

Not ready (503, with Retry-After) while the database does not answer or no production version is known;
ready once both hold; degraded (200: stored forecasts still answer every read) when the production
version's model artifact is unusable, naming the version and what serves what-ifs meanwhile.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from salescast.errors import StorageError
from salescast.serving.models import fallback_version
from salescast.serving.serve_forecast import current_plan
from salescast.serving.state import ServingState


def readiness(state: ServingState) -> dict[str, Any]:
    """The /ready body; raises StorageError or NoModelError (503s) when the server cannot serve. Blocking:
    run it in a worker thread."""
    dialect = state.engine.dialect.name
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise StorageError(f"the {dialect} database is unreachable ({type(exc).__name__})") from exc
    if not state.schema_ready or state.plans.current() is None:
        state.refresh()  # back after an outage at start-up: do not wait for the background refresh
    plan = current_plan(state)
    body: dict[str, Any] = {
        "status": "ready",
        "model": plan.model,
        "model_version": plan.production.version,
        "database": dialect,
        "detail": None,
    }
    production = state.registry.version(plan.model, plan.production.version)
    if not state.models.usable(production):  # loads it once: the first what-if then finds it loaded
        fallback = fallback_version(state.registry, state.models, production)
        serving = f"what-ifs are computed by v{fallback.version}" if fallback else "what-ifs answer 503"
        body["status"] = "degraded"
        body["detail"] = (
            f"model {plan.model} v{production.version} has an unusable artifact (see the server's log and "
            f"alerts); stored forecasts still answer, {serving}"
        )
    return body
