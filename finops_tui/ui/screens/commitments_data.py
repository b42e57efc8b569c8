"""Commitments screen data: its request, the answer message and the query (the read model `report commitments` uses)."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
from textual.message import Message

from finops_tui.basis.periods import Period
from finops_tui.report.commitments import CommitmentsView, commitments
from finops_tui.store.sources import Freshness
from finops_tui.ui.screens.cost_view import resolve_view


@dataclass(frozen=True)
class CommitmentsRequest:
    serial: int
    period: str
    metric: str
    currency: str | None


@dataclass
class CommitmentsLoaded(Message):
    """The read model for one request, in the currency shown (the others are listed, never added)."""

    request: CommitmentsRequest
    period: Period
    freshness: Freshness
    currencies: list[str]
    currency: str
    view: CommitmentsView


def load_commitments(cur: duckdb.DuckDBPyConnection, request: CommitmentsRequest) -> CommitmentsLoaded:
    """The commitments of the request's period in the currency shown (commitments are always amortized cost)."""
    basis = resolve_view(cur, request.period, "effective", request.currency)
    view = commitments(cur, basis.period, currency=basis.currency)
    return CommitmentsLoaded(request, basis.period, basis.freshness, basis.currencies, basis.currency, view)
