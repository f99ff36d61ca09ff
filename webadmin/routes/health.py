"""Liveness, readiness and metrics of the admin.

`/readyz` is the readiness every srjobs service serves (shared/dependencies.py): 200 when
Postgres and Redis answer. `/healthz` is liveness elsewhere, but the contract fixes the admin's
as "200 when the database answers, 503 otherwise", so here it probes the database only.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.dependencies import dependencies, postgres, readiness
from webadmin import job_metrics


async def healthz(request: Request) -> JSONResponse:
    """GET /healthz: 200 while the database answers (the contract), 503 otherwise."""
    ok, found = await run_in_threadpool(readiness, [postgres(request.state.settings)])
    if not ok:
        return JSONResponse({"status": "error", **found}, 503)
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """GET /readyz: 200 when the database and Redis answer, 503 otherwise."""
    ready, found = await run_in_threadpool(readiness, dependencies(request.state.settings))
    return JSONResponse({"ready": ready, **found}, 200 if ready else 503)


async def metrics(request: Request) -> Response:
    """GET /metrics: the Prometheus text format; per-job health computed now."""
    snap = await run_in_threadpool(
        job_metrics.snapshot, request.state.engine, request.state.settings
    )
    body = generate_latest(request.app.state.metrics_registry) + job_metrics.exposition(snap)
    return Response(body, headers={"content-type": CONTENT_TYPE_LATEST})
