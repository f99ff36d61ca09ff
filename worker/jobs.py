"""Declaring a job: a Dramatiq actor plus its default schedule, in one decorator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import dramatiq

from shared.errors import PermanentJobError
from shared.schedules import ScheduleSeed
from shared.settings import Settings

DEFAULT_MAX_RETRIES = 3
DEFAULT_MIN_BACKOFF_MS = 5_000
DEFAULT_MAX_BACKOFF_MS = 300_000

ScheduleSpec = str | Callable[[Settings], str]


@dataclass(frozen=True)
class JobSpec:
    """What srjobs knows of a declared job."""

    name: str
    actor_name: str
    schedule: ScheduleSpec
    queue: str
    timezone: str
    description: str
    enabled: bool

    def seed(self, settings: Settings) -> ScheduleSeed:
        cron = self.schedule(settings) if callable(self.schedule) else self.schedule
        return ScheduleSeed(
            name=self.name,
            actor=self.actor_name,
            cron=cron,
            queue=self.queue,
            timezone=self.timezone,
            description=self.description,
            enabled=self.enabled,
        )


REGISTRY: dict[str, JobSpec] = {}


def job(
    *,
    schedule: ScheduleSpec,
    name: str | None = None,
    description: str = "",
    queue: str = "default",
    timezone: str = "UTC",
    enabled: bool = True,
    max_retries: int = DEFAULT_MAX_RETRIES,
    min_backoff: int = DEFAULT_MIN_BACKOFF_MS,
    max_backoff: int = DEFAULT_MAX_BACKOFF_MS,
    time_limit: int = 3_600_000,
    permanent: tuple[type[BaseException], ...] = (),
) -> Callable[[Callable[..., object]], dramatiq.Actor]:
    """Declare a scheduled job: `@job(schedule="*/5 * * * *", description="...")`.

    The actor's name is the job's name (the function's, unless `name` is given). Errors of a
    `permanent` type, and `PermanentJobError`, discard the run at once instead of retrying.
    """

    def decorate(fn: Callable[..., object]) -> dramatiq.Actor:
        job_name = name or fn.__name__
        actor = dramatiq.actor(
            fn,
            actor_name=job_name,
            queue_name=queue,
            max_retries=max_retries,
            min_backoff=min_backoff,
            max_backoff=max_backoff,
            time_limit=time_limit,
            throws=(PermanentJobError, *permanent),
        )
        REGISTRY[job_name] = JobSpec(
            name=job_name,
            actor_name=actor.actor_name,
            schedule=schedule,
            queue=queue,
            timezone=timezone,
            description=description or (fn.__doc__ or "").strip(),
            enabled=enabled,
        )
        return actor

    return decorate


def declared_seeds(settings: Settings) -> list[ScheduleSeed]:
    """The default schedule of every declared job."""
    return [spec.seed(settings) for spec in REGISTRY.values()]
