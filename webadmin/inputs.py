"""Request input rules: schedule changes, run-list queries and path names, validated once."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from shared.actors import check_name
from shared.cron import MAX_EXPR_LENGTH, MAX_TZ_LENGTH
from shared.errors import InvalidInput
from shared.runs import STATES
from shared.schedules import STALE_AFTER_RANGE, UNCHANGED, Unchanged

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
    args: dict[str, Any] | None = None

    def is_empty(self) -> bool:
        """True when the change leaves every field as it is."""
        return (
            self.cron is None
            and self.timezone is None
            and self.enabled is None
            and isinstance(self.stale_after_seconds, Unchanged)
            and self.args is None
        )

    def values(self) -> dict[str, Any]:
        """The fields as keyword arguments of `shared.schedules.update_schedule`."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class NewSchedule:
    """A schedule to create at runtime; the actor and its args are checked on create."""

    name: str
    actor: str
    cron: str
    timezone: str = "UTC"
    enabled: bool = True
    args: object = field(default_factory=dict)
    stale_after_seconds: int | None = None


@dataclass(frozen=True)
class RunQuery:
    """A page of run history: newest first, each filter optional, ids below `before`."""

    limit: int = DEFAULT_LIMIT
    state: str | None = None
    before: int | None = None
    job: str | None = None
    trigger: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def filters(self) -> dict[str, str]:
        """The filters as URL query parameters (no paging), for links that keep them."""
        values = {
            "job": self.job,
            "state": self.state,
            "trigger": self.trigger,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        return {k: v for k, v in values.items() if v}

    def page(self) -> dict[str, Any]:
        """Paging and filters but the job, as keyword arguments of `shared.runs.list_runs`."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "job"}


def _text(name: str, value: object, max_length: int) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string")
    if len(value) > max_length:
        raise InvalidInput(f"{name} is longer than {max_length} characters")
    if "\x00" in value:
        raise InvalidInput(f"{name} must not contain NUL characters")
    return value


def _enabled(body: dict) -> bool:
    if not isinstance(body["enabled"], bool):
        raise InvalidInput("enabled must be true or false")
    return body["enabled"]


def _args(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput("args must be a JSON object of keyword arguments")
    return value


def schedule_change(body: object) -> ScheduleChange:
    """Validate a PATCH body's types and sizes; the schedule itself is checked on update."""
    if not isinstance(body, dict):
        raise InvalidInput(
            "the body must be a JSON object with any of cron, timezone, enabled, args,"
            " stale_after_seconds"
        )
    unknown = sorted(set(body) - {"cron", "timezone", "enabled", "args", "stale_after_seconds"})
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(map(repr, unknown))}")
    values: dict = {
        key: _text(key, body[key], limit) for key, limit in SCHEDULE_FIELDS.items() if key in body
    }
    if "enabled" in body:
        values["enabled"] = _enabled(body)
    if "args" in body:
        values["args"] = _args(body["args"])
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


NEW_FIELDS = ("name", "actor", "cron", "timezone", "enabled", "args", "stale_after_seconds")


def new_schedule(body: object) -> NewSchedule:
    """Validate a POST /api/jobs body's fields and types; actor and args are checked on
    create, against the actor catalogue."""
    if not isinstance(body, dict):
        raise InvalidInput(
            "the body must be a JSON object with name, actor, cron and optionally timezone,"
            " enabled, args, stale_after_seconds"
        )
    unknown = sorted(set(body) - set(NEW_FIELDS))
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(map(repr, unknown))}")
    for key in ("name", "actor", "cron"):
        if key not in body:
            raise InvalidInput(f"{key} is required")
    return NewSchedule(
        name=check_name(body["name"]),
        actor=_text("actor", body["actor"], MAX_NAME_LENGTH),
        cron=_text("cron", body["cron"], MAX_EXPR_LENGTH),
        timezone=_text("timezone", body.get("timezone", "UTC"), MAX_TZ_LENGTH),
        enabled=_enabled(body) if "enabled" in body else True,
        args=_args(body.get("args", {})),
        stale_after_seconds=stale_after(body.get("stale_after_seconds")),
    )


def form_new_schedule(form: Mapping[str, str]) -> NewSchedule:
    """The "New schedule" form: args typed as JSON text."""
    args = form_json_args(form.get("args", ""))
    return new_schedule(
        {
            "name": form.get("name", "").strip(),
            "actor": form.get("actor", ""),
            "cron": form.get("cron", "").strip(),
            "timezone": form.get("timezone", "").strip() or "UTC",
            "enabled": form.get("enabled") in ("on", "true", "1"),
            "args": args,
        }
    )


def form_schedule_change(form: Mapping[str, str]) -> ScheduleChange:
    """The schedule form's fields: an unchecked checkbox is absent, meaning disabled; args,
    typed as JSON, change only when the form has the field."""
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
        args=_args(form_json_args(form["args"])) if "args" in form else None,
    )


def form_json_args(raw: str) -> object:
    """A form's args field, JSON text (empty means `{}`)."""
    try:
        return json.loads(raw.strip() or "{}")
    except (ValueError, RecursionError):
        raise InvalidInput("args is not valid JSON: write an object such as {}") from None


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


def _time(name: str, raw: str | None) -> datetime | None:
    """An ISO 8601 time; without an offset it is UTC. A `+` a query string turned into a
    space is read back as `+`."""
    if raw in (None, ""):
        return None
    assert raw is not None
    for text in (raw, raw[::-1].replace(" ", "+", 1)[::-1]):
        try:
            value = datetime.fromisoformat(text)
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        except (ValueError, OverflowError):
            continue
    raise InvalidInput(f"{name} must be an ISO 8601 time such as 2026-11-29T12:00:00Z")


TRIGGERS = ("cron", "manual")


def run_query(params: Mapping[str, str]) -> RunQuery:
    """Validate a run listing's filters (`job`, `state`, `trigger`, `since`, `until`) and
    paging (`limit`, `before`)."""
    limit = params.get("limit")
    state = params.get("state") or None
    before = params.get("before")
    trigger = params.get("trigger") or None
    job = params.get("job") or None
    if state is not None and state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}")
    if trigger is not None and trigger not in TRIGGERS:
        raise InvalidInput(f"trigger must be one of {', '.join(TRIGGERS)}")
    if job is not None:
        _text("job", job, MAX_NAME_LENGTH)
    return RunQuery(
        limit=DEFAULT_LIMIT if limit in (None, "") else _int("limit", limit, 1, MAX_LIMIT),
        state=state,
        before=None if before in (None, "") else _int("before", before, 1, MAX_ID),
        job=job,
        trigger=trigger,
        since=_time("since", params.get("since")),
        until=_time("until", params.get("until")),
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
