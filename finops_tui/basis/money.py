"""Money for people: one rounding rule (exact sums to the cent, half-even, gaps shown) and its formats."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")
ROUNDING_LABEL = "(rounding)"


def cents(amount: Decimal | None) -> Decimal:
    """An exact amount to the cent, half-even (as billing systems round).

    Every screen and report rounds a node's own exact sum with this, so one figure reads the same
    everywhere; nothing ever rounds a figure from other rounded figures.
    """
    return (amount or Decimal(0)).quantize(CENT, rounding=ROUND_HALF_EVEN)


def rounding_gap(whole: Decimal, parts: Iterable[Decimal]) -> Decimal:
    """What the parts, each rounded, miss to make the rounded whole: cents(whole) - sum of cents(part).

    Zero when they foot. The parts must sum to `whole` exactly (a node and its children do).
    """
    return cents(whole) - sum((cents(part) for part in parts), Decimal(0))


@dataclass(frozen=True, slots=True)
class RoundingLine:
    """The "(rounding)" row under a list of rounded figures: what they miss to make their rounded total.

    Shown instead of moving a cent from one node to another, so every node keeps its own figure.
    """

    cost: Decimal
    previous: Decimal

    @property
    def change(self) -> Decimal:
        return self.cost - self.previous

    def __bool__(self) -> bool:
        return bool(self.cost or self.previous)


def rounding_line(
    cost: Decimal, previous: Decimal, parts: Iterable[tuple[Decimal, Decimal]]
) -> RoundingLine:
    """The rounding row for parts given as exact (cost, previous cost) pairs summing to (cost, previous)."""
    items = list(parts)
    return RoundingLine(rounding_gap(cost, (c for c, _ in items)), rounding_gap(previous, (p for _, p in items)))


def shown_change(cost: Decimal, previous: Decimal) -> Decimal:
    """The change a row shows: its shown cost minus its shown previous cost, so every row reads right."""
    return cents(cost) - cents(previous)


def money(amount: Decimal | None, currency: str | None = None, *, signed: bool = False) -> str:
    """`12,345.67 USD`; `+1,234.00` with signed=True."""
    value = cents(amount)
    text = f"{value:+,.2f}" if signed else f"{value:,.2f}"
    return f"{text} {currency}" if currency else text


def percent(part: Decimal | None, whole: Decimal | None, *, signed: bool = False) -> str:
    if part is None or not whole:
        return "—"
    value = part / whole * 100
    return f"{value:+.1f}%" if signed else f"{value:.1f}%"


def change_percent(current: Decimal | None, previous: Decimal | None) -> str:
    if previous is None or previous == 0:
        return "new" if current else "—"
    return percent((current or Decimal(0)) - previous, abs(previous), signed=True)
