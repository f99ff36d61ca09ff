"""The JSON API under /api: parse the request, call a service, shape the answer."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from webadmin import bodies, cluster, control, fastjson, inputs, services
from webadmin.security import who


async def list_jobs(request: Request) -> Response:
    """GET /api/jobs: every job."""
    state = request.state
    return fastjson.response(
        await run_in_threadpool(services.jobs_json, state.engine, state.jobs_body)
    )


async def create_job(request: Request) -> JSONResponse:
    """POST /api/jobs: a runtime schedule (201); 409 if the name exists; 422 stores nothing."""
    new = inputs.new_schedule(await bodies.json_body(request))
    job = await run_in_threadpool(control.create_job, request.state.engine, new, who(request))
    return JSONResponse(job.as_json(), 201)


async def delete_job(request: Request) -> Response:
    """DELETE /api/jobs/{name}: 204; 409 for a declared job; 404 if unknown."""
    name = services.require_job(inputs.job_name(request.path_params["name"]))
    await run_in_threadpool(control.delete_job, request.state.engine, name, who(request))
    return Response(status_code=204)


async def list_actors(request: Request) -> JSONResponse:
    """GET /api/actors: the actor catalogue."""
    found = await run_in_threadpool(control.list_actors, request.state.engine)
    return JSONResponse([a.as_json() for a in found])


async def search_runs(request: Request) -> JSONResponse:
    """GET /api/runs: every job's runs, newest first, filtered; 422 for a bad value."""
    query = inputs.run_query(request.query_params)
    found = await run_in_threadpool(services.recent_runs, request.state.engine, query)
    return JSONResponse([r.as_json() for r in found])


async def cancel_run(request: Request) -> JSONResponse:
    """POST /api/runs/{id}/cancel: 202 with the run; 409 if it has finished."""
    await bodies.json_body(request)
    run_id = services.require_run(inputs.run_id(request.path_params["id"]))
    run = await run_in_threadpool(control.cancel_run, request.state.engine, run_id, who(request))
    return JSONResponse(run.as_json(), 202)


async def retry_run(request: Request) -> JSONResponse:
    """POST /api/runs/{id}/retry: 202 with the new run; 409 per the contract's rules."""
    await bodies.json_body(request)
    run_id = services.require_run(inputs.run_id(request.path_params["id"]))
    run = await run_in_threadpool(
        control.retry_run, request.state.engine, request.state.broker, run_id, who(request)
    )
    return JSONResponse(run.as_json(), 202)


async def get_job(request: Request) -> JSONResponse:
    """GET /api/jobs/{name}: one job; 404 if unknown."""
    name = services.require_job(inputs.job_name(request.path_params["name"]))
    job = await run_in_threadpool(services.get_job, request.state.engine, name)
    return JSONResponse(job.as_json())


async def patch_job(request: Request) -> JSONResponse:
    """PATCH /api/jobs/{name}: change cron, timezone or enabled; 422 stores nothing."""
    change = inputs.schedule_change(await bodies.json_body(request))
    name = services.require_job(inputs.job_name(request.path_params["name"]))
    job = await run_in_threadpool(
        services.update_job, request.state.engine, name, change, who(request)
    )
    return JSONResponse(job.as_json())


async def start_run(request: Request) -> JSONResponse:
    """POST /api/jobs/{name}/runs: a manual run now (202), or 409 with the active run."""
    await bodies.json_body(request)  # any JSON, `{}` at least; no options yet
    name = services.require_job(inputs.job_name(request.path_params["name"]))
    run = await run_in_threadpool(
        services.run_now, request.state.engine, request.state.broker, name, who(request)
    )
    return JSONResponse(run.as_json(), 202)


async def job_runs(request: Request) -> JSONResponse:
    """GET /api/jobs/{name}/runs: a page of runs, newest first."""
    query = inputs.run_query(request.query_params)
    name = services.require_job(inputs.job_name(request.path_params["name"]))
    found = await run_in_threadpool(services.job_runs, request.state.engine, name, query)
    return JSONResponse([r.as_json() for r in found])


async def get_run(request: Request) -> JSONResponse:
    """GET /api/runs/{id}: one run; 404 if unknown."""
    run_id = inputs.run_id(request.path_params["id"])
    run = await run_in_threadpool(services.get_run, request.state.engine, run_id)
    return JSONResponse(run.as_json())


async def scheduler(request: Request) -> JSONResponse:
    """GET /api/scheduler: the leader and every peer."""
    status = await run_in_threadpool(
        cluster.scheduler_status, request.state.engine, request.state.settings
    )
    return JSONResponse(status.as_json())


async def preview(request: Request) -> JSONResponse:
    """GET /api/preview: a schedule in words and its next fire times (nothing stored)."""
    params = request.query_params
    result = services.preview(
        params.get("cron", ""), params.get("timezone", "UTC"), datetime.now(UTC)
    )
    return JSONResponse(result)


async def list_alerts(request: Request) -> JSONResponse:
    """GET /api/alerts?limit=N: the newest alerts first, with their delivery state."""
    limit = inputs.alert_limit(request.query_params)
    found = await run_in_threadpool(services.list_alerts, request.state.engine, limit)
    return JSONResponse([a.as_json() for a in found])
