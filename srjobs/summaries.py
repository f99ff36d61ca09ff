"""`srjobs summaries [--mode view|incremental]`: how otel_trace_summaries is kept.

Prints the mode, the word alone on the last line; with `--mode`, converts first (one
transaction, after any running refresh; converting to the mode in force changes nothing).
"""

from __future__ import annotations

import argparse
import sys

import psycopg2
from sqlalchemy.exc import OperationalError

from shared.db import dsn, make_engine
from shared.errors import NotMigrated
from shared.logsetup import setup_logging
from shared.migrate import MIGRATE_HINT, check_migrated
from shared.settings import Settings
from worker.summaries import MODES, TRACE_SUMMARIES_VIEW, current_mode
from worker.summaries_mode import convert

DESCRIPTIONS = {
    "view": "a materialized view, recomputed by each refresh (REFRESH ... CONCURRENTLY)",
    "incremental": "a table, updated by each refresh from the spans changed since the last",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="srjobs summaries",
        description=f"Show, or change, how {TRACE_SUMMARIES_VIEW} is kept.",
    )
    parser.add_argument(
        "--mode", choices=MODES, help="convert to this mode first (in one transaction)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    args = parse_args(argv)
    settings = settings or Settings.from_env()
    setup_logging(settings, "summaries")
    engine = make_engine(settings, pool_size=1, application_name="srjobs-summaries")
    try:
        check_migrated(engine)
        conn = psycopg2.connect(dsn(settings.database_url), application_name="srjobs-summaries")
        try:
            with conn, conn.cursor() as cur:  # one transaction, committed on success
                changed = convert(cur, args.mode) if args.mode else False
                mode = current_mode(cur)
        finally:
            conn.close()
        if mode is None:
            raise NotMigrated(f"{TRACE_SUMMARIES_VIEW} does not exist: {MIGRATE_HINT}")
    except NotMigrated as exc:
        print(f"srjobs summaries: {exc}", file=sys.stderr)
        return 2
    except (OperationalError, psycopg2.OperationalError) as exc:
        print(f"srjobs summaries: the database does not answer: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    if args.mode:
        done = "converted to" if changed else "already in"
        print(f"{TRACE_SUMMARIES_VIEW}: {done} {mode} mode")
    print(f"{TRACE_SUMMARIES_VIEW} is {DESCRIPTIONS[mode]}")
    print(mode)
    return 0
