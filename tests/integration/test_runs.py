"""Run records in real Postgres: fencing, manual-run uniqueness, transitions."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from shared import runs
from shared.errors import RunConflict

SLOT = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_one_cron_run_per_slot(engine):
    with engine.begin() as conn:
        first = runs.create_cron_run(conn, "refresh_trace_summaries", SLOT)
        again = runs.create_cron_run(conn, "refresh_trace_summaries", SLOT)
    assert first is not None and first.state == "pending" and first.scheduled_at == SLOT
    assert again is None


def test_transitions_are_guarded(engine):
    with engine.begin() as conn:
        run = runs.create_cron_run(conn, "refresh_trace_summaries", SLOT)
        assert runs.mark_enqueued(conn, run.id)
        assert not runs.mark_enqueued(conn, run.id)
        assert runs.start_run(conn, run.id, 1, "node-a")
        assert runs.mark_finished(conn, run.id, "succeeded")
        assert not runs.start_run(conn, run.id, 2, "node-b")  # finished: redelivery skips
        done = runs.get_run(conn, run.id)
    assert (done.state, done.attempt, done.node) == ("succeeded", 1, "node-a")
    assert done.enqueued_at <= done.started_at <= done.finished_at


def test_concurrent_manual_runs_make_exactly_one(engine):
    def attempt(_):
        try:
            with engine.begin() as conn:
                return runs.create_manual_run(conn, "refresh_trace_summaries").id
        except RunConflict as exc:
            return -exc.run.id

    with ThreadPoolExecutor(10) as pool:
        ids = list(pool.map(attempt, range(30)))
    created = {i for i in ids if i > 0}
    assert len(created) == 1
    assert {-i for i in ids if i < 0} == created


def test_list_runs_newest_first_with_keyset(engine):
    with engine.begin() as conn:
        ids = [runs.create_cron_run(conn, "j", SLOT.replace(minute=m)).id for m in range(5)]
        page = runs.list_runs(conn, "j", limit=2)
        rest = runs.list_runs(conn, "j", limit=10, before=page[-1].id)
    assert [r.id for r in page] == ids[::-1][:2]
    assert [r.id for r in rest] == ids[::-1][2:]


@pytest.mark.parametrize("state", ["succeeded", "failed", "discarded"])
def test_finish_records_error(engine, state):
    with engine.begin() as conn:
        run = runs.create_manual_run(conn, "j")
        runs.start_run(conn, run.id, 1, "n")
        runs.mark_finished(conn, run.id, state, error="E: x" * 1000, traceback="tb")
        done = runs.get_run(conn, run.id)
    assert done.state == state
    assert len(done.error) == runs.MAX_ERROR_LENGTH


def test_batched_enqueue_keeps_each_hand_over_time(engine):
    sent = [SLOT.replace(second=1), SLOT.replace(second=2)]
    with engine.begin() as conn:
        a = runs.create_cron_run(conn, "j", SLOT)
        b = runs.create_cron_run(conn, "j", SLOT.replace(minute=1))
        assert runs.mark_enqueued_many(conn, [a.id, b.id], sent) == 2
        assert runs.mark_enqueued_many(conn, [a.id, b.id], sent) == 0
        got = [runs.get_run(conn, r.id) for r in (a, b)]
    assert [(r.state, r.enqueued_at) for r in got] == [("enqueued", t) for t in sent]


def test_finish_refuses_a_state_that_is_not_an_outcome(engine):
    with engine.begin() as conn:
        run = runs.create_manual_run(conn, "j")
        with pytest.raises(ValueError, match="running"):
            runs.mark_finished(conn, run.id, "running")
        assert runs.get_run(conn, run.id).state == "pending"


def test_one_statement_finishes_runs_with_different_outcomes(engine):
    with engine.begin() as conn:
        ok, bad, moved_on = (runs.create_manual_run(conn, n) for n in ("ok", "bad", "moved"))
        for run in (ok, bad, moved_on):
            assert runs.start_run(conn, run.id, 1, "n")
        changed = runs.finish_many(
            conn,
            [
                runs.Finish(ok.id, "succeeded", attempt=1, seconds=2.5),
                runs.Finish(bad.id, "failed", attempt=1, error="E: x", traceback="tb"),
                runs.Finish(moved_on.id, "discarded", attempt=2),  # not at that attempt
            ],
        )
        got = {r.id: r for r in (runs.get_run(conn, x.id) for x in (ok, bad, moved_on))}
        trace = runs.get_traceback(conn, bad.id)
    assert changed == 2
    assert (got[ok.id].finished_at - got[ok.id].started_at).total_seconds() == 2.5
    assert (got[bad.id].state, got[bad.id].error, trace) == ("failed", "E: x", "tb")
    assert got[moved_on.id].state == "running"
