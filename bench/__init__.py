"""srjobs benchmarks: each module exposes run(quick) -> list of result rows."""
