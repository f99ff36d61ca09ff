"""The HTML forms of the control plane: new schedule, delete (with a confirmation page),
cancel and retry a run. CSRF-checked, then redirect (post/redirect/get)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from shared.errors import Conflict, InvalidInput, InvalidSchedule, RunConflict
from webadmin import control, inputs, services
from webadmin.rendering import render
from webadmin.routes.forms import read_form
from webadmin.routes.pages import preview_of, run_page
from webadmin.security import who

BLANK = {"name": "", "actor": "", "cron": "@hourly", "timezone": "UTC", "enabled": True}


async def new_job_page(request: Request) -> Response:
    """GET /new-schedule: the "New schedule" form."""
    return await _new_job_form(request, {**BLANK, "args": "{}"}, None)


async def _new_job_form(
    request: Request, form: dict, error: str | None, status_code: int = 200
) -> Response:
    found = await run_in_threadpool(control.list_actors, request.state.engine)
    if not form["actor"] and found:
        form["actor"] = found[0].name
    context = {
        "actors": found,
        "form": form,
        "form_error": error,
        "args_error": error if error and error.startswith("args") else None,
        "preview": preview_of(form["cron"], form["timezone"] or "UTC"),
        "nav": "jobs",
    }
    return render(request, "job_new.html", context, status_code=status_code)


async def create_job(request: Request) -> Response:
    """POST /new-schedule: create the schedule, or show the form again with the error (422/409)."""
    fields = await read_form(request)
    try:
        new = inputs.form_new_schedule(fields)
        await run_in_threadpool(control.create_job, request.state.engine, new, who(request))
    except (InvalidInput, InvalidSchedule, Conflict) as exc:
        form: dict[str, object] = {
            key: fields.get(key, "")[:20000] for key in ("name", "actor", "cron", "timezone")
        }
        form["enabled"] = fields.get("enabled") in ("on", "true", "1")
        form["args"] = fields.get("args", "")[:20000]
        status = 409 if isinstance(exc, Conflict) else 422
        return await _new_job_form(request, form, str(exc), status)
    return RedirectResponse(f"/jobs/{quote(new.name, safe='')}?created=1", 303)


async def delete_page(request: Request) -> Response:
    """GET /jobs/{name}/delete: ask before deleting (404 unknown; declared jobs say why not)."""
    name = services.require_job(inputs.job_name(request.path_params["name"]))
    job = await run_in_threadpool(services.get_job, request.state.engine, name)
    if job.schedule.declared:
        raise Conflict(f"{name!r} is declared in code and cannot be deleted: pause it instead")
    return render(request, "job_delete.html", {"job": job, "nav": "jobs"})


async def delete_job(request: Request) -> Response:
    """POST /jobs/{name}/delete: delete, back to the jobs list."""
    await read_form(request)
    name = services.require_job(inputs.job_name(request.path_params["name"]))
    await run_in_threadpool(control.delete_job, request.state.engine, name, who(request))
    return RedirectResponse("/jobs?deleted=1", 303)


async def cancel_run(request: Request) -> Response:
    """POST /runs/{id}/cancel: cancel, back to the run's page (409 there if it finished)."""
    await read_form(request)
    run_id = services.require_run(inputs.run_id(request.path_params["id"]))
    try:
        await run_in_threadpool(control.cancel_run, request.state.engine, run_id, who(request))
    except Conflict as exc:
        return await run_page(request, {"kind": "busy", "text": str(exc)}, 409)
    return RedirectResponse(f"/runs/{run_id}?cancelled=1", 303)


async def retry_run(request: Request) -> Response:
    """POST /runs/{id}/retry: start the retry and show it (409 on this run's page if not)."""
    await read_form(request)
    run_id = services.require_run(inputs.run_id(request.path_params["id"]))
    try:
        run = await run_in_threadpool(
            control.retry_run, request.state.engine, request.state.broker, run_id, who(request)
        )
    except (Conflict, RunConflict) as exc:
        return await run_page(request, {"kind": "busy", "text": str(exc)}, 409)
    return RedirectResponse(f"/runs/{run.id}?retried={run_id}", 303)
