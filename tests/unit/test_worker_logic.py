"""Pure worker decisions: orphan handling, job declarations."""

import dataclasses
import signal
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import OperationalError

from shared.actors import Param
from shared.errors import ConfigError
from shared.runs import Orphan
from shared.settings import Settings
from worker.finisher import SuccessBuffer
from worker.jobs import JobSpec, callable_without_arguments, signature_params
from worker.middleware.sigterm import SigtermDebounce, debounce_sigterm
from worker.rescue import decide


def spec(max_retries=3, resendable=True):
    return JobSpec(
        "j",
        "j",
        "@daily",
        "default",
        "UTC",
        "",
        True,
        max_retries=max_retries,
        resendable=resendable,
    )


def orphan(attempt=1):
    return Orphan(1, "j", attempt, "n", "n/1/ab", datetime(2026, 1, 1, tzinfo=UTC))


def test_orphan_is_retried_while_attempts_are_left():
    decision = decide(orphan(attempt=3), spec(max_retries=3))
    assert (decision.state, decision.resend) == ("failed", True)
    assert decision.error.startswith("WorkerLost: worker n/1/ab stopped while running it")


def test_orphan_is_discarded_when_it_cannot_be_retried():
    assert decide(orphan(attempt=4), spec(max_retries=3)).state == "discarded"
    assert "arguments" in decide(orphan(), spec(resendable=False)).error
    assert "not declared" in decide(orphan(), None).error


def test_an_orphan_whose_cancel_was_asked_is_discarded_never_retried():
    asked = dataclasses.replace(orphan(), cancel_requested_at=datetime(2026, 1, 1, tzinfo=UTC))
    decision = decide(asked, spec())
    assert (decision.state, decision.resend) == ("discarded", False)
    assert decision.error.startswith("cancelled")


def test_signature_params_list_the_catalogue_parameters():
    def f(view, mode="plain", *rest, limit: int = 3, **extra): ...
    def g(): ...

    assert signature_params(f) == {
        "params": (Param("view", True), Param("mode", False), Param("limit", False)),
        "any_args": True,
    }
    assert signature_params(g) == {"params": (), "any_args": False}


def test_callable_without_arguments():
    def a(): ...
    def b(x=1, *rest, **kw): ...
    def c(x): ...

    assert callable_without_arguments(a) and callable_without_arguments(b)
    assert not callable_without_arguments(c)


class FlakyEngine:
    """Stands in for an engine whose database is down for the first `failures` writes."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.written: list = []

    def begin(self):
        @contextmanager
        def tx():
            if self.failures:
                self.failures -= 1
                raise OperationalError("UPDATE", {}, Exception("server closed the connection"))
            yield self

        return tx()

    def execute(self, statement, params):  # as a DB-API cursor would
        self.written.extend(params["ids"])
        self.rowcount = len(params["ids"])


def test_success_buffer_keeps_runs_until_the_database_takes_them():
    engine = FlakyEngine(failures=1)
    buffer = SuccessBuffer(lambda: engine, interval=60)
    buffer._thread = object()  # buffered mode without a background thread
    buffer.add((1, 1, 0.5, 1.7e9, "n", "w/1/a"))
    buffer.add((2, 1, 0.5, 1.7e9, "n", "w/1/a"))
    assert buffer.flush() == 0 and buffer.pending() == 2  # database down: kept
    assert buffer.flush() == 2 and buffer.pending() == 0
    assert engine.written == [1, 2]


def test_worker_settings_from_env():
    s = Settings.from_env(
        {
            "SRJOBS_WORKER_HEARTBEAT_SECONDS": "0.5",
            "SRJOBS_WORKER_DEAD_SECONDS": "30",
            "SRJOBS_WORKER_SHUTDOWN_SECONDS": "3",
            "SRJOBS_RUN_FLUSH_SECONDS": "0",
        }
    )
    assert (s.worker_heartbeat_seconds, s.worker_dead_seconds) == (0.5, 30)
    assert (s.worker_shutdown_seconds, s.run_flush_seconds) == (3, 0)
    with pytest.raises(ConfigError, match="SRJOBS_WORKER_DEAD_SECONDS"):
        Settings.from_env({"SRJOBS_WORKER_DEAD_SECONDS": "soon"})
    with pytest.raises(ConfigError, match="at least 3 x SRJOBS_WORKER_HEARTBEAT_SECONDS"):
        Settings.from_env({"SRJOBS_WORKER_DEAD_SECONDS": "10"})


@pytest.mark.parametrize(("window", "passed"), [(60.0, 1), (0.0, 2)])
def test_a_sigterm_echoed_within_the_window_counts_once(window, passed):
    calls: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:
        debounce_sigterm(window)
        handler = signal.getsignal(signal.SIGTERM)
        handler(signal.SIGTERM, None)
        handler(signal.SIGTERM, None)  # the copy Dramatiq's parent forwards
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert calls == [signal.SIGTERM] * passed


def test_the_sigterm_middleware_wraps_the_handler_at_process_boot():
    def original(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, original)
    try:
        SigtermDebounce().after_process_boot(None)
        assert signal.getsignal(signal.SIGTERM) is not original
    finally:
        signal.signal(signal.SIGTERM, previous)
