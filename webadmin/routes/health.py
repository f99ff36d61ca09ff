"""Liveness of the admin and its database."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse


def _ping(engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


async def healthz(request: Request) -> JSONResponse:
    try:
        await run_in_threadpool(_ping, request.state.engine)
    except SQLAlchemyError as exc:
        return JSONResponse({"status": "error", "database": str(exc.__class__.__name__)}, 503)
    return JSONResponse({"status": "ok"})
