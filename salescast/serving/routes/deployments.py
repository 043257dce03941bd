"""Deployment routes: a model's traffic plan, its variants' health and how past rollouts ended."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from salescast.serving.deployment_status import deployment_status
from salescast.serving.encoding import json_response
from salescast.serving.problems import CLIENT_PROBLEMS, PROBLEM_SCHEMA
from salescast.serving.routes import API_PREFIX
from salescast.serving.routes.models import ModelName
from salescast.serving.schemas import DeploymentStatus
from salescast.serving.security import Caller, read_access, serving_state

router = APIRouter(prefix=f"{API_PREFIX}/deployments", tags=["deployments"], responses=CLIENT_PROBLEMS)


@router.get("/{name}", response_model=DeploymentStatus, responses={404: PROBLEM_SCHEMA})
async def deployment(request: Request, name: ModelName, caller: Caller = Depends(read_access)) -> Response:
    """The model's traffic plan now: production, the active deployment (candidate, share, strategy, step,
    bake time left, the controller's verdict), the candidate's and production's error rate and latency
    from the prediction log, and the latest deployments with the reasons they ended."""
    state = serving_state(request)
    return json_response(await run_in_threadpool(deployment_status, state.registry, state.deployments, name))
