"""The HTML forms' POST routes: CSRF-checked, then redirect back (post/redirect/get)."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from shared.errors import InvalidInput, InvalidSchedule, RunConflict
from webadmin import bodies, inputs, job_list, services
from webadmin.rendering import render
from webadmin.routes.pages import job_context
from webadmin.security import CSRF_FIELD, who

FORM_TYPE = "application/x-www-form-urlencoded"


async def read_form(request: Request) -> dict[str, str]:
    """The form's fields, once its type and CSRF token are right (415/400/403 otherwise)."""
    if bodies.media_type(request) != FORM_TYPE:
        raise HTTPException(415, f"send the form as {FORM_TYPE}")
    body = await bodies.read_body(request)
    try:
        fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(400, "the form could not be read") from None
    if not request.app.state.csrf.check(request, fields.get(CSRF_FIELD)):
        raise HTTPException(403, "missing or invalid CSRF token: reload the page and try again")
    return fields


def _back_to(name: str, fields: dict[str, str], outcome: str) -> str:
    """Only two places to go back to: the jobs list (the page and filter the form names) or
    this job's page; `outcome` joins the query."""
    if fields.get("next") == "/jobs":
        back = job_list.jobs_query(fields).url()
        return f"{back}{'&' if '?' in back else '?'}{outcome}"
    return f"/jobs/{quote(name, safe='')}?{outcome}"


async def save_schedule(request: Request) -> Response:
    """POST /jobs/{name}/schedule: store the form, or show it again with the error."""
    fields = await read_form(request)
    name = services.require_job(inputs.job_name(request.path_params["name"]))
    try:
        change = inputs.form_schedule_change(fields)
        await run_in_threadpool(
            services.update_job, request.state.engine, name, change, who(request)
        )
    except (InvalidSchedule, InvalidInput) as exc:
        return await _form_error(request, name, fields, str(exc))
    return RedirectResponse(f"/jobs/{quote(name, safe='')}?saved=1", 303)


async def _form_error(request: Request, name: str, fields: dict[str, str], error: str) -> Response:
    """The job page again, with the admin's input kept and the error beside it (422)."""
    query = inputs.RunQuery()
    detail = await run_in_threadpool(services.job_detail, request.state.engine, name, query)
    context = job_context(request, detail, query)
    context["form"] = {
        "cron": fields.get("cron", "")[:500],
        "timezone": fields.get("timezone", "")[:200],
        "enabled": fields.get("enabled") in ("on", "true", "1"),
        "stale_after_seconds": fields.get("stale_after_seconds", "")[:20],
        "args": fields.get("args", "")[:20000],
    }
    if error.startswith("args"):
        context["args_error"] = error
    else:
        context["form_error"] = error
        context["preview"] = {"error": error}
    return render(request, "job.html", context, status_code=422)


async def run_now(request: Request) -> Response:
    """POST /jobs/{name}/run: start a run and go back to the page it came from."""
    fields = await read_form(request)
    name = services.require_job(inputs.job_name(request.path_params["name"]))
    try:
        run = await run_in_threadpool(
            services.run_now, request.state.engine, request.state.broker, name, who(request)
        )
        outcome = f"started={run.id}"
    except RunConflict as exc:
        outcome = f"busy={exc.run.id}"  # type: ignore[attr-defined]
    return RedirectResponse(_back_to(name, fields, outcome), 303)
