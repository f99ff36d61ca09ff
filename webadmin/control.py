"""What the admin changes beyond a schedule's fields: runtime schedules created and deleted,
runs cancelled and retried, each with its audit entry in the same transaction.

Plain functions over an engine (called from a thread pool), like webadmin/services.py.
"""

from __future__ import annotations

import logging

from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Connection, Engine

from shared import actors, audit, runs, schedules
from shared.actors import ActorInfo
from shared.dispatch import dispatch
from shared.errors import Conflict, UnknownJob
from shared.runs import Run
from webadmin import views
from webadmin.inputs import NewSchedule
from webadmin.views import JobView

logger = logging.getLogger(__name__)


def list_actors(engine: Engine) -> list[ActorInfo]:
    """The actor catalogue."""
    with engine.connect() as conn:
        return actors.list_actors(conn)


def create_job(engine: Engine, new: NewSchedule, who: str) -> JobView:
    """Validate a runtime schedule against the catalogue and store it with its audit entry.

    Raises InvalidInput or InvalidSchedule (nothing stored), or Conflict when the name exists.
    The table's trigger tells the leader, which schedules it at once."""
    with engine.begin() as conn:
        actor = actors.get_actor(conn, new.actor)
        args = actors.check_args(actor, new.args)
        had_runs = runs.any_runs(conn, new.name)  # before the insert: it notifies the leader
        row = schedules.create_schedule(
            conn,
            name=new.name,
            actor=actor.name,
            queue=actor.queue,
            cron=new.cron,
            timezone=new.timezone,
            enabled=new.enabled,
            args=args,
            stale_after_seconds=new.stale_after_seconds,
        )
        audit.record(
            conn,
            who=who,
            action="schedule.create",
            job_name=row.name,
            new_values={
                "actor": row.actor,
                "cron": row.cron,
                "timezone": row.timezone,
                "enabled": row.enabled,
                "args": row.args,
                "stale_after_seconds": row.stale_after_seconds,
            },
        )
        job = views.new_job(conn, row, had_runs)
    logger.info(
        "job %s created by %s", row.name, who, extra={"event": "job_created", "job": row.name}
    )
    return job


def delete_job(engine: Engine, name: str, who: str) -> None:
    """Delete a runtime schedule (its runs stay); raises UnknownJob, or Conflict when declared."""
    with engine.begin() as conn:
        row = schedules.delete_schedule(conn, name)
        audit.record(
            conn,
            who=who,
            action="schedule.delete",
            job_name=name,
            old_values={"actor": row.actor, "cron": row.cron, "args": row.args},
        )
    logger.info("job %s deleted by %s", name, who, extra={"event": "job_deleted", "job": name})


def cancel_run(engine: Engine, run_id: int, who: str) -> Run:
    """Discard a waiting run at once, or ask the worker to stop a running one.

    Raises UnknownRun, or Conflict when the run has finished."""
    with engine.begin() as conn:
        run = _cancel(conn, run_id, f"{runs.CANCELLED} by {who}")
        audit.record(
            conn,
            who=who,
            action="run.cancel",
            job_name=run.job_name,
            new_values={"run_id": run.id, "state": run.state},
        )
    logger.info(
        "run %d of %s: cancel asked by %s (%s)",
        run.id,
        run.job_name,
        who,
        run.state,
        extra={"event": "run_cancel", "run_id": run.id, "state": run.state},
    )
    return run


def _cancel(conn: Connection, run_id: int, error: str) -> Run:
    for _ in range(3):  # the run may move on between two statements: look again
        if runs.cancel_waiting(conn, run_id, error) or runs.request_cancel(conn, run_id):
            return runs.get_run(conn, run_id)
        run = runs.get_run(conn, run_id)  # UnknownRun: 404
        if run.state in runs.FINISHED_STATES:
            raise Conflict(f"run {run_id} has already finished ({run.state}): nothing to cancel")
    raise Conflict(f"run {run_id} changed state while being cancelled: try again")


def retry_run(engine: Engine, broker: RedisBroker, run_id: int, who: str) -> Run:
    """A new manual run of a finished run's job, with its args and `retry_of`.

    Raises UnknownRun; Conflict when the run is not finished or its job is gone; RunConflict
    when the job has an active run."""
    with engine.begin() as conn:
        original = runs.get_run(conn, run_id)
        if original.state not in runs.FINISHED_STATES:
            raise Conflict(
                f"run {run_id} is {original.state}: only a succeeded or discarded run can be"
                " retried"
            )
        try:
            job = schedules.get_schedule(conn, original.job_name)
        except UnknownJob:
            raise Conflict(
                f"the job {original.job_name!r} of run {run_id} no longer exists"
            ) from None
        run = runs.create_manual_run(conn, job.name, args=original.args, retry_of=original.id)
        audit.record(
            conn,
            who=who,
            action="run.retry",
            job_name=job.name,
            new_values={"run_id": run.id, "retry_of": original.id},
        )
    logger.info(
        "run %d of %s retries run %d (by %s)",
        run.id,
        job.name,
        original.id,
        who,
        extra={"event": "run_retry", "run_id": run.id, "retry_of": original.id},
    )
    dispatch(engine, broker, run, job.actor, job.queue)
    with engine.connect() as conn:
        return runs.get_run(conn, run.id)


def retried_by(engine: Engine, run_id: int) -> list[Run]:
    """The runs that retry this one, newest first."""
    with engine.connect() as conn:
        return runs.retries_of(conn, run_id)
