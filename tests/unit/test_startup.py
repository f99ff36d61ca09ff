"""The startup wait's decisions (retry, back off, give up) as functions of time, and its loop
driven by a fake clock: no server and no real waiting."""

import logging
import signal
import threading

import pytest

from shared.dependencies import Dependency
from shared.startup import (
    MAX_DELAY_SECONDS,
    DependencyTimeout,
    StartupInterrupted,
    probe_timeout,
    retry_delay,
    stop_on_signals,
    wait_for_dependencies,
)


def test_delays_double_up_to_a_cap():
    delays = [retry_delay(n, 0.0, 600) for n in range(1, 9)]
    assert delays == [0.25, 0.5, 1, 2, 4, 5, 5, 5]
    assert max(delays) == MAX_DELAY_SECONDS


def test_the_last_delay_ends_at_the_deadline_then_it_gives_up():
    assert retry_delay(10, 58.5, 60) == pytest.approx(1.5)
    assert retry_delay(1, 59.9, 60) == pytest.approx(0.1)
    assert retry_delay(1, 60, 60) is None
    assert retry_delay(1, 75, 60) is None
    assert retry_delay(1, 0, 0) is None  # a timeout of 0: one attempt, no wait


def test_a_probe_never_outlasts_the_deadline_by_much():
    assert probe_timeout(0, 60) == 3
    assert probe_timeout(59, 60) == 1
    assert probe_timeout(60, 60) == 0.5


class FakeTime(threading.Event):
    """A clock that moves only when the loop waits (or a probe takes time)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.stop_at: float | None = None

    def clock(self) -> float:
        return self.now

    def wait(self, timeout: float | None = None) -> bool:
        self.now += timeout or 0.0
        if self.stop_at is not None and self.now >= self.stop_at:
            self.set()
        return self.is_set()


def flaky(name: str, failures: int, time: FakeTime, cost: float = 0.0) -> Dependency:
    calls = {"n": 0}

    def probe(timeout: float) -> None:
        calls["n"] += 1
        time.now += cost
        if calls["n"] <= failures:
            raise ConnectionRefusedError(f"{name} refused")

    return Dependency(name, name, f"{name}-host:1", probe)


def waiting_events(caplog) -> list[tuple[str, int]]:
    return [
        (r.dependency, r.attempt)
        for r in caplog.records
        if getattr(r, "event", None) == "waiting_for_dependency"
    ]


def test_it_retries_each_dependency_until_it_answers_logging_each_attempt(caplog):
    caplog.set_level(logging.INFO, "shared.startup")
    time = FakeTime()
    needs = [flaky("postgres", 3, time), flaky("redis", 1, time)]
    wait_for_dependencies(needs, 60, time, clock=time.clock)
    expected = [("postgres", 1), ("postgres", 2), ("postgres", 3), ("redis", 1)]
    assert waiting_events(caplog) == expected
    assert time.now == pytest.approx(0.25 + 0.5 + 1 + 0.25)
    ready = [r.dependency for r in caplog.records if getattr(r, "event", "") == "dependency_ready"]
    assert ready == ["postgres", "redis"]


def test_past_the_timeout_it_gives_up_naming_the_dependency(caplog):
    caplog.set_level(logging.INFO, "shared.startup")
    time = FakeTime()
    needs = [flaky("postgres", 0, time), flaky("redis", 10_000, time, cost=0.5)]
    with pytest.raises(DependencyTimeout) as raised:
        wait_for_dependencies(needs, 20, time, clock=time.clock)
    assert raised.value.dependency.name == "redis"
    assert "redis" in str(raised.value) and "redis-host:1" in str(raised.value)
    assert 20 <= time.now <= 21  # the last attempt starts at the deadline
    assert {d for d, _ in waiting_events(caplog)} == {"redis"}


def test_a_stop_request_ends_the_wait_at_once():
    time = FakeTime()
    time.stop_at = 1.0
    with pytest.raises(StartupInterrupted):
        wait_for_dependencies([flaky("postgres", 10_000, time)], 60, time, clock=time.clock)
    assert time.now < 2


def test_errors_that_do_not_mean_down_are_not_retried():
    def broken(timeout: float) -> None:
        raise KeyError("a bug, not an outage")

    with pytest.raises(KeyError):
        wait_for_dependencies([Dependency("postgres", "database", "h:1", broken)], 60, FakeTime())


def test_a_stop_signal_while_the_wait_holds_its_lock_does_not_hang():
    """A signal handler runs between two bytecodes of the main thread, which may be inside
    `stop.wait` holding the Event's lock (Dramatiq's parent forwards a second SIGTERM right
    as the first one wakes the wait): the handler must not wait for that lock."""
    stop = threading.Event()
    with stop_on_signals(stop):
        handler = signal.getsignal(signal.SIGTERM)
    assert callable(handler)

    def signalled_inside_the_wait() -> None:
        with stop._cond:  # what Event.wait holds on its way in and out
            handler(signal.SIGTERM, None)
            handler(signal.SIGTERM, None)

    thread = threading.Thread(target=signalled_inside_the_wait, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "the handler waited for the lock its own thread holds"
    assert stop.wait(5)
