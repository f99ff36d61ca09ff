"""The leader's alerting: the health watch records alerts, the courier delivers them."""

from __future__ import annotations

from sqlalchemy import Engine

from scheduler.courier import Courier
from scheduler.health_watch import HealthWatch
from shared.settings import Settings


class Alerting:
    """Both threads of one leader term, started and stopped together."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.courier = Courier(settings, engine)
        self.watch = HealthWatch(settings, engine, self.courier.wake.set)

    def start(self) -> None:
        self.courier.start()
        self.watch.start()

    def stop(self) -> None:
        """Ask both to stop (a webhook being sent finishes within its timeout)."""
        self.watch.stop()
        self.courier.stop()

    def join(self, timeout: float) -> None:
        for thread in (self.watch, self.courier):
            if thread.is_alive():
                thread.join(timeout)
