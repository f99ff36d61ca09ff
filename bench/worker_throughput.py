"""Worker throughput: no-op runs with run records vs bare Dramatiq no-op messages.

Same Redis, same worker settings (one process, 8 threads), same Python process, rounds
interleaved. The process's resident memory is sampled while the srjobs worker drains its
messages (peak reported: an upper bound for a worker process, as it also holds the bare broker
and the bench). The runs are inserted (`enqueued` cron runs) and their messages queued before
the clock starts, as the scheduler does; the clock stops when the last message is acknowledged
and, with run records, every run reads `succeeded` in the database. Each round starts after a
VACUUM of job_runs, so that no round pays for the dead rows of the one before it.

    python -m bench.worker_throughput [--quick]
"""

from __future__ import annotations

import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dramatiq
from dramatiq import Middleware, Worker
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine, text

from bench.support import bench_settings, cli
from shared.db import make_engine
from shared.dispatch import build_message
from shared.settings import Settings
from worker.finisher import SuccessBuffer

THREADS = 8
COMMAND = "python -m bench.worker_throughput"
TARGET = ">= 0.90 (median of 5 rounds, none under 0.85)"


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process (Linux /proc), in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


@contextmanager
def peak_rss(read: Callable[[], float], every: float = 0.1) -> Iterator[list[float]]:
    """Samples `read()` in a thread while the block runs; the list holds the peak (MB)."""
    peak = [read()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every):
            try:
                peak[0] = max(peak[0], read())
            except (OSError, RuntimeError):
                return

    thread = threading.Thread(target=sample, name="bench-rss", daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join(5)
        peak[0] = max(peak[0], read())


class Acked(Middleware):
    """Counts acknowledged messages; sets `done` at the target."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.target = 0
        self.done = threading.Event()

    def reset(self, target: int) -> None:
        with self.lock:
            self.count, self.target = 0, target
            self.done.clear()

    def after_ack(self, broker, message) -> None:
        with self.lock:
            self.count += 1
            if self.count >= self.target:
                self.done.set()


def noop() -> None:
    """Does nothing."""


def insert_runs(engine: Engine, job: str, n: int) -> list[int]:
    """`n` enqueued cron runs of `job`, one slot a second after the slots of earlier calls,
    as the scheduler records them."""
    with engine.begin() as conn:
        return list(
            conn.execute(
                text(
                    "INSERT INTO job_runs (job_name, trigger, scheduled_at, state, enqueued_at)"
                    " SELECT :job, 'cron', TIMESTAMPTZ '2026-01-01 00:00:00+00'"
                    " + make_interval(secs => g + (SELECT count(*) FROM job_runs)),"
                    " 'enqueued', now() FROM generate_series(1, :n) AS g"
                    " RETURNING id"
                ),
                {"job": job, "n": n},
            ).scalars()
        )


def vacuum(engine: Engine) -> float:
    """VACUUM (ANALYZE) job_runs; its seconds."""
    start = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) job_runs"))
    return time.perf_counter() - start


def enqueue(broker: RedisBroker, queue: str, actor: str, run_ids: list[int | None]) -> None:
    for run_id in run_ids:
        broker.enqueue(build_message(actor, queue, run_id))


def timed_round(broker: RedisBroker, counter: Acked, queue: str, n: int, settle=None) -> float:
    """Seconds for one worker to drain `n` queued messages (and `settle()` to return)."""
    counter.reset(n)
    worker = Worker(broker, queues={queue}, worker_threads=THREADS)
    before = list(broker.middleware)
    start = time.perf_counter()
    worker.start()
    try:
        if not counter.done.wait(600):
            raise RuntimeError(f"only {counter.count} of {n} messages were processed")
        if settle is not None:
            settle()
        return time.perf_counter() - start
    finally:
        worker.stop(timeout=10_000)
        # Worker.start() adds a middleware of its own to the broker and never takes it out:
        # without this, every round would run each hook of each message through one more.
        broker.middleware[:] = before


def measure(settings: Settings, n: int, rounds: int) -> dict:
    from worker.broker import process_state, setup_broker

    records_broker = RedisBroker(url=settings.redis_url, namespace=settings.redis_namespace)
    setup_broker(settings, records_broker)
    records_counter = Acked()
    records_broker.add_middleware(records_counter)
    from worker.jobs import job

    job(schedule="@daily", name="bench_noop", queue="bench_records")(noop)

    bare_broker = RedisBroker(url=settings.redis_url, namespace=settings.redis_namespace)
    bare_counter = Acked()
    bare_broker.add_middleware(bare_counter)
    dramatiq.actor(noop, broker=bare_broker, actor_name="bench_bare", queue_name="bench_bare")

    state = process_state(records_broker)
    records_broker.emit_after("process_boot")  # opens the engine
    engine = make_engine(settings, pool_size=1)

    def all_recorded(ids: list[int]):
        def settle() -> None:
            while state.successes.pending():
                state.successes.flush()
            with engine.connect() as conn:
                done = conn.execute(
                    text(
                        "SELECT count(*) FROM unnest(CAST(:ids AS bigint[])) AS v(id)"
                        " JOIN job_runs AS r ON r.id = v.id WHERE r.state = 'succeeded'"
                    ),
                    {"ids": ids},
                ).scalar()
            if done != len(ids):
                raise RuntimeError(f"{done} of {len(ids)} runs recorded as succeeded")

        return settle

    def records_round(buffer: SuccessBuffer, size: int) -> float:
        state.successes = buffer
        vacuums.append(vacuum(engine))
        ids = insert_runs(engine, "bench_noop", size)
        enqueue(records_broker, "bench_records", "bench_noop", ids)
        with peak_rss(rss_mb) as peak:
            seconds = timed_round(
                records_broker, records_counter, "bench_records", size, all_recorded(ids)
            )
        rss.append(peak[0])
        return size / seconds  # the flusher and heartbeat run with each worker

    def bare_round() -> float:
        vacuums.append(vacuum(engine))
        enqueue(bare_broker, "bench_bare", "bench_bare", [None] * n)
        return n / timed_round(bare_broker, bare_counter, "bench_bare", n)

    batched = state.successes
    unbatched = SuccessBuffer(state.engine, 0)  # SRJOBS_RUN_FLUSH_SECONDS=0
    series: dict[str, list[float]] = {name: [] for name in ("bare", "records", "unbatched")}
    rss: list[float] = []
    vacuums: list[float] = []
    try:
        for _ in range(rounds):
            series["bare"].append(bare_round())
            series["records"].append(records_round(batched, n))
            # The one-by-one series is for comparison only: a fifth of the messages keeps the
            # run within its budget (its rate is per message all the same).
            series["unbatched"].append(records_round(unbatched, n // 5))
        state.successes = batched
    finally:
        state.close()
        engine.dispose()
        records_broker.close()
        bare_broker.close()

    def ratios(records: str, bare: str) -> list[float]:
        return [r / b for r, b in zip(series[records], series[bare], strict=True)]

    return {
        **series,
        "ratios": ratios("records", "bare"),
        "unbatched_ratios": ratios("unbatched", "bare"),
        "rss_mb": rss,
        "vacuum_seconds": vacuums,
    }


def run(quick: bool) -> list[dict]:
    """Measure and return the benchmark rows."""
    n, rounds = (3_000, 2) if quick else (20_000, 5)
    with bench_settings("srjobs_bench_worker") as settings:
        result = measure(settings, n, rounds)
    ratio = statistics.median(result["ratios"])
    bare = statistics.median(result["bare"])
    records = statistics.median(result["records"])
    ratios = ", ".join(f"{r:.2f}" for r in result["ratios"])
    rounds_text = "; ".join(
        f"{b:,.0f} vs {r:,.0f}" for b, r in zip(result["bare"], result["records"], strict=True)
    )
    load = os.getloadavg()
    return [
        {
            "metric": f"worker throughput, run records / bare Dramatiq ({n:,} no-op messages)",
            "target": TARGET,
            "measured": (
                f"{ratio:.2f} (median of {rounds}, min {min(result['ratios']):.2f};"
                f" rounds {ratios}); bare {bare:,.0f} msg/s, with run records"
                f" {records:,.0f} msg/s (bare vs records per round, msg/s: {rounds_text});"
                f" load average {load[0]:.1f} at the end (2 cores); VACUUM of job_runs"
                f" before each round, outside the clock: median"
                f" {statistics.median(result['vacuum_seconds']):.2f} s"
            ),
            "peers": "naive INSERT + UPDATE per message: 0.59 (~960 vs ~1,600 msg/s)",
            "command": COMMAND + (" --quick" if quick else ""),
        },
        {
            "metric": "worker throughput, run records written one by one / bare Dramatiq",
            "target": "- (SRJOBS_RUN_FLUSH_SECONDS=0, for comparison)",
            "measured": (
                f"{statistics.median(result['unbatched_ratios']):.2f};"
                f" {statistics.median(result['unbatched']):,.0f} msg/s"
                f" ({n // 5:,} messages a round)"
            ),
            "peers": "naive INSERT + UPDATE per message: 0.59",
            "command": COMMAND + (" --quick" if quick else ""),
        },
        {
            "metric": f"worker RSS, one process with {THREADS} threads draining {n:,} messages",
            "target": "< 150 MB",
            "measured": (
                f"peak {max(result['rss_mb']):.0f} MB (bench process: the srjobs worker, its"
                " engines and connections, plus the bare broker and the bench)"
            ),
            "peers": "-",
            "command": COMMAND + (" --quick" if quick else ""),
        },
    ]


if __name__ == "__main__":
    sys.exit(cli(__doc__, run, "3,000 messages, 2 rounds"))
