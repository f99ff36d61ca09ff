"""Structured events from a process's JSON log (LOG_FORMAT=json): tests match fields, never
the wording of a message or how many lines it took."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from tests.support.procs import Service
from tests.support.waiting import wait_for


def records(service: Service) -> list[dict[str, Any]]:
    """Every JSON record the service has logged so far (other lines are skipped)."""
    out = []
    for line in service.log().splitlines():
        if not line.startswith("{"):
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line still being written
    return out


def matches(record: dict[str, Any], event: str | None, fields: dict[str, Any]) -> bool:
    return record.get("event") == event and all(
        record.get(key) == value for key, value in fields.items()
    )


def events(service: Service, event: str | None = None, **fields: Any) -> list[dict[str, Any]]:
    """The service's records of `event` (None: any) whose fields equal `fields`, oldest first."""
    return [
        r
        for r in records(service)
        if matches(r, r.get("event") if event is None else event, fields)
    ]


def wait_event(service: Service, event: str, timeout: float, **fields: Any) -> dict[str, Any]:
    """The first record of `event` with `fields`, waiting up to `timeout` seconds for it."""
    found = wait_for(lambda: events(service, event, **fields), timeout, f"a {event} event")
    return found[0]


def ts(record: dict[str, Any]) -> float:
    """A log record's time, epoch seconds."""
    return datetime.fromisoformat(record["ts"]).timestamp()
