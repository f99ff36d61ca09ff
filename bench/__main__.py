"""Run every benchmark module (each in its own process, with a time budget) and rewrite the
table in BENCHMARKS.md. Benchmarks report; they never fail the build.

    python -m bench            # full run, bounded to 15 minutes in all
    python -m bench --quick    # small sizes, for a smoke check
    python -m bench fire_lag   # only the named modules (modules of share 0 run only so)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "BENCHMARKS.md"
LAST = ROOT / "bench" / "last_results.json"  # rows per module, so a partial run keeps the rest
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
TOTAL_BUDGET_S = 15 * 60
RESERVE_SHARE = 0.5  # of their share, kept for the modules still to run

# Module, share of the total budget. Each module exposes run(quick: bool) -> list[dict].
MODULES = [
    ("scheduler_reload", 0.08),
    ("scheduler_failover", 0.17),
    ("fire_lag", 0.12),
    ("fire_burst", 0.10),
    ("worker_throughput", 0.15),
    ("admin_latency", 0.15),
    ("scheduler_scale", 0.10),
    ("refresh", 0.23),
    ("summaries", 0.25),
    ("ha_failover", 0.0),  # share 0: only when named, `python -m bench ha_failover` (~6 min)
    ("alerts", 0.08),
    # share 0: only when named, `python -m bench control_plane` (~8 min on a loaded machine)
    ("control_plane", 0.0),
    ("memory", 0.05),
    # share 0: only when named, `python -m bench run_history` (~25 min: it fills 20M runs)
    ("run_history", 0.0),
    # share 0: only when named, `python -m bench run_prune` (~3 min: run_history's prune phase)
    ("run_prune", 0.0),
]
# Modules that run only when named and may take longer than the shared total.
OWN_BUDGET_S = {"run_history": 45 * 60}

CHILD = """
import json, sys, importlib
rows = importlib.import_module("bench." + sys.argv[1]).run(quick=sys.argv[2] == "1")
print("BENCH-ROWS " + json.dumps(rows, default=str))
"""


def run_module(name: str, quick: bool, budget_s: float) -> list[dict]:
    """Run one benchmark module in a child process; a failure or timeout becomes a row."""
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, name, "1" if quick else "0"],
            capture_output=True,
            text=True,
            timeout=budget_s,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return [{"metric": name, "measured": f"not measured: over its {budget_s:.0f}s budget"}]
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH-ROWS "):
            rows = json.loads(line[len("BENCH-ROWS ") :])
            print(f"bench: {name} done in {time.monotonic() - started:.0f}s", file=sys.stderr)
            return rows
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return [{"metric": name, "measured": f"not measured: {tail[0][:200]}"}]


def table(rows: list[dict]) -> str:
    head = "| metric | target | measured | peers | command |\n|---|---|---|---|---|\n"
    body = "".join(
        "| {} | {} | {} | {} | {} |\n".format(
            *(
                str(r.get(k, "") or "").replace("|", "\\|").replace("\n", " ")
                for k in ("metric", "target", "measured", "peers", "command")
            )
        )
        for r in rows
    )
    return head + body


def stamped(rows: list[dict], quick: bool) -> list[dict]:
    """The rows with when and how they were measured (a partial run keeps the others')."""
    at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [{**row, "at": at + (", quick mode" if quick else "")} for row in rows]


def provenance(results: dict[str, list[dict]]) -> str:
    """One line per measuring time: which modules' rows it produced."""
    by_time: dict[str, list[str]] = {}
    for name, _ in MODULES:
        if results.get(name):
            by_time.setdefault(results[name][0].get("at", "an earlier run"), []).append(name)
    return "".join(
        f"Measured {at}: {', '.join(f'`{n}`' for n in names)}.\n"
        for at, names in sorted(by_time.items())
    )


def rewrite(rows: list[dict], results: dict[str, list[dict]]) -> None:
    block = f"{BEGIN}\n{provenance(results)}\n{table(rows)}{END}"
    text = RESULTS.read_text() if RESULTS.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    before, rest = text.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    RESULTS.write_text(before + block + after)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke check")
    parser.add_argument("modules", nargs="*", help="run only these modules")
    args = parser.parse_args(argv)
    chosen = [(n, s) for n, s in MODULES if n in args.modules or (not args.modules and s > 0)]
    deadline = time.monotonic() + TOTAL_BUDGET_S
    results: dict[str, list[dict]] = json.loads(LAST.read_text()) if LAST.exists() else {}
    for name, share in chosen:
        left = deadline - time.monotonic()
        # A module may use what is left, less a reserve for the modules after it.
        after = sum(s for n, s in chosen[chosen.index((name, share)) + 1 :])
        budget = OWN_BUDGET_S.get(name) or left - TOTAL_BUDGET_S * after * RESERVE_SHARE
        if budget < 10:
            results[name] = [{"metric": name, "measured": "not measured: the budget ran out"}]
            continue
        print(f"bench: running {name} (budget {budget:.0f}s)", file=sys.stderr)
        results[name] = stamped(run_module(name, args.quick, budget), args.quick)
    LAST.write_text(json.dumps(results, indent=1, default=str) + "\n")
    rows = [row for name, _ in MODULES for row in results.get(name, [])]
    rewrite(rows, results)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
