"""Real srjobs processes for system tests: started with a timeout, always cleaned up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Service:
    name: str
    proc: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode


class Services:
    """Starts `python -m srjobs.cli ...` processes; stops every one at teardown."""

    def __init__(self, env: dict[str, str], logdir: Path) -> None:
        self.env = env
        self.logdir = logdir
        self.started: list[Service] = []

    def start(
        self, name: str, *args: str, env: dict[str, str] | None = None, module: str = "srjobs.cli"
    ) -> Service:
        """`python -m <module> *args` (srjobs by default), logging to a file of its own."""
        log_path = self.logdir / f"{name}-{len(self.started)}.log"
        full_env = {**os.environ, **self.env, **(env or {})}
        handle = log_path.open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=full_env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        service = Service(name, proc, log_path)
        self.started.append(service)
        return service

    def run(
        self, *args: str, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        """Run a command to completion (e.g. migrate)."""
        return subprocess.run(
            [sys.executable, "-m", "srjobs.cli", *args],
            env={**os.environ, **self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def stop_all(self, timeout: float = 1) -> None:
        """SIGTERM to every running service at once, SIGKILL to any still running after
        `timeout` (teardown: the tests that check a graceful stop do it themselves)."""
        running = [s for s in reversed(self.started) if s.proc.poll() is None]
        for service in running:
            service.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for service in running:
            try:
                service.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                service.signal(signal.SIGKILL)
                service.proc.wait(10)
