"""A worker process's boot: the state srjobs' middlewares share is made ready for threads."""

import sys

import pytest

from worker.middleware.context import THREAD_SWITCH_SECONDS, ProcessState


@pytest.fixture
def default_switch_interval():
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def test_boot_gives_a_new_worker_id_and_a_short_gil_switch_interval(
    settings, default_switch_interval
):
    state = ProcessState(settings)
    first_id = state.worker_id
    state.boot()
    try:
        assert sys.getswitchinterval() == pytest.approx(THREAD_SWITCH_SECONDS)
        assert THREAD_SWITCH_SECONDS < 0.005
        assert state.worker_id != first_id
        assert state.worker_id.startswith(settings.node_name + "/")
        with state.engine().connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        state.close()
