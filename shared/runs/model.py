"""What a run is: its states, its row, the advisory lock classes that guard it."""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from shared.tables import job_runs

STATES = ("pending", "enqueued", "running", "succeeded", "failed", "discarded")
PENDING, ENQUEUED, RUNNING, SUCCEEDED, FAILED, DISCARDED = STATES
ACTIVE_STATES = (PENDING, ENQUEUED, RUNNING)
FINISHED_STATES = (SUCCEEDED, DISCARDED)
# What a finished attempt leaves its run in (`failed` will be retried).
OUTCOMES = (SUCCEEDED, FAILED, DISCARDED)
# A `failed` run will be retried, so it may start again.
STARTABLE_STATES = (*ACTIVE_STATES, FAILED)
MAX_ERROR_LENGTH = 2000
MAX_TRACEBACK_LENGTH = 20000
# Serialises "Run now" per job (with the job name's hash as second key).
MANUAL_LOCK_CLASS = 0x51AB5
# Held by the worker connection running a job declared `unique` (same second key).
UNIQUE_LOCK_CLASS = 0x51AB7
# A cancelled run ends `discarded` with an error that begins with this word.
CANCELLED = "cancelled"
# States a cancel discards at once: nothing of the run is executing.
CANCEL_AT_ONCE_STATES = (PENDING, ENQUEUED, FAILED)


@dataclass(frozen=True)
class Run:
    """One row of `job_runs`, as the API shows it."""

    id: int
    job_name: str
    trigger: str
    state: str
    scheduled_at: datetime | None
    enqueued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    attempt: int
    node: str | None
    error: str | None
    created_at: datetime
    args: dict[str, Any] = field(default_factory=dict)
    retry_of: int | None = None
    cancel_requested_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        """JSON-ready dict; times in ISO 8601 with offset."""
        # Field by field, copying only `args` (a caller may change what it gets): asdict's deep
        # copy of every field costs more than the rest of a jobs list.
        out = self.as_data()
        for key in TIME_FIELDS:
            value = out[key]
            if value is not None:
                out[key] = value.isoformat()
        out["args"] = deepcopy(self.args) if self.args else {}
        return out

    def as_data(self) -> dict[str, Any]:
        """`as_json`'s fields with times as datetimes and `args` not copied: for a serialiser
        that writes datetimes as ISO 8601 itself, at once (webadmin.fastjson)."""
        return {key: getattr(self, key) for key in RUN_FIELDS}


RUN_FIELDS = tuple(f.name for f in fields(Run))
TIME_FIELDS = tuple(f.name for f in fields(Run) if "datetime" in str(f.type))
RUN_COLUMNS = [job_runs.c[name] for name in RUN_FIELDS]


def to_run(row: Row[*tuple[Any, ...]]) -> Run:
    """A `Run` from a row holding (at least) the `RUN_COLUMNS`."""
    mapping = row._mapping
    return Run(**{name: mapping[name] for name in RUN_FIELDS})


def clip_error(error: str | None) -> str | None:
    """An error as stored: its first MAX_ERROR_LENGTH characters."""
    return error[:MAX_ERROR_LENGTH] if error else None


def clip_traceback(traceback: str | None) -> str | None:
    """A traceback as stored: its last MAX_TRACEBACK_LENGTH characters (the raising frame)."""
    return traceback[-MAX_TRACEBACK_LENGTH:] if traceback else None
