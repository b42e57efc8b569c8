"""Azure cost rows (Query API or Cost Details CSV, normalised to one staging shape) → FOCUS `charges` rows."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path

import duckdb

from finops_tui.basis.arm_ids import invalid_resource_id_sql, printable, resource_id_problem
from finops_tui.errors import AzureError
from finops_tui.store.sources import register_resource_ids

# The staging shape both paths produce (a SELECT with exactly these column names; missing ones are NULL).
STAGE_COLUMNS: list[tuple[str, str]] = [
    ("usage_date", "DATE"),
    ("cost", "DECIMAL(38,12)"),
    ("currency", "VARCHAR"),
    ("resource_id", "VARCHAR"),
    ("resource_name", "VARCHAR"),
    ("resource_group", "VARCHAR"),
    ("resource_type", "VARCHAR"),
    ("subscription_id", "VARCHAR"),
    ("subscription_name", "VARCHAR"),
    ("service_name", "VARCHAR"),  # Azure's legacy ServiceName, a fallback when Services.csv has no match
    ("consumed_service", "VARCHAR"),
    ("meter_category", "VARCHAR"),
    ("meter_name", "VARCHAR"),
    ("meter_id", "VARCHAR"),
    ("location", "VARCHAR"),
    ("availability_zone", "VARCHAR"),
    ("charge_type", "VARCHAR"),
    ("pricing_model", "VARCHAR"),
    ("frequency", "VARCHAR"),
    ("benefit_id", "VARCHAR"),
    ("benefit_name", "VARCHAR"),
    ("tags", "MAP(VARCHAR, VARCHAR)"),
    ("quantity", "DOUBLE"),
    ("unit", "VARCHAR"),
    ("product", "VARCHAR"),
    ("publisher_name", "VARCHAR"),
    ("billing_account_id", "VARCHAR"),
    ("billing_account_name", "VARCHAR"),
    ("billing_period_start", "DATE"),
    ("billing_period_end", "DATE"),  # exclusive
    # Cost Details rows price each line (the Query API does not): ListCost and ContractedCost, as the legacy
    # import derives them (ingest.azure_legacy); NULL from the Query API, where savings are then not computed.
    ("list_cost", "DECIMAL(38,12)"),
    ("contracted_cost", "DECIMAL(38,12)"),
]

_MACROS = r"""
CREATE OR REPLACE TEMP MACRO _sync_arm_tail(id) AS regexp_extract(id, '.*/providers/(.*)$', 1);
CREATE OR REPLACE TEMP MACRO _sync_type_from_id(id) AS nullif(array_to_string(
    list_filter(string_split(lower(_sync_arm_tail(id)), '/'), lambda part, i: i = 1 OR i % 2 = 0), '/'), '');
CREATE OR REPLACE TEMP MACRO _sync_name_from_id(id) AS nullif(regexp_extract(rtrim(id, '/'), '[^/]*$'), '');
CREATE OR REPLACE TEMP MACRO _sync_rg_from_id(id) AS nullif(regexp_extract(id, '(?i)/resourcegroups/([^/]+)', 1), '');
CREATE OR REPLACE TEMP MACRO _sync_sub_from_id(id) AS nullif(regexp_extract(id, '(?i)^/subscriptions/([^/]+)', 1), '');
CREATE OR REPLACE TEMP MACRO _sync_charge_category(charge_type) AS CASE lower(charge_type)
    WHEN 'usage' THEN 'Usage' WHEN 'unusedreservation' THEN 'Usage' WHEN 'unusedsavingsplan' THEN 'Usage'
    WHEN 'purchase' THEN 'Purchase' WHEN 'refund' THEN 'Purchase' WHEN 'tax' THEN 'Tax'
    WHEN 'credit' THEN 'Credit' WHEN 'roundingadjustment' THEN 'Adjustment'
    ELSE CASE WHEN coalesce(charge_type, '') = '' THEN 'Usage' ELSE 'Adjustment' END END;
CREATE OR REPLACE TEMP MACRO _sync_commitment_type(benefit_id, pricing_model) AS CASE
    WHEN coalesce(benefit_id, '') = '' THEN NULL
    WHEN lower(benefit_id) LIKE '%/savingsplanorders/%' OR lower(pricing_model) = 'savingsplan' THEN 'Savings Plan'
    ELSE 'Reservation' END;
"""


def _data_file(name: str) -> Path:
    return Path(str(resources.files("finops_tui") / "data" / name))


def install_helpers(cur: duckdb.DuckDBPyConnection) -> None:
    """Temp lookup tables (Services.csv, Regions.csv) and macros on this cursor (temp objects are per cursor)."""
    services = str(_data_file("Services.csv"))
    regions = str(_data_file("Regions.csv"))
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _sync_services AS
        SELECT lower(coalesce(ConsumedService, '')) AS consumed, lower(ResourceType) AS rtype,
               ServiceName, ServiceCategory, ServiceSubcategory, PublisherName
        FROM read_csv('{services}', header = true, all_varchar = true)
        """
    )
    # By resource type alone (the Query API gives no ConsumedService): prefer the row whose consumed service is
    # the type's own namespace (microsoft.compute for microsoft.compute/virtualmachines).
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE _sync_services_by_type AS
        SELECT rtype, arg_min(ServiceName, (consumed <> split_part(rtype, '/', 1), consumed)) AS ServiceName,
               arg_min(ServiceCategory, (consumed <> split_part(rtype, '/', 1), consumed)) AS ServiceCategory,
               arg_min(ServiceSubcategory, (consumed <> split_part(rtype, '/', 1), consumed)) AS ServiceSubcategory
        FROM _sync_services GROUP BY rtype
        """
    )
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _sync_regions AS
        SELECT lower(OriginalValue) AS original, any_value(RegionId) AS RegionId, any_value(RegionName) AS RegionName
        FROM read_csv('{regions}', header = true, all_varchar = true) GROUP BY lower(OriginalValue)
        """
    )
    cur.execute(_MACROS)


def stage_select(expressions: dict[str, str], source: str) -> str:
    """A SELECT in the staging shape: `expressions` maps stage columns to SQL; the rest are typed NULLs."""
    columns = []
    for name, kind in STAGE_COLUMNS:
        expr = expressions.get(name)
        columns.append(f"CAST({expr} AS {kind}) AS {name}" if expr else f"CAST(NULL AS {kind}) AS {name}")
    return "SELECT " + ",\n       ".join(columns) + f"\nFROM {source}"


def focus_select(stage_table: str, metric: str) -> str:
    """The SELECT mapping staged rows to the `charges` columns (in CHARGE_INSERT_COLUMNS order).

    Everything derived from the resource id alone (name, group, type, subscription, integer key) is computed
    once per distinct id, in `_sync_ids` (see insert_charges), and joined back: a month holds each resource
    ~30 times, and the regexps dominate otherwise.
    """
    cost_columns = "n.cost, NULL" if metric == "actual" else "NULL, n.cost"
    return f"""
        WITH ids AS (
            SELECT i.resource_id, i.rid, k.resource_key, i.id_name, i.id_group, i.id_type, i.id_sub
            FROM _sync_ids i LEFT JOIN resource_keys k ON k.ResourceId = i.rid
        ),
        r AS (
            SELECT s.*, ids.rid, ids.resource_key, ids.id_name, ids.id_group,
                   _sync_charge_category(s.charge_type) AS charge_category,
                   nullif(trim(s.benefit_id), '') AS benefit,
                   lower(coalesce(nullif(s.resource_type, ''), ids.id_type)) AS rtype,
                   coalesce(nullif(s.subscription_id, ''), ids.id_sub) AS sub
            FROM {stage_table} s LEFT JOIN ids ON ids.resource_id = s.resource_id
        )
        SELECT
            n.usage_date::TIMESTAMP, n.usage_date::TIMESTAMP + INTERVAL 1 DAY,
            coalesce(n.billing_period_start, $start)::TIMESTAMP, coalesce(n.billing_period_end, $end)::TIMESTAMP,
            coalesce(nullif(n.billing_account_id, ''), $account_id),
            coalesce(nullif(n.billing_account_name, ''), $account_name),
            CASE WHEN n.sub IS NOT NULL THEN '/subscriptions/' || lower(n.sub) END, nullif(n.subscription_name, ''),
            {cost_columns}, n.list_cost, n.contracted_cost, n.currency,
            n.charge_category,
            CASE WHEN lower(n.charge_type) = 'refund' THEN 'Correction' END,
            CASE lower(n.frequency) WHEN 'onetime' THEN 'One-Time' WHEN 'recurring' THEN 'Recurring'
                 WHEN 'usagebased' THEN 'Usage-Based'
                 ELSE CASE WHEN n.charge_category = 'Purchase' THEN 'One-Time' ELSE 'Usage-Based' END END,
            nullif(n.product, ''),
            CASE WHEN n.charge_category <> 'Usage' THEN NULL
                 WHEN lower(n.pricing_model) = 'ondemand' THEN 'Standard'
                 WHEN lower(n.pricing_model) = 'spot' THEN 'Dynamic'
                 WHEN lower(n.pricing_model) IN ('reservation', 'savingsplan') THEN 'Committed'
                 WHEN n.benefit IS NOT NULL THEN 'Committed'
                 WHEN coalesce(n.pricing_model, '') = '' THEN 'Standard'
                 ELSE 'Other' END,
            n.quantity, nullif(n.unit, ''), n.quantity, nullif(n.unit, ''),
            coalesce(se.ServiceName, st.ServiceName, nullif(n.service_name, ''), nullif(n.meter_category, '')),
            coalesce(se.ServiceCategory, st.ServiceCategory, 'Other'),
            coalesce(se.ServiceSubcategory, st.ServiceSubcategory),
            'Microsoft', coalesce(nullif(n.publisher_name, ''), 'Microsoft'), 'Microsoft',
            n.rid,
            coalesce(nullif(n.resource_name, ''), n.id_name),
            n.rtype,
            coalesce(rg.RegionId, nullif(lower(replace(n.location, ' ', '')), '')),
            coalesce(rg.RegionName, nullif(n.location, '')),
            nullif(n.availability_zone, ''),
            lower(n.benefit), nullif(n.benefit_name, ''),
            CASE WHEN n.benefit IS NULL OR n.charge_category <> 'Usage' THEN NULL
                 WHEN lower(n.charge_type) LIKE 'unused%' THEN 'Unused' ELSE 'Used' END,
            _sync_commitment_type(n.benefit, n.pricing_model),
            CASE _sync_commitment_type(n.benefit, n.pricing_model)
                 WHEN 'Savings Plan' THEN 'Spend' WHEN 'Reservation' THEN 'Usage' END,
            nullif(n.meter_id, ''),
            CASE WHEN cardinality(n.tags) > 0 THEN n.tags END,
            coalesce(nullif(n.resource_group, ''), n.id_group),
            nullif(n.meter_category, ''), nullif(n.meter_name, ''),
            n.usage_date, $source_id, n.resource_key,
            -- FOCUS 1.3's provider names, as ProviderName / PublisherName; Cost Management splits nothing
            'Microsoft', coalesce(nullif(n.publisher_name, ''), 'Microsoft')
        FROM r AS n
        LEFT JOIN _sync_services se ON se.consumed = lower(n.consumed_service) AND se.rtype = n.rtype
        LEFT JOIN _sync_services_by_type st ON st.rtype = n.rtype
        LEFT JOIN _sync_regions rg ON rg.original = lower(trim(n.location))
        """


CHARGE_INSERT_COLUMNS = """
    ChargePeriodStart, ChargePeriodEnd, BillingPeriodStart, BillingPeriodEnd,
    BillingAccountId, BillingAccountName, SubAccountId, SubAccountName,
    BilledCost, EffectiveCost, ListCost, ContractedCost, BillingCurrency,
    ChargeCategory, ChargeClass, ChargeFrequency, ChargeDescription, PricingCategory,
    PricingQuantity, PricingUnit, ConsumedQuantity, ConsumedUnit,
    ServiceName, ServiceCategory, ServiceSubcategory, ProviderName, PublisherName, InvoiceIssuerName,
    ResourceId, ResourceName, ResourceType, RegionId, RegionName, AvailabilityZone,
    CommitmentDiscountId, CommitmentDiscountName, CommitmentDiscountStatus, CommitmentDiscountType,
    CommitmentDiscountCategory, SkuId, Tags,
    x_ResourceGroupName, x_SkuMeterCategory, x_SkuMeterName, x_ChargeDate, source_id, x_ResourceKey,
    ServiceProviderName, HostProviderName"""


def insert_charges(
    cur: duckdb.DuckDBPyConnection,
    stage_sql: str,
    *,
    metric: str,
    source_id: int,
    start: dt.date,
    end: dt.date,
    billing_account: tuple[str | None, str | None] = (None, None),
) -> None:
    """INSERT the staged rows of [start, end) into `charges` under `source_id`, mapped to FOCUS 1.2 columns.

    ActualCost fills BilledCost only and AmortizedCost EffectiveCost only, so the two never double count.
    """
    # Staged in a temp table first: the mapping reads the rows twice (per distinct id, then per row), and a
    # temp table is much cheaper to read twice than a (materialised) CTE over the raw pages.
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE _sync_stage AS SELECT * FROM ({stage_sql}) s "
        "WHERE s.usage_date >= $start AND s.usage_date < $end",
        {"start": start, "end": end},
    )
    try:
        # Everything derived from the resource id alone, once per distinct id; new ids get their integer key
        # here, so rows are written with x_ResourceKey set and finish_window has no UPDATE of them to do.
        cur.execute(
            """
            CREATE OR REPLACE TEMP TABLE _sync_ids AS
            SELECT resource_id,
                   nullif(lower(trim(resource_id)), '') AS rid,
                   _sync_name_from_id(resource_id) AS id_name,
                   _sync_rg_from_id(resource_id) AS id_group,
                   _sync_type_from_id(resource_id) AS id_type,
                   _sync_sub_from_id(resource_id) AS id_sub
            FROM (SELECT DISTINCT resource_id FROM _sync_stage WHERE resource_id IS NOT NULL)
            """
        )
        _refuse_malformed_ids(cur)
        register_resource_ids(cur, "SELECT rid FROM _sync_ids")
        cur.execute(
            f"INSERT INTO charges ({CHARGE_INSERT_COLUMNS}) {focus_select('_sync_stage', metric)}",
            {
                "start": start,
                "end": end,
                "source_id": source_id,
                "account_id": billing_account[0],
                "account_name": billing_account[1],
            },
        )
    finally:
        cur.execute("DROP TABLE IF EXISTS _sync_stage")
        cur.execute("DROP TABLE IF EXISTS _sync_ids")


def _refuse_malformed_ids(cur: duckdb.DuckDBPyConnection) -> None:
    """A resource id no Azure answer holds (`..` segments, control characters) fails the window, unwritten.

    Synced resources are the ones a tag push may write to, so an id that could redirect that write never
    enters the cache; the window is recorded as failed with the reason, the others are still written.
    """
    row = cur.execute(
        f"SELECT resource_id FROM _sync_ids WHERE {invalid_resource_id_sql('resource_id')} LIMIT 1"
    ).fetchone()
    if row is not None:
        problem = resource_id_problem(str(row[0])) or "it is malformed"
        raise AzureError(f"Azure answered with the resource id {printable(str(row[0]))}: {problem}; window not written")
