"""The contract's other ways in: `python -m <service>` and plain `dramatiq worker.actors`."""

import os
import signal
import subprocess
import sys

from shared import runs
from shared.dispatch import dispatch, make_sender
from tests.conftest import service_env
from tests.support.waiting import wait_for


def test_plain_dramatiq_cli_runs_the_actors(settings, engine, tmp_path):
    log = (tmp_path / "dramatiq.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dramatiq", "worker.actors", "--processes", "1", "--threads", "2"],
        env={**os.environ, **service_env(settings)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    broker = make_sender(settings)
    try:
        with engine.begin() as conn:
            run = runs.create_manual_run(conn, "refresh_trace_summaries")
        assert dispatch(engine, broker, run, "refresh_trace_summaries", "default")

        def finished():
            with engine.connect() as conn:
                got = runs.get_run(conn, run.id)
            return got if got.state in ("succeeded", "failed", "discarded") else None

        done = wait_for(finished, 60, "the run through plain dramatiq")
        assert done.state == "succeeded" and done.node
    finally:
        broker.close()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


def test_python_m_entry_points_answer():
    for module in ("scheduler", "worker", "webadmin", "srjobs"):
        result = subprocess.run(
            [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, (module, result.stderr)
        assert "usage" in result.stdout.lower(), module
