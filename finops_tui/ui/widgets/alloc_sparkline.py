"""Sparklines: a daily cost series drawn as one line of Unicode blocks (▁▂▃▄▅▆▇█)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

BLOCKS = "▁▂▃▄▅▆▇█"
ZERO = Decimal(0)


def buckets(values: Sequence[Decimal], width: int) -> list[Decimal]:
    """`values` averaged into at most `width` consecutive buckets (a long period shares cells, never drops days).

    Averages, not sums: buckets hold two or three days when the widths do not divide, and a sum would
    draw the three-day buckets taller than the rest.
    """
    count = len(values)
    if width <= 0 or count == 0:
        return []
    if count <= width:
        return list(values)
    out = []
    for i in range(width):
        chunk = values[i * count // width : (i + 1) * count // width]
        out.append(sum(chunk, ZERO) / len(chunk))
    return out


def sparkline(values: Sequence[Decimal], width: int) -> str:
    """One cell per day (or per bucket of days), scaled to the series' own peak.

    A day with no cost is a blank cell, so gaps read as gaps; credits (negative days) count as zero.
    The line is at most `width` cells and shorter when the period has fewer days.
    """
    cells = [max(ZERO, value) for value in buckets(values, width)]
    peak = max(cells, default=ZERO)
    if peak <= 0:
        return " " * len(cells)
    top = len(BLOCKS)
    out = []
    for value in cells:
        if value <= 0:
            out.append(" ")
            continue
        # ceil(value / peak * 8) - 1: the smallest positive day still shows as ▁.
        level = -int(-(value * top) // peak) - 1
        out.append(BLOCKS[max(0, min(top - 1, level))])
    return "".join(out)
