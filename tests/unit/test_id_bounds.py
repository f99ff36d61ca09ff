"""The buckets a time bound reads (shared.runs.id_bounds): exact covers, few buckets."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from shared.runs.id_bounds import after_spans, before_spans, floor_to

AT = datetime(2026, 3, 1, 13, 47, 25, 500_000, tzinfo=UTC)


def covered(spans, bucket_start: datetime, width: int) -> bool:
    return any(
        w == width
        and (first is None or bucket_start >= first)
        and (end is None or bucket_start < end)
        for w, first, end in spans
    )


def test_before_spans_of_a_time():
    assert before_spans(AT) == [
        (10, datetime(2026, 3, 1, 13, tzinfo=UTC), AT),
        (3600, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 1, 13, tzinfo=UTC)),
        (86400, None, datetime(2026, 3, 1, tzinfo=UTC)),
    ]


def test_after_spans_of_a_time():
    assert after_spans(AT) == [
        (10, datetime(2026, 3, 1, 13, 47, 20, tzinfo=UTC), datetime(2026, 3, 1, 14, tzinfo=UTC)),
        (3600, datetime(2026, 3, 1, 14, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)),
        (86400, datetime(2026, 3, 2, tzinfo=UTC), None),
    ]


def test_spans_on_edges():
    midnight = datetime(2026, 3, 2, tzinfo=UTC)
    assert before_spans(midnight) == [
        (10, midnight, midnight),
        (3600, midnight, midnight),
        (86400, None, midnight),
    ]
    assert after_spans(midnight) == [
        (10, midnight, midnight),
        (3600, midnight, midnight),
        (86400, midnight, None),
    ]


def test_every_time_falls_in_exactly_one_bucket_of_the_cover():
    """A time t before `until` lies in exactly one covered bucket (of one width); one at or
    after `until` in none but the finest bucket holding `until`. Likewise for `since`."""
    rnd = random.Random(4)  # noqa: S311
    for _ in range(2000):
        bound = AT + timedelta(seconds=rnd.uniform(-3e5, 3e5))
        t = bound + timedelta(seconds=rnd.choice((rnd.uniform(-2e5, 2e5), rnd.uniform(-20, 20))))
        if rnd.random() < 0.1:
            bound = floor_to(bound, rnd.choice((10, 3600, 86400)))
        if rnd.random() < 0.1:
            t = bound
        # The finest bucket holding the bound, when it starts before it, is read by both.
        slack = floor_to(t, 10) == floor_to(bound, 10) < bound
        for spans, inside in ((before_spans(bound), t < bound), (after_spans(bound), t >= bound)):
            hits = sum(covered(spans, floor_to(t, w), w) for w in (10, 3600, 86400))
            assert hits == 1 if inside else hits == (1 if slack else 0), (bound, t)
