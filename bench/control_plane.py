"""The control plane: schedules created through the API, and cancel of a running refresh.

- 10,000 `POST /api/jobs` from one keep-alive client against a real admin process: the time
  per create; the time from each commit to the schedule in force in the leader (the leader
  logs it per batch of notifications, counted from the batch's first change, so an upper
  bound for every schedule in it); a full reconcile of all of them afterwards.
- Cancel of a running 30 s `REFRESH MATERIALIZED VIEW` (a view over pg_sleep) through
  `POST /api/runs/{id}/cancel`, with a real worker: time until the statement is gone from
  `pg_stat_activity`, and until the run is `discarded`. Median of 10, with min and max.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import httpx

from bench.scheduler_harness import Lab, poll, row, summary
from shared.actors import write_catalogue
from srjobs.dev import free_port

COMMAND = "python -m bench control_plane"
SCHEDULES = 10_000
CANCEL_ROUNDS = 10
VIEW_ACTOR = "refresh_materialized_view"
SLOW_VIEW = """
CREATE MATERIALIZED VIEW bench_slow_view AS
SELECT g AS id FROM generate_series(1, 1) g CROSS JOIN LATERAL (SELECT pg_sleep(30)) s
WITH NO DATA
"""


def _catalogue(lab: Lab) -> None:
    """The catalogue `srjobs migrate` writes (the lab migrates without the worker's actors)."""
    import worker.actors  # noqa: F401  (binds a broker, declares the actors; no connection)
    from worker.jobs import catalogue

    with lab.engine.begin() as conn:
        write_catalogue(conn, catalogue())


def _admin(lab: Lab) -> httpx.Client:
    port = free_port()
    proc = lab.service("cp-admin", "webadmin", "--port", str(port), ADMIN_PASSWORD="")
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.popen.poll() is None, "the admin exited"
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    poll(up, 60, "the admin", 0.1)
    return httpx.Client(base_url=base, timeout=30)


def creates(lab: Lab, client: httpx.Client, count: int) -> list[dict]:
    leader = lab.scheduler("cp-leader")
    poll(lambda: leader.events("listener_connected"), 60, "the leader's listener", 0.05)
    took = []
    loads = [os.getloadavg()[0]]
    for i in range(count):
        body = {
            "name": f"cp_{i}",
            "actor": VIEW_ACTOR,
            "cron": "0 0 1 1 *",
            "args": {"view": "otel_trace_summaries"},
        }
        started = time.perf_counter()
        answer = client.post("/api/jobs", json=body)
        took.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 201, answer.text
        if i % 1000 == 999:
            loads.append(os.getloadavg()[0])
    applied = poll(
        lambda: (
            (e := [x for x in leader.events("schedule_applied") if x.get("reload_ms")])
            and sum(len(x["jobs"]) for x in e) >= count
            and e
        ),
        120,
        "every create in force in the leader",
        0.2,
    )
    in_force = [x["reload_ms"] for x in applied for _ in x["jobs"]]
    # A full reconcile of everything: the leader runs one after its listening connection
    # comes back, so end that connection.
    done = time.time()
    lab.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = 'srjobs-listener'"
    )
    reconciled = poll(
        lambda: [
            e
            for e in leader.events("schedules_reconciled")
            if e.get("schedules", 0) > count and _after(e, done)
        ],
        60,
        "a full reconcile after the creates",
        0.2,
    )
    reconcile_ms = reconciled[-1]["reconcile_ms"]
    leader.stop()
    return [
        row(
            "create schedules through the API (POST /api/jobs)",
            "p99 < 20 ms per create",
            f"{summary(took)}; {count} creates from one client, validated against the"
            f" actor catalogue, audited; load average {min(loads):.1f}-{max(loads):.1f}",
            "pg_cron cron.schedule(); procrastinate/Oban Pro dynamic schedules: no figure",
            COMMAND,
        ),
        row(
            "a created schedule in force in the leader (commit -> job store)",
            "p99 < 50 ms",
            f"{summary(in_force)} (batch-first latency, an upper bound per schedule;"
            f" {len(applied)} batches)",
            "-",
            COMMAND,
        ),
        row(
            "full reconcile with the created schedules",
            "< 1 s",
            f"{reconcile_ms / 1000:.3f} s ({count + 1} schedules;"
            f" load average {os.getloadavg()[0]:.1f})",
            "-",
            COMMAND,
        ),
    ]


def _after(event: dict, epoch: float) -> bool:
    from bench.scheduler_harness import record_time

    return record_time(event) > epoch


def refreshing(lab: Lab) -> bool:
    return bool(
        lab.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state = 'active' AND query ILIKE 'REFRESH MATERIALIZED VIEW%bench_slow_view%'"
        ).scalar()
    )


def state_of(lab: Lab, run_id: int) -> str:
    return lab.sql("SELECT state FROM job_runs WHERE id = :i", i=run_id).scalar()


def cancels(lab: Lab, client: httpx.Client, rounds: int) -> list[dict]:
    lab.service("cp-worker", "worker", "--threads", "2")
    lab.sql(SLOW_VIEW)
    body = {"name": "slow", "actor": VIEW_ACTOR, "cron": "0 0 1 1 *"}
    body["args"] = {"view": "bench_slow_view"}
    assert client.post("/api/jobs", json=body).status_code == 201
    gone, discarded = [], []
    for _ in range(rounds):
        run_id = poll(
            lambda: (
                (a := client.post("/api/jobs/slow/runs", json={})).status_code == 202
                and a.json()["id"]
            ),
            60,
            "a run to start",
            0.05,
        )
        poll(lambda r=run_id: state_of(lab, r) == "running", 60, "the run running", 0.01)
        poll(lambda: refreshing(lab), 30, "the REFRESH in the server", 0.01)
        asked = time.perf_counter()
        assert client.post(f"/api/runs/{run_id}/cancel", json={}).status_code == 202
        poll(lambda: not refreshing(lab), 10, "the statement to end", 0.005)
        gone.append((time.perf_counter() - asked) * 1000)
        poll(lambda r=run_id: state_of(lab, r) == "discarded", 10, "discarded", 0.005)
        discarded.append((time.perf_counter() - asked) * 1000)

    def spread(values: list[float]) -> str:
        return (
            f"median {statistics.median(values):.0f} ms, min {min(values):.0f} ms,"
            f" max {max(values):.0f} ms (n={len(values)})"
        )

    return [
        row(
            "cancel of a running 30 s refresh: statement gone from pg_stat_activity",
            "< 1 s (median of 10)",
            f"{spread(gone)}; the worker polls every 0.5 s",
            "pg_cron: pg_cancel_backend by hand; APScheduler: no cancel",
            COMMAND,
        ),
        row(
            "cancel of a running 30 s refresh: run discarded",
            "< 2 s",
            spread(discarded),
            "-",
            COMMAND,
        ),
    ]


def run(quick: bool) -> list[dict]:
    count = 1000 if quick else SCHEDULES
    with Lab() as lab:
        _catalogue(lab)
        with _admin(lab) as client:
            rows = creates(lab, client, count)
            rows += cancels(lab, client, 3 if quick else CANCEL_ROUNDS)
    return rows


if __name__ == "__main__":
    for r in run(quick="--quick" in sys.argv):
        print(r)
