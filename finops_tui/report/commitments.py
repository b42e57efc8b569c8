"""Commitments read model: utilization, coverage, effective savings rate, realized savings and waste, per currency.

Every figure is an exact sum over `charges` for one period, per billing currency (never across currencies),
from the FOCUS columns; the definitions follow the FinOps Foundation's rate optimization KPIs
(finops.org, "Commitment Discount Utilization", "Commitment Discount Coverage", "Effective Savings Rate")
as FOCUS expresses them:

- used = Σ EffectiveCost where CommitmentDiscountStatus = 'Used' (the amortized commitment cost that priced
  usage); unused = Σ EffectiveCost where CommitmentDiscountStatus = 'Unused' (what was paid for and not used:
  the waste); amortized = used + unused; purchase = Σ BilledCost where ChargeCategory = 'Purchase' (the
  payments billed in the period, up front or monthly).
- utilization = used / (used + unused) (FinOps Foundation: commitment discount utilization, the share of the
  commitment that was consumed). Daily: the same ratio per charge day.
- coverage = Σ ListCost of covered usage / Σ ListCost of eligible usage (FinOps Foundation: commitment discount
  coverage, the share of eligible usage priced by a commitment). Eligible usage: Usage rows that are not
  unused commitment and not spot-priced (PricingCategory 'Dynamic'), in the services and regions where a
  commitment applied in the period; covered usage: the eligible rows with CommitmentDiscountStatus = 'Used'.
  ListCost, the on-demand price, puts covered and on-demand usage on one scale.
- realized savings = Σ (ListCost − EffectiveCost) over covered usage: what the commitments (with the
  negotiated rate) saved against the on-demand price. negotiated savings = Σ (ListCost − ContractedCost) over
  the same rows: the part the negotiated rate alone gives, shown apart; the rest is the commitment's own.
- effective savings rate = (Σ ListCost − Σ EffectiveCost − unused) / Σ ListCost over eligible usage
  (FinOps Foundation: ESR, savings net of what the commitments wasted, as a share of the on-demand
  equivalent). Unused commitment has no on-demand equivalent (its ListCost counts as zero), so waste
  lowers the rate.

A saving is never computed from a missing price: where ListCost (or ContractedCost, for negotiated savings)
is missing on any row a figure sums (a ListCost of zero beside a positive EffectiveCost counts as missing:
Azure EA amortized exports give reservation-covered usage a PayGPrice of 0), that figure is None, per
commitment and per currency, and the model says how many rows lack it (rows synced from the Cost
Management Query API carry no ListCost).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

import duckdb

from finops_tui.basis.periods import Period

ZERO = Decimal(0)
RATIO_PLACES = Decimal("0.0001")
COVERED_RESOURCES = 20  # resources listed per commitment (largest covered cost first)

_PERIOD_SQL = "c.x_ChargeDate >= $s AND c.x_ChargeDate < $e"
_ELIGIBLE_ROWS_SQL = (
    "c.ChargeCategory = 'Usage' AND coalesce(c.CommitmentDiscountStatus, '') <> 'Unused'"
    " AND coalesce(c.PricingCategory, '') <> 'Dynamic'"
)
# A usage row without a list price: none at all (the Query API), or zero beside a real cost (EA amortized
# exports give PayGPrice 0 on reservation-covered usage).
_NO_PRICE = "(c.ListCost IS NULL OR (c.ListCost = 0 AND c.EffectiveCost > 0))"
_TERM = re.compile(r"(?<![0-9])([1-5])\s*-?\s*(?:yr|year|y)s?(?![a-z])", re.IGNORECASE)


def ratio_text(value: Decimal | None) -> str | None:
    """A ratio as the reports print it: 4 decimal places, half-even (`0.6667`); None stays None."""
    return None if value is None else format(value.quantize(RATIO_PLACES, rounding=ROUND_HALF_EVEN), "f")


def share(part: Decimal, whole: Decimal) -> Decimal | None:
    return part / whole if whole else None


@dataclass(frozen=True, slots=True)
class DailyUse:
    day: dt.date
    used: Decimal
    unused: Decimal

    @property
    def utilization(self) -> Decimal | None:
        return share(self.used, self.used + self.unused)


@dataclass(frozen=True, slots=True)
class CoveredResource:
    resource_id: str | None
    name: str
    resource_group: str | None
    used: Decimal  # EffectiveCost priced by the commitment
    list_cost: Decimal | None  # None when any of its covered rows has no ListCost


@dataclass(frozen=True)
class Commitment:
    """One commitment discount (reservation, savings plan, committed use discount) in one currency."""

    id: str
    name: str | None
    type: str | None  # CommitmentDiscountType as the provider names it
    category: str | None  # Usage | Spend
    provider: str | None
    scope: str | None  # the account its purchase and unused hours are billed to
    currency: str
    used: Decimal
    unused: Decimal
    purchase: Decimal
    realized_savings: Decimal | None
    negotiated_savings: Decimal | None
    rows_without_list_cost: int  # covered rows with no ListCost
    covered_resource_count: int
    daily: tuple[DailyUse, ...] = ()
    covered: tuple[CoveredResource, ...] = ()

    @property
    def label(self) -> str:
        return self.name or self.id.rstrip("/").rsplit("/", 1)[-1]

    @property
    def amortized(self) -> Decimal:
        return self.used + self.unused

    @property
    def utilization(self) -> Decimal | None:
        return share(self.used, self.used + self.unused)

    @property
    def term(self) -> str | None:
        """`1 year` when the commitment's name says so (`VM_RI_D16s_v5_EastUS_1yr`); FOCUS has no term column."""
        match = _TERM.search(self.name or "")
        if match is None:
            return None
        years = int(match.group(1))
        return f"{years} year" + ("s" if years > 1 else "")


@dataclass(frozen=True)
class ContractCommitment:
    """One row of a FOCUS 1.3 Contract Commitment file, with what the cache shows of it."""

    id: str
    contract_id: str | None
    category: str | None  # Spend | Usage
    type: str | None
    description: str | None
    cost: Decimal | None
    quantity: float | None
    unit: str | None
    currency: str | None
    start: dt.date | None
    end: dt.date | None  # exclusive
    status: str  # active | expired | upcoming, on the cache's last day with data
    billed_in_period: Decimal | None  # Spend: BilledCost of its currency from its start to its end or the data's end

    @property
    def amount(self) -> str:
        if self.cost is not None:
            return f"{self.cost:,.2f} {self.currency or ''}".strip()
        if self.quantity is not None:
            return f"{self.quantity:,g} {self.unit or ''}".strip()
        return "—"


@dataclass
class CurrencyCommitments:
    currency: str
    commitments: list[Commitment]
    covered_list: Decimal | None  # Σ ListCost of covered usage (None: some lack it)
    eligible_list: Decimal | None  # Σ ListCost of eligible usage (None: some lack it)
    eligible_effective: Decimal
    rows_without_list_cost: int  # eligible rows with no ListCost

    @property
    def used(self) -> Decimal:
        return sum((c.used for c in self.commitments), ZERO)

    @property
    def unused(self) -> Decimal:
        return sum((c.unused for c in self.commitments), ZERO)

    @property
    def purchase(self) -> Decimal:
        return sum((c.purchase for c in self.commitments), ZERO)

    @property
    def utilization(self) -> Decimal | None:
        return share(self.used, self.used + self.unused)

    @property
    def coverage(self) -> Decimal | None:
        if self.covered_list is None or self.eligible_list is None:
            return None
        return share(self.covered_list, self.eligible_list)

    @property
    def realized_savings(self) -> Decimal | None:
        savings = [c.realized_savings for c in self.commitments]
        if any(s is None for s in savings):
            return None
        return sum((s for s in savings if s is not None), ZERO)

    @property
    def negotiated_savings(self) -> Decimal | None:
        savings = [c.negotiated_savings for c in self.commitments]
        if any(s is None for s in savings):
            return None
        return sum((s for s in savings if s is not None), ZERO)

    @property
    def effective_savings_rate(self) -> Decimal | None:
        if self.eligible_list is None or not self.eligible_list:
            return None
        return (self.eligible_list - self.eligible_effective - self.unused) / self.eligible_list

    @property
    def list_cost_missing(self) -> bool:
        return self.rows_without_list_cost > 0 or any(c.rows_without_list_cost for c in self.commitments)


@dataclass
class CommitmentsView:
    period: Period
    currencies: list[CurrencyCommitments]
    contracts: list[ContractCommitment] = field(default_factory=list)
    data_end: dt.date | None = None
    synced_without_list_cost: bool = False  # some rows came from the Query API, which gives no ListCost

    def for_currency(self, currency: str | None) -> CurrencyCommitments | None:
        return next((c for c in self.currencies if c.currency == currency), None)

    def notes(self, currency: str | None = None) -> list[str]:
        """Why figures are missing, one sentence each (the screen and the reports print them)."""
        out = []
        for view in self.currencies:
            if currency is not None and view.currency != currency:
                continue
            # Covered rows are eligible rows too: the larger count is every usage row lacking a price.
            missing = max(view.rows_without_list_cost, sum(c.rows_without_list_cost for c in view.commitments))
            if view.list_cost_missing:
                why = " (rows synced from the Cost Management Query API carry no list price)" \
                    if self.synced_without_list_cost else ""
                out.append(
                    f"{view.currency}: ListCost is missing on {missing:,} usage rows{why}; savings, coverage and "
                    "the effective savings rate are not computed from a missing price. Import a FOCUS or cost "
                    "details export of the same months for them."
                )
        return out


def commitments(cur: duckdb.DuckDBPyConnection, period: Period, *, currency: str | None = None,
                covered_limit: int = COVERED_RESOURCES) -> CommitmentsView:
    """Every commitment with cost in `period` (per currency, largest amortized cost first) and the KPIs."""
    params: dict[str, object] = {"s": period.start, "e": period.end}
    currency_sql = ""
    if currency:
        currency_sql = " AND c.BillingCurrency = $cur"
        params["cur"] = currency
    per_commitment = _per_commitment(cur, params, currency_sql)
    daily = _daily(cur, params, currency_sql)
    covered, resources = _covered(cur, {**params, "limit": covered_limit}, currency_sql)
    eligible = _eligible(cur, params, currency_sql)
    by_currency: dict[str, list[Commitment]] = defaultdict(list)
    for row in per_commitment:
        (code, cid, name, ctype, category, provider, scope, used, unused, purchase, realized, negotiated,
         no_list, _no_contracted) = row
        key = (code, cid)
        by_currency[code].append(Commitment(
            id=cid, name=name, type=ctype, category=category, provider=provider, scope=scope, currency=code,
            used=used or ZERO, unused=unused or ZERO, purchase=purchase or ZERO,
            realized_savings=None if no_list else (realized or ZERO),
            negotiated_savings=negotiated,
            rows_without_list_cost=int(no_list), covered_resource_count=resources.get(key, 0),
            daily=_series(daily.get(key, {}), period), covered=tuple(covered.get(key, ())),
        ))
    views = []
    for code in sorted(set(by_currency) | set(eligible), key=lambda c: (-_size(by_currency.get(c, [])), c)):
        items = sorted(by_currency.get(code, []), key=lambda c: (-c.amortized, -c.purchase, c.label))
        covered_list, eligible_list, eligible_effective, no_list = eligible.get(code, (ZERO, ZERO, ZERO, 0))
        views.append(CurrencyCommitments(
            currency=code, commitments=items,
            covered_list=None if no_list else covered_list, eligible_list=None if no_list else eligible_list,
            eligible_effective=eligible_effective, rows_without_list_cost=int(no_list),
        ))
    fresh = cur.execute("SELECT max(x_ChargeDate) FROM charges").fetchone()
    data_end = fresh[0] if fresh else None
    synced = cur.execute("SELECT count(*) FROM sources WHERE kind = 'sync-query' AND row_count > 0").fetchone()
    return CommitmentsView(
        period=period, currencies=views, contracts=contract_commitments(cur, data_end), data_end=data_end,
        synced_without_list_cost=bool(synced and synced[0]),
    )


def _size(items: list[Commitment]) -> Decimal:
    return sum((c.amortized + c.purchase for c in items), ZERO)


def _per_commitment(cur: duckdb.DuckDBPyConnection, params: dict[str, object], currency_sql: str) -> list[tuple]:
    return cur.execute(
        f"""
        SELECT c.BillingCurrency, c.CommitmentDiscountId,
               max(c.CommitmentDiscountName), max(c.CommitmentDiscountType), max(c.CommitmentDiscountCategory),
               max(c.ProviderName),
               max(coalesce(c.SubAccountName, c.SubAccountId))
                   FILTER (WHERE c.ChargeCategory = 'Purchase' OR c.CommitmentDiscountStatus = 'Unused'),
               sum(c.EffectiveCost) FILTER (WHERE c.CommitmentDiscountStatus = 'Used'),
               sum(c.EffectiveCost) FILTER (WHERE c.CommitmentDiscountStatus = 'Unused'),
               sum(c.BilledCost) FILTER (WHERE c.ChargeCategory = 'Purchase'),
               sum(c.ListCost - c.EffectiveCost) FILTER (WHERE c.CommitmentDiscountStatus = 'Used'),
               CASE WHEN count(*) FILTER (WHERE c.CommitmentDiscountStatus = 'Used'
                                          AND ({_NO_PRICE} OR c.ContractedCost IS NULL)) = 0
                    THEN coalesce(sum(c.ListCost - c.ContractedCost)
                                  FILTER (WHERE c.CommitmentDiscountStatus = 'Used'), 0) END,
               count(*) FILTER (WHERE c.CommitmentDiscountStatus = 'Used' AND {_NO_PRICE}),
               count(*) FILTER (WHERE c.CommitmentDiscountStatus = 'Used' AND c.ContractedCost IS NULL)
        FROM charges c
        WHERE {_PERIOD_SQL} AND c.CommitmentDiscountId IS NOT NULL AND c.BillingCurrency IS NOT NULL{currency_sql}
        GROUP BY c.BillingCurrency, c.CommitmentDiscountId
        """,
        params,
    ).fetchall()


def _daily(cur: duckdb.DuckDBPyConnection, params: dict[str, object],
           currency_sql: str) -> dict[tuple[str, str], dict[dt.date, tuple[Decimal, Decimal]]]:
    rows = cur.execute(
        f"""
        SELECT c.BillingCurrency, c.CommitmentDiscountId, c.x_ChargeDate,
               coalesce(sum(c.EffectiveCost) FILTER (WHERE c.CommitmentDiscountStatus = 'Used'), 0),
               coalesce(sum(c.EffectiveCost) FILTER (WHERE c.CommitmentDiscountStatus = 'Unused'), 0)
        FROM charges c
        WHERE {_PERIOD_SQL} AND c.CommitmentDiscountStatus IN ('Used', 'Unused')
          AND c.CommitmentDiscountId IS NOT NULL AND c.BillingCurrency IS NOT NULL{currency_sql}
        GROUP BY 1, 2, 3
        """,
        params,
    ).fetchall()
    out: dict[tuple[str, str], dict[dt.date, tuple[Decimal, Decimal]]] = defaultdict(dict)
    for code, cid, day, used, unused in rows:
        out[(code, cid)][day] = (used, unused)
    return out


def _series(days: dict[dt.date, tuple[Decimal, Decimal]], period: Period) -> tuple[DailyUse, ...]:
    """Every day of the period (a day without rows is zero, not missing)."""
    if not days:
        return ()
    return tuple(
        DailyUse(day, *days.get(day, (ZERO, ZERO)))
        for day in (period.start + dt.timedelta(days=i) for i in range(period.days))
    )


def _covered(
    cur: duckdb.DuckDBPyConnection, params: dict[str, object], currency_sql: str
) -> tuple[dict[tuple[str, str], list[CoveredResource]], dict[tuple[str, str], int]]:
    """The largest `$limit` covered resources of each commitment, and how many it covered in all."""
    rows = cur.execute(
        f"""
        SELECT c.BillingCurrency, c.CommitmentDiscountId, c.ResourceId,
               coalesce(max(c.ResourceName), c.ResourceId, '(no resource)'), max(c.x_ResourceGroupName),
               sum(c.EffectiveCost) AS used,
               CASE WHEN count(*) FILTER (WHERE {_NO_PRICE}) = 0 THEN sum(c.ListCost) END,
               count(*) OVER (PARTITION BY c.BillingCurrency, c.CommitmentDiscountId)
        FROM charges c
        WHERE {_PERIOD_SQL} AND c.CommitmentDiscountStatus = 'Used'
          AND c.CommitmentDiscountId IS NOT NULL AND c.BillingCurrency IS NOT NULL{currency_sql}
        GROUP BY 1, 2, 3
        QUALIFY row_number() OVER (PARTITION BY c.BillingCurrency, c.CommitmentDiscountId
                                   ORDER BY used DESC NULLS LAST, c.ResourceId) <= greatest($limit, 1)
        ORDER BY 1, 2, used DESC NULLS LAST, 3
        """,
        params,
    ).fetchall()
    limit = int(str(params["limit"]))
    out: dict[tuple[str, str], list[CoveredResource]] = defaultdict(list)
    counts: dict[tuple[str, str], int] = {}
    for code, cid, rid, name, group, used, list_cost, count in rows:
        counts[(code, cid)] = int(count)
        if len(out[(code, cid)]) < limit:
            out[(code, cid)].append(CoveredResource(rid, name, group, used or ZERO, list_cost))
    return out, counts


def _eligible(cur: duckdb.DuckDBPyConnection, params: dict[str, object],
              currency_sql: str) -> dict[str, tuple[Decimal, Decimal, Decimal, int]]:
    """Per currency: covered ListCost, eligible ListCost and EffectiveCost, and eligible rows without ListCost."""
    rows = cur.execute(
        f"""
        WITH applied AS (
            SELECT DISTINCT c.BillingCurrency AS currency, coalesce(c.ServiceName, '') AS service,
                   coalesce(c.RegionId, '') AS region
            FROM charges c
            WHERE {_PERIOD_SQL} AND c.CommitmentDiscountStatus = 'Used' AND c.BillingCurrency IS NOT NULL{currency_sql}
        )
        SELECT c.BillingCurrency,
               coalesce(sum(c.ListCost) FILTER (WHERE c.CommitmentDiscountStatus = 'Used'), 0),
               coalesce(sum(c.ListCost), 0),
               coalesce(sum(c.EffectiveCost), 0),
               count(*) FILTER (WHERE {_NO_PRICE})
        FROM charges c
        JOIN applied a ON a.currency = c.BillingCurrency AND a.service = coalesce(c.ServiceName, '')
                      AND a.region = coalesce(c.RegionId, '')
        WHERE {_PERIOD_SQL} AND {_ELIGIBLE_ROWS_SQL}{currency_sql}
        GROUP BY 1
        """,
        params,
    ).fetchall()
    return {r[0]: (r[1], r[2], r[3], int(r[4])) for r in rows}


def contract_commitments(cur: duckdb.DuckDBPyConnection, data_end: dt.date | None) -> list[ContractCommitment]:
    """The imported FOCUS 1.3 contract commitments, with their status on the data's last day and, for spend
    commitments, what the cache bills in their currency over their period so far."""
    if cur.execute("SELECT 1 FROM contract_commitments LIMIT 1").fetchone() is None:
        return []
    rows = cur.execute(
        """
        SELECT k.ContractCommitmentId, k.ContractId, k.ContractCommitmentCategory, k.ContractCommitmentType,
               k.ContractCommitmentDescription, k.ContractCommitmentCost, k.ContractCommitmentQuantity,
               k.ContractCommitmentUnit, k.BillingCurrency,
               CAST(k.ContractCommitmentPeriodStart AS DATE), CAST(k.ContractCommitmentPeriodEnd AS DATE),
               CASE WHEN lower(k.ContractCommitmentCategory) = 'spend' THEN (
                   SELECT sum(c.BilledCost) FROM charges c
                   WHERE c.BillingCurrency = k.BillingCurrency
                     AND c.x_ChargeDate >= CAST(k.ContractCommitmentPeriodStart AS DATE)
                     AND c.x_ChargeDate < CAST(k.ContractCommitmentPeriodEnd AS DATE)) END
        FROM contract_commitments k
        ORDER BY k.ContractId, k.ContractCommitmentPeriodStart, k.ContractCommitmentId
        """
    ).fetchall()
    out = []
    for cid, contract, category, ctype, description, cost, quantity, unit, code, start, end, billed in rows:
        if data_end is None or start is None or end is None:
            status = "unknown"
        elif data_end < start:
            status = "upcoming"
        elif data_end >= end:
            status = "expired"
        else:
            status = "active"
        out.append(ContractCommitment(cid, contract, category, ctype, description, cost, quantity, unit, code,
                                      start, end, status, billed))
    return out
