"""A starting service waits for Postgres and Redis (SRJOBS_STARTUP_TIMEOUT_SECONDS).

`retry_delay` decides, from the attempt number and the time spent, how long to wait before the
next attempt or whether to give up; `wait_for_dependencies` is the loop, waiting on an Event so
that a stop request (SIGTERM) ends the wait at once; `ready_to_start` is what every service's
entry point calls: the wait, then the migrated check.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from types import FrameType

from sqlalchemy.exc import SQLAlchemyError

from shared.db import make_engine
from shared.dependencies import PROBE_SECONDS, UNAVAILABLE, Dependency, dependencies
from shared.errors import NotMigrated, SrjobsError
from shared.migrate import check_migrated
from shared.settings import Settings
from shared.signals import act_soon

logger = logging.getLogger(__name__)

FIRST_DELAY_SECONDS = 0.25
MAX_DELAY_SECONDS = 5.0
MIN_PROBE_SECONDS = 0.5


class DependencyTimeout(SrjobsError):
    """A dependency did not answer within the startup timeout; the message names it."""

    def __init__(self, dependency: Dependency, timeout: float, error: BaseException) -> None:
        super().__init__(
            f"{dependency.name} ({dependency.where}) did not answer within {timeout:g}s:"
            f" {type(error).__name__}: {str(error).strip()}"
        )
        self.dependency = dependency


class StartupInterrupted(SrjobsError):
    """A stop was requested while the service waited for its dependencies."""


def retry_delay(attempt: int, elapsed: float, timeout: float) -> float | None:
    """Seconds to wait after failed attempt `attempt` (from 1), `elapsed` seconds into the
    wait: doubling from a quarter second up to 5 s, never past the timeout; None: give up."""
    remaining = timeout - elapsed
    if remaining <= 0:
        return None
    return min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2 ** (attempt - 1), remaining)


def probe_timeout(elapsed: float, timeout: float) -> float:
    """How long one attempt may take: at most PROBE_SECONDS, less near the deadline."""
    return max(MIN_PROBE_SECONDS, min(PROBE_SECONDS, timeout - elapsed))


def wait_for_dependencies(
    needs: Sequence[Dependency],
    timeout: float,
    stop: threading.Event,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Return once every dependency answers; raise DependencyTimeout or StartupInterrupted."""
    started = clock()
    for dependency in needs:
        attempt = 0
        while True:
            attempt += 1
            try:
                dependency.probe(probe_timeout(clock() - started, timeout))
                break
            except UNAVAILABLE as exc:
                error = exc
            delay = retry_delay(attempt, clock() - started, timeout)
            if delay is None:
                raise DependencyTimeout(dependency, timeout, error)
            logger.warning(
                "waiting for %s (%s), attempt %d: %s; next attempt in %.2fs",
                dependency.name,
                dependency.where,
                attempt,
                str(error).strip() or type(error).__name__,
                delay,
                extra={
                    "event": "waiting_for_dependency",
                    "dependency": dependency.name,
                    "attempt": attempt,
                },
            )
            if stop.wait(delay):
                raise StartupInterrupted(f"stopped while waiting for {dependency.name}")
        if attempt > 1:
            logger.info(
                "%s answers",
                dependency.name,
                extra={"event": "dependency_ready", "dependency": dependency.name},
            )


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT only set `stop` (the handlers before are restored
    after): a second signal, e.g. from a process group kill, does not turn a clean stop into
    a kill (as Dramatiq's own worker-process handler would)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not stop.is_set():  # a second one (Dramatiq's parent forwards a group's) is a no-op
            act_soon(stop.set)

    for sig in signals:
        signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # None: set outside Python, cannot be restored
                signal.signal(sig, handler)


def await_dependencies(
    settings: Settings, service: str, needs: Sequence[Dependency] | None = None
) -> int | None:
    """The startup wait of an entry point: None once all answer, else the exit code (0 when
    stopped by a signal, 1 when one did not answer in time; said on stderr)."""
    stop = threading.Event()
    with stop_on_signals(stop):
        try:
            wait_for_dependencies(
                dependencies(settings) if needs is None else needs,
                settings.startup_timeout_seconds,
                stop,
            )
        except StartupInterrupted as exc:
            logger.info("%s", exc, extra={"event": "startup_interrupted"})
            return 0
        except DependencyTimeout as exc:
            logger.error(
                "%s",
                exc,
                extra={"event": "dependency_unavailable", "dependency": exc.dependency.name},
            )
            print(f"srjobs {service}: {exc}", file=sys.stderr)
            return 1
    return None


def ready_to_start(settings: Settings, service: str) -> int | None:
    """Wait for Postgres and Redis, then check the schema is migrated (a database that
    answers but is not migrated exits at once). None: start; otherwise the exit code."""
    engine = make_engine(settings, pool_size=1)
    try:
        code = await_dependencies(settings, service)
        if code is not None:
            return code
        check_migrated(engine)
    except NotMigrated as exc:
        logger.error("%s", exc)
        print(f"srjobs {service}: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:  # it answered a moment ago and went away again
        print(f"srjobs {service}: the database stopped answering: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return None
