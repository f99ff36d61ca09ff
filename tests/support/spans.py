"""Insert OpenTelemetry-shaped spans into otel_traces."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import Engine, text

INSERT = text(
    """
    INSERT INTO otel_traces (timestamp, trace_id, span_id, parent_span_id, name, kind,
        start_time_unix_nano, end_time_unix_nano, service_name, status_code)
    VALUES (now(), :trace_id, :span_id, :parent, :name, 1, :start, :end, :service, :status)
    """
)


def insert_trace(engine: Engine, services=("api", "db"), error: bool = False) -> str:
    """One trace: a root span and one child per further service; returns the trace id."""
    trace_id = uuid.uuid4().hex
    start = time.time_ns()
    root = uuid.uuid4().hex[:16]
    rows = [
        dict(
            trace_id=trace_id,
            span_id=root,
            parent=None,
            name="GET /",
            start=start,
            end=start + 5_000_000,
            service=services[0],
            status=2 if error else 1,
        )
    ]
    for i, svc in enumerate(services[1:]):
        rows.append(
            dict(
                trace_id=trace_id,
                span_id=uuid.uuid4().hex[:16],
                parent=root,
                name=f"step {i}",
                start=start + 1_000,
                end=start + 2_000_000,
                service=svc,
                status=1,
            )
        )
    with engine.begin() as conn:
        conn.execute(INSERT, rows)
    return trace_id
