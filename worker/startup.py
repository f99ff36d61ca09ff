"""The startup wait inside each worker process, for plain `dramatiq worker.actors`.

`srjobs worker` waits before it starts Dramatiq; a worker process started by the Dramatiq CLI
itself waits here, before the other middleware opens connections (a quick check when the
parent already waited). SIGTERM during the wait exits at once.
"""

from __future__ import annotations

import sys

from dramatiq import Broker, Middleware

from shared.errors import NotMigrated
from shared.settings import Settings
from shared.startup import await_dependencies


class WaitForDependencies(Middleware):
    """`after_process_boot`: wait for Postgres and Redis, or exit the process non-zero."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def after_process_boot(self, broker: Broker) -> None:
        try:
            code = await_dependencies(self.settings, "worker")
        except NotMigrated as exc:  # Dramatiq would log any Exception and boot on
            print(f"dramatiq worker.actors: {exc}", file=sys.stderr)
            raise SystemExit(2) from exc
        if code is not None:
            raise SystemExit(code)
