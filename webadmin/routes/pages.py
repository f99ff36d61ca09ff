"""The HTML pages and the fragments their scripts poll."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from shared.errors import InvalidSchedule
from shared.settings import Settings
from webadmin import cluster, inputs, job_list, services
from webadmin.rendering import render, tojson_compact

Endpoint = Callable[[Request], Awaitable[Response]]


async def index(request: Request) -> Response:
    """GET /: the jobs list."""
    return RedirectResponse("/jobs", 302)


async def jobs_page(request: Request) -> Response:
    """GET /jobs?q=&page=: a page of jobs (by name, filtered by name) with their health,
    schedule, next and last run, and Run now."""
    query = job_list.jobs_query(request.query_params)
    jobs, sparks, pager = await run_in_threadpool(
        services.jobs_with_sparks, request.state.engine, query
    )
    context = {
        "jobs": jobs,
        "sparks": sparks,
        "pager": pager,
        "notice": _notice(request),
        "nav": "jobs",
    }
    return render(request, "jobs.html", context)


async def jobs_fragment(request: Request) -> Response:
    """The jobs table rows of a page, polled by the jobs page."""
    query = job_list.jobs_query(request.query_params)
    jobs, sparks, pager = await run_in_threadpool(
        services.jobs_with_sparks, request.state.engine, query
    )
    return render(request, "_job_rows.html", {"jobs": jobs, "sparks": sparks, "pager": pager})


def _notice(request: Request) -> dict | None:
    params = request.query_params
    for key in ("started", "busy", "saved", "created", "deleted"):
        if key in params:
            return {"kind": key, "run_id": inputs.run_id(params[key] or "")}
    return None


async def job_page(request: Request) -> Response:
    """GET /jobs/{name}: schedule form, preview, run history and audit log."""
    name = services.require_job(inputs.job_name(request.path_params["name"]))
    query = inputs.run_query(request.query_params)
    detail = await run_in_threadpool(services.job_detail, request.state.engine, name, query)
    return render(request, "job.html", job_context(request, detail, query))


def job_context(request: Request, detail: services.JobDetail, query: inputs.RunQuery) -> dict:
    """What job.html needs; the form shows the stored schedule unless given other values."""
    s = detail.job.schedule
    return {
        "detail": detail,
        "job": detail.job,
        "query": query,
        "form": {
            "cron": s.cron,
            "timezone": s.timezone,
            "enabled": s.enabled,
            "stale_after_seconds": s.stale_after_seconds or "",
            "args": tojson_compact(s.args),
        },
        "params": [p.as_json() for p in detail.actor.params] if detail.actor else None,
        "form_error": None,
        "args_error": None,
        "preview": preview_of(s.cron, s.timezone),
        "notice": _notice(request),
        "nav": "jobs",
    }


def preview_of(cron: str, timezone: str) -> dict:
    try:
        return services.preview(cron, timezone, datetime.now(UTC))
    except InvalidSchedule as exc:
        return {"error": str(exc)}


async def job_runs_fragment(request: Request) -> Response:
    """A job's history rows, polled by its page."""
    name = services.require_job(inputs.job_name(request.path_params["name"]))
    query = inputs.run_query(request.query_params)
    found = await run_in_threadpool(services.job_runs, request.state.engine, name, query)
    return render(request, "_run_rows.html", {"runs": found, "show_job": False})


async def runs_page(request: Request) -> Response:
    """GET /runs: recent runs of every job, filterable by state."""
    query = inputs.run_query(request.query_params)
    found = await run_in_threadpool(services.recent_runs, request.state.engine, query)
    return render(request, "runs.html", {"runs": found, "query": query, "nav": "runs"})


async def runs_fragment(request: Request) -> Response:
    """The runs table rows, polled by the runs page."""
    query = inputs.run_query(request.query_params)
    found = await run_in_threadpool(services.recent_runs, request.state.engine, query)
    return render(request, "_run_rows.html", {"runs": found, "show_job": True})


async def run_page(
    request: Request, notice: dict | None = None, status_code: int = 200
) -> Response:
    """GET /runs/{id}: a run's details, error, traceback, retries, Cancel and Retry."""
    run_id = inputs.run_id(request.path_params["id"])
    run, traceback, retries = await run_in_threadpool(
        services.run_detail, request.state.engine, run_id
    )
    context: dict[str, object] = {
        "run": run,
        "traceback": traceback,
        "retries": retries,
        "nav": "runs",
        "notice": notice or _run_notice(request),
    }
    return render(request, "run.html", context, status_code=status_code)


def _run_notice(request: Request) -> dict | None:
    params = request.query_params
    if "cancelled" in params:
        return {
            "kind": "saved",
            "text": "Cancel asked: a waiting run is discarded at once, a"
            " running one stops within seconds.",
        }
    retry_of = inputs.run_id(params.get("retried", ""))
    if retry_of is not None:
        return {"kind": "saved", "text": f"This run retries run #{retry_of}."}
    return None


async def run_fragment(request: Request) -> Response:
    """A run's details, polled by its page."""
    run_id = inputs.run_id(request.path_params["id"])
    run, traceback, retries = await run_in_threadpool(
        services.run_detail, request.state.engine, run_id
    )
    context = {"run": run, "traceback": traceback, "retries": retries}
    return render(request, "_run_detail.html", context)


def _cluster_views(
    nav: str, heading: str, read: Callable[[Engine, Settings], object]
) -> tuple[Endpoint, Endpoint]:
    """A cluster page (GET /<nav>) and the fragment its script polls (/fragments/<nav>)."""

    async def page(request: Request) -> Response:
        status = await run_in_threadpool(read, request.state.engine, request.state.settings)
        context = {"status": status, "nav": nav, "heading": heading}
        return render(request, "cluster.html", context)

    async def fragment(request: Request) -> Response:
        status = await run_in_threadpool(read, request.state.engine, request.state.settings)
        return render(request, f"_{nav}.html", {"status": status})

    return page, fragment


# The leader and its peers; schedulers and worker processes with their last heartbeat.
scheduler_page, scheduler_fragment = _cluster_views(
    "scheduler", "Scheduler", cluster.scheduler_status
)
nodes_page, nodes_fragment = _cluster_views("nodes", "Nodes", cluster.nodes_status)


async def alerts_page(request: Request) -> Response:
    """GET /alerts: the newest alerts with their delivery state per webhook."""
    limit = inputs.alert_limit(request.query_params)
    found = await run_in_threadpool(services.list_alerts, request.state.engine, limit)
    context = {"alerts": found, "nav": "alerts", "limit": limit}
    return render(request, "alerts.html", context)


async def alerts_fragment(request: Request) -> Response:
    """The alerts table rows, polled by the alerts page."""
    limit = inputs.alert_limit(request.query_params)
    found = await run_in_threadpool(services.list_alerts, request.state.engine, limit)
    return render(request, "_alert_rows.html", {"alerts": found})
