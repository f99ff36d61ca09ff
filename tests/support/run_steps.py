"""Random things happening to runs, on real Postgres: what the triggers' tables must follow."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2

from shared import runs
from shared.db import dsn

JOBS = ["job_a", "job_b", "job_c"]
CANCELLED = "cancelled by admin"
NODE = threading.local()  # each writer changes only its own runs, as each worker does
NODE.name = "main"


@contextmanager
def jobs_cursor(db_url: str) -> Iterator:
    """An autocommit cursor on the database, with a schedule for each of `JOBS`."""
    conn = psycopg2.connect(dsn(db_url))
    conn.autocommit = True
    try:
        with conn.cursor() as c:
            for name in JOBS:
                c.execute(
                    "INSERT INTO job_schedules (name, actor, cron)"
                    " VALUES (%s, 'noop', '@every 1h')",
                    (name,),
                )
            yield c
    finally:
        conn.close()


def concurrent_writers(
    db_url: str, first_seed: int, act: Callable[[Any, random.Random], None]
) -> None:
    """Four connections, each its own `NODE`, doing `act(cursor, rnd)` 150 times at once;
    raises what a writer raised, fails if one is still running after 120 s."""
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        rnd = random.Random(seed)  # noqa: S311
        NODE.name = f"writer-{seed}"
        conn = psycopg2.connect(dsn(db_url))
        conn.autocommit = True
        try:
            with conn.cursor() as c:
                for _ in range(150):
                    act(c, rnd)
        except BaseException as exc:  # reported to the caller
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=writer, args=(first_seed + k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not [t for t in threads if t.is_alive()]
    if errors:
        raise errors[0]


def ids(cur, job: str | None = None, states: tuple[str, ...] | None = None) -> list[int]:
    """Runs of this writer (`NODE`), of a job and in states when given."""
    cur.execute(
        "SELECT id FROM job_runs WHERE (%(job)s::text IS NULL OR job_name = %(job)s)"
        " AND (%(states)s::text[] IS NULL OR state = ANY(%(states)s::text[]))"
        " AND node = %(node)s ORDER BY id",
        {"job": job, "states": list(states) if states else None, "node": NODE.name},
    )
    return [r[0] for r in cur.fetchall()]


def step(cur, rnd: random.Random) -> str:
    """One random thing happening to runs; returns its name."""
    job = rnd.choice(JOBS)
    kind = rnd.choice(
        ["create"] * 4
        + ["start"] * 3
        + ["finish"] * 6
        + ["retry", "cancel", "batch", "insert_done", "prune", "schedule", "edit", "wipe"]
    )
    if kind == "create":
        cur.execute(
            "INSERT INTO job_runs (job_name, trigger, state, node) VALUES (%s, 'manual', %s, %s)",
            (job, rnd.choice(["pending", "enqueued"]), NODE.name),
        )
    elif kind == "start" and (waiting := ids(cur, job, ("pending", "enqueued"))):
        runs.start_run(cur, rnd.choice(waiting), 1, NODE.name)
    elif kind == "finish" and (active := ids(cur, None, ("running", "pending", "enqueued"))):
        run_id = rnd.choice(active)  # any order, not the run ids'
        state = rnd.choice(["succeeded", "succeeded", "failed", "discarded"])
        error = None if state == "succeeded" else "RuntimeError: boom"
        runs.mark_finished(cur, run_id, state, error=error)
    elif kind == "retry" and (failed := ids(cur, job, ("failed",))):
        cur.execute("SELECT attempt FROM job_runs WHERE id = %s", (failed[-1],))
        runs.start_run(cur, failed[-1], cur.fetchone()[0] + 1, NODE.name)
    elif kind == "cancel" and (waiting := ids(cur, job, ("pending", "enqueued", "failed"))):
        runs.cancel_waiting(cur, rnd.choice(waiting), CANCELLED)
    elif kind == "batch" and (active := ids(cur, None, ("running", "pending", "enqueued"))):
        chosen = rnd.sample(active, min(len(active), rnd.randint(2, 6)))
        runs.finish_many(
            cur,
            [
                runs.Finish(i, s, error=None if s == "succeeded" else "E")
                for i in chosen
                for s in [rnd.choice(["succeeded", "failed", "discarded"])]
            ],
        )
    elif kind == "insert_done":  # plain SQL, as a test or an import would
        state, error = rnd.choice(
            [("succeeded", None), ("failed", "E"), ("discarded", CANCELLED), ("running", None)]
        )
        cur.execute(
            "INSERT INTO job_runs (job_name, trigger, state, finished_at, attempt, error, node)"
            " VALUES (%s, 'manual', %s, clock_timestamp(), %s, %s, %s)",
            (job, state, rnd.choice([1, 2]), error, NODE.name),
        )
    elif kind == "prune" and (done := ids(cur, None, ("succeeded", "failed", "discarded"))):
        cur.execute(
            "DELETE FROM job_runs WHERE id = ANY(%s)",
            (rnd.sample(done, rnd.randint(1, min(4, len(done)))),),
        )
    elif kind == "schedule":  # deleted and made again: its runs stay
        cur.execute("DELETE FROM job_schedules WHERE name = %s", (job,))
        cur.execute(
            "INSERT INTO job_schedules (name, actor, cron) VALUES (%s, 'noop', '@every 1h')"
            " ON CONFLICT DO NOTHING",
            (job,),
        )
    elif kind == "edit" and (every := ids(cur)):
        run_id = rnd.choice(every)
        cur.execute(
            "UPDATE job_runs SET job_name = %s, error = %s, finished_at = clock_timestamp()"
            " WHERE id = %s",
            (rnd.choice(JOBS), rnd.choice([None, "E", CANCELLED]), run_id),
        )
    elif kind == "wipe":  # a job's runs all deleted
        cur.execute("DELETE FROM job_runs WHERE job_name = %s AND node = %s", (job, NODE.name))
    else:
        return "nothing"
    return kind
