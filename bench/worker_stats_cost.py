"""What the run-stats triggers (migration 0005) cost the worker: `worker_throughput`'s
measurement with the triggers enabled and disabled, alternating in one process and database.

    python -m bench.worker_stats_cost [--quick]

Prints one JSON line per measurement, then the medians of both modes with the load average.
Not part of `python -m bench` (it repeats worker_throughput's work twice).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

import psycopg2
from psycopg2 import sql

from bench import worker_throughput
from bench.support import bench_settings
from shared.db import dsn

TRIGGERS = ("job_runs_stats_inserted", "job_runs_stats_updated", "job_runs_stats_deleted")
KEYS = ("ratio", "msg_s", "unbatched_ratio", "unbatched_msg_s")


def set_triggers(url: str, enabled: bool) -> None:
    conn = psycopg2.connect(dsn(url))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for name in TRIGGERS:
                cur.execute(
                    sql.SQL("ALTER TABLE job_runs {} TRIGGER {}").format(
                        sql.SQL("ENABLE" if enabled else "DISABLE"), sql.Identifier(name)
                    )
                )
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3,000 messages, 2 rounds")
    args = parser.parse_args()
    n, rounds = (3_000, 2) if args.quick else (10_000, 4)
    found: dict[str, list[tuple[float, ...]]] = {"with": [], "without": []}
    loads = []
    with bench_settings("srjobs_bench_worker_stats") as settings:
        for k in range(rounds):
            for mode in ("with", "without") if k % 2 == 0 else ("without", "with"):
                set_triggers(settings.database_url, mode == "with")
                r = worker_throughput.measure(settings, n, 1)
                values = (r["ratios"][0], r["records"][0])
                values += (r["unbatched_ratios"][0], r["unbatched"][0])
                found[mode].append(values)
                loads.append(os.getloadavg()[0])
                print(json.dumps({"triggers": mode, **dict(zip(KEYS, values, strict=True))}))
    for mode, rows in found.items():
        medians = {
            key: round(statistics.median(r[i] for r in rows), 2) for i, key in enumerate(KEYS)
        }
        print(json.dumps({"triggers": mode, "median": medians, "load": [min(loads), max(loads)]}))


if __name__ == "__main__":
    main()
