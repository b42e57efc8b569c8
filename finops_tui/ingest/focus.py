"""FOCUS 1.0 / 1.0r2 / 1.1 / 1.2 / 1.3 cost-and-usage files (any provider) mapped onto `charges`.

Columns are matched by name, case-insensitively; extra columns are ignored and missing optional ones
become NULL. The version is told by the columns each release added:

- 1.3: ServiceProviderName / HostProviderName / ContractApplied / Allocated* (ProviderName is then
  read from ServiceProviderName, its 1.3 successor, falling back to ProviderName);
- 1.2: InvoiceId, PricingCurrency or the PricingCurrency* price columns;
- 1.1: ServiceSubcategory, CapacityReservationId, CommitmentDiscountQuantity/Unit, SkuMeter, SkuPriceDetails;
- 1.0r2: Microsoft's second 1.0 export (its `x_` columns), with seconds in the timestamps;
- 1.0 otherwise.

Values: money parses straight to DECIMAL(38,12); timestamps are ISO 8601 in UTC (an explicit offset is
honoured); Tags and AllocatedTags are JSON objects; the literal NULL (any case) and empty fields are null;
ResourceId and AllocatedResourceId are lower-cased and checked alike. FOCUS 1.3's provider splits keep
their columns (AllocatedMethodId/Details, AllocatedResourceId/Name, AllocatedTags); the provider names
ServiceProviderName / HostProviderName fall back to ProviderName / PublisherName. `x_ResourceGroupName`
comes from the column when present, else from an Azure resource id.
A row is bad when a required value (ChargePeriodStart, BilledCost, EffectiveCost, BillingCurrency,
ChargeCategory) is missing, a number or date does not parse, the currency is not ISO 4217, the
ChargeCategory is not a FOCUS one, or a name column holds a bare number or date (a row shifted by a
column, as in FOCUS-Sample-Data's Microsoft rows whose AvailabilityZone holds the unit price).
"""

from __future__ import annotations

from finops_tui.basis.arm_ids import LOOSE_EXPECTED as RESOURCE_ID_EXPECTED
from finops_tui.ingest.currencies import ISO_4217_CODES
from finops_tui.ingest.files import SourceFile
from finops_tui.ingest.mapping import (
    Mapping,
    MappingBuilder,
    ValueCheck,
    parse_money,
    parse_number,
    parse_tags,
    parse_timestamp,
)

REQUIRED_COLUMNS = ("ChargePeriodStart", "BilledCost", "EffectiveCost", "BillingCurrency")
CHARGE_CATEGORIES = frozenset({"Usage", "Purchase", "Tax", "Credit", "Adjustment"})

_V13_COLUMNS = (
    "ServiceProviderName",
    "HostProviderName",
    "ContractApplied",
    "AllocatedMethodId",
    "AllocatedResourceId",
)
_V12_COLUMNS = (
    "InvoiceId",
    "PricingCurrency",
    "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice",
    "PricingCurrencyContractedUnitPrice",
)
_V11_COLUMNS = (
    "ServiceSubcategory",
    "CapacityReservationId",
    "CapacityReservationStatus",
    "CommitmentDiscountQuantity",
    "CommitmentDiscountUnit",
    "SkuMeter",
    "SkuPriceDetails",
)
_MICROSOFT_V1_COLUMNS = ("x_SkuDetails", "x_BillingProfileId", "x_InvoiceSectionId")

# Text columns copied as they are (charges column, FOCUS column candidates).
_TEXT_COLUMNS: list[tuple[str, tuple[str, ...]]] = [
    ("BillingAccountId", ("BillingAccountId",)),
    ("BillingAccountName", ("BillingAccountName",)),
    ("SubAccountId", ("SubAccountId",)),
    ("SubAccountName", ("SubAccountName",)),
    ("ChargeClass", ("ChargeClass",)),
    ("ChargeFrequency", ("ChargeFrequency",)),
    ("ChargeDescription", ("ChargeDescription",)),
    ("PricingCategory", ("PricingCategory",)),
    ("PricingUnit", ("PricingUnit",)),
    ("ConsumedUnit", ("ConsumedUnit",)),
    ("ServiceName", ("ServiceName",)),
    ("ServiceCategory", ("ServiceCategory",)),
    ("ServiceSubcategory", ("ServiceSubcategory",)),
    ("ProviderName", ("ServiceProviderName", "ProviderName")),
    ("PublisherName", ("PublisherName",)),
    ("InvoiceIssuerName", ("InvoiceIssuerName",)),
    ("ResourceName", ("ResourceName",)),
    ("ResourceType", ("ResourceType",)),
    ("RegionId", ("RegionId",)),
    ("RegionName", ("RegionName",)),
    ("AvailabilityZone", ("AvailabilityZone",)),
    ("CommitmentDiscountId", ("CommitmentDiscountId",)),
    ("CommitmentDiscountName", ("CommitmentDiscountName",)),
    ("CommitmentDiscountStatus", ("CommitmentDiscountStatus",)),
    ("CommitmentDiscountType", ("CommitmentDiscountType",)),
    ("CommitmentDiscountCategory", ("CommitmentDiscountCategory",)),
    ("SkuId", ("SkuId",)),
    ("SkuPriceId", ("SkuPriceId",)),
    ("x_SkuMeterCategory", ("x_SkuMeterCategory",)),
    ("x_SkuMeterName", ("x_SkuMeterName", "SkuMeter")),
    # FOCUS 1.3; older files fill the provider names from ProviderName / PublisherName (mapping.column_sql).
    ("ServiceProviderName", ("ServiceProviderName", "ProviderName")),
    ("HostProviderName", ("HostProviderName", "PublisherName")),
    ("AllocatedMethodId", ("AllocatedMethodId",)),
    ("AllocatedMethodDetails", ("AllocatedMethodDetails",)),
    ("AllocatedResourceName", ("AllocatedResourceName",)),
]

# Name columns that never hold a bare number or date; one that does betrays a row shifted by a column.
_NAME_COLUMNS = (
    "AvailabilityZone",
    "RegionId",
    "RegionName",
    "ChargeFrequency",
    "PricingCategory",
    "PricingUnit",
    "ConsumedUnit",
    "ProviderName",
    "ServiceCategory",
    "CommitmentDiscountStatus",
    "CommitmentDiscountCategory",
)

_MONEY_EXPECTED = "a decimal number (e.g. 12.34 or 1.2E-05)"
_TIMESTAMP_EXPECTED = "an ISO 8601 date and time (e.g. 2024-09-01T00:00:00Z)"


def looks_like_focus(source: SourceFile) -> bool:
    return all(source.has(column) for column in ("BilledCost", "ChargePeriodStart")) and source.has(
        "BillingCurrency", "EffectiveCost", "ChargeCategory"
    )


def missing_required(source: SourceFile) -> list[str]:
    return [column for column in REQUIRED_COLUMNS if not source.has(column)]


def is_contract_commitment(source: SourceFile) -> bool:
    """FOCUS 1.3's second dataset: one row per contract commitment (ContractCommitmentId, ...), no charges."""
    return source.has("ContractCommitmentId") and source.has(
        "ContractCommitmentCost", "ContractCommitmentQuantity", "ContractId"
    )


def detect_version(source: SourceFile) -> str:
    if source.has(*_V13_COLUMNS):
        return "1.3"
    if source.has(*_V12_COLUMNS):
        return "1.2"
    if source.has(*_V11_COLUMNS):
        return "1.1"
    if source.has(*_MICROSOFT_V1_COLUMNS):
        start = source.first_row.get(source.column("ChargePeriodStart") or "", "")
        # Microsoft's first 1.0 export wrote minutes only (2024-01-01T00:00Z); 1.0r2 added seconds.
        if source.format == "parquet" or start.count(":") >= 2:
            return "1.0r2"
    return "1.0"


def build_mapping(source: SourceFile) -> Mapping:
    """The SQL mapping of a FOCUS file onto `charges` (the caller checked `missing_required` first)."""
    b = MappingBuilder(source)
    col = source.column

    b.parsed(
        "ChargePeriodStart", col("ChargePeriodStart"), parse_timestamp, _TIMESTAMP_EXPECTED, required=True,
        date_range=True,
    )
    for name in ("ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd"):
        b.parsed(name, col(name), parse_timestamp, _TIMESTAMP_EXPECTED, date_range=True)
    for name in ("BilledCost", "EffectiveCost"):
        b.parsed(name, col(name), parse_money, _MONEY_EXPECTED, required=True)
    for name in ("ListCost", "ContractedCost"):
        b.parsed(name, col(name), parse_money, _MONEY_EXPECTED)
    for name in ("PricingQuantity", "ConsumedQuantity"):
        b.parsed(name, col(name), parse_number, "a number")

    for column, candidates in _TEXT_COLUMNS:
        present = [c for c in (col(name) for name in candidates) if c is not None]
        if len(present) > 1:
            b.value(column, f"coalesce({', '.join(b.ref(c) for c in present)})")
        else:
            b.value(column, b.ref(present[0]) if present else "NULL")

    details = col("AllocatedMethodDetails")
    if details and not source.types.get(details, "VARCHAR").upper().startswith("VARCHAR"):
        b.value("AllocatedMethodDetails", f"CAST({b.ref(details)} AS VARCHAR)")  # a Parquet struct or JSON, as text

    currency = col("BillingCurrency")
    b.value("BillingCurrency", f"upper(trim({b.ref(currency)}))")
    category = col("ChargeCategory")
    b.value("ChargeCategory", _canonical_case(b.ref(category), CHARGE_CATEGORIES) if category else "NULL")

    resource_id = col("ResourceId")
    b.value("ResourceId", f"lower({b.ref(resource_id)})" if resource_id else "NULL")
    group = col("x_ResourceGroupName")
    if group:
        b.value("x_ResourceGroupName", b.ref(group))
    elif resource_id:
        # Azure ids carry the resource group; other providers' ids yield NULL.
        b.value(
            "x_ResourceGroupName", f"nullif(regexp_extract({b.ref(resource_id)}, '(?i)/resourcegroups/([^/]+)', 1), '')"
        )
    else:
        b.value("x_ResourceGroupName", "NULL")

    tags = col("Tags")
    b.tag_set(tags, "a JSON object of tags")

    # Provider splits (FOCUS 1.3): the consumer's id is checked and lower-cased like ResourceId, its tags
    # parsed like Tags. A file without the columns has no split rows.
    allocated_id = col("AllocatedResourceId")
    b.value("AllocatedResourceId", f"lower({b.ref(allocated_id)})" if allocated_id else "NULL")
    allocated_tags = col("AllocatedTags")
    b.parsed(
        "AllocatedTags", allocated_tags, parse_tags, "a JSON object of tags", warn_only=True,
        by_distinct_value=source.columnar,
    )

    b.check_values(
        ValueCheck(
            "BillingCurrency",
            currency or "BillingCurrency",
            "an ISO 4217 currency code (e.g. USD)",
            "currency",
            ISO_4217_CODES,
            required=True,
        )
    )
    b.check_values(
        ValueCheck(
            "ChargeCategory",
            category or "ChargeCategory",
            "one of " + ", ".join(sorted(CHARGE_CATEGORIES)),
            "enum",
            CHARGE_CATEGORIES,
            required=True,
        )
    )
    for name in _NAME_COLUMNS:
        spelled = next((c for c in (col(n) for n in dict(_TEXT_COLUMNS).get(name, (name,))) if c), None)
        if spelled:
            kind = "zone" if name == "AvailabilityZone" else "not-a-number"
            b.check_values(ValueCheck(name, spelled, "a name, not a number or date", kind))

    if resource_id:
        b.check_values(ValueCheck("ResourceId", resource_id, RESOURCE_ID_EXPECTED, "resource-id"))
    if allocated_id:
        b.check_values(ValueCheck("AllocatedResourceId", allocated_id, RESOURCE_ID_EXPECTED, "resource-id"))

    version = detect_version(source)
    return b.build(dialect=f"FOCUS {version}", kind="focus-file", focus_version=version, metric="focus")


def _canonical_case(expr: str, allowed: frozenset[str]) -> str:
    """Known values in their canonical spelling (`usage` -> `Usage`); anything else unchanged."""
    cases = " ".join(f"WHEN '{value.lower()}' THEN '{value}'" for value in sorted(allowed))
    return f"(CASE lower({expr}) {cases} ELSE {expr} END)"
