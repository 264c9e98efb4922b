"""Small charts drawn on the server as SVG geometry (no JavaScript, no matplotlib: a
customer page must render in milliseconds). Templates turn the numbers into ``<svg>``
elements with presentation attributes only, so the strict CSP needs no inline styles."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class HistoryChart:
    """Geometry of the payment-history chart (days late over time), in SVG user units.

    ``points``: ``(x, y, label)`` per paid invoice; ``zero_y``: the on-time line;
    ``y_ticks``: ``(y, days)``; ``x_ticks``: ``(x, "YYYY-MM")``.
    """

    width: int
    height: int
    points: list[tuple[float, float, str]]
    zero_y: float
    y_ticks: list[tuple[float, int]]
    x_ticks: list[tuple[float, str]]


def history_chart(points: list[tuple[dt.date, int]], width: int = 560,
                  height: int = 180) -> HistoryChart | None:
    """Scale (payment date, days late) pairs into a chart; None without points."""
    if not points:
        return None
    left, right, top, bottom = 44, 10, 10, 24
    days = [p[0].toordinal() for p in points]
    late = [p[1] for p in points]
    x0, x1 = min(days), max(days)
    y0, y1 = min(0, *late), max(0, *late)
    if x1 == x0:
        x0, x1 = x0 - 15, x1 + 15
    if y1 == y0:
        y1 = y0 + 10
    y0, y1 = y0 - 0.05 * (y1 - y0), y1 + 0.05 * (y1 - y0)

    def sx(d: int) -> float:
        return round(left + (d - x0) / (x1 - x0) * (width - left - right), 1)

    def sy(v: float) -> float:
        return round(top + (y1 - v) / (y1 - y0) * (height - top - bottom), 1)

    pts = [(sx(d), sy(v), f"{p[0].isoformat()}: {v:+d} days")
           for d, v, p in zip(days, late, points, strict=True)]
    step = _nice_step((y1 - y0) / 4)
    first = int(y0 // step + 1) * step
    y_ticks = [(sy(v), int(v)) for v in range(int(first), int(y1) + 1, int(step))]
    x_ticks = []
    start = dt.date.fromordinal(x0)
    month = dt.date(start.year, start.month, 1)
    months = []
    while month.toordinal() <= x1:
        if month.toordinal() >= x0:
            months.append(month)
        month = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
    every = max(1, len(months) // 6)
    x_ticks = [(sx(m.toordinal()), m.strftime("%Y-%m")) for m in months[::every]]
    return HistoryChart(width, height, pts, sy(0), y_ticks, x_ticks)


def _nice_step(raw: float) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000):
        if step >= raw:
            return step
    return 1000
