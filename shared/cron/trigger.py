"""The APScheduler trigger over a Schedule, as pickled into the job store with its job.

The pickled state is versioned, as APScheduler's own triggers do it: `__getstate__` returns
`{"version": STATE_VERSION, ...}` and `__setstate__` reads every version it knows and refuses
any other with a clear error. Version 1 holds only the expression and the zone (the schedule
is parsed again on first use), so no other srjobs class is pickled and a change to the parsed
form cannot break stored rows. The first release stored `{"schedule": Schedule}` with no
version: read as version 0.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from shared.cron.parse import parse_schedule
from shared.cron.schedule import Schedule

STATE_VERSION = 1
# The job store unpickles every due job on every pass: parse each (expression, zone) once,
# not once per job per pass (a Schedule is immutable).
_parsed = functools.lru_cache(maxsize=4096)(parse_schedule)


class UnknownStateVersion(ValueError):
    """A stored trigger was written by a newer srjobs than this one."""


class ScheduleTrigger(BaseTrigger):
    """Fires on a Schedule's slots; pickled with a version and only its source text."""

    def __init__(self, schedule: Schedule) -> None:
        self._source = (schedule.expr, schedule.timezone)
        self._schedule: Schedule | None = schedule

    @property
    def schedule(self) -> Schedule:
        """The parsed schedule (parsed on first use after unpickling)."""
        if self._schedule is None:
            self._schedule = _parsed(*self._source)
        return self._schedule

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        # As APScheduler's own triggers: from just after the previous fire when it is older
        # than now, so that the scheduler can see (and coalesce or skip) missed slots.
        start = now
        if previous_fire_time is not None:
            start = min(now, previous_fire_time + timedelta(microseconds=1))
        return self.schedule.next_fire_at_or_after(start)

    def __getstate__(self) -> dict[str, Any]:
        expr, timezone = self._source
        return {"version": STATE_VERSION, "expr": expr, "timezone": timezone}

    def __setstate__(self, state: dict[str, Any]) -> None:
        version = state.get("version", 0)
        if version == 0:  # the first release: the Schedule object itself
            old = state["schedule"]
            self._source = (old.expr, old.timezone)
        elif version == 1:
            self._source = (state["expr"], state["timezone"])
        else:
            raise UnknownStateVersion(
                f"a stored srjobs ScheduleTrigger has state version {version!r}, but this"
                f" release reads versions 0 to {STATE_VERSION}: it was written by a newer srjobs"
            )
        self._schedule = None

    def __str__(self) -> str:
        expr, timezone = self._source
        return f"srjobs[{expr} {timezone}]"
