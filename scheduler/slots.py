"""Pure decisions about fire slots: grace, misses, the APScheduler job's signature."""

from __future__ import annotations

from datetime import datetime

from shared.cron import Schedule

MIN_GRACE_SECONDS = 60.0


def misfire_grace_seconds(schedule: Schedule, now: datetime) -> int:
    """How late a slot may still fire: one interval, at least 60 s."""
    return int(max(MIN_GRACE_SECONDS, schedule.period_seconds(now)))


def is_missed(slot: datetime, now: datetime, grace_seconds: float) -> bool:
    """True when `slot` is older than the grace and must be skipped (logged, not fired)."""
    return (now - slot).total_seconds() > grace_seconds


def signature(actor: str, queue: str, cron: str, timezone: str) -> str:
    """What identifies a schedule's APScheduler job; a change means reschedule."""
    return "\x1f".join((actor, queue, cron, timezone))
