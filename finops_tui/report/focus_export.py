"""FOCUS export: the cache's charges as FOCUS 1.2 / 1.3 columns with effective tags, streamed by DuckDB COPY."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb

from finops_tui.basis.periods import Period
from finops_tui.store.schema import MONEY_TYPE

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
    ("x_ProviderTags", "to_json(c.Tags)::VARCHAR"),  # the tags as the provider sent them
    ("x_CostDataset", _DATASET_BY_METRIC),
    ("x_SourceKind", "s.kind"),
]


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
    splits: Sequence[RowSplit] = (),
) -> FocusQuery:
    """The SELECT behind the export: one row per charge of `period` (None: every charge), FOCUS columns.

    `splits` replace charge rows with split rows (UNION ALL BY NAME), so shared cost pools plug in here.
    """
    params: dict[str, Any] = {}
    where = ["TRUE"]
    if period is not None:
        where.append("c.x_ChargeDate >= $period_start AND c.x_ChargeDate < $period_end")
        params.update(period_start=period.start, period_end=period.end)
    for split in splits:
        where.append(f"NOT coalesce(({split.replaces}), false)")
        params.update(split.params)
    select = ",\n       ".join(f'{_typed(name, sql, file_format)} AS "{name}"' for name, sql in _select_list(version))
    sql = f"""
    WITH et AS (
        SELECT resource_key, map_from_entries(list((tag_key, tag_value) ORDER BY tag_key)) AS tags
        FROM resource_tags WHERE resource_key IS NOT NULL GROUP BY resource_key
    )
    SELECT {select}
    FROM charges c
    LEFT JOIN et ON et.resource_key = c.x_ResourceKey
    LEFT JOIN sources s ON s.source_id = c.source_id
    WHERE {" AND ".join(where)}
    """
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
    splits: Sequence[RowSplit] = (),
) -> duckdb.DuckDBPyRelation:
    """The export's rows as a DuckDB relation, for callers that filter or aggregate them further."""
    query = focus_query(version, period, splits=splits)
    return cur.sql(query.sql, params=query.params or None)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int
    seconds: float


def write_focus(
    cur: duckdb.DuckDBPyConnection, out: Path, version: FocusVersion, period: Period | None, *,
    file_format: FileFormat, splits: Sequence[RowSplit] = (),
) -> ExportResult:
    """COPY the export into `out` in one statement (no row passes through Python).

    The file appears whole or not at all: DuckDB writes a hidden file beside `out`, owner-only, renamed over
    `out` when COPY succeeds and removed when it fails.
    """
    query = focus_query(version, period, file_format=file_format, splits=splits)
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
