"""The JSON API under /api."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from shared.errors import UnknownJob
from webadmin import views


def _read(engine, fn, *args):
    with engine.connect() as conn:
        return fn(conn, *args)


async def list_jobs(request: Request) -> JSONResponse:
    jobs = await run_in_threadpool(_read, request.state.engine, views.list_jobs)
    return JSONResponse([j.as_json() for j in jobs])


async def get_job(request: Request) -> JSONResponse:
    try:
        job = await run_in_threadpool(
            _read, request.state.engine, views.get_job, request.path_params["name"]
        )
    except UnknownJob as exc:
        return JSONResponse({"error": str(exc)}, 404)
    return JSONResponse(job.as_json())
