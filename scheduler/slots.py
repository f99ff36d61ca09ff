"""Pure decisions about fire slots: grace, misses, catch-up, the APScheduler job's signature."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from shared.cron import Schedule


def misfire_grace_seconds(schedule: Schedule, now: datetime, minimum: float) -> int:
    """How late a slot may still fire: one interval, at least `minimum` seconds
    (SRJOBS_MISFIRE_GRACE_SECONDS)."""
    return int(max(minimum, schedule.period_seconds(now)))


def is_missed(slot: datetime, now: datetime, grace_seconds: float) -> bool:
    """True when `slot` is older than the grace and must be skipped (logged, not fired)."""
    return (now - slot).total_seconds() > grace_seconds


def catch_up_from(
    schedule: Schedule, next_run_time: datetime, now: datetime, grace_seconds: float
) -> datetime | None:
    """Where a stored job whose next run is older than the grace resumes (None: unchanged).

    The slots before the returned time are skipped; the first slot within the grace still
    fires (coalesced with the later missed ones), so catching up after a gap is one fire.
    """
    if not is_missed(next_run_time, now, grace_seconds):
        return None
    return schedule.next_fire_at_or_after(now - timedelta(seconds=grace_seconds))


def signature(actor: str, queue: str, cron: str, timezone: str, args: dict | None = None) -> str:
    """What identifies a schedule's APScheduler job; a change means reschedule.

    Empty `args` leave the signature as it was before schedules had arguments, so that jobs
    stored by an earlier release are not rescheduled (and their missed slots kept)."""
    parts = [actor, queue, cron, timezone]
    if args:
        parts.append(json.dumps(args, sort_keys=True, separators=(",", ":")))
    return "\x1f".join(parts)
