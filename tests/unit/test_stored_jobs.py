"""Job-store rows survive upgrades: rows written by the first release (no version in srjobs'
pickled state, tests/data/jobstore_v0.json) and by this one load into equivalent jobs; a row
written by a newer srjobs is refused with a clear error."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.job import Job
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from scheduler.executor import placeholder
from scheduler.jobstate import KWARGS_VERSION, UnknownJobVersion, job_kwargs, read_kwargs
from shared.cron import ScheduleTrigger, UnknownStateVersion, parse_schedule
from shared.cron.trigger import STATE_VERSION

DATA = Path(__file__).parent.parent / "data" / "jobstore_v0.json"
# The schedules the rows were written for (tests/data/jobstore_v0.json "written_by").
WRITTEN_FOR = {
    "every_five_minutes": ("*/5 * * * *", "America/New_York"),
    "hourly_macro": ("@hourly", "UTC"),
    "monthly_named": ("0 6 1 jan,jul *", "UTC"),
    "nightly_berlin": ("30 2 * * 1-5", "Europe/Berlin"),
    "refresh_trace_summaries": ("@every 1s", "UTC"),
    "srjobs_prune_runs": ("@every 1s", "UTC"),
    "srjobs_rescue_runs": ("@every 1s", "UTC"),
}
AT = [
    datetime(2026, 3, 29, 0, 30, tzinfo=UTC),  # Europe's spring-forward night
    datetime(2026, 11, 1, 5, 59, 30, tzinfo=UTC),  # New York's fall-back hour
    datetime(2027, 6, 30, 23, 59, 59, tzinfo=UTC),
]


def v0_rows() -> list[dict[str, Any]]:
    return json.loads(DATA.read_text())["rows"]


def load(job_state: bytes) -> Job:
    """A stored row into a Job, as APScheduler's SQLAlchemyJobStore does it."""
    state = pickle.loads(job_state)  # noqa: S301  (committed test data of our own)
    state["jobstore"] = MemoryJobStore()
    job = Job.__new__(Job)
    job.__setstate__(state)
    return job


def test_the_first_releases_rows_load_into_the_same_jobs():
    rows = v0_rows()
    assert {row["id"] for row in rows} == set(WRITTEN_FOR)
    for row in rows:
        raw = bytes.fromhex(row["job_state_hex"])
        assert b"shared.cron" in raw and b"Schedule\x94" in raw  # the unversioned layout
        job = load(raw)
        expr, timezone = WRITTEN_FOR[row["id"]]
        assert isinstance(job.trigger, ScheduleTrigger)
        assert (job.trigger.schedule.expr, job.trigger.schedule.timezone) == (expr, timezone)
        assert job.func is placeholder
        assert job.next_run_time.timestamp() == row["next_run_time"]
        target = read_kwargs(job.kwargs)
        assert target.actor in (
            "refresh_trace_summaries",
            "srjobs_prune_runs",
            "srjobs_rescue_runs",
        )
        assert target.queue == "default" and expr in target.sig


def test_the_first_releases_triggers_fire_on_the_schedules_slots():
    fresh = {name: parse_schedule(*source) for name, source in WRITTEN_FOR.items()}
    for row in v0_rows():
        job = load(bytes.fromhex(row["job_state_hex"]))
        schedule = fresh[row["id"]]
        stored_next = job.next_run_time
        # From the stored next run, the slot after it: what the loop computes after a fire.
        assert job.trigger.get_next_fire_time(stored_next, stored_next + timedelta(hours=1)) == (
            schedule.next_fire_at_or_after(stored_next + timedelta(microseconds=1))
        )
        for at in AT:
            assert job.trigger.get_next_fire_time(None, at) == schedule.next_fire_at_or_after(at)


def test_a_row_written_now_carries_versions_and_loads_back():
    schedule = parse_schedule("30 2 * * 1-5", "Europe/Berlin")
    trigger = ScheduleTrigger(schedule)
    job = Job(
        BackgroundScheduler(timezone="UTC"),
        id="nightly",
        func=placeholder,
        args=(),
        trigger=trigger,
        kwargs=job_kwargs("refresh_trace_summaries", "default", "sig"),
        executor="default",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=60,
        next_run_time=trigger.get_next_fire_time(None, AT[0]),
    )
    raw = pickle.dumps(job.__getstate__(), pickle.HIGHEST_PROTOCOL)
    assert trigger.__getstate__() == {
        "version": STATE_VERSION,
        "expr": "30 2 * * 1-5",
        "timezone": "Europe/Berlin",
    }
    assert b"CronSpec" not in raw and b"shared.cron.schedule" not in raw  # only source text
    loaded = load(raw)
    assert loaded.kwargs["version"] == KWARGS_VERSION
    assert read_kwargs(loaded.kwargs).actor == "refresh_trace_summaries"
    assert loaded.next_run_time == job.next_run_time
    for at in AT:
        assert loaded.trigger.get_next_fire_time(None, at) == schedule.next_fire_at_or_after(at)


def test_a_v0_row_is_written_back_in_the_current_layout():
    row = next(r for r in v0_rows() if r["id"] == "nightly_berlin")
    job = load(bytes.fromhex(row["job_state_hex"]))
    state = pickle.loads(pickle.dumps(job.__getstate__()))  # noqa: S301
    assert state["trigger"].__getstate__()["version"] == STATE_VERSION
    assert str(load(pickle.dumps(state)).trigger) == "srjobs[30 2 * * 1-5 Europe/Berlin]"


def test_a_newer_trigger_state_is_refused_clearly():
    trigger = ScheduleTrigger.__new__(ScheduleTrigger)
    with pytest.raises(UnknownStateVersion, match=r"version 2.*newer srjobs"):
        trigger.__setstate__({"version": 2, "expr": "@hourly", "timezone": "UTC"})


def test_newer_job_kwargs_are_refused_clearly():
    newer = KWARGS_VERSION + 1
    with pytest.raises(UnknownJobVersion, match=rf"version {newer}.*newer srjobs"):
        read_kwargs({"version": newer, "actor": "a", "queue": "default", "sig": ""})
    assert read_kwargs({"actor": "a", "queue": "q", "sig": "s"}).queue == "q"  # version 0


def test_job_kwargs_carry_the_fires_args_and_older_rows_have_none():
    stored = job_kwargs("refresh_materialized_view", "default", "sig", {"view": "v"})
    assert read_kwargs(stored).args == {"view": "v"}
    assert read_kwargs({"version": 1, "actor": "a", "queue": "q", "sig": "s"}).args == {}
    assert read_kwargs({"actor": "a", "queue": "q", "sig": "s"}).args == {}  # version 0
