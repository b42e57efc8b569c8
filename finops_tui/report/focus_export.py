"""FOCUS export: the cache's charges as FOCUS 1.2 / 1.3 columns with effective tags, streamed by DuckDB COPY."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import duckdb

from finops_tui.basis.periods import Period
from finops_tui.store.schema import MONEY_TYPE
from finops_tui.store.tag_sets import join_sql as tag_sets_join_sql
from finops_tui.store.tag_sets import row_tags_sql

FocusVersion = Literal["1.2", "1.3"]
FileFormat = Literal["parquet", "csv"]
FOCUS_VERSIONS: tuple[FocusVersion, ...] = ("1.2", "1.3")

# A FOCUS DateTime: ISO 8601 in UTC with the Z suffix. The cache stores naive UTC.
_CSV_DATETIME = "strftime({}, '%Y-%m-%dT%H:%M:%SZ')"

# Sync and legacy exports cache ActualCost rows (BilledCost only) and AmortizedCost rows (EffectiveCost only)
# side by side; a FOCUS row carries both, so the metric a row lacks is 0 there: each total stays exact.
_DATASET_BY_METRIC = "CASE s.metric WHEN 'actual' THEN 'ActualCost' WHEN 'amortized' THEN 'AmortizedCost' END"

_MONEY_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
_DATETIME_COLUMNS = ("BillingPeriodEnd", "BillingPeriodStart", "ChargePeriodEnd", "ChargePeriodStart")

# (FOCUS column, SQL over `c` = charges, `et` = effective tags, `s` = sources), FOCUS 1.2 names in spec order.
_FOCUS_12: list[tuple[str, str]] = [
    ("AvailabilityZone", "c.AvailabilityZone"),
    ("BilledCost", "coalesce(c.BilledCost, 0)"),
    # A subscription-scope sync cannot see the billing account: the scope the window was pulled for stands in.
    ("BillingAccountId", "coalesce(c.BillingAccountId, s.scope)"),
    ("BillingAccountName", "c.BillingAccountName"),
    ("BillingCurrency", "c.BillingCurrency"),
    ("BillingPeriodEnd", "c.BillingPeriodEnd"),
    ("BillingPeriodStart", "c.BillingPeriodStart"),
    ("ChargeCategory", "c.ChargeCategory"),
    ("ChargeClass", "c.ChargeClass"),
    # The Query API sends no description: the meter names, as Microsoft's FOCUS conversion does.
    ("ChargeDescription", "coalesce(c.ChargeDescription, nullif(concat_ws(' ', c.x_SkuMeterCategory, "
                          "c.x_SkuMeterName), ''), c.ServiceName)"),
    ("ChargeFrequency", "c.ChargeFrequency"),
    ("ChargePeriodEnd", "c.ChargePeriodEnd"),
    ("ChargePeriodStart", "c.ChargePeriodStart"),
    ("CommitmentDiscountCategory", "c.CommitmentDiscountCategory"),
    ("CommitmentDiscountId", "c.CommitmentDiscountId"),
    ("CommitmentDiscountName", "c.CommitmentDiscountName"),
    ("CommitmentDiscountStatus", "c.CommitmentDiscountStatus"),
    ("CommitmentDiscountType", "c.CommitmentDiscountType"),
    ("ConsumedQuantity", "c.ConsumedQuantity"),
    ("ConsumedUnit", "c.ConsumedUnit"),
    ("ContractedCost", "c.ContractedCost"),
    ("EffectiveCost", "coalesce(c.EffectiveCost, 0)"),
    ("InvoiceIssuerName", "c.InvoiceIssuerName"),
    ("ListCost", "c.ListCost"),
    ("PricingCategory", "c.PricingCategory"),
    ("PricingQuantity", "c.PricingQuantity"),
    ("PricingUnit", "c.PricingUnit"),
    ("ProviderName", "c.ProviderName"),
    # Legacy exports leave the publisher empty on the provider's own services (marketplace rows name theirs).
    ("PublisherName", "coalesce(c.PublisherName, c.ProviderName)"),
    ("RegionId", "c.RegionId"),
    ("RegionName", "c.RegionName"),
    ("ResourceId", "c.ResourceId"),
    ("ResourceName", "c.ResourceName"),
    ("ResourceType", "c.ResourceType"),
    ("ServiceCategory", "c.ServiceCategory"),
    ("ServiceName", "c.ServiceName"),
    # FOCUS 1.2 has an "Other (category)" subcategory for each category: a row with none goes there.
    ("ServiceSubcategory", "coalesce(c.ServiceSubcategory, 'Other (' || c.ServiceCategory || ')')"),
    ("SkuId", "c.SkuId"),
    ("SkuPriceId", "c.SkuPriceId"),
    ("SubAccountId", "c.SubAccountId"),
    ("SubAccountName", "c.SubAccountName"),
    # The tags the explorer allocates by (manual edit > provider tag after aliases > rule), as a JSON object.
    ("Tags", "to_json(et.tags)::VARCHAR"),
]

# FOCUS 1.3: a row split by a provider or an upstream tool names its consumer; the provider columns are new.
_FOCUS_13_EXTRA: list[tuple[str, str]] = [
    ("AllocatedMethodDetails", "c.AllocatedMethodDetails"),
    ("AllocatedMethodId", "c.AllocatedMethodId"),
    ("AllocatedResourceId", "c.AllocatedResourceId"),
    ("AllocatedResourceName", "c.AllocatedResourceName"),
    ("AllocatedTags", "to_json(c.AllocatedTags)::VARCHAR"),
    ("HostProviderName", "coalesce(c.HostProviderName, c.ProviderName)"),
    ("ServiceProviderName", "coalesce(c.ServiceProviderName, c.ProviderName)"),
]

# What FOCUS has no column for, kept with the x_ prefix FOCUS reserves for extensions.
_EXTENSIONS: list[tuple[str, str]] = [
    ("x_ResourceGroupName", "c.x_ResourceGroupName"),
    ("x_SkuMeterCategory", "c.x_SkuMeterCategory"),
    ("x_SkuMeterName", "c.x_SkuMeterName"),
    ("x_ProviderTags", f"to_json({row_tags_sql('c', 'ts')})::VARCHAR"),  # the tags as the provider sent them
    ("x_CostDataset", _DATASET_BY_METRIC),
    ("x_SourceKind", "s.kind"),
]


_EFFECTIVE_TAGS = """et AS (
        SELECT resource_key, map_from_entries(list((tag_key, tag_value) ORDER BY tag_key)) AS tags
        FROM resource_tags WHERE resource_key IS NOT NULL GROUP BY resource_key
    )"""

# --- Shared cost pools as FOCUS 1.3 split rows ----------------------------------------------------------
#
# `allocation.shared` marks a pool's rows (charges.x_SharedPool) and materialises each recipient's share per
# (pool, day, currency) in `shared_splits`, to the cent by largest remainder. The export replaces each pool
# row by one row per recipient of its group, keeping every FOCUS column of the source row (ResourceId stays
# the shared resource, as FOCUS 1.3 wants; the recipient goes to Allocated*). Per-day aggregate rows would
# have to drop ResourceId, ServiceName, SkuId… where a day's pool rows differ, and no longer be FOCUS.
#
# The amounts form a matrix per group: rows i (source rows, cost R_i) by columns j (recipients, share C_j),
# whose row sums must be R_i exactly and column sums C_j exactly (so a pivot of the file on AllocatedTags
# gives the chargeback's figures). Controlled rounding by cumulative sums does both: with cR, cC the running
# sums (source rows by rowid, recipients by name), T the group total, F(a, b) = a·b/T rounded to DECIMAL(38,12)
# and exact on the edges (F(a, T) = a, F(T, b) = b, F(0, b) = F(a, 0) = 0), the cell
#     x_ij = F(cR_i, cC_j) − F(cR_i − R_i, cC_j) − F(cR_i, cC_j − C_j) + F(cR_i − R_i, cC_j − C_j)
# telescopes to R_i along a row and to C_j along a column, whatever the rounding inside. The interior
# product is taken in DOUBLE (a DECIMAL product of two 38-digit sums would overflow), so a cell is within
# ~1e-9 of its exact proportion; the sums stay exact. A group whose total is 0 (a charge and its refund)
# puts each row on its first recipient. ListCost, ContractedCost and the quantities follow the recipient's
# share of EffectiveCost (BilledCost when EffectiveCost is 0), split along the row only.

_POOL_ROW = "c.x_SharedPool IS NOT NULL AND c.BillingCurrency IS NOT NULL"
# The recipient as FOCUS's consumer: a virtual resource id per pool and recipient (lower-cased like ResourceId).
SHARED_CONSUMER_ID = "'finops-tui/shared/' || p.name || '/' || g.recipient"
_GROUP = "g.pool_index = c.x_SharedPool AND g.day = c.x_ChargeDate AND g.currency = c.BillingCurrency"


def _cell(metric: str) -> str:
    """x_ij of one metric (`e`: EffectiveCost, `b`: BilledCost) over the columns `_shared_split_rows` names."""
    total, a, ap, b, bp = f"g.t{metric}", f"c.cr{metric}", f"(c.cr{metric} - c.r{metric})", f"g.c{metric}", \
        f"(g.c{metric} - g.s{metric})"

    def f(x: str, y: str) -> str:
        return (f"(CASE WHEN {y} = {total} THEN {x} WHEN {x} = {total} THEN {y} WHEN {x} = 0 OR {y} = 0 THEN 0 "
                f"ELSE CAST({x}::DOUBLE * {y}::DOUBLE / {total}::DOUBLE AS {MONEY_TYPE}) END)")

    return (f"CASE WHEN {total} = 0 THEN (CASE WHEN g.rank = 1 THEN c.r{metric} ELSE 0 END) "
            f"ELSE {f(a, b)} - {f(ap, b)} - {f(a, bp)} + {f(ap, bp)} END")


def _along(column: str, sql_type: str) -> str:
    """A column split along its row only, by the recipient's share of EffectiveCost (else BilledCost)."""
    weight, before, total = "g.cw", "(g.cw - g.sw)", "g.tw"

    def part(y: str) -> str:
        return (f"(CASE WHEN {y} = {total} THEN c.{column} WHEN {y} = 0 THEN c.{column} * 0 "
                f"ELSE CAST(c.{column}::DOUBLE * {y}::DOUBLE / {total}::DOUBLE AS {sql_type}) END)")

    return (f"CASE WHEN {total} = 0 THEN (CASE WHEN g.rank = 1 THEN c.{column} ELSE c.{column} * 0 END) "
            f"ELSE {part(weight)} - {part(before)} END")


def _allocated(column: str, value: str) -> str:
    """A recipient's value for an Allocated* column; the part no recipient could take keeps the source row's."""
    return f"CASE WHEN g.recipient IS NULL THEN c.{column} ELSE {value} END"


def _shared_split_rows(day_filter: str, row_filter: str) -> str:
    """The pool rows as split rows: charges' columns (costs and Allocated* replaced), one row per recipient."""
    ratio = ("CASE WHEN g.te <> 0 THEN round(g.se::DOUBLE / g.te::DOUBLE, 6) "
             "WHEN g.tb <> 0 THEN round(g.sb::DOUBLE / g.tb::DOUBLE, 6) END")
    element = (f"'AllocatedRatio': {ratio}, 'x_Pool': p.name, 'x_Method': p.method, 'x_Key': p.to_key, "
               "'x_Recipient': g.recipient")
    details = (f"to_json(CASE WHEN c.AllocatedResourceId IS NULL THEN {{'Elements': [{{{element}}}]}}::JSON "
               f"ELSE {{'Elements': [{{{element}, 'x_ReplacesAllocatedResourceId': c.AllocatedResourceId}}]}}::JSON "
               "END)::VARCHAR")
    replaced = {
        "EffectiveCost": _cell("e"),
        "BilledCost": _cell("b"),
        "ListCost": _along("ListCost", MONEY_TYPE),
        "ContractedCost": _along("ContractedCost", MONEY_TYPE),
        "PricingQuantity": _along("PricingQuantity", "DOUBLE"),
        "ConsumedQuantity": _along("ConsumedQuantity", "DOUBLE"),
        "AllocatedMethodId": _allocated("AllocatedMethodId", "'finops-tui:' || p.method"),
        "AllocatedMethodDetails": _allocated("AllocatedMethodDetails", details),
        "AllocatedResourceId": _allocated("AllocatedResourceId", f"lower({SHARED_CONSUMER_ID})"),
        "AllocatedResourceName": _allocated("AllocatedResourceName", "g.recipient"),
        "AllocatedTags": _allocated("AllocatedTags", "MAP([p.to_key], [g.recipient])"),
    }
    replace = ",\n               ".join(f"{sql} AS {name}" for name, sql in replaced.items())
    running = "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    return f"""
        WITH shares AS (
            SELECT pool_index, day, currency, recipient, effective AS se, billed AS sb,
                   sum(effective) OVER w AS ce, sum(billed) OVER w AS cb,
                   sum(effective) OVER t AS te, sum(billed) OVER t AS tb,
                   row_number() OVER w AS rank
            FROM shared_splits WHERE {day_filter}
            WINDOW t AS (PARTITION BY pool_index, day, currency),
                   w AS (PARTITION BY pool_index, day, currency ORDER BY recipient NULLS LAST {running})
        ),
        src AS (
            SELECT c.*, coalesce(c.EffectiveCost, 0) AS re, coalesce(c.BilledCost, 0) AS rb,
                   sum(coalesce(c.EffectiveCost, 0)) OVER r AS cre, sum(coalesce(c.BilledCost, 0)) OVER r AS crb
            FROM charges c WHERE {_POOL_ROW} AND {row_filter}
            WINDOW r AS (PARTITION BY c.x_SharedPool, c.x_ChargeDate, c.BillingCurrency ORDER BY c.rowid {running})
        ),
        g AS (
            -- a group with no share (both totals 0: nothing to split) keeps its rows as one NULL recipient
            SELECT *, CASE WHEN te <> 0 THEN ce ELSE cb END AS cw, CASE WHEN te <> 0 THEN se ELSE sb END AS sw,
                   CASE WHEN te <> 0 THEN te ELSE tb END AS tw
            FROM shares
        )
        SELECT c.* REPLACE (
               {replace})
        FROM src c
        LEFT JOIN (
            SELECT * FROM g
            UNION ALL BY NAME
            SELECT DISTINCT x_SharedPool AS pool_index, x_ChargeDate AS day, BillingCurrency AS currency,
                   NULL AS recipient, 0 AS se, 0 AS sb, 0 AS ce, 0 AS cb, 0 AS te, 0 AS tb, 1 AS rank,
                   0 AS cw, 0 AS sw, 0 AS tw
            FROM charges c WHERE {_POOL_ROW} AND {row_filter} AND NOT EXISTS (
                SELECT 1 FROM shares g WHERE {_GROUP})
        ) g ON {_GROUP}
        LEFT JOIN shared_pools p ON p.pool_index = g.pool_index
    """


def has_shared_pools(cur: duckdb.DuckDBPyConnection) -> bool:
    """Whether the cache has shared cost pools applied (their rows are split in a FOCUS 1.3 export)."""
    row = cur.execute("SELECT count(*) FROM shared_pools").fetchone()
    return bool(row and row[0])


@dataclass(frozen=True)
class StaleSplit:
    """A pool group whose materialised shares no longer sum to its rows (the export would not foot)."""

    pool: str
    day: dt.date
    currency: str
    rows: tuple[Decimal, Decimal]  # (EffectiveCost, BilledCost) of the pool's rows
    shares: tuple[Decimal, Decimal]  # the same, summed over shared_splits


def stale_shared_splits(cur: duckdb.DuckDBPyConnection, period: Period | None) -> StaleSplit | None:
    """The first (pool, day, currency) where `shared_splits` does not sum to the marked rows, else None."""
    params: dict[str, Any] = {}
    rows_in, days_in = "TRUE", "TRUE"
    if period is not None:
        rows_in = "x_ChargeDate >= $start AND x_ChargeDate < $end"
        days_in = "day >= $start AND day < $end"
        params = {"start": period.start, "end": period.end}
    found = cur.execute(
        f"""
        WITH marked AS (
            SELECT x_SharedPool AS pool_index, x_ChargeDate AS day, BillingCurrency AS currency,
                   sum(coalesce(EffectiveCost, 0)) AS e, sum(coalesce(BilledCost, 0)) AS b
            FROM charges WHERE x_SharedPool IS NOT NULL AND BillingCurrency IS NOT NULL AND {rows_in}
            GROUP BY ALL
        ), split AS (
            SELECT pool_index, day, currency, sum(effective) AS e, sum(billed) AS b
            FROM shared_splits WHERE {days_in} GROUP BY ALL
        )
        SELECT coalesce(p.name, '#' || pool_index::VARCHAR), day, currency, coalesce(m.e, 0), coalesce(m.b, 0),
               coalesce(s.e, 0), coalesce(s.b, 0)
        FROM marked m FULL JOIN split s USING (pool_index, day, currency)
        LEFT JOIN shared_pools p USING (pool_index)
        WHERE coalesce(m.e, 0) <> coalesce(s.e, 0) OR coalesce(m.b, 0) <> coalesce(s.b, 0)
           OR (m.pool_index IS NOT NULL AND p.pool_index IS NULL)
        ORDER BY day, pool_index, currency LIMIT 1
        """,
        params,
    ).fetchone()
    if found is None:
        return None
    pool, day, currency, row_e, row_b, share_e, share_b = found
    return StaleSplit(str(pool), day, str(currency), (row_e, row_b), (share_e, share_b))


def focus_columns(version: FocusVersion) -> list[str]:
    """The export's column names, in file order."""
    return [name for name, _ in _select_list(version)]


def _select_list(version: FocusVersion) -> list[tuple[str, str]]:
    focus = _FOCUS_12 + (_FOCUS_13_EXTRA if version == "1.3" else [])
    return sorted(focus) + _EXTENSIONS


@dataclass(frozen=True)
class RowSplit:
    """Rows that take the place of some charge rows in the export, such as a shared cost pool split to its
    consumers (FOCUS 1.3 Allocated* columns). The split rows' costs must sum to the rows they replace.

    `replaces` is a SQL condition over `c` (charges) naming the rows replaced; `rows` is a SELECT giving the
    export's columns by name (any missing one is NULL); both may use `params`.
    """

    replaces: str
    rows: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FocusQuery:
    sql: str
    params: dict[str, Any]


def focus_query(
    version: FocusVersion, period: Period | None, *, file_format: FileFormat = "parquet",
    splits: Sequence[RowSplit] = (), shared: bool = False,
) -> FocusQuery:
    """The SELECT behind the export: one row per charge of `period` (None: every charge), FOCUS columns.

    `splits` replace charge rows with split rows (UNION ALL BY NAME). `shared` (FOCUS 1.3 only) replaces the
    rows of the shared cost pools applied in the cache with one row per source row and recipient (see
    `_shared_split_rows`); check `stale_shared_splits` first, the split relies on the cache's `shared_splits`.
    """
    if shared and version != "1.3":
        raise ValueError("shared cost pools need FOCUS 1.3's allocation columns")
    params: dict[str, Any] = {}
    where = ["TRUE"]
    if period is not None:
        where.append("c.x_ChargeDate >= $period_start AND c.x_ChargeDate < $period_end")
        params.update(period_start=period.start, period_end=period.end)
    if shared:
        where.append(f"NOT ({_POOL_ROW})")
    for split in splits:
        where.append(f"NOT coalesce(({split.replaces}), false)")
        params.update(split.params)
    select = ",\n       ".join(f'{_typed(name, sql, file_format)} AS "{name}"' for name, sql in _select_list(version))
    joins = f"""
    LEFT JOIN et ON et.resource_key = c.x_ResourceKey
    LEFT JOIN sources s ON s.source_id = c.source_id
    {tag_sets_join_sql('c', 'ts')}"""
    body = f"SELECT {select}\n    FROM charges c{joins}\n    WHERE {' AND '.join(where)}"
    if shared:
        days, rows = "TRUE", "TRUE"
        if period is not None:
            days = "day >= $period_start AND day < $period_end"
            rows = "c.x_ChargeDate >= $period_start AND c.x_ChargeDate < $period_end"
        body += f"\n    UNION ALL\n    SELECT {select}\n    FROM ({_shared_split_rows(days, rows)}) c{joins}"
    sql = f"WITH {_EFFECTIVE_TAGS}\n    {body}\n"
    if splits:
        columns = ", ".join(f'"{name}"' for name, _ in _select_list(version))
        parts = [f"SELECT {columns} FROM ({sql})"]
        # Split rows name only the columns they set; the empty SELECT of NULLs supplies the rest.
        parts += [f"SELECT {columns} FROM ({_nulls(version)} WHERE false UNION ALL BY NAME ({split.rows}))"
                  for split in splits]
        sql = "\nUNION ALL\n".join(parts)
    return FocusQuery(sql, params)


def _nulls(version: FocusVersion) -> str:
    return "SELECT " + ", ".join(f'NULL AS "{name}"' for name, _ in _select_list(version))


def _typed(name: str, sql: str, file_format: FileFormat) -> str:
    if name in _DATETIME_COLUMNS:
        return _CSV_DATETIME.format(sql) if file_format == "csv" else f"timezone('UTC', {sql})"
    if name in _MONEY_COLUMNS:
        return f"CAST({sql} AS {MONEY_TYPE})"
    return sql


def focus_relation(
    cur: duckdb.DuckDBPyConnection, version: FocusVersion, period: Period | None, *,
    splits: Sequence[RowSplit] = (), shared: bool = False,
) -> duckdb.DuckDBPyRelation:
    """The export's rows as a DuckDB relation, for callers that filter or aggregate them further."""
    query = focus_query(version, period, splits=splits, shared=shared)
    return cur.sql(query.sql, params=query.params or None)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int
    seconds: float


def write_focus(
    cur: duckdb.DuckDBPyConnection, out: Path, version: FocusVersion, period: Period | None, *,
    file_format: FileFormat, splits: Sequence[RowSplit] = (), shared: bool = False,
) -> ExportResult:
    """COPY the export into `out` in one statement (no row passes through Python).

    The file appears whole or not at all: DuckDB writes a hidden file beside `out`, owner-only, renamed over
    `out` when COPY succeeds and removed when it fails.
    """
    query = focus_query(version, period, file_format=file_format, splits=splits, shared=shared)
    temp = out.with_name(f".{out.name}.exporting-{os.getpid()}")
    options = "FORMAT parquet, COMPRESSION zstd" if file_format == "parquet" else "FORMAT csv, HEADER true"
    started = time.perf_counter()
    temp.unlink(missing_ok=True)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # private before a byte is written
    os.close(fd)
    try:
        row = cur.execute(f"COPY ({query.sql}) TO {_literal(str(temp))} ({options})", query.params).fetchone()
        os.replace(temp, out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return ExportResult(out, int(row[0]) if row else 0, time.perf_counter() - started)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
