"""Request input rules: JSON bodies, schedule changes and run-list queries, validated once."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request

from shared.cron import MAX_EXPR_LENGTH, MAX_TZ_LENGTH
from shared.errors import InvalidInput
from shared.runs import STATES
from shared.schedules import STALE_AFTER_RANGE, UNCHANGED, Unchanged

MAX_BODY_BYTES = 64 * 1024
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_ID = 2**63 - 1
MAX_NAME_LENGTH = 200
SCHEDULE_FIELDS = {"cron": MAX_EXPR_LENGTH, "timezone": MAX_TZ_LENGTH}


@dataclass(frozen=True)
class ScheduleChange:
    """The fields a PATCH or the schedule form may change; None leaves a field as it is."""

    cron: str | None = None
    timezone: str | None = None
    enabled: bool | None = None
    stale_after_seconds: int | Unchanged | None = UNCHANGED  # None: back to the default

    def is_empty(self) -> bool:
        """True when the change leaves every field as it is."""
        return (
            self.cron is None
            and self.timezone is None
            and self.enabled is None
            and isinstance(self.stale_after_seconds, Unchanged)
        )


@dataclass(frozen=True)
class RunQuery:
    """A page of run history: newest first, optionally one state, ids below `before`."""

    limit: int = DEFAULT_LIMIT
    state: str | None = None
    before: int | None = None


def media_type(request: Request) -> str:
    """The request's Content-Type without parameters, lower case."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_body(request: Request) -> bytes:
    """The raw body, refused with 413 past MAX_BODY_BYTES."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    return body


async def json_body(request: Request) -> object:
    """The parsed body of a mutation: 415 unless application/json, 400 unless valid JSON."""
    if media_type(request) != "application/json":
        raise HTTPException(415, "send the body as Content-Type: application/json")
    body = await read_body(request)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise HTTPException(400, "the body is not valid JSON (send {} for no options)") from None


def _text(name: str, value: object, max_length: int) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string")
    if len(value) > max_length:
        raise InvalidInput(f"{name} is longer than {max_length} characters")
    if "\x00" in value:
        raise InvalidInput(f"{name} must not contain NUL characters")
    return value


def schedule_change(body: object) -> ScheduleChange:
    """Validate a PATCH body's types and sizes; the schedule itself is checked on update."""
    if not isinstance(body, dict):
        raise InvalidInput(
            "the body must be a JSON object with any of cron, timezone, enabled,"
            " stale_after_seconds"
        )
    unknown = sorted(set(body) - {"cron", "timezone", "enabled", "stale_after_seconds"})
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(map(repr, unknown))}")
    values: dict = {
        key: _text(key, body[key], limit) for key, limit in SCHEDULE_FIELDS.items() if key in body
    }
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise InvalidInput("enabled must be true or false")
        values["enabled"] = body["enabled"]
    if "stale_after_seconds" in body:
        values["stale_after_seconds"] = stale_after(body["stale_after_seconds"])
    return ScheduleChange(**values)


def stale_after(value: object) -> int | None:
    """`stale_after_seconds`: whole seconds in range, or null for the schedule's default."""
    low, high = STALE_AFTER_RANGE
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            f"stale_after_seconds must be a whole number from {low} to {high}, or null"
        )
    return value


def form_schedule_change(form: Mapping[str, str]) -> ScheduleChange:
    """The schedule form's fields: an unchecked checkbox is absent, meaning disabled."""
    raw = form.get("stale_after_seconds", "").strip()
    if raw and not (raw.isascii() and raw.isdigit() and len(raw) < 12):
        raise InvalidInput(
            "stale after must be a whole number of seconds, or empty for the default"
        )
    return ScheduleChange(
        cron=_text("cron", form.get("cron", ""), MAX_EXPR_LENGTH),
        timezone=_text("timezone", form.get("timezone", ""), MAX_TZ_LENGTH).strip() or "UTC",
        enabled=form.get("enabled") in ("on", "true", "1"),
        stale_after_seconds=stale_after(int(raw)) if raw else None,
    )


def alert_limit(params: Mapping[str, str]) -> int:
    """`limit` of the alerts list: 1 to MAX_LIMIT, DEFAULT_LIMIT when absent."""
    raw = params.get("limit")
    return DEFAULT_LIMIT if raw in (None, "") else _int("limit", raw, 1, MAX_LIMIT)


def _int(name: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, got {raw[:40]!r}") from None
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}")
    return value


def run_query(params: Mapping[str, str]) -> RunQuery:
    """Validate `limit`, `state` and `before` of a run listing."""
    limit = params.get("limit")
    state = params.get("state") or None
    before = params.get("before")
    if state is not None and state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}")
    return RunQuery(
        limit=DEFAULT_LIMIT if limit in (None, "") else _int("limit", limit, 1, MAX_LIMIT),
        state=state,
        before=None if before in (None, "") else _int("before", before, 1, MAX_ID),
    )


def run_id(raw: str) -> int | None:
    """A run id from a path; None when it cannot name a run."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        return None
    value = int(raw)
    return value if 0 < value <= MAX_ID else None


def job_name(raw: str) -> str | None:
    """A job name from a path; None when it cannot name a job."""
    if not raw or len(raw) > MAX_NAME_LENGTH or "\x00" in raw:
        return None
    return raw
