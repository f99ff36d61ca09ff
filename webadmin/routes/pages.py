"""The HTML pages."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from shared import runs
from shared.errors import UnknownJob
from webadmin import views


async def index(request: Request) -> RedirectResponse:
    return RedirectResponse("/jobs", 302)


def _jobs(engine):
    with engine.connect() as conn:
        return views.list_jobs(conn)


def _job(engine, name):
    with engine.connect() as conn:
        return views.get_job(conn, name), runs.list_runs(conn, name, limit=50)


async def jobs_page(request: Request) -> HTMLResponse:
    jobs = await run_in_threadpool(_jobs, request.state.engine)
    return request.app.state.templates.TemplateResponse(request, "jobs.html", {"jobs": jobs})


async def job_page(request: Request) -> HTMLResponse:
    try:
        job, history = await run_in_threadpool(
            _job, request.state.engine, request.path_params["name"]
        )
    except UnknownJob:
        return request.app.state.templates.TemplateResponse(
            request, "not_found.html", {"what": "job"}, status_code=404
        )
    return request.app.state.templates.TemplateResponse(
        request, "job.html", {"job": job, "runs": history}
    )
