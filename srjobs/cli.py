"""`srjobs COMMAND`: each subcommand imports only its service."""

from __future__ import annotations

import sys

from shared.errors import ConfigError

USAGE = """usage: srjobs COMMAND [options]

commands:
  migrate     create the database if needed, apply migrations, seed default schedules
  scheduler   run one scheduler instance (leader election, fires schedules)
  worker      run a Dramatiq worker for all actors  [--processes N] [--threads N]
  webadmin    run the admin UI and JSON API          [--host H] [--port P]
  dev         run the whole stack on this machine for a first look
  summaries   show how otel_trace_summaries is kept  [--mode view|incremental]
"""


def migrate(argv: list[str]) -> int:
    from shared.dependencies import postgres
    from shared.logsetup import setup_logging
    from shared.migrate import migrate as run_migrate
    from shared.settings import Settings
    from shared.startup import await_dependencies

    settings = Settings.from_env()
    setup_logging(settings, "migrate")
    # Run by deployments before (or alongside) the services: wait for Postgres as they do.
    code = await_dependencies(settings, "migrate", [postgres(settings, missing_ok=True)])
    if code is not None:
        return code
    # Importing the actors binds a broker (no connection is made) and declares the jobs.
    from worker.actors import broker  # noqa: F401
    from worker.jobs import catalogue, declared_seeds

    seeded = run_migrate(settings, declared_seeds(settings), catalogue())
    print(f"srjobs migrate: database is up to date ({seeded} schedule(s) seeded)")
    return 0


def scheduler(argv: list[str]) -> int:
    from scheduler.main import main as scheduler_main

    return scheduler_main(argv)


def worker(argv: list[str]) -> int:
    from worker.main import main as worker_main

    return worker_main(argv)


def webadmin(argv: list[str]) -> int:
    from webadmin.main import main as webadmin_main

    return webadmin_main(argv)


def summaries(argv: list[str]) -> int:
    from srjobs.summaries import main as summaries_main

    return summaries_main(argv)


def dev(argv: list[str]) -> int:
    from srjobs.dev import main as dev_main

    return dev_main(argv)


COMMANDS = {
    "migrate": migrate,
    "scheduler": scheduler,
    "worker": worker,
    "webadmin": webadmin,
    "dev": dev,
    "summaries": summaries,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command = COMMANDS.get(argv[0])
    if command is None:
        print(f"srjobs: unknown command {argv[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    try:
        return command(argv[1:])
    except ConfigError as exc:
        print(f"srjobs {argv[0]}: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
