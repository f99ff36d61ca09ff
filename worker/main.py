"""`srjobs worker` / `python -m worker`: the Dramatiq CLI over worker.actors, after checks."""

from __future__ import annotations

import argparse
import logging
import sys

from dramatiq import cli as dramatiq_cli
from sqlalchemy.exc import OperationalError

from shared.actors import write_catalogue
from shared.db import make_engine
from shared.logsetup import setup_logging
from shared.schedules import seed_schedules
from shared.settings import Settings
from shared.startup import ready_to_start
from worker.ops import prepare_metrics_dir, remove_metrics_dir, start_health

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="srjobs worker", description="Run a Dramatiq worker.")
    parser.add_argument("--processes", "-p", type=int, default=1, help="worker processes")
    parser.add_argument("--threads", "-t", type=int, default=8, help="threads per process")
    return parser.parse_args(argv)


def seed_declared(settings: Settings) -> int:
    """Write the actor catalogue and add a schedule row for every declared job that has none
    (admins' edits win)."""
    from worker.actors import broker  # noqa: F401  (binds the broker, declares the jobs)
    from worker.jobs import catalogue, declared_seeds

    engine = make_engine(settings, pool_size=1)
    try:
        with engine.begin() as conn:
            write_catalogue(conn, catalogue())
            return seed_schedules(conn, declared_seeds(settings))
    finally:
        engine.dispose()


def dramatiq_argv(args: argparse.Namespace, settings: Settings) -> list[str]:
    """The Dramatiq CLI arguments: jobs get SRJOBS_WORKER_SHUTDOWN_SECONDS to finish."""
    return [
        "worker.actors",
        "--processes",
        str(args.processes),
        "--threads",
        str(args.threads),
        "--worker-shutdown-timeout",
        str(int(settings.worker_shutdown_seconds * 1000)),
    ]


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    args = parse_args(argv)
    settings = settings or Settings.from_env()
    setup_logging(settings, "worker")
    # Before anything imports prometheus_client: the processes share one metrics directory.
    metrics_dir = prepare_metrics_dir() if settings.health_port else None
    health = None
    try:
        code = ready_to_start(settings, "worker")
        if code is not None:
            return code
        try:
            seeded = seed_declared(settings)
        except OperationalError as exc:
            print(f"srjobs worker: the database does not answer: {exc.orig}", file=sys.stderr)
            return 1
        if seeded:
            logger.info("seeded %d new schedule(s)", seeded)
        if settings.health_port:
            health = start_health(settings)
        parser = dramatiq_cli.make_argument_parser()
        return dramatiq_cli.main(parser.parse_args(dramatiq_argv(args, settings))) or 0
    finally:
        if health is not None:
            health.stop()
        remove_metrics_dir(metrics_dir)
