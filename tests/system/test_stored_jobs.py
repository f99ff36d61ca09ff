"""A leader started on a job store written by the first release (unversioned pickles) loads
its rows as they are and fires from them."""

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from tests.support.logs import events, wait_event
from tests.support.schedulers import cron_slots, start_scheduler, stored_jobs
from tests.support.waiting import wait_for

DATA = Path(__file__).parent.parent / "data" / "jobstore_v0.json"
# The schedules as they were when the rows were written (tests/data/jobstore_v0.json).
SCHEDULES = [  # name, actor, cron, timezone
    ("refresh_trace_summaries", "refresh_trace_summaries", "@every 1s", "UTC"),
    ("srjobs_prune_runs", "srjobs_prune_runs", "@every 1s", "UTC"),
    ("srjobs_rescue_runs", "srjobs_rescue_runs", "@every 1s", "UTC"),
    ("nightly_berlin", "refresh_trace_summaries", "30 2 * * 1-5", "Europe/Berlin"),
    ("hourly_macro", "refresh_trace_summaries", "@hourly", "UTC"),
    ("every_five_minutes", "refresh_trace_summaries", "*/5 * * * *", "America/New_York"),
    ("monthly_named", "refresh_trace_summaries", "0 6 1 jan,jul *", "UTC"),
]


def test_a_leader_fires_from_the_first_releases_job_store(services, engine):
    rows = json.loads(DATA.read_text())["rows"]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM job_schedules"))
        for name, actor, cron, timezone in SCHEDULES:
            conn.execute(
                text(
                    "INSERT INTO job_schedules (name, actor, cron, timezone)"
                    " VALUES (:n, :a, :c, :tz)"
                ),
                {"n": name, "a": actor, "c": cron, "tz": timezone},
            )
        conn.execute(text("DELETE FROM apscheduler_jobs"))
        for row in rows:
            conn.execute(
                text(
                    "INSERT INTO apscheduler_jobs (id, next_run_time, job_state)"
                    " VALUES (:id, :t, decode(:s, 'hex'))"
                ),
                {"id": row["id"], "t": row["next_run_time"], "s": row["job_state_hex"]},
            )
    leader = start_scheduler(services, "node-a")
    wait_event(leader, "leader_ready", 30)
    # The stored jobs were loaded, not dropped and added again, nor rescheduled: their
    # signatures (in the old kwargs) matched the schedules.
    reconciled = wait_event(leader, "schedules_reconciled", 10)
    assert reconciled["schedules"] == len(rows)
    for event in ("schedule_added", "schedules_added", "schedule_changed", "schedule_removed"):
        assert events(leader, event) == [], event
    # The @every 1s rows' stored next run is long past: caught up from the stored time, then
    # they fire on their slots.
    skipped = wait_event(leader, "slots_skipped", 10, job="refresh_trace_summaries")
    stored = next(r for r in rows if r["id"] == "refresh_trace_summaries")["next_run_time"]
    assert skipped["first_skipped"] == datetime.fromtimestamp(stored, UTC).isoformat()
    assert wait_for(lambda: len(cron_slots(engine)) >= 2, 30, "fires from the loaded jobs")
    assert cron_slots(engine)[0].timestamp() > stored
    assert set(stored_jobs(engine)) == {row["id"] for row in rows}
