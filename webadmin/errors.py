"""Domain errors to HTTP answers: JSON under /api, a page elsewhere."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from shared.errors import (
    Conflict,
    InvalidInput,
    InvalidSchedule,
    RunConflict,
    UnknownJob,
    UnknownRun,
)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _not_found(request: Request, message: str, what: str) -> Response:
    if _is_api(request):
        return JSONResponse({"error": message}, 404)
    return request.app.state.templates.TemplateResponse(
        request, "not_found.html", {"what": what}, status_code=404
    )


async def not_found(request: Request, exc: Exception) -> Response:
    what = "job" if isinstance(exc, UnknownJob) else "run"
    return _not_found(request, str(exc) or f"unknown {what}", what)


def _error(
    request: Request,
    message: str,
    status: int,
    *,
    api: bool = False,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """JSON for the API (or when `api`), plain text for the pages."""
    if api or _is_api(request):
        return JSONResponse({"error": message}, status, headers=headers)
    return PlainTextResponse(message, status, headers=headers)


async def invalid(request: Request, exc: Exception) -> Response:
    return _error(request, str(exc), 422)


async def conflict(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RunConflict)
    return JSONResponse({"error": str(exc), "run": exc.run.as_json()}, 409)  # type: ignore[attr-defined]


async def state_conflict(request: Request, exc: Exception) -> Response:
    return _error(request, str(exc), 409)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return _not_found(request, "not found", "page")
    api = exc.status_code in (400, 413, 415)
    return _error(request, exc.detail, exc.status_code, api=api, headers=exc.headers)


HANDLERS = {
    UnknownJob: not_found,
    UnknownRun: not_found,
    InvalidInput: invalid,
    InvalidSchedule: invalid,
    RunConflict: conflict,
    Conflict: state_conflict,
    HTTPException: http_error,
}
