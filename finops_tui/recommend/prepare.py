"""Shared aggregates the generators read: daily cost per level and per-resource windows, built once per run."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb

from finops_tui.basis.dimensions import cached_providers, provider_qualified_sql
from finops_tui.recommend.model import Context
from finops_tui.store.sources import OWNING_RESOURCE_SQL

# Names of the TEMP tables (per cursor: DuckDB cursors do not share TEMP tables, so each run builds its own).
DAILY = "_rec_daily"  # day × currency × subscription × resource group × service × team
# resource × meter × currency: first/last day and cost in the windows we compare. The resource is the owning one
# (a provider-split row's consumer), as in every view.
RESOURCE = "_rec_resource"
CURRENCY = "_rec_currency"  # currency → monthly spend and the materiality floor
_META = "_rec_meta"

# Resource classes from a resource type. Azure FOCUS exports use display names ("Virtual machine"), the Query
# API and legacy exports ARM types ("microsoft.compute/virtualmachines"); both are recognised.
_COMPUTE_TYPES = (
    "virtual machine", "virtual machines", "virtual machine scale set", "virtual machine scale sets",
    "kubernetes service", "app service", "app service plan", "function app", "container instances",
    "container group", "batch account", "azure databricks workspace",
    "microsoft.compute/virtualmachines", "microsoft.compute/virtualmachinescalesets",
    "microsoft.containerservice/managedclusters", "microsoft.web/sites", "microsoft.web/serverfarms",
    "microsoft.containerinstance/containergroups", "microsoft.batch/batchaccounts",
    "microsoft.databricks/workspaces",
)
_CLASS_TYPES: dict[str, tuple[str, ...]] = {
    "disk": ("disk", "disks", "managed disk", "microsoft.compute/disks"),
    "snapshot": ("snapshot", "snapshots", "microsoft.compute/snapshots"),
    "public-ip": ("public ip address", "public ip", "microsoft.network/publicipaddresses"),
    "storage": ("storage account", "microsoft.storage/storageaccounts"),
}
# Classes that cost money without compute to use them: the signature of orphans and of stopped workloads.
LEFTOVER_CLASSES = ("disk", "snapshot", "public-ip")


def _in_list(values: tuple[str, ...]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def resource_class_sql(type_expr: str, id_expr: str) -> str:
    """SQL classifying a resource as compute, disk, snapshot, public-ip, storage or other.

    The ARM type inside the (lower-cased) resource id decides when the type column is missing or unknown.
    """
    arm = f"regexp_extract({id_expr}, '/providers/([^/]+/[^/]+)/', 1)"
    kind = f"lower({type_expr})"
    cases = [
        f"WHEN {kind} IN ({_in_list(_COMPUTE_TYPES)}) OR {arm} IN ({_in_list(_COMPUTE_TYPES)}) "
        f"OR {kind} LIKE 'microsoft.compute/virtualmachine%' THEN 'compute'"
    ]
    for name, types in _CLASS_TYPES.items():
        cases.append(f"WHEN {kind} IN ({_in_list(types)}) OR {arm} IN ({_in_list(types)}) THEN '{name}'")
    return "CASE " + " ".join(cases) + " ELSE 'other' END"


def _signature(ctx: Context) -> str:
    t = ctx.thresholds
    return "|".join(
        str(v)
        for v in (ctx.data_end, ctx.metric, ctx.team_key, ctx.currency, t.lookback_days, t.new_sku_days, t.idle_days)
    )


def _currency_filter(ctx: Context, alias: str = "c") -> str:
    return f" AND {alias}.BillingCurrency = $currency" if ctx.currency else ""


def params(ctx: Context, **extra: object) -> dict[str, object]:
    """Named parameters for the generators' SQL: $end, $currency (when filtered) and any extras."""
    out: dict[str, object] = {"end": ctx.data_end, **extra}
    if ctx.currency:
        out["currency"] = ctx.currency
    return out


def ensure_prepared(cur: duckdb.DuckDBPyConnection, ctx: Context) -> None:
    """Build the shared aggregates on this cursor unless they are already there for this context."""
    exists = cur.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = ?", [_META]
    ).fetchone()
    if exists and exists[0]:
        row = cur.execute(f"SELECT signature FROM {_META}").fetchone()
        if row and row[0] == _signature(ctx):
            return
    _build(cur, ctx)


def drop_prepared(cur: duckdb.DuckDBPyConnection) -> None:
    """Forget the aggregates so the next generator rebuilds them from the current cache."""
    for table in (DAILY, RESOURCE, CURRENCY, _META):
        cur.execute(f"DROP TABLE IF EXISTS temp.{table}")


def _build(cur: duckdb.DuckDBPyConnection, ctx: Context) -> None:
    t = ctx.thresholds
    cost = f"c.{ctx.cost_column}"
    team_key = ctx.team_key.replace("'", "''")
    start = ctx.days_back(t.lookback_days)
    p = params(ctx, start=start)
    # Findings name subscriptions as the reports do: with the provider when several clouds are cached.
    sub_name = "max(c.SubAccountName)"
    if len(cached_providers(cur)) > 1:
        sub_name = provider_qualified_sql(sub_name, "max(c.ProviderName)")
    # One pass over the recent charges, grouped to the coarsest grain every level can be rolled up from.
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {DAILY} AS
        SELECT c.x_ChargeDate AS day, c.BillingCurrency AS currency,
               c.SubAccountId AS sub, {sub_name} AS sub_name,
               c.x_ResourceGroupName AS rg, c.ServiceName AS service,
               t.tag_value AS team, {OWNING_RESOURCE_SQL} IS NOT NULL AS taggable,
               -- billed on a schedule (a support plan, a monthly reservation fee): a known step, never an anomaly
               coalesce(c.ChargeFrequency = 'Recurring' AND c.ChargeCategory <> 'Usage', false) AS scheduled,
               sum({cost}) AS cost
        FROM charges c
        LEFT JOIN resource_tags t ON t.resource_key = c.x_ResourceKey AND t.tag_key = '{team_key}'
        WHERE c.x_ChargeDate BETWEEN $start AND $end AND {cost} IS NOT NULL{_currency_filter(ctx)}
          -- unused commitment hours have their own finding; as cost moves they would only repeat it
          AND c.CommitmentDiscountStatus IS DISTINCT FROM 'Unused'
        GROUP BY ALL
        """,
        p,
    )
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {CURRENCY} AS
        SELECT currency,
               sum(cost) FILTER (WHERE day > $end - INTERVAL 30 DAY) * 30.4 / 30 AS monthly_spend,
               greatest(CAST($min AS DECIMAL(38,12)),
                        CAST($rel AS DECIMAL(38,12)) * coalesce(monthly_spend, 0)) AS floor
        FROM {DAILY} GROUP BY currency
        """,
        {"end": ctx.data_end, "min": t.min_monthly, "rel": t.relative_floor},
    )
    new_start = ctx.days_back(t.new_sku_days)
    prev_start = ctx.days_back(2 * t.new_sku_days)
    idle_start = ctx.days_back(t.idle_days)
    # Per resource and meter: when it was first and last charged and what it cost in the windows compared.
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {RESOURCE} AS
        WITH agg AS (
            SELECT {OWNING_RESOURCE_SQL} AS ResourceId,
                   coalesce(c.x_SkuMeterName, c.SkuId, '(unknown meter)') AS meter,
                   c.BillingCurrency AS currency,
                   min(c.x_ChargeDate) AS first_day, max(c.x_ChargeDate) AS last_day,
                   sum({cost}) AS cost_total,
                   coalesce(sum({cost}) FILTER (WHERE c.x_ChargeDate >= $new_start), 0) AS cost_new,
                   coalesce(sum({cost}) FILTER (WHERE c.x_ChargeDate >= $prev_start
                                                  AND c.x_ChargeDate < $new_start), 0) AS cost_new_prev,
                   coalesce(sum({cost}) FILTER (WHERE c.x_ChargeDate >= $idle_start), 0) AS cost_idle,
                   coalesce(sum({cost}) FILTER (WHERE c.x_ChargeDate < $idle_start
                                                  AND c.x_ChargeDate >= $idle_start - INTERVAL 46 DAY), 0)
                       AS cost_idle_prev,
                   coalesce(sum({cost}) FILTER (WHERE c.x_ChargeDate > $end - INTERVAL 30 DAY), 0) AS cost_30
            FROM charges c
            WHERE c.x_ChargeDate BETWEEN $start AND $end AND {OWNING_RESOURCE_SQL} IS NOT NULL
              AND {cost} IS NOT NULL{_currency_filter(ctx)}
            GROUP BY ALL
        )
        SELECT agg.*, coalesce(r.ResourceName, regexp_extract(agg.ResourceId, '[^/]+$')) AS name,
               r.ResourceType AS rtype, r.x_ResourceGroupName AS rg, r.SubAccountId AS sub,
               {resource_class_sql("r.ResourceType", "agg.ResourceId")} AS rclass
        FROM agg LEFT JOIN resources r ON r.ResourceId = agg.ResourceId
        """,
        p | {"new_start": new_start, "prev_start": prev_start, "idle_start": idle_start},
    )
    cur.execute(f"CREATE OR REPLACE TEMP TABLE {_META} AS SELECT ? AS signature", [_signature(ctx)])


def floors(cur: duckdb.DuckDBPyConnection) -> dict[str, Decimal]:
    """Materiality floor per currency (monthly): findings below it are noise."""
    return {str(c): Decimal(f) for c, f in cur.execute(f"SELECT currency, floor FROM {CURRENCY}").fetchall()}


def monthly(amount: Decimal | float | int, days: int) -> Decimal:
    """Scale an amount observed over `days` days to an average month (30.4 days), to the cent."""
    value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    return (value * Decimal("30.4") / Decimal(max(days, 1))).quantize(Decimal("0.01"))


def iso(day: dt.date) -> str:
    return day.isoformat()
