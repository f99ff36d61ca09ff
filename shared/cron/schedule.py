"""A validated schedule: next fire times, the interval and a human description."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cron_descriptor import Options, get_description

from shared.cron.evaluate import CronSpec, next_cron_fire, next_every_fire
from shared.cron.syntax import EVERY, UNIT_WORDS, source_fields


@dataclass(frozen=True)
class Schedule:
    """A validated schedule: the expression as given and its IANA time zone."""

    expr: str
    timezone: str
    interval_seconds: int | None = None  # set for @every
    cron: CronSpec | None = None  # set otherwise

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def next_fire_at_or_after(self, at: datetime) -> datetime:
        """The first slot at or after `at`, in UTC."""
        if self.interval_seconds is not None:
            return next_every_fire(self.interval_seconds, at)
        assert self.cron is not None
        return next_cron_fire(self.cron, self.zone, at)

    def next_fire_times(self, now: datetime, count: int = 5) -> list[datetime]:
        """The next `count` slots strictly after `now`, in the schedule's zone."""
        times: list[datetime] = []
        current = now + timedelta(microseconds=1)
        zone = self.zone
        for _ in range(count):
            nxt = self.next_fire_at_or_after(current)
            times.append(nxt.astimezone(zone))
            current = nxt + timedelta(microseconds=1)
        return times

    def period_seconds(self, now: datetime) -> float:
        """The gap between the next two slots: the schedule's interval, for misfire grace."""
        if self.interval_seconds is not None:
            return float(self.interval_seconds)
        first, second = self.next_fire_times(now, 2)
        return (second - first).total_seconds()

    def describe(self) -> str:
        """A human-readable sentence, e.g. "Every 2 minutes"."""
        if self.interval_seconds is not None:
            match = EVERY.fullmatch(self.expr.strip().lower())
            assert match
            n, unit = int(match.group(1)), match.group(2)
            return f"Every {UNIT_WORDS[unit]}" if n == 1 else f"Every {n} {UNIT_WORDS[unit]}s"
        options = Options()
        options.use_24hour_time_format = True
        text = str(get_description(source_fields(self.expr), options))
        return text if self.timezone == "UTC" else f"{text} ({self.timezone})"
