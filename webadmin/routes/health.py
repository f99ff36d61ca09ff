"""Liveness, readiness and metrics of the admin."""

from __future__ import annotations

import redis
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


def _ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def healthz(request: Request) -> JSONResponse:
    """GET /healthz: 200 while the database answers."""
    try:
        await run_in_threadpool(_ping, request.state.engine)
    except SQLAlchemyError as exc:
        return JSONResponse({"status": "error", "database": str(exc.__class__.__name__)}, 503)
    return JSONResponse({"status": "ok"})


def _checks(engine: Engine, client: redis.Redis) -> dict[str, str]:
    found: dict[str, str] = {}
    try:
        _ping(engine)
        found["database"] = "ok"
    except SQLAlchemyError as exc:
        found["database"] = type(exc).__name__
    try:
        client.ping()
        found["redis"] = "ok"
    except (redis.RedisError, OSError) as exc:
        found["redis"] = type(exc).__name__
    return found


async def readyz(request: Request) -> JSONResponse:
    """GET /readyz: 200 when the database and Redis answer, 503 otherwise."""
    found = await run_in_threadpool(_checks, request.state.engine, request.state.redis)
    ready = all(v == "ok" for v in found.values())
    return JSONResponse({"ready": ready, **found}, 200 if ready else 503)


async def metrics(request: Request) -> Response:
    """GET /metrics: the Prometheus text format."""
    body = generate_latest(request.app.state.metrics_registry)
    return Response(body, headers={"content-type": CONTENT_TYPE_LATEST})
