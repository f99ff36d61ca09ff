"""Pure worker decisions: orphan handling, job declarations."""

from datetime import UTC, datetime

from shared.runs import Orphan
from worker.jobs import JobSpec, callable_without_arguments
from worker.rescue import decide


def spec(max_retries=3, resendable=True):
    return JobSpec("j", "j", "@daily", "default", "UTC", "", True, max_retries, 1000, resendable)


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


def test_callable_without_arguments():
    def a(): ...
    def b(x=1, *rest, **kw): ...
    def c(x): ...

    assert callable_without_arguments(a) and callable_without_arguments(b)
    assert not callable_without_arguments(c)
