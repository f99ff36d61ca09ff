"""What srjobs keeps in an APScheduler job's kwargs, pickled into `apscheduler_jobs`.

The layout carries a version, as the trigger's state does (`shared/cron/trigger.py`): a row
written by a newer srjobs is refused with a clear error instead of being misread. The first
release wrote `{"actor", "queue", "sig"}` with no version: read as version 0, same fields;
version 1 only added the key; version 2 adds `args`, the fires' keyword arguments (`{}` when
an older row has none).
The job's function is stored by reference as `scheduler.executor:placeholder`, so that name
must stay importable (tests/unit/test_stored_jobs.py loads rows of the first release).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KWARGS_VERSION = 2


class UnknownJobVersion(ValueError):
    """A stored job's kwargs were written by a newer srjobs than this one."""


@dataclass(frozen=True)
class Target:
    """Where a job's fires are sent, and the signature of the schedule that made it."""

    actor: str
    queue: str
    sig: str
    args: dict[str, Any] = field(default_factory=dict)


def job_kwargs(
    actor: str, queue: str, sig: str, args: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The kwargs of a new srjobs APScheduler job, current version."""
    return {
        "version": KWARGS_VERSION,
        "actor": actor,
        "queue": queue,
        "sig": sig,
        "args": args or {},
    }


def read_kwargs(kwargs: Mapping[str, Any]) -> Target:
    """The target a stored job's kwargs name; raises UnknownJobVersion on a newer layout."""
    version = kwargs.get("version", 0)
    if version not in range(KWARGS_VERSION + 1):
        raise UnknownJobVersion(
            f"a stored srjobs job has kwargs version {version!r}, but this release reads"
            f" versions 0 to {KWARGS_VERSION}: it was written by a newer srjobs"
        )
    return Target(kwargs["actor"], kwargs["queue"], kwargs.get("sig", ""), kwargs.get("args", {}))
