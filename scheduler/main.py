"""`srjobs scheduler` / `python -m scheduler`."""

from __future__ import annotations

import argparse
import logging
import signal
from types import FrameType

from scheduler.service import SchedulerService
from shared.health import HealthServer
from shared.logsetup import setup_logging
from shared.settings import Settings
from shared.signals import act_soon
from shared.startup import ready_to_start

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    argparse.ArgumentParser(
        prog="srjobs scheduler",
        description="Run one scheduler instance: compete for leadership, fire schedules as leader."
        " Configured by the environment (see the README).",
    ).parse_args(argv)
    settings = settings or Settings.from_env()
    setup_logging(settings, "scheduler")
    code = ready_to_start(settings, "scheduler")
    if code is not None:
        return code
    service = SchedulerService(settings)
    health = None
    if settings.health_port:
        health = HealthServer(settings.health_host, settings.health_port, service.readiness)
        health.start()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s: stopping", signal.Signals(signum).name)
        act_soon(service.request_stop)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logger.info("scheduler %s starting", settings.node_name)
    try:
        service.run()
    finally:
        if health is not None:
            health.stop()
    logger.info("scheduler %s stopped", settings.node_name)
    return 0
