"""Chargeback read model: per recipient (a value of the team key) and currency, one month's direct cost, each
shared cost pool's share, the total, and the previous month's total.

The same figures as the allocation tree over `tag:<key>` with shared costs on (report.shared_tree): direct
cost leaves out the rows the pools to that key take, and the shares come from `shared_splits`. Each
currency's recipients add up to every charge of the month in that currency, so the last full month foots
to the invoice (BilledCost) or the amortized total (EffectiveCost). "(unallocated)" (recipient None) holds
what no pool covered: untagged direct cost and any pool cost no recipient could take.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb

from finops_tui.basis.dimensions import UNALLOCATED
from finops_tui.basis.metrics import metric_column
from finops_tui.basis.money import ROUNDING_LABEL, cents, change_percent, money, rounding_gap, shown_change
from finops_tui.errors import UsageError
from finops_tui.report.shared_nodes import PoolInfo, applied_pools, direct_filter, month_bounds, split_column
from finops_tui.textsafe import spreadsheet_safe

ZERO = Decimal(0)


@dataclass(frozen=True)
class PoolAmount:
    index: int
    pool: str
    method: str
    amount: Decimal
    previous: Decimal = ZERO


@dataclass(frozen=True)
class RecipientCharge:
    recipient: str | None  # None: "(unallocated)"
    direct: Decimal
    previous_direct: Decimal
    pools: list[PoolAmount] = field(default_factory=list)

    @property
    def shared(self) -> Decimal:
        return sum((p.amount for p in self.pools), ZERO)

    @property
    def total(self) -> Decimal:
        return self.direct + self.shared

    @property
    def previous_total(self) -> Decimal:
        return self.previous_direct + sum((p.previous for p in self.pools), ZERO)

    @property
    def change(self) -> Decimal:
        return self.total - self.previous_total


@dataclass(frozen=True)
class CurrencyChargeback:
    currency: str
    recipients: list[RecipientCharge]

    @property
    def total(self) -> Decimal:
        return sum((r.total for r in self.recipients), ZERO)

    @property
    def previous_total(self) -> Decimal:
        return sum((r.previous_total for r in self.recipients), ZERO)


@dataclass(frozen=True)
class Chargeback:
    month: str
    key: str
    metric: str
    start: dt.date
    end: dt.date  # exclusive
    pools: list[PoolInfo]  # the pools to `key`, in shared.toml's order
    currencies: list[CurrencyChargeback]


def parse_month(text: str) -> str:
    """`2026-11` as given, checked; anything else is one usage line."""
    value = text.strip()
    try:
        dt.date.fromisoformat(value + "-01")
        if len(value) == 7:
            return value
    except ValueError:
        pass
    raise UsageError(f"--month {text}: expected YYYY-MM, e.g. --month 2026-11")


def previous_month(month: str) -> str:
    start, _ = month_bounds(month)
    return (start - dt.timedelta(days=1)).strftime("%Y-%m")


def chargeback(
    cur: duckdb.DuckDBPyConnection, month: str, metric: str = "effective", key: str = "team",
    currency: str | None = None,
) -> Chargeback:
    """One month's chargeback per recipient and currency (see the module docstring); largest total first."""
    key = key.lower()
    start, end = month_bounds(parse_month(month))
    prev_start, _ = month_bounds(previous_month(month))
    every = applied_pools(cur)
    pools = [p for p in every if p.to_key == key]
    col = metric_column(metric)
    params: dict[str, object] = {"s": start, "e": end, "ps": prev_start, "key": key}
    currency_sql = ""
    if currency:
        params["cur"] = currency.upper()
        currency_sql = " AND c.BillingCurrency = $cur"
    direct_rows = cur.execute(
        f"""
        SELECT c.BillingCurrency, t.tag_value,
               sum(c.{col}) FILTER (WHERE c.x_ChargeDate >= $s), sum(c.{col}) FILTER (WHERE c.x_ChargeDate < $s)
        FROM charges c LEFT JOIN resource_tags t ON t.resource_key = c.x_ResourceKey AND t.tag_key = $key
        WHERE c.x_ChargeDate >= $ps AND c.x_ChargeDate < $e AND c.BillingCurrency IS NOT NULL{currency_sql}
              {direct_filter(pools, every)}
        GROUP BY 1, 2
        """,
        params,
    ).fetchall()
    share_rows: list[tuple[str, int, str | None, Decimal | None, Decimal | None]] = []
    if pools:
        split = split_column(metric)
        share_rows = cur.execute(
            f"""
            SELECT c.currency, c.pool_index, c.recipient,
                   sum(c.{split}) FILTER (WHERE c.day >= $s), sum(c.{split}) FILTER (WHERE c.day < $s)
            FROM shared_splits c
            WHERE list_contains($pools, c.pool_index) AND c.day >= $ps AND c.day < $e
                  {currency_sql.replace("c.BillingCurrency", "c.currency")}
            GROUP BY 1, 2, 3
            """,
            {**{k: v for k, v in params.items() if k != "key"}, "pools": [p.index for p in pools]},
        ).fetchall()
    direct: dict[str, dict[str | None, tuple[Decimal, Decimal]]] = defaultdict(dict)
    for code, value, cost, prev in direct_rows:
        direct[code][value] = (cost or ZERO, prev or ZERO)
    shares: dict[str, dict[str | None, dict[int, tuple[Decimal, Decimal]]]] = defaultdict(lambda: defaultdict(dict))
    for code, index, recipient, cost, prev in share_rows:
        shares[code][recipient][int(index)] = (cost or ZERO, prev or ZERO)
    by_index = {p.index: p for p in pools}
    out = []
    for code in sorted(set(direct) | set(shares)):
        recipients = []
        for who in set(direct[code]) | set(shares[code]):
            cost, prev = direct[code].get(who, (ZERO, ZERO))
            amounts = [
                PoolAmount(i, by_index[i].name, by_index[i].method, a, p)
                for i, (a, p) in sorted(shares[code].get(who, {}).items())
            ]
            charge = RecipientCharge(who, cost, prev, amounts)
            if charge.total or charge.previous_total or charge.direct or any(a.amount for a in amounts):
                recipients.append(charge)
        recipients.sort(key=lambda r: (r.recipient is None, -r.total, r.recipient or ""))
        out.append(CurrencyChargeback(code, recipients))
    out.sort(key=lambda c: (-c.total, c.currency))
    return Chargeback(month, key, metric, start, end, pools, out)


# --- the shapes `report chargeback` prints and the explorer's ctrl+s saves -------------------------------


def chargeback_document(report: Chargeback) -> dict[str, Any]:
    """The JSON shape of `report chargeback --format json` (money as Decimal; the renderer prints decimal strings)."""
    return {
        "month": report.month,
        "key": report.key,
        "metric": report.metric,
        "pools": [{"pool": p.name, "method": p.method} for p in report.pools],
        "currencies": [
            {
                "currency": c.currency,
                "total": c.total,
                "previous_total": c.previous_total,
                # what the recipients' rounded totals miss to make the rounded total (each is its own exact sum)
                "rounding": rounding_gap(c.total, (r.total for r in c.recipients)),
                "recipients": [
                    {
                        "recipient": r.recipient if r.recipient is not None else UNALLOCATED,
                        "direct": r.direct,
                        "shared": r.shared,
                        "total": r.total,
                        "previous_total": r.previous_total,
                        "change": shown_change(r.total, r.previous_total),
                        "pools": [{"pool": p.pool, "method": p.method, "amount": p.amount} for p in r.pools
                                  if p.amount],
                    }
                    for r in c.recipients
                ],
            }
            for c in report.currencies
        ],
    }


def chargeback_table(report: Chargeback, *, for_csv: bool) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of the chargeback: a row per recipient and currency, then (not in CSV) each currency's
    rounding line and total. Money cells are Decimal; CSV keeps the change signed but unformatted."""
    pool_names = [p.name for p in report.pools]
    columns = [report.key, "currency", "direct", *(f"shared: {n}" for n in pool_names), "shared", "total",
               "previous", "change", "change %"]
    rows: list[list[Any]] = []
    for c in report.currencies:
        for r in c.recipients:
            amounts = {p.pool: p.amount for p in r.pools}
            change = shown_change(r.total, r.previous_total)
            rows.append([
                r.recipient if r.recipient is not None else UNALLOCATED, c.currency, r.direct,
                *(amounts.get(n, ZERO) for n in pool_names), r.shared, r.total, r.previous_total,
                change if for_csv else money(change, signed=True),
                change_percent(r.total, r.previous_total),
            ])
        if for_csv:
            continue
        gap = rounding_gap(c.total, (r.total for r in c.recipients))
        if gap:
            rows.append([ROUNDING_LABEL, c.currency, "", *("" for _ in pool_names), "", gap, "", "", ""])
        rows.append(["Total", c.currency, sum((r.direct for r in c.recipients), ZERO),
                     *(sum((p.amount for r in c.recipients for p in r.pools if p.pool == n), ZERO)
                       for n in pool_names),
                     sum((r.shared for r in c.recipients), ZERO), c.total, c.previous_total,
                     money(shown_change(c.total, c.previous_total), signed=True),
                     change_percent(c.total, c.previous_total)])
    return columns, rows


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(cents(value), "f")
    return spreadsheet_safe(value) if isinstance(value, str) else str(value)


def chargeback_csv(report: Chargeback) -> str:
    """The chargeback as CSV: exact cents, text cells a spreadsheet would run as a formula quoted with `'`.

    `report chargeback --format csv` prints it and the explorer's ctrl+s saves it, so both are the same bytes.
    """
    columns, rows = chargeback_table(report, for_csv=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([spreadsheet_safe(c) for c in columns])
    writer.writerows([[_csv_cell(v) for v in row] for row in rows])
    return buffer.getvalue()
