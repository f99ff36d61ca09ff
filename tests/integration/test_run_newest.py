"""`job_run_newest` (migration 0007) never changes the jobs list: each job's newest run is the
one probing its runs finds.

Random sequences of what happens to runs (created, started, retried, finished, cancelled,
batches, pruned, moved to another job by plain SQL, renumbered, a job's runs wiped, the table
truncated) are applied on real Postgres; after each step the listing's newest runs are
compared with the probe per job it replaced (`runs.last_runs`), and the table with what it
promises: per job with runs, an id at least that of its newest run.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command

from shared import job_listing, migrate, runs
from tests.support.run_steps import JOBS, NODE, concurrent_writers, jobs_cursor, step
from worker.retention import prune_runs

# What the table promises, per job: (has runs, has a row, row >= newest, row == newest).
PROMISE = """
SELECT j.name, r.newest IS NOT NULL, n.run_id IS NOT NULL, n.run_id >= r.newest,
       n.run_id = r.newest
  FROM unnest(%(names)s::text[]) AS j(name)
  LEFT JOIN (SELECT job_name, max(id) AS newest FROM job_runs GROUP BY job_name) AS r
         ON r.job_name = j.name
  LEFT JOIN job_run_newest n ON n.job_name = j.name
 ORDER BY 1
"""


def newest_step(cur, rnd: random.Random) -> str:
    """A random step of `run_steps`, or one that only this table cares about."""
    kind = rnd.choice(["step"] * 12 + ["renumber", "drop_newest", "truncate"])
    if kind == "renumber":  # plain SQL: a run takes a new id
        cur.execute(
            "UPDATE job_runs SET id = DEFAULT WHERE id = (SELECT id FROM job_runs"
            " WHERE node = %s ORDER BY random() LIMIT 1)",
            (NODE.name,),
        )
    elif kind == "drop_newest":  # a job's newest run deleted, whatever its state
        cur.execute(
            "DELETE FROM job_runs WHERE id = (SELECT max(id) FROM job_runs WHERE job_name = %s)",
            (rnd.choice(JOBS),),
        )
    elif kind == "truncate" and rnd.random() < 0.3:
        cur.execute("TRUNCATE job_runs")
    else:
        return step(cur, rnd)
    return kind


def check(cur, engine, done: list[str]) -> None:
    """The listing's newest runs are the probes', and the table keeps its promise."""
    cur.execute(PROMISE, {"names": JOBS})
    for name, has_runs, has_row, at_least, _ in cur.fetchall():
        assert not has_runs or (has_row and at_least), (name, " ".join(done))
    with engine.connect() as conn:  # one transaction: both read the same runs
        _, every = job_listing.every_job(conn)
        probed = runs.last_runs(conn, JOBS)
    listed = {row.name: last for row, _, last in every if row.name in JOBS}
    assert listed == {name: probed.get(name) for name in JOBS}, " ".join(done)


@pytest.fixture
def cur(db_url):
    with jobs_cursor(db_url) as c:
        yield c


@pytest.mark.parametrize("seed", range(6))
def test_listing_matches_probing_the_runs(cur, engine, seed):
    rnd = random.Random(seed)  # noqa: S311
    done: list[str] = []
    for _ in range(150):
        done.append(newest_step(cur, rnd))
        check(cur, engine, done)
    assert {"drop_newest", "renumber", "edit", "prune"} <= set(done)


def test_a_gone_newest_run_falls_back_to_the_one_before(cur, engine):
    """Pruned, deleted or moved away, a job's newest run gives way to its next one."""
    cur.execute(
        "INSERT INTO job_runs (job_name, trigger, state) SELECT 'job_a', 'manual', 'succeeded'"
        " FROM generate_series(1, 3)"
    )
    cur.execute("SELECT id FROM job_runs WHERE job_name = 'job_a' ORDER BY id")
    first, second, third = (row[0] for row in cur.fetchall())
    cur.execute("SELECT run_id FROM job_run_newest WHERE job_name = 'job_a'")
    assert cur.fetchone()[0] == third
    newest = {}
    for change in (
        "DELETE FROM job_runs WHERE id = %(third)s",
        "UPDATE job_runs SET job_name = 'job_b' WHERE id = %(second)s",
        "DELETE FROM job_runs WHERE id = %(first)s",
    ):
        cur.execute(change, {"first": first, "second": second, "third": third})
        with engine.connect() as conn:
            _, every = job_listing.every_job(conn)
        newest = {row.name: last and last.id for row, _, last in every if row.name in JOBS}
        check(cur, engine, [change])
    assert newest == {"job_a": None, "job_b": second, "job_c": None}


def test_retention_prune_keeps_the_listing_exact(cur, engine):
    """Pruning in batches removes whole jobs' histories and other jobs' oldest runs."""
    old = datetime.now(UTC) - timedelta(days=30)
    for job, count in (("job_a", 5), ("job_b", 4)):
        for i in range(count):
            cur.execute(
                "INSERT INTO job_runs (job_name, trigger, state, finished_at, attempt)"
                " VALUES (%s, 'manual', 'succeeded', %s, 1)",
                (job, old + timedelta(minutes=i)),
            )
    cur.execute(
        "INSERT INTO job_runs (job_name, trigger, state, finished_at, attempt) VALUES"
        " ('job_b', 'manual', 'succeeded', now(), 1), ('job_c', 'manual', 'running', NULL, 1)"
    )
    check(cur, engine, ["filled"])
    assert prune_runs(engine, 14, batch=2) == 9
    check(cur, engine, ["pruned"])


def test_concurrent_writers_keep_it_exact(cur, engine, db_url):
    """Several connections adding, finishing, moving and deleting runs of the same jobs at
    once, one statement at a time as workers and the leader do: no deadlock, exact after."""

    def act(c, rnd: random.Random) -> None:
        if step(c, rnd) == "nothing":
            c.execute(
                "INSERT INTO job_runs (job_name, trigger, node)"
                " SELECT unnest(%s::text[]), 'manual', %s",
                (rnd.sample(JOBS, 2), NODE.name),
            )

    concurrent_writers(db_url, 200, act)
    check(cur, engine, ["concurrent"])


def test_migration_backfills_existing_runs(engine, cur):
    """Runs recorded before migration 0007 are in its table (down to 0006 and up again)."""
    with engine.connect() as conn:
        cfg = migrate._config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
        conn.commit()
    cur.execute("SELECT to_regclass('job_run_newest'), to_regclass('job_runs_job_manual')")
    assert cur.fetchone() == (None, None)
    rnd = random.Random(7)  # noqa: S311
    for _ in range(120):
        step(cur, rnd)
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        conn.commit()
    cur.execute(PROMISE, {"names": JOBS})
    found = cur.fetchall()
    assert all(exact for _, has_runs, _, _, exact in found if has_runs)
    assert [has_runs for _, has_runs, *_ in found] == [has_row for _, _, has_row, *_ in found]
    check(cur, engine, ["migrated"])
