"""`srjobs worker` / `python -m worker`: the Dramatiq CLI over worker.actors, after checks."""

from __future__ import annotations

import argparse
import logging
import sys

from dramatiq import cli as dramatiq_cli

from shared.db import check_migrated, make_engine
from shared.errors import NotMigrated
from shared.logsetup import setup_logging
from shared.schedules import seed_schedules
from shared.settings import Settings

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="srjobs worker", description="Run a Dramatiq worker.")
    parser.add_argument("--processes", "-p", type=int, default=1, help="worker processes")
    parser.add_argument("--threads", "-t", type=int, default=8, help="threads per process")
    return parser.parse_args(argv)


def seed_declared(settings: Settings) -> int:
    """Add a schedule row for every declared job that has none (admins' edits win)."""
    from worker.actors import broker  # noqa: F401  (binds the broker, declares the jobs)
    from worker.jobs import declared_seeds

    engine = make_engine(settings, pool_size=1)
    try:
        check_migrated(engine)
        with engine.begin() as conn:
            return seed_schedules(conn, declared_seeds(settings))
    finally:
        engine.dispose()


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    args = parse_args(argv)
    settings = settings or Settings.from_env()
    setup_logging(settings, "worker")
    try:
        seeded = seed_declared(settings)
    except NotMigrated as exc:
        print(f"srjobs worker: {exc}", file=sys.stderr)
        return 2
    if seeded:
        logger.info("seeded %d new schedule(s)", seeded)
    dramatiq_args = dramatiq_cli.make_argument_parser().parse_args(
        ["worker.actors", "--processes", str(args.processes), "--threads", str(args.threads)]
    )
    return dramatiq_cli.main(dramatiq_args) or 0
