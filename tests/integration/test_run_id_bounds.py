"""The run search's id bounds (migration 0006) never change its answer.

Random runs are recorded in random batches with creation times out of id order (back-dated
plain SQL, transactions overlapping), some moved by hand, some pruned; every search with
`since`/`until` is compared with the same search without the bounds (the filters alone).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import Connection, select, text

from shared import migrate, runs
from shared.runs.model import RUN_COLUMNS
from shared.tables import job_runs

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
JOBS = ("job_a", "job_b", "job_c")
STATES = ("succeeded", "failed", "discarded", "pending")
c = job_runs.c


def unbounded(**filters) -> list[int]:
    """The search without id bounds: the filters as the API states them."""
    stmt = select(*RUN_COLUMNS).order_by(c.id.desc()).limit(filters.get("limit", 50))
    for column, key in ((c.job_name, "job_name"), (c.state, "state")):
        if filters.get(key) is not None:
            stmt = stmt.where(column == filters[key])
    if filters.get("before") is not None:
        stmt = stmt.where(c.id < filters["before"])
    if filters.get("since") is not None:
        stmt = stmt.where(c.created_at >= filters["since"])
    if filters.get("until") is not None:
        stmt = stmt.where(c.created_at < filters["until"])
    return stmt


def moment(rnd: random.Random) -> datetime:
    """A creation time within three days of NOW, often on a bucket edge."""
    at = NOW - timedelta(seconds=rnd.randrange(3 * 86400))
    edge = rnd.choice((None, 10, 3600, 86400))
    if edge:
        at = datetime.fromtimestamp(at.timestamp() // edge * edge, UTC)
    return at + timedelta(microseconds=rnd.choice((0, 0, 1, 999_999)))


def record(conn: Connection, rnd: random.Random, count: int) -> None:
    """`count` runs in one statement; most created near one time, a few back-dated."""
    base = moment(rnd)
    rows = [
        {
            "job": rnd.choice(JOBS),
            "state": rnd.choice(STATES),
            "at": moment(rnd) if rnd.random() < 0.2 else base + timedelta(seconds=rnd.random()),
        }
        for _ in range(count)
    ]
    conn.execute(
        text(
            "INSERT INTO job_runs (job_name, trigger, state, created_at, attempt)"
            " SELECT j, 'manual', s, a, 1"
            " FROM unnest(CAST(:jobs AS text[]), CAST(:states AS text[]),"
            " CAST(:ats AS timestamptz[])) AS v(j, s, a)"
        ),
        {
            "jobs": [r["job"] for r in rows],
            "states": [r["state"] for r in rows],
            "ats": [r["at"] for r in rows],
        },
    )


def scramble(conn: Connection, rnd: random.Random) -> None:
    """Runs inserted out of creation order, some moved by hand, some pruned."""
    for _ in range(60):
        record(conn, rnd, rnd.choice((1, 5, 40)))
    conn.execute(
        text("UPDATE job_runs SET created_at = :at WHERE id % 17 = 3"), {"at": moment(rnd)}
    )
    conn.execute(
        text("DELETE FROM job_runs WHERE id % 7 = 2 OR created_at < :at"),
        {"at": NOW - timedelta(days=2, hours=rnd.randrange(12))},
    )


def draw(rnd: random.Random, ids: list[int]) -> dict:
    """Random search filters, always with a time bound."""
    a, b = sorted((moment(rnd), moment(rnd)))
    filters: dict = rnd.choice(({"since": a}, {"until": b}, {"since": a, "until": b}))
    if rnd.random() < 0.3:
        filters["job_name"] = rnd.choice(JOBS)
    if rnd.random() < 0.2:
        filters["state"] = rnd.choice(STATES)
    if rnd.random() < 0.2 and ids:
        filters["before"] = rnd.choice(ids)
    filters["limit"] = rnd.choice((1, 5, 50, 500))
    return filters


def check(conn: Connection, rnd: random.Random, searches: int) -> int:
    """Bounded and unbounded searches agree; how many returned runs."""
    ids = list(conn.execute(text("SELECT id FROM job_runs")).scalars())
    found = 0
    for _ in range(searches):
        filters = draw(rnd, ids)
        got = [r.id for r in runs.list_runs(conn, **filters)]
        assert got == [r.id for r in conn.execute(unbounded(**filters))], filters
        found += len(got)
    return found


def test_bounds_keep_results_exact(engine):
    rnd = random.Random(16)  # noqa: S311
    with engine.begin() as conn:
        scramble(conn, rnd)
        assert check(conn, rnd, 400) > 1000  # the searches found runs, not only empty pages


def test_overlapping_transactions_keep_results_exact(engine):
    """A transaction that started earlier inserts later ids: `now()` is its start."""
    rnd = random.Random(5)  # noqa: S311
    with engine.connect() as early, engine.connect() as late:
        early.execute(text("SELECT now()"))  # its now() is fixed from here
        late.execute(text("SELECT pg_sleep(0.02)"))
        for conn in (late, early):
            conn.execute(
                text(
                    "INSERT INTO job_runs (job_name, trigger, state, attempt)"
                    " SELECT 'job_a', 'manual', 'succeeded', 1 FROM generate_series(1, 30)"
                )
            )
            conn.commit()
    with engine.connect() as conn:
        times = list(conn.execute(text("SELECT created_at FROM job_runs ORDER BY id")).scalars())
        assert times != sorted(times)  # the later ids were created earlier
        for at in times:
            for filters in ({"until": at}, {"since": at}, {"since": at, "until": at}):
                got = [r.id for r in runs.list_runs(conn, **filters)]
                assert got == [r.id for r in conn.execute(unbounded(**filters))]
        assert check(conn, rnd, 50) >= 0


def test_ranges_cover_every_run(engine):
    """Each run lies within the range of its bucket at every width (the invariant)."""
    rnd = random.Random(3)  # noqa: S311
    with engine.begin() as conn:
        scramble(conn, rnd)
        outside = conn.execute(
            text(
                "SELECT count(*) FROM job_runs r CROSS JOIN (VALUES (10), (3600), (86400)) w(width)"
                " LEFT JOIN job_run_id_ranges g ON g.width = w.width AND g.starts_at ="
                " to_timestamp(floor(extract(epoch FROM r.created_at) / w.width) * w.width)"
                " WHERE g.width IS NULL OR r.id NOT BETWEEN g.min_id AND g.max_id"
            )
        ).scalar()
    assert outside == 0


def test_migration_backfills_existing_runs(engine):
    """Runs recorded before migration 0006 are in its ranges (down to 0005 and up again)."""
    rnd = random.Random(11)  # noqa: S311
    with engine.connect() as conn:
        cfg = migrate._config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
        conn.commit()
        assert conn.execute(text("SELECT to_regclass('job_run_id_ranges')")).scalar() is None
        scramble(conn, rnd)
        conn.commit()
        command.upgrade(cfg, "head")
        conn.commit()
        assert check(conn, rnd, 200) > 100
