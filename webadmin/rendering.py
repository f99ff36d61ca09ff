"""Templates: the Jinja2 environment, its filters, and rendering with a CSRF token."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from shared.runs import CANCEL_AT_ONCE_STATES, FINISHED_STATES, STATES, Run
from webadmin.auth import NOBODY, Identity
from webadmin.charts import duration_chart, sparkline
from webadmin.inputs import TRIGGERS
from webadmin.security import CSRF_COOKIE, CSRF_FIELD

TEMPLATES = Path(__file__).parent / "templates"
AUDIT_WORDS = {
    "schedule.update": "schedule changed",
    "schedule.create": "schedule created",
    "schedule.delete": "schedule deleted",
    "run.manual": "manual run",
    "run.cancel": "run cancelled",
    "run.retry": "run retried",
}


def utc(value: datetime | None) -> str:
    """`2026-11-24 01:02:03 UTC`, or a dash."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def utc_short(value: datetime | None) -> str:
    """`Nov 24 01:02:03` (UTC), for dense tables."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%b %d %H:%M:%S")


def duration(run: Run) -> str:
    """How long a run took (or has been running), e.g. `84 ms`, `1.24 s` or `3 min 2 s`."""
    if run.started_at is None:
        return "—"
    end = run.finished_at or datetime.now(UTC)
    return seconds_in_words(max(0.0, (end - run.started_at).total_seconds()))


def seconds_in_words(seconds: float) -> str:
    """`84 ms` under a second, `1.24 s` under a minute, then minutes and hours."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def identity_context(request: Request) -> dict[str, Identity]:
    """Every template sees who is signed in; forms and buttons show only for full access."""
    return {"identity": request.scope.get("state", {}).get("identity", NOBODY)}


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """`3 min ago`, `2 h ago`, `5 d ago`, or `never`."""
    if value is None:
        return "never"
    seconds = max(0, int(((now or datetime.now(UTC)) - value).total_seconds()))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400 * 2:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def tojson_compact(value: object) -> str:
    """JSON on one line, for args shown in tables and forms (autoescaped by the template)."""
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False)


def make_templates() -> Jinja2Templates:
    """Jinja2 with autoescape on for every template."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.filters["utc"] = utc
    env.filters["utc_short"] = utc_short
    env.filters["duration"] = duration
    env.filters["ago"] = ago
    env.filters["sparkline"] = sparkline
    env.filters["duration_chart"] = duration_chart
    env.filters["tojson_compact"] = tojson_compact
    env.globals["STATES"] = STATES
    env.globals["TRIGGERS"] = TRIGGERS
    env.globals["CANCELLABLE"] = (*CANCEL_AT_ONCE_STATES, "running")
    env.globals["FINISHED"] = FINISHED_STATES
    env.globals["AUDIT_WORDS"] = AUDIT_WORDS
    env.globals["UTC"] = UTC
    env.globals["CSRF_FIELD"] = CSRF_FIELD
    return Jinja2Templates(env=env, context_processors=[identity_context])


def render(request: Request, template: str, context: dict, status_code: int = 200) -> Response:
    """Render a page or fragment; forms in it get the visitor's CSRF token."""
    csrf = request.app.state.csrf
    token, new = csrf.token_for(request)
    response = request.app.state.templates.TemplateResponse(
        request, template, {**context, "csrf_token": token}, status_code=status_code
    )
    response.headers["cache-control"] = "no-store"
    if new:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
    return response
