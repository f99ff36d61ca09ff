"""Jobs a developer would add, loaded by real workers through SRJOBS_JOB_MODULES."""

import os
import time

import dramatiq
from periodiq import cron
from sqlalchemy import text

from shared.errors import PermanentJobError
from worker.jobs import job
from worker.resources import current


@job(schedule="@every 1h", description="Count the traces seen so far", queue="examples")
def example_count_traces() -> None:
    with current().engine.connect() as conn:
        conn.execute(text("SELECT count(*) FROM otel_traces")).scalar()


class FlakyUpstream(Exception):
    """An error worth retrying."""


class BadConfig(Exception):
    """An error no retry can fix."""


@job(schedule="@daily", max_retries=2, min_backoff=100, max_backoff=200, permanent=(BadConfig,))
def example_fails(kind: str = "flaky") -> None:
    """Fails on purpose: `flaky` is retried, `config` and `permanent` are not."""
    if kind == "config":
        raise BadConfig("the API key is missing")
    if kind == "permanent":
        raise PermanentJobError("the target was deleted")
    raise FlakyUpstream(f"upstream answered 503 ({kind})")


def take_a_while() -> None:
    deadline = time.monotonic() + float(os.environ.get("EXAMPLE_SLOW_SECONDS", "0"))
    while time.monotonic() < deadline:
        time.sleep(0.05)  # the workload itself: a job that takes a while


@job(schedule="@daily", description="Takes EXAMPLE_SLOW_SECONDS to run")
def example_slow() -> None:
    take_a_while()


@job(schedule="@every 1m", description="Never runs twice at once", unique=True)
def example_exclusive() -> None:
    take_a_while()


@dramatiq.actor(periodic=cron("*/10 * * * *"))
def example_periodiq() -> None:
    """Declared the periodiq way; srjobs' scheduler fires it."""


@job(schedule="@daily", max_retries=0, description="Fails while EXAMPLE_OUTCOME_FILE says fail")
def example_outcome() -> None:
    """Succeeds or fails as a file tells it, so that a test can flip a job's health."""
    path = os.environ.get("EXAMPLE_OUTCOME_FILE")
    if path and open(path).read().strip() == "fail":
        raise FlakyUpstream("told to fail")


@job(schedule=None, description="Spins in Python for `seconds`", max_retries=3)
def example_spin(seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    spins = 0
    while time.monotonic() < deadline:
        spins += 1  # pure Python: only an asynchronous exception stops it early
