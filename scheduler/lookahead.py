"""Pure decisions of a pass that prepares fires ahead of their slots.

A pass looks `LOOKAHEAD_SECONDS` ahead: a slot due within it is recorded (fenced, `pending`)
and its job store entry moved on before the slot comes, so that only the send is left at the
slot (the outbox holds the runs until then). Slots already past are taken as before: a job's
missed slots coalesce into its newest past one, fired at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

LOOKAHEAD_SECONDS = 0.4


def horizon(now: datetime, lookahead: float = LOOKAHEAD_SECONDS) -> datetime:
    """The latest slot a pass at `now` takes."""
    return now + timedelta(seconds=lookahead)


def slots_taken(run_times: list[datetime], now: datetime) -> list[datetime]:
    """Which of a job's due slots (all up to the horizon, oldest first) this pass takes.

    The slots already past, when there are any (the newest of them fires: coalesced as
    before); otherwise the first slot to come, prepared ahead. Later slots are the next
    pass's."""
    past = [slot for slot in run_times if slot <= now]
    return past or run_times[:1]


def wake_in(
    next_run: datetime | None, now: datetime, lookahead: float = LOOKAHEAD_SECONDS
) -> float | None:
    """Seconds until the next pass: `lookahead` before the store's next run (None: none)."""
    if next_run is None:
        return None
    return max(0.0, (next_run - now).total_seconds() - lookahead)
