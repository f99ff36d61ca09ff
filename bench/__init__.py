"""Benchmarks: each module measures srjobs on this machine and returns table rows."""
