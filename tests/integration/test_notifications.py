"""The listening thread shared by the schedule listener and the health watch, on real Postgres:
notifications reach `serve`, `stop()` wakes it at once, and a killed connection is replaced."""

from __future__ import annotations

import threading
import time

import pytest
from psycopg2.extensions import connection as Connection
from sqlalchemy import Engine, text

from scheduler.notifications import ListeningThread
from shared.settings import Settings
from tests.support.waiting import wait_for


class Recorder(ListeningThread):
    channels = ("srjobs_test_a", "srjobs_test_b")
    reconnect_seconds = 0.05

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, name="srjobs-test-listener")
        self.payloads: list[str] = []
        self.connections = 0
        self.served = threading.Event()

    def serve(self, conn: Connection) -> None:
        self.connections += 1
        while (payloads := self.wait(conn, 60)) is not None:
            self.payloads.extend(payloads)
        self.served.set()


@pytest.fixture
def recorder(settings: Settings):
    thread = Recorder(settings)
    thread.start()
    yield thread
    thread.stop()
    thread.join(5)


def notify(engine: Engine, channel: str, payload: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": channel, "p": payload})


def test_payloads_of_every_channel_arrive(recorder: Recorder, engine: Engine) -> None:
    wait_for(recorder.connected.is_set, 10, "the thread to listen")
    notify(engine, "srjobs_test_a", "one")
    notify(engine, "srjobs_test_b", "two")
    wait_for(lambda: recorder.payloads == ["one", "two"], 10, "both payloads")


def test_stop_wakes_a_waiting_thread_at_once(recorder: Recorder) -> None:
    wait_for(recorder.connected.is_set, 10, "the thread to listen")
    started = time.monotonic()
    recorder.stop()
    recorder.join(5)
    assert not recorder.is_alive()
    assert recorder.served.is_set()  # serve returned: it did not die on an error
    assert time.monotonic() - started < 2  # serve waits up to 60 s otherwise


def test_a_killed_connection_is_replaced(recorder: Recorder, engine: Engine) -> None:
    wait_for(recorder.connected.is_set, 10, "the thread to listen")
    with engine.begin() as conn:
        killed = (
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'srjobs-test-listener'"
                    " AND datname = current_database()"
                )
            )
            .scalars()
            .all()
        )
    assert killed == [True]
    wait_for(lambda: recorder.connections == 2 and recorder.connected.is_set(), 10, "a reconnect")
    notify(engine, "srjobs_test_a", "after")
    wait_for(lambda: recorder.payloads == ["after"], 10, "the payload sent after the reconnect")
