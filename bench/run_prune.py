"""Pruning alone: 1,000,000 expired runs out of 2,000,000 deleted while a real leader fires 100
schedules `@every 1s` (the prune phase of `run_history` without its 20M fill; about 3 minutes).

    python -m bench.run_prune [--quick]
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from bench.run_history import fill, prune_under_fire
from bench.scheduler_harness import Lab
from bench.support import cli

COMMAND = "python -m bench.run_prune"


def run(quick: bool) -> list[dict]:
    rows, expired = (400_000, 200_000) if quick else (2_000_000, 1_000_000)
    with Lab() as lab:
        fill(lab, rows, expired, datetime.now(UTC))
        found = prune_under_fire(lab, expired)
    return [
        {**r, "metric": f"{r['metric']} ({rows:,} runs, prune phase alone)", "command": COMMAND}
        for r in found
    ]


if __name__ == "__main__":
    sys.exit(cli(__doc__, run, "400,000 runs, 200,000 expired"))
