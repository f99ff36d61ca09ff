"""Server-rendered SVG pictures of run history: a duration chart, a strip of outcomes and a
sparkline. No script (the CSP forbids inline script); readable without colour: failures are
hatched bars and crosses, cancelled runs hollow circles; each picture has a text alternative.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from markupsafe import Markup, escape

COLOURS = {"ok": "#2e9e57", "failed": "#c8372d", "cancelled": "#8a94a3", "active": "#2f6fde"}
WORDS = {"ok": "succeeded", "failed": "failed", "cancelled": "cancelled", "active": "unfinished"}


@dataclass(frozen=True)
class Point:
    """One run as a picture shows it."""

    label: str  # e.g. "run #12"
    outcome: str  # ok, failed, cancelled or active
    seconds: float | None  # how long it ran (None: not finished)


def outcome(state: str, error: str | None) -> str:
    """The outcome class of a run state."""
    if state == "succeeded":
        return "ok"
    if state == "discarded" and (error or "").startswith("cancelled"):
        return "cancelled"
    if state in ("failed", "discarded"):
        return "failed"
    return "active"


def seconds_text(value: float | None) -> str:
    if value is None:
        return "not finished"
    return f"{value:.2f} s" if value < 60 else f"{value / 60:.1f} min"


def summary(points: Sequence[Point]) -> str:
    """The text alternative: counts by outcome and the spread of durations."""
    if not points:
        return "No runs yet."
    counts = Counter(p.outcome for p in points)
    parts = [f"{counts[k]} {WORDS[k]}" for k in WORDS if counts[k]]
    text = f"Last {len(points)} runs, oldest first: {', '.join(parts)}."
    durations = [p.seconds for p in points if p.seconds is not None]
    if durations:
        text += (
            f" Durations from {seconds_text(min(durations))} to {seconds_text(max(durations))},"
            f" median {seconds_text(median(durations))}."
        )
    return text


def _cross(x: float, y: float, r: float, colour: str) -> str:
    return (
        f'<path d="M{x - r:.1f} {y - r:.1f}L{x + r:.1f} {y + r:.1f}M{x - r:.1f} {y + r:.1f}'
        f'L{x + r:.1f} {y - r:.1f}" stroke="{colour}" stroke-width="2" fill="none"/>'
    )


def _mark(kind: str, x: float, y: float, r: float) -> str:
    """The outcome's shape: square (ok), cross (failed), hollow circle (cancelled), ring."""
    colour = COLOURS[kind]
    if kind == "ok":
        return (
            f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:.1f}"'
            f' height="{2 * r:.1f}" fill="{colour}"/>'
        )
    if kind == "failed":
        return _cross(x, y, r, colour)
    dash = ' stroke-dasharray="2 1"' if kind == "cancelled" else ""
    return (
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r - 0.5:.1f}" fill="none"'
        f' stroke="{colour}" stroke-width="1.5"{dash}/>'
    )


def duration_chart(points: Sequence[Point], chart_id: str = "runs") -> Markup:
    """Bars of each run's duration (height) and outcome (colour and pattern), with a strip of
    outcome shapes under them; a <title> per run and the summary as the accessible name."""
    width, height, strip = 820, 150, 18
    top = max((p.seconds or 0.0 for p in points), default=0.0) or 1.0
    step = width / max(len(points), 1)
    bar = max(1.0, step - 2)
    hatch = f"{chart_id}-hatch"
    out = [
        f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {width} {height + strip + 4}"'
        f' role="img" aria-label="{escape(summary(points))}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(summary(points))}</title>",
        f'<defs><pattern id="{hatch}" width="6" height="6" patternUnits="userSpaceOnUse"'
        f' patternTransform="rotate(45)"><rect width="6" height="6" fill="#f6d5d2"/>'
        f'<rect width="3" height="6" fill="{COLOURS["failed"]}"/></pattern></defs>',
        f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#c4ccd8"/>',
        f'<text x="4" y="12" font-size="11" fill="#5d6878">{escape(seconds_text(top))}</text>',
    ]
    for i, p in enumerate(points):
        x = i * step + 1
        h = max(2.0, (p.seconds or 0.0) / top * (height - 16))
        fill = f"url(#{hatch})" if p.outcome == "failed" else COLOURS[p.outcome]
        if p.outcome in ("cancelled", "active"):
            fill = "none"
        tip = escape(f"{p.label}: {WORDS[p.outcome]}, {seconds_text(p.seconds)}")
        out.append(
            f'<g class="run run-{p.outcome}"><title>{tip}</title>'
            f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{bar:.1f}" height="{h:.1f}"'
            f' fill="{fill}" stroke="{COLOURS[p.outcome]}" stroke-width="1"/>'
            f"{_mark(p.outcome, x + bar / 2, height + 4 + strip / 2, min(6.0, bar / 2))}</g>"
        )
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704  (every text in it went through escape())


def sparkline(points: Sequence[Point]) -> Markup:
    """A small line of durations with a cross on each failed run, for the jobs list."""
    width, height = 120, 22
    if not points:
        return Markup('<span class="muted">no runs</span>')
    top = max((p.seconds or 0.0 for p in points), default=0.0) or 1.0
    step = width / max(len(points) - 1, 1)
    coords = [
        (i * step, height - 3 - (p.seconds or 0.0) / top * (height - 8))
        for i, p in enumerate(points)
    ]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    marks = "".join(
        _mark(p.outcome, x, y, 3.5)
        for p, (x, y) in zip(points, coords, strict=True)
        if p.outcome != "ok"
    )
    text = escape(summary(points))
    return Markup(  # noqa: S704  (every text in it went through escape())
        f'<svg class="spark" viewBox="-4 -2 {width + 8} {height + 4}" width="{width + 8}"'
        f' height="{height + 4}" role="img" aria-label="{text}"'
        f' xmlns="http://www.w3.org/2000/svg"><title>{text}</title>'
        f'<polyline points="{line}" fill="none" stroke="#5d6878" stroke-width="1.2"/>'
        f"{marks}</svg>"
    )
