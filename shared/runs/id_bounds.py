"""Id bounds for a creation-time filter, read from `job_run_id_ranges` (migration 0006).

The run search orders by id; `created_at` follows ids only roughly. The ranges give an exact
bound: every run created before `until` has an id at most the highest `max_id` of the buckets
starting before `until`, and every run created at or after `since` an id at least the lowest
`min_id` of the buckets ending after it. The buckets are chosen here, as values, from the
finest width near the bound and wider ones further away, so that either set stays small.

The bounds are read first, in a statement of their own, and given to the search as values:
the planner then knows how many of a job's runs lie between them and walks them in id order,
stopping at the page's end (as parameters of the same statement, their range is a guess of
half a percent, and a bitmap read every run in it, then sorted them). A run recorded between
the two statements is left out, as it would be by a search made a moment earlier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Connection, and_, func, null, or_, select

from shared.tables import job_run_id_ranges

ranges_c = job_run_id_ranges.c

# The bucket widths the migration's trigger keeps, finest first; each divides the next.
WIDTHS = (10, 3600, 86400)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# (width, first start, end): the buckets of that width with first <= starts_at < end; None
# for an open end.
Span = tuple[int, datetime | None, datetime | None]


def floor_to(at: datetime, width: int) -> datetime:
    """The start of the `width`-second bucket holding `at` (epoch-aligned)."""
    step = timedelta(seconds=width)
    return EPOCH + (at - EPOCH) // step * step


def ceil_to(at: datetime, width: int) -> datetime:
    """The first `width`-second bucket start at or after `at`."""
    start = floor_to(at, width)
    return start if start == at else start + timedelta(seconds=width)


def before_spans(until: datetime) -> list[Span]:
    """Buckets that together hold exactly the times before `until` (and at most one finest
    bucket's worth after it): finest ones back to the hour, hours back to the day, days."""
    spans: list[Span] = []
    end: datetime | None = until
    for finer, wider in zip(WIDTHS, (*WIDTHS[1:], None), strict=True):
        first = floor_to(until, wider) if wider is not None else None
        spans.append((finer, first, end))
        end = first
    return spans


def after_spans(since: datetime) -> list[Span]:
    """Buckets that together hold exactly the times from the finest bucket holding `since`
    on: finest ones up to the next hour, hours up to the next day, days."""
    spans: list[Span] = []
    first: datetime | None = floor_to(since, WIDTHS[0])
    for finer, wider in zip(WIDTHS, (*WIDTHS[1:], None), strict=True):
        assert first is not None
        end = ceil_to(first, wider) if wider is not None else None
        spans.append((finer, first, end))
        first = end
    return spans


def _within(spans: list[Span]) -> ColumnElement[bool]:
    clauses = []
    for width, first, end in spans:
        parts = [ranges_c.width == width]
        if first is not None:
            parts.append(ranges_c.starts_at >= first)
        if end is not None:
            parts.append(ranges_c.starts_at < end)
        clauses.append(and_(*parts))
    return or_(*clauses)


def max_id_before(until: datetime) -> ColumnElement[int]:
    """A scalar subquery: no run created before `until` has a higher id (NULL: none was)."""
    return select(func.max(ranges_c.max_id)).where(_within(before_spans(until))).scalar_subquery()


def min_id_from(since: datetime) -> ColumnElement[int]:
    """A scalar subquery: no run created at or after `since` has a lower id (NULL: none was)."""
    return select(func.min(ranges_c.min_id)).where(_within(after_spans(since))).scalar_subquery()


@dataclass(frozen=True)
class IdBounds:
    """The ids a creation-time filter allows: `low` <= id <= `high` (None: no bound on that
    side); `empty` when no run was created in the window."""

    low: int | None = None
    high: int | None = None
    empty: bool = False

    @property
    def bounded(self) -> bool:
        return self.low is not None or self.high is not None


NO_BOUNDS = IdBounds()


def read_bounds(conn: Connection, since: datetime | None, until: datetime | None) -> IdBounds:
    """The id bounds of `since` <= created_at < `until`, in one statement. A naive time is
    compared by Postgres in its session's zone: it gets no bound."""
    low_on = since is not None and since.tzinfo is not None
    high_on = until is not None and until.tzinfo is not None
    if not (low_on or high_on):
        return NO_BOUNDS
    low, high = conn.execute(
        select(
            min_id_from(since) if since is not None and low_on else null(),
            max_id_before(until) if until is not None and high_on else null(),
        )
    ).one()
    return IdBounds(low, high, (low_on and low is None) or (high_on and high is None))
