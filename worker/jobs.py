"""Declaring a job: a Dramatiq actor plus its default schedule, in one decorator."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import dramatiq

from shared.actors import ActorInfo, Param
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
    schedule: ScheduleSpec | None  # None: no default schedule, only runtime ones fire it
    queue: str
    timezone: str
    description: str
    enabled: bool
    max_retries: int = DEFAULT_MAX_RETRIES
    max_backoff: int = DEFAULT_MAX_BACKOFF_MS
    unique: bool = False
    # False when the function needs arguments: a lost run cannot be re-sent without them.
    resendable: bool = True
    params: tuple[Param, ...] = ()
    any_args: bool = False

    def seed(self, settings: Settings) -> ScheduleSeed:
        assert self.schedule is not None
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
    schedule: ScheduleSpec | None,
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
    unique: bool = False,
) -> Callable[[Callable[..., object]], dramatiq.Actor]:
    """Declare a scheduled job: `@job(schedule="*/5 * * * *", description="...")`.

    The actor's name is the job's name (the function's, unless `name` is given). Errors of a
    `permanent` type, and `PermanentJobError`, discard the run at once instead of retrying.
    A `unique` job never runs twice at once: a run that would overlap another is discarded.
    With `schedule=None` the actor has no default schedule: runtime schedules fire it.
    """

    def decorate(fn: Callable[..., object]) -> dramatiq.Actor:
        job_name = name or fn.__name__
        actor = dramatiq.actor(
            actor_name=job_name,
            queue_name=queue,
            max_retries=max_retries,
            min_backoff=min_backoff,
            max_backoff=max_backoff,
            time_limit=time_limit,
            throws=(PermanentJobError, *permanent),
        )(fn)
        REGISTRY[job_name] = JobSpec(
            name=job_name,
            actor_name=actor.actor_name,
            schedule=schedule,
            queue=queue,
            timezone=timezone,
            description=description or first_line(fn.__doc__),
            enabled=enabled,
            max_retries=max_retries,
            max_backoff=max_backoff,
            unique=unique,
            resendable=callable_without_arguments(fn),
            **signature_params(fn),
        )
        return actor

    return decorate


def first_line(doc: str | None) -> str:
    """The first line of a docstring, the default description."""
    return (doc or "").strip().split("\n", 1)[0].strip()


def callable_without_arguments(fn: Callable[..., object]) -> bool:
    """True when `fn()` is a valid call (every parameter has a default or is variadic)."""
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        for p in inspect.signature(fn).parameters.values()
    )


def register_periodic(actor: dramatiq.Actor) -> JobSpec | None:
    """Adopt a plain actor declared with periodiq's `periodic=cron(...)` as a job.

    The cron expression becomes the job's default schedule; srjobs' scheduler fires it
    (periodiq's own scheduler is never run).
    """
    periodic = actor.options.get("periodic")
    if periodic is None or actor.actor_name in REGISTRY:
        return None
    spec = JobSpec(
        name=actor.actor_name,
        actor_name=actor.actor_name,
        schedule=str(periodic),
        queue=actor.queue_name,
        timezone="UTC",
        description=first_line(actor.fn.__doc__),
        enabled=True,
        max_retries=actor.options.get("max_retries", DEFAULT_MAX_RETRIES),
        max_backoff=actor.options.get("max_backoff", DEFAULT_MAX_BACKOFF_MS),
        resendable=callable_without_arguments(actor.fn),
        **signature_params(actor.fn),
    )
    REGISTRY[spec.name] = spec
    return spec


def signature_params(fn: Callable[..., object]) -> dict:
    """The keyword arguments `fn` takes, as the catalogue lists them (`params`, `any_args`)."""
    params, any_args = [], False
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            any_args = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            params.append(Param(p.name, p.default is p.empty))
    return {"params": tuple(params), "any_args": any_args}


def declared_seeds(settings: Settings) -> list[ScheduleSeed]:
    """The default schedule of every declared job that has one."""
    return [spec.seed(settings) for spec in REGISTRY.values() if spec.schedule is not None]


def catalogue() -> list[ActorInfo]:
    """Every declared actor, as `job_actors` lists it."""
    return [
        ActorInfo(spec.actor_name, spec.description, spec.queue, spec.params, spec.any_args)
        for spec in REGISTRY.values()
    ]
