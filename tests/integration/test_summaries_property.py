"""Property: whatever spans are written, updated or deleted, and whenever the refresh runs,
the incremental table equals the view's own query at the same now(), every column compared
both ways. One real database per test, emptied for each example."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.summaries import (
    DAY,
    WINDOW,
    connect,
    insert_spans,
    run_and_compare,
    scalar,
    set_mode,
    span,
    view_definition,
)
from tests.support.waiting import wait_for

TRACES = ["a", "b", "c", "", "t-" + "x" * 40]
SPAN_IDS = ["s1", "s2", "s3", "s4"]
AGES = st.one_of(
    # now, a minute ago, days old, out of the window, in the future
    st.sampled_from([0.0, 60.0, 3 * DAY, WINDOW + 60, -3600.0]),
    # at the edge: in the window when written, out of it a moment later
    st.floats(min_value=WINDOW - 1.0, max_value=WINDOW + 0.1),
)
SPANS = st.builds(
    span,
    trace=st.sampled_from(TRACES),
    span_id=st.sampled_from(SPAN_IDS),
    ago=AGES,
    parent=st.sampled_from([None, "", "s1", "s2", "elsewhere"]),
    name=st.sampled_from([None, "GET /", "op"]),
    start=st.sampled_from([None, 0, 5, 5, 9]),
    end=st.one_of(st.none(), st.integers(0, 20)),
    service=st.sampled_from([None, "api", "db", "web", "queue", "z"]),
    status=st.sampled_from([None, 0, 1, 2]),
    kind=st.sampled_from([None, 1, 2]),
)
# True once every span written at the edge has left the window.
EDGE_PASSED = """
SELECT count(*) = 0 FROM otel_traces
 WHERE timestamp > now() - interval '7 days'
   AND timestamp < now() - interval '7 days' + interval '2 seconds'
"""
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.lists(SPANS, min_size=1, max_size=12)),
        st.tuples(st.just("run"), st.none()),
        st.tuples(st.just("wait"), st.none()),
        st.tuples(st.just("delete"), st.sampled_from(TRACES)),
        st.tuples(st.just("update"), st.sampled_from(TRACES)),
    ),
    max_size=8,
)


def test_incremental_table_equals_the_view_query(db_url):
    conn = connect(db_url)
    definition = view_definition(conn)
    set_mode(conn, "incremental")

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=STEPS)
    def check(steps):
        with conn.cursor() as cur:
            cur.execute("TRUNCATE otel_traces")
        conn.commit()
        assert run_and_compare(conn, definition) == ("incremental", (0, 0, 0))
        for action, value in [*steps, ("run", None)]:
            if action == "insert":
                insert_spans(conn, value)
            elif action == "wait":
                wait_for(lambda: scalar(conn, EDGE_PASSED), 10, "the edge spans to leave")
            elif action == "run":
                mode, (only_table, only_view, _) = run_and_compare(conn, definition)
                assert (mode, only_table, only_view) == ("incremental", 0, 0)
            else:
                with conn.cursor() as cur:
                    if action == "delete":
                        cur.execute("DELETE FROM otel_traces WHERE trace_id = %s", (value,))
                    else:
                        cur.execute(
                            "UPDATE otel_traces SET status_code = 2, service_name = 'moved'"
                            " WHERE trace_id = %s AND span_id = 's1'",
                            (value,),
                        )
                conn.commit()

    try:
        check()
    finally:
        conn.close()
