"""otel_trace_summaries in incremental mode: a run's cost against the new spans and the window,
against `REFRESH MATERIALIZED VIEW CONCURRENTLY` over the same data, the ingest cost of the
change capture, and the span volume at which each mode stops fitting the 2-minute cadence.

The window holds 10-span traces spread over the last 6 days (bench.refresh's generator). The
concurrent refresh is measured on a second materialized view with the same query and unique
index, refreshed over the same spans right after each incremental run.

    python -m bench.summaries [--quick]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg2
from psycopg2 import sql
from psycopg2.extras import execute_values

from bench.refresh import CADENCE_SECONDS, add_spans
from bench.support import bench_settings, cli
from shared.db import dsn
from worker.refresh import TRACE_SUMMARIES_VIEW, refresh_view
from worker.summaries import summary_query
from worker.summaries_mode import convert, set_capture

COMMAND = "python -m bench.summaries"
TWIN = "bench_trace_summaries"
ROUNDS = 3
BATCH = 1_000
BATCHES_PER_ROUND = 20
INGEST_ROUNDS = 5
INSERT_BATCH = (
    "INSERT INTO otel_traces (timestamp, trace_id, span_id, parent_span_id, name, kind,"
    " start_time_unix_nano, end_time_unix_nano, service_name, status_code) VALUES %s"
)
# Spans that leave the window a few seconds after they are written.
EDGE_SPANS = """
INSERT INTO otel_traces (timestamp, trace_id, span_id, parent_span_id, name, kind,
    start_time_unix_nano, end_time_unix_nano, service_name, status_code)
SELECT now() - interval '7 days' + interval '3 seconds', md5(%(salt)s || (g / 10)::text),
       substr(md5(%(salt)s || g::text), 1, 16), NULL, 'edge', 1, g, g + 1000, 'svc', 1
  FROM generate_series(0, %(count)s - 1) AS g
"""
EDGE_GONE = "SELECT count(*) = 0 FROM otel_traces WHERE name = 'edge' AND timestamp > now() - interval '7 days'"  # noqa: E501


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def incremental_run(conn) -> None:
    mode = refresh_view(conn, TRACE_SUMMARIES_VIEW, statement_timeout_s=3600, lock_timeout_s=60)
    conn.commit()
    assert mode == "incremental", mode


def concurrent_refresh(conn) -> None:
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("REFRESH MATERIALIZED VIEW CONCURRENTLY {}").format(sql.Identifier(TWIN))
        )
    conn.commit()


def set_mode(conn, mode: str) -> None:
    with conn.cursor() as cur:
        convert(cur, mode)
    conn.commit()


def twin(conn, *, create: bool) -> None:
    """Create, or plainly refresh, the twin view (untimed, after a bulk load)."""
    name = sql.Identifier(TWIN)
    with conn.cursor() as cur:
        if create:
            cur.execute(
                sql.SQL("CREATE MATERIALIZED VIEW {} AS ").format(name)
                + summary_query(only_touched=False)
            )
            cur.execute(sql.SQL("CREATE UNIQUE INDEX ON {} (trace_id)").format(name))
        else:
            cur.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(name))
    conn.commit()


def load(conn, spans: int) -> None:
    """Bulk-load spans in view mode (no capture), then convert to incremental mode."""
    set_mode(conn, "view")
    add_spans(conn, spans)
    set_mode(conn, "incremental")


def rounds_after_new_spans(conn, new: int, *, with_concurrent: bool) -> dict:
    """ROUNDS times: `new` spans, then an incremental run (and a concurrent refresh)."""
    inc, conc = [], []
    for _ in range(ROUNDS):
        add_spans(conn, new)
        inc.append(seconds(lambda: incremental_run(conn)))
        if with_concurrent:
            conc.append(seconds(lambda: concurrent_refresh(conn)))
    return {"incremental": inc, "concurrent": conc}


def leaving_run(conn, count: int) -> float:
    """An incremental run after `count` spans (whole traces) left the window."""
    with conn.cursor() as cur:
        cur.execute(EDGE_SPANS, {"salt": uuid.uuid4().hex, "count": count})
    conn.commit()
    incremental_run(conn)
    deadline = time.monotonic() + 60
    while True:
        with conn.cursor() as cur:
            cur.execute(EDGE_GONE)
            gone = cur.fetchone()[0]
        conn.commit()
        if gone or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return seconds(lambda: incremental_run(conn))


def span_batch(traces_per_batch: int) -> list[tuple]:
    salt = uuid.uuid4().hex
    now = datetime.now(UTC)
    per_trace = BATCH // traces_per_batch
    return [
        (
            now,
            f"{salt}-{i // per_trace}",
            f"{i:016x}",
            None if i % per_trace == 0 else f"{i - i % per_trace:016x}",
            "op",
            1,
            i,
            i + 1_000_000,
            f"svc-{i % 7}",
            1,
        )
        for i in range(BATCH)
    ]


def ingest_ratios(conn, traces_per_batch: int) -> list[float]:
    """Per round: the time of batches inserted with capture / without, alternating batch by
    batch (the toggle itself untimed)."""
    ratios = []
    for n in range(INGEST_ROUNDS):
        timings = {True: 0.0, False: 0.0}
        for i in range(2 * BATCHES_PER_ROUND):
            capture = (i + n) % 2 == 0
            rows = span_batch(traces_per_batch)
            with conn.cursor() as cur:
                set_capture(cur, enabled=capture)
            conn.commit()
            start = time.perf_counter()
            with conn.cursor() as cur:
                execute_values(cur, INSERT_BATCH, rows, page_size=BATCH)
            conn.commit()
            timings[capture] += time.perf_counter() - start
        ratios.append(timings[True] / timings[False])
    with conn.cursor() as cur:
        set_capture(cur, enabled=True)
    conn.commit()
    return ratios


def figure(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def spread(values: list[float], scale: float = 1.0, unit: str = " s") -> str:
    """Median (min, max) of a measurement's rounds."""
    med, low, high = (
        figure(v * scale) for v in (statistics.median(values), *sorted(values)[:: len(values) - 1])
    )
    return f"{med}{unit} (min {low}, max {high})"


def measure(url: str, sizes: tuple[int, int], news: tuple[int, int, int]) -> dict:
    conn = psycopg2.connect(url)
    out: dict = {"sizes": sizes, "news": news}
    try:
        load(conn, sizes[0])
        twin(conn, create=True)
        out["small"] = rounds_after_new_spans(conn, news[1], with_concurrent=True)
        load(conn, sizes[1] - sizes[0])
        twin(conn, create=False)
        out["large"] = {
            new: rounds_after_new_spans(conn, new, with_concurrent=new == news[1]) for new in news
        }
        out["leaving"] = leaving_run(conn, news[1])
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM otel_traces")
            out["spans"] = cur.fetchone()[0]
        conn.commit()
        out["ingest"] = {t: ingest_ratios(conn, t) for t in (BATCH // 10, BATCH)}
        out["load"] = os.getloadavg()[0]
    finally:
        conn.close()
    return out


def ratio_of(numerators: list[float], denominators: list[float]) -> list[float]:
    return [a / b for a, b in zip(numerators, denominators, strict=True)]


def rows(r: dict, command: str) -> list[dict]:
    small, _ = r["sizes"]
    few, usual, many = r["news"]
    at = f"{r['spans']:,} spans"
    main = r["large"][usual]
    inc_per_new = statistics.median(r["large"][many]["incremental"]) / many
    leave_per_span = r["leaving"] / usual
    per_run = CADENCE_SECONDS / (inc_per_new + leave_per_span)
    conc_per_span = statistics.median(main["concurrent"]) / r["spans"]
    ingest = {t: spread(v, 1.0, "") for t, v in r["ingest"].items()}
    out = [
        {
            "metric": f"incremental run vs REFRESH ... CONCURRENTLY, {at} in the window,"
            f" {usual:,} new spans since the last run",
            "target": ">= 20x faster",
            "measured": f"incremental {spread(main['incremental'], 1000, ' ms')}, concurrent"
            f" {spread(main['concurrent'])}; ratio"
            f" {spread(ratio_of(main['concurrent'], main['incremental']), 1, 'x')}"
            f" ({ROUNDS} rounds)",
            "peers": "pg_cron / Oban re-run the full REFRESH: the concurrent figure",
            "command": command,
        },
        {
            "metric": f"incremental run vs new spans since the last run ({at})",
            "target": "grows with the new spans",
            "measured": "; ".join(
                f"{new:,} new: {spread(r['large'][new]['incremental'], 1000, ' ms')}"
                for new in (few, usual, many)
            ),
            "peers": "-",
            "command": command,
        },
        {
            "metric": f"incremental run vs window size ({usual:,} new spans)",
            "target": "flat in the window (the concurrent refresh grows with it)",
            "measured": f"{small:,} spans: {spread(r['small']['incremental'], 1000, ' ms')}"
            f" (concurrent {spread(r['small']['concurrent'])}); {r['spans']:,} spans:"
            f" {spread(main['incremental'], 1000, ' ms')} (concurrent"
            f" {spread(main['concurrent'])})",
            "peers": "-",
            "command": command,
        },
        {
            "metric": f"incremental run after {usual:,} spans left the window ({at})",
            "target": "report",
            "measured": f"{r['leaving'] * 1000:.0f} ms (one round)",
            "peers": "-",
            "command": command,
        },
        {
            "metric": "span ingest with / without the capture triggers, batches of 1,000"
            " via execute_values, 10 spans per trace",
            "target": "<= 1.10",
            "measured": f"{ingest[BATCH // 10]} ({INGEST_ROUNDS} rounds of"
            f" {BATCHES_PER_ROUND} batches each way, side by side)",
            "peers": "-",
            "command": command,
        },
        {
            "metric": "span ingest with / without the capture triggers, batches of 1,000,"
            " 1 span per trace (worst case)",
            "target": "report",
            "measured": f"{ingest[BATCH]} ({INGEST_ROUNDS} rounds)",
            "peers": "-",
            "command": command,
        },
        {
            "metric": "span volume at which a refresh exceeds the 2-minute cadence, per mode",
            "target": "report",
            "measured": f"view: ~{CADENCE_SECONDS / conc_per_span / 1e6:,.0f}M spans in the"
            f" 7-day window (linear from {r['spans']:,}); incremental: ~"
            f"{per_run / 1e6:,.1f}M new spans per 2-minute run (~{per_run / CADENCE_SECONDS:,.0f}"
            " spans/s sustained, as many leaving the window), whatever the window;"
            f" load average {r['load']:.1f} on this 2-core machine at the end",
            "peers": "-",
            "command": command,
        },
    ]
    return out


def run(quick: bool) -> list[dict]:
    """Measure and return the benchmark rows."""
    sizes = (100_000, 300_000) if quick else (1_000_000, 3_000_000)
    news = (1_000, 10_000, 30_000) if quick else (1_000, 10_000, 100_000)
    with bench_settings("srjobs_bench_summaries") as settings:
        results = measure(dsn(settings.database_url), sizes, news)
    return rows(results, COMMAND + (" --quick" if quick else ""))


if __name__ == "__main__":
    sys.exit(cli(__doc__, run, "100k and 300k spans"))
