"""srjobs' Dramatiq middlewares, one concern each, sharing one `ProcessState`.

`srjobs_middleware(state)` lists them in the order they are added before Retries. Before-hooks
run in that order and after-hooks in reverse, which the order relies on:

- ProcessResources first: it opens the process's resources at boot and, its after-hooks
  running last, closes them only after the others are done with them at shutdown.
- SigtermDebounce, PeriodiqAdoption: process boot and actor declaration.
- Heartbeat and FlushSuccesses run while the worker runs; at shutdown HandBack runs before
  them, so a handed-back run is written while the database connections are still there.
- RunStart (`running`), UniqueLock (lock after `running`, unlock after the outcome),
  RunOutcome (outcome recorded right after Retries decided): a message's run is in
  `state.in_flight` from RunStart's before-hook until RunStart's after-hook.

Cancellation (worker/middleware/cancel.py) is added after Retries instead, so that its
after-hook runs first of all: a cancelled run is given up before Retries could retry it.
"""

from __future__ import annotations

from dramatiq import Middleware

from worker.middleware.context import ProcessState, RunContext
from worker.middleware.handback import HandBack
from worker.middleware.heartbeat import Heartbeat
from worker.middleware.periodiq import PeriodiqAdoption
from worker.middleware.resources import ProcessResources
from worker.middleware.run_outcome import RunOutcome
from worker.middleware.run_start import RunStart
from worker.middleware.sigterm import SigtermDebounce
from worker.middleware.successes import FlushSuccesses
from worker.middleware.unique import UniqueLock


def srjobs_middleware(state: ProcessState) -> list[Middleware]:
    """The srjobs middlewares of one broker, in order."""
    return [
        ProcessResources(state),
        SigtermDebounce(),
        PeriodiqAdoption(),
        Heartbeat(state),
        FlushSuccesses(state),
        HandBack(state),
        RunStart(state),
        UniqueLock(state),
        RunOutcome(state),
    ]


__all__ = [
    "FlushSuccesses",
    "HandBack",
    "Heartbeat",
    "PeriodiqAdoption",
    "ProcessResources",
    "ProcessState",
    "RunContext",
    "RunOutcome",
    "RunStart",
    "SigtermDebounce",
    "UniqueLock",
    "srjobs_middleware",
]
