"""`srjobs summaries` and the incremental refresh in real processes: both ways, idempotent,
waiting for a running refresh, and a run killed mid-way (worker kill -9, Postgres crash)."""

import signal
import threading

import psycopg2
import pytest

from shared.dispatch import make_sender
from shared.migrate import migrate
from tests.conftest import create_database, database_url, make_settings
from tests.support.runs import send_run, wait_state
from tests.support.summaries import (
    connect,
    insert_spans,
    run_and_compare,
    scalar,
    set_mode,
    span,
    view_definition,
)
from tests.support.throwaway import throwaway_postgres
from tests.support.waiting import wait_for
from worker.refresh import TRACE_SUMMARIES_VIEW, refresh_view

JOB = "refresh_trace_summaries"
RELATION = "SELECT oid::bigint, relkind FROM pg_class WHERE oid = to_regclass(%s)"
# A backend waiting for a lock, with the start of the statement it runs.
WAITING = """
SELECT max(pid) FROM pg_stat_activity
 WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE %s
"""


def relation(conn) -> tuple:
    with conn.cursor() as cur:
        cur.execute(RELATION, (TRACE_SUMMARIES_VIEW,))
        found = cur.fetchone()
    conn.commit()
    return found


def summaries(services, *args: str):
    done = services.run("summaries", *args, timeout=120)
    return done.returncode, done.stdout.strip().splitlines()[-1:], done.stderr


def test_cli_both_ways_idempotent_and_bad_input(services, db_url):
    conn = connect(db_url)
    try:
        assert summaries(services)[:2] == (0, ["view"])
        assert summaries(services, "--mode", "incremental")[:2] == (0, ["incremental"])
        table = relation(conn)
        assert table[1] == "r"
        assert summaries(services, "--mode", "incremental")[:2] == (0, ["incremental"])
        assert summaries(services)[:2] == (0, ["incremental"])
        assert relation(conn) == table  # nothing rebuilt

        assert summaries(services, "--mode", "view")[:2] == (0, ["view"])
        view = relation(conn)
        assert view[1] == "m"
        assert summaries(services, "--mode", "view")[:2] == (0, ["view"])
        assert relation(conn) == view

        code, _, stderr = summaries(services, "--mode", "table")
        assert code == 2 and "invalid choice" in stderr
        assert relation(conn) == view
    finally:
        conn.close()


def test_cli_refuses_an_unmigrated_database(services, empty_db_name):
    create_database(empty_db_name)
    done = services.run(
        "summaries", "--mode", "incremental", env={"DATABASE_URL": database_url(empty_db_name)}
    )
    assert done.returncode == 2 and "srjobs migrate" in done.stderr


@pytest.mark.parametrize("start, target", [("view", "incremental"), ("incremental", "view")])
def test_conversion_waits_for_a_running_refresh(services, db_url, start, target):
    conn, refresher = connect(db_url), connect(db_url)
    definition = view_definition(conn)
    try:
        set_mode(conn, start)
        insert_spans(conn, [span("t", "r")])
        # A refresh that has done its work and not committed yet.
        assert refresh_view(
            refresher, TRACE_SUMMARIES_VIEW, statement_timeout_s=60, lock_timeout_s=5
        ) in ("concurrent", "incremental")
        cli = services.start("summaries", "summaries", "--mode", target)
        wait_for(
            lambda: scalar(conn, WAITING, ("SELECT pg_advisory_xact_lock%",)),
            30,
            "the conversion to wait for the refresh's lock",
        )
        assert cli.proc.poll() is None
        assert relation(conn)[1] == ("m" if start == "view" else "r")
        refresher.commit()
        assert cli.proc.wait(60) == 0
        assert cli.log().strip().splitlines()[-1] == target
        assert run_and_compare(conn, definition)[1][:2] == (0, 0)
    finally:
        conn.close()
        refresher.close()


def block_before_commit(conn) -> None:
    """Hold the state row, so that an incremental run stops at its last statement."""
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM otel_trace_summaries_state FOR UPDATE")


def trace_ids(conn) -> set[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT trace_id FROM otel_trace_summaries")
        found = {r[0] for r in cur.fetchall()}
    conn.commit()
    return found


def test_worker_killed_mid_run_leaves_the_previous_table(services, settings, engine, db_url):
    conn, holder = connect(db_url), connect(db_url)
    definition = view_definition(conn)
    broker = make_sender(settings)
    env = {"SRJOBS_REFRESH_LOCK_TIMEOUT": "60"}
    try:
        set_mode(conn, "incremental")
        insert_spans(conn, [span("before", "r")])
        worker = services.start("worker", "worker", "--threads", "2", env=env)
        run = wait_state(engine, send_run(engine, broker, JOB).id, ("succeeded", "discarded"), 60)
        assert run.state == "succeeded" and trace_ids(conn) == {"before"}

        insert_spans(conn, [span("during", "r"), span("before", "late", parent="r")])
        block_before_commit(holder)
        stuck = send_run(engine, broker, JOB)
        pid = wait_for(
            lambda: scalar(conn, WAITING, ("UPDATE otel_trace_summaries_state%",)),
            60,
            "the worker's run to reach its last statement",
        )
        worker.signal(signal.SIGKILL)
        worker.proc.wait(10)
        holder.rollback()
        wait_for(
            lambda: (
                not scalar(conn, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
            ),
            30,
            "the killed run's backend to end",
        )
        assert trace_ids(conn) == {"before"}
        assert scalar(conn, "SELECT count(*) FROM otel_trace_changes") > 0
        # What the orphan rescue does once the dead worker's heartbeat is old enough.
        scalar(
            conn, "UPDATE job_runs SET state = 'discarded' WHERE id = %s RETURNING id", (stuck.id,)
        )

        services.start("worker", "worker", "--threads", "2", env=env)
        run = wait_state(engine, send_run(engine, broker, JOB).id, ("succeeded", "discarded"), 60)
        assert run.state == "succeeded"
        assert trace_ids(conn) == {"before", "during"}
        assert run_and_compare(conn, definition)[1] == (0, 0, 2)
    finally:
        broker.close()
        conn.close()
        holder.close()


def test_postgres_crash_mid_run_leaves_the_previous_table():
    with throwaway_postgres() as pg:
        migrate(make_settings(pg.url), [])
        conn, holder, runner = connect(pg.url), connect(pg.url), connect(pg.url)
        definition = view_definition(conn)
        set_mode(conn, "incremental")
        insert_spans(conn, [span("before", "r")])
        assert run_and_compare(conn, definition)[1] == (0, 0, 1)
        insert_spans(conn, [span("during", "r")])
        block_before_commit(holder)
        failed: list[BaseException] = []

        def run() -> None:
            try:
                refresh_view(
                    runner, TRACE_SUMMARIES_VIEW, statement_timeout_s=60, lock_timeout_s=60
                )
                runner.commit()
            except psycopg2.Error as exc:
                failed.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        wait_for(
            lambda: scalar(conn, WAITING, ("UPDATE otel_trace_summaries_state%",)),
            60,
            "the run to reach its last statement",
        )
        pg.stop()  # immediate: a crash, recovered from the WAL at the next start
        thread.join(30)
        assert failed and not thread.is_alive()
        pg.start()
        for c in (conn, holder, runner):
            c.close()
        conn = connect(pg.url)
        try:
            assert trace_ids(conn) == {"before"}
            assert scalar(conn, "SELECT count(*) FROM otel_trace_changes") == 1
            assert run_and_compare(conn, definition)[1] == (0, 0, 2)
        finally:
            conn.close()
