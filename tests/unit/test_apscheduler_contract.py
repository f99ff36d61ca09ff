"""The parts of APScheduler 3.x that srjobs relies on beyond its public API.

The fence "a slot's run is recorded before the job store moves past it" (docs/architecture.md)
holds only because `BaseScheduler._process_jobs`, in the scheduler's own thread, calls
`executor.submit_job(job)` before `jobstore.update_job(job)` for each due job, and
`jobstore.get_next_run_time()` after every update of the pass. These tests drive a real
BackgroundScheduler's loop with a recording executor and store and fail if that order, or a
private attribute srjobs uses, changes. If one fails after an APScheduler upgrade: do not
upgrade (pyproject.toml pins the minor release) until the fence is rebuilt on the new order.
"""

from __future__ import annotations

import inspect
import threading
from datetime import UTC, datetime, timedelta

import apscheduler
import pytest
from apscheduler.executors.base import BaseExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from packaging.version import Version

from scheduler.executor import FireExecutor, placeholder
from scheduler.jobstate import job_kwargs
from scheduler.jobstore import FencedJobStore
from scheduler.leader import LeaderScheduler
from shared.cron import ScheduleTrigger, parse_schedule
from tests.support.waiting import wait_for

TESTED = Version("3.11")


class Recorder:
    """One ordered list of calls, shared by the executor and the store."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()

    def add(self, what: str, job_id: str = "") -> None:
        with self.lock:
            self.calls.append((what, job_id, threading.get_ident()))


class RecordingExecutor(BaseExecutor):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def submit_job(self, job: Job, run_times: list[datetime]) -> None:
        self.recorder.add("submit_job", job.id)

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        raise AssertionError("submit_job is overridden, as FireExecutor does")


class RecordingStore(MemoryJobStore):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def update_job(self, job: Job) -> None:
        self.recorder.add("update_job", job.id)
        super().update_job(job)

    def get_next_run_time(self) -> datetime | None:
        self.recorder.add("get_next_run_time")
        return super().get_next_run_time()


def due_scheduler(recorder: Recorder, names: list[str]) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        jobstores={"default": RecordingStore(recorder)},
        executors={"default": RecordingExecutor(recorder)},
        timezone="UTC",
    )
    scheduler.start(paused=True)
    past = datetime.now(UTC) - timedelta(seconds=5)
    for name in names:
        scheduler.add_job(
            placeholder,
            ScheduleTrigger(parse_schedule("@every 1s")),
            id=name,
            kwargs=job_kwargs("actor", "default", "sig"),
            coalesce=True,
            misfire_grace_time=60,
            next_run_time=past,
        )
    return scheduler


def test_the_installed_apscheduler_is_the_tested_minor_release():
    installed = Version(apscheduler.__version__)
    assert (installed.major, installed.minor) == (TESTED.major, TESTED.minor), (
        f"APScheduler {installed} is installed; srjobs relies on the loop of {TESTED}.x"
        " (see docs/architecture.md, 'The fence and APScheduler')"
    )


def test_each_job_is_submitted_before_it_is_updated_and_the_pass_ends_with_next_run_time():
    recorder = Recorder()
    names = ["a", "b", "c"]
    scheduler = due_scheduler(recorder, names)
    try:
        recorder.calls.clear()
        scheduler.resume()  # the scheduler's own thread runs a pass
        wait_for(lambda: any(c[0] == "get_next_run_time" for c in recorder.calls), 5, "a full pass")
        thread = scheduler._thread
    finally:
        scheduler.shutdown(wait=False)
    calls = recorder.calls
    first_flush = next(i for i, c in enumerate(calls) if c[0] == "get_next_run_time")
    for name in names:
        submitted = calls.index(("submit_job", name, calls[0][2]))
        updated = calls.index(("update_job", name, calls[0][2]))
        assert submitted < updated < first_flush, calls
    # All of it in the scheduler's thread: FencedJobStore buffers updates only there.
    assert thread is not None
    assert {ident for _, _, ident in calls[: first_flush + 1]} == {thread.ident}


def test_the_private_attributes_srjobs_uses_exist_with_their_types():
    scheduler = due_scheduler(Recorder(), ["a"])
    try:
        # LeaderTerm checks the loop thread; FencedJobStore tells the loop by it.
        assert isinstance(scheduler._thread, threading.Thread)
        # Mirror and the catch-up write the store under the lock the loop holds.
        lock = scheduler._jobstores_lock
        assert callable(lock.acquire) and callable(lock.release)
        with lock:
            pass
        job = scheduler.get_job("a")
        assert job is not None
        # The leader's own pass (scheduler/loop.py) reads a job's slots up to its horizon.
        soon = datetime.now(UTC) + timedelta(minutes=1)
        times = job._get_run_times(soon)
        assert isinstance(times, list) and times and all(t <= soon for t in times)
        # The catch-up moves a job's next run with Job._modify, then stores __getstate__().
        later = datetime.now(UTC) + timedelta(hours=1)
        job._modify(next_run_time=later)
        state = job.__getstate__()
        assert state["version"] == 1 and state["id"] == "a" and state["next_run_time"] == later
        assert state["func"] == "scheduler.executor:placeholder"
    finally:
        scheduler.shutdown(wait=False)
    # LeaderScheduler overrides the loop's pass; FencedJobStore reuses the SQLAlchemy store.
    assert inspect.signature(BackgroundScheduler._process_jobs).parameters.keys() == {"self"}
    assert LeaderScheduler._process_jobs is not BackgroundScheduler._process_jobs
    for name in ("jobs_t", "pickle_protocol", "engine"):
        assert name in inspect.getsource(SQLAlchemyJobStore.__init__), name
    assert issubclass(FencedJobStore, SQLAlchemyJobStore)
    assert callable(BaseJobStore.start) and FencedJobStore.start is not SQLAlchemyJobStore.start
    assert "_do_submit_job" in vars(BaseExecutor) and issubclass(FireExecutor, BaseExecutor)


@pytest.mark.parametrize("method", ["submit_job", "update_job", "get_next_run_time"])
def test_the_hooks_srjobs_overrides_are_still_called_by_the_loop(method):
    # A rename in APScheduler would leave srjobs' override silently unused.
    assert method in inspect.getsource(BackgroundScheduler._process_jobs)
