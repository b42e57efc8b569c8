"""Azure cost details / Cost Management exports (EA and MCA, actual and amortized) mapped to FOCUS columns.

Headers are matched case-insensitively, so EA (`Cost`, `ResourceGroup`, `Date`) and MCA spellings
(`costInBillingCurrency`, `resourceGroupName`, `date`, `billingCurrency`, ...) both work. The mapping
follows Microsoft's "Convert Cost Management data to FOCUS" guide (FinOps toolkit), with these choices:

- Metric: an *actual* file fills BilledCost (EffectiveCost NULL), an *amortized* file EffectiveCost
  (BilledCost NULL), so the two never add up. Which one a file is comes from its name (ActualCost /
  AmortizedCost), an export manifest, or else its rows: unused-commitment rows or commitment-covered
  usage with a cost mean amortized; commitment purchases with a cost mean actual; anything else is
  ambiguous and imported as actual, with a note on stderr.
- ChargePeriodStart = Date (MM/DD/YYYY or ISO), ChargePeriodEnd = Date + 1 day; BillingPeriodStart/End
  from BillingPeriodStartDate/EndDate, End + 1 day (FOCUS ends are exclusive).
- ChargeCategory from ChargeType: Usage/Purchase/Credit/Tax as they are; UnusedReservation and
  UnusedSavingsPlan -> Usage with CommitmentDiscountStatus Unused; Refund -> Purchase with ChargeClass
  Correction (Microsoft's mapping, rather than Credit); anything else (RoundingAdjustment...) -> Adjustment.
- PricingCategory from PricingModel: OnDemand -> Standard, Spot -> Dynamic, Reservation/SavingsPlan ->
  Committed. CommitmentDiscountId/Name from benefitId/benefitName, else ReservationId/ReservationName;
  CommitmentDiscountType Reservation (Microsoft.Capacity) or Savings Plan (Microsoft.BillingBenefits),
  Category Usage / Spend; CommitmentDiscountStatus Used for usage priced by a commitment.
- BillingAccountId/Name: EA BillingAccountId/Name; MCA billingProfileId/Name (as Microsoft maps it).
  SubAccountId = '/subscriptions/' + SubscriptionId (lower-case), as Azure's own FOCUS export writes it,
  SubAccountName = SubscriptionName.
- ResourceId lower-cased; ResourceType is the ARM type read from the id (`microsoft.sql/servers/databases`);
  ResourceName from ResourceName, else the id's last segment. x_ResourceGroupName = ResourceGroup,
  x_SkuMeterCategory = MeterCategory, x_SkuMeterName = MeterName, ChargeDescription = Product.
- ServiceName/Category/Subcategory from Services.csv on (ConsumedService, ResourceType), then on the
  ResourceType alone, else ServiceName = MeterCategory with ServiceCategory Other. RegionId/RegionName
  from Regions.csv on ResourceLocation (case-insensitive), else the location itself.
- PricingUnit = PricingUnits.csv DistinctUnits of UnitOfMeasure and PricingQuantity = Quantity /
  PricingBlockSize; ConsumedQuantity/Unit only on usage rows. ListCost = paygCostInBillingCurrency (MCA)
  or PayGPrice x Quantity; ContractedCost = UnitPrice x Quantity (products in double precision: they
  are estimates, unlike the billed amounts, which are parsed exactly).
- ProviderName Microsoft; InvoiceIssuerName PartnerName, else Microsoft; SkuId = ProductId (MCA).
- Tags are JSON without the outer braces (`"a": "b","c": "d"`): wrapped in braces, then read as a map.
"""

from __future__ import annotations

import re

from finops_tui.basis.arm_ids import LOOSE_EXPECTED as RESOURCE_ID_EXPECTED
from finops_tui.ingest import lookups
from finops_tui.ingest.currencies import ISO_4217_CODES
from finops_tui.ingest.files import SourceFile
from finops_tui.ingest.mapping import (
    Mapping,
    MappingBuilder,
    ValueCheck,
    parse_money,
    parse_number,
    parse_timestamp,
)

# Logical column -> the spellings seen in EA, MCA and older exports (matched case-insensitively).
COLUMNS: dict[str, tuple[str, ...]] = {
    "date": ("Date", "UsageDateTime", "UsageDate"),
    "cost": ("CostInBillingCurrency", "Cost", "PreTaxCost"),
    "currency": ("BillingCurrency", "BillingCurrencyCode", "Currency"),
    "billing_account_id": ("BillingAccountId",),
    "billing_account_name": ("BillingAccountName",),
    "billing_profile_id": ("BillingProfileId",),
    "billing_profile_name": ("BillingProfileName",),
    "billing_period_start": ("BillingPeriodStartDate",),
    "billing_period_end": ("BillingPeriodEndDate",),
    "subscription_id": ("SubscriptionId", "SubscriptionGuid"),
    "subscription_name": ("SubscriptionName",),
    "resource_group": ("ResourceGroup", "ResourceGroupName"),
    "resource_id": ("ResourceId", "InstanceId", "InstanceName"),
    "resource_name": ("ResourceName",),
    "location": ("ResourceLocation", "Location"),
    "consumed_service": ("ConsumedService",),
    "meter_category": ("MeterCategory",),
    "meter_name": ("MeterName",),
    "quantity": ("Quantity",),
    "unit_of_measure": ("UnitOfMeasure",),
    "unit_price": ("UnitPrice",),
    "payg_price": ("PayGPrice",),
    "payg_cost": ("PaygCostInBillingCurrency",),
    "charge_type": ("ChargeType",),
    "pricing_model": ("PricingModel",),
    "frequency": ("Frequency",),
    "reservation_id": ("ReservationId",),
    "reservation_name": ("ReservationName",),
    "benefit_id": ("BenefitId",),
    "benefit_name": ("BenefitName",),
    "tags": ("Tags",),
    "product": ("ProductName", "Product"),
    "product_id": ("ProductId",),
    "publisher": ("PublisherName",),
    "partner": ("PartnerName",),
    "zone": ("AvailabilityZone",),
}

_ACTUAL_NAME = re.compile(r"actual", re.IGNORECASE)
_AMORTIZED_NAME = re.compile(r"amorti[sz]ed", re.IGNORECASE)
_DATE_EXPECTED = "a date (MM/DD/YYYY or YYYY-MM-DD)"
_MONEY_EXPECTED = "a decimal number (e.g. 12.34 or 1.2E-05)"
_COMMITMENT_MODELS = "('reservation', 'savingsplan', 'savings plan')"


def looks_like_azure_export(source: SourceFile) -> bool:
    present = {name for name, spellings in COLUMNS.items() if source.has(*spellings)}
    return {"date", "cost"} <= present and bool(present & {"meter_category", "consumed_service", "charge_type"})


def is_mca(source: SourceFile) -> bool:
    return source.has("CostInBillingCurrency")


def metric_from_name(name: str) -> str | None:
    """actual / amortized when a file or export name says so (ActualCost, AmortizedCost, ...)."""
    if _AMORTIZED_NAME.search(name):
        return "amortized"
    if _ACTUAL_NAME.search(name):
        return "actual"
    return None


def _parse_date(expr: str, source_type: str) -> tuple[str, bool]:
    """MM/DD/YYYY (what the portal and exports write) or ISO, truncated to the day."""
    if source_type.startswith(("TIMESTAMP", "DATE")):
        return f"CAST(CAST({expr} AS DATE) AS TIMESTAMP)", False
    iso, _ = parse_timestamp(expr, source_type)
    return f"CAST(CAST(coalesce(try_strptime({expr}, '%m/%d/%Y'), {iso}) AS DATE) AS TIMESTAMP)", True


def _braced_tags(expr: str) -> str:
    """Tags without the outer braces (`"a": "b","c": "d"`), or with them, as a JSON object."""
    return f"CASE WHEN starts_with(ltrim({expr}), '{{') THEN {expr} ELSE '{{' || {expr} || '}}' END"


def _resource_type_sql(resource_id: str) -> str:
    """ARM type from an id: the namespace after the last /providers/, then every other segment."""
    rest = f"regexp_extract(lower({resource_id}), '.*/providers/(.+)$', 1)"
    parts = f"string_split(rtrim({rest}, '/'), '/')"
    return (
        f"CASE WHEN {rest} <> '' THEN {parts}[1] || "
        f"list_aggregate(list_transform(list_filter({parts}[2:], lambda x, i: i % 2 = 1), lambda t: '/' || t), "
        f"'string_agg', '') END"
    )


def build_mapping(source: SourceFile, metric: str | None) -> Mapping:
    """The SQL mapping of an Azure cost details file; `metric` None leaves both cost columns filled."""
    b = MappingBuilder(source)
    col = {name: source.column(*spellings) for name, spellings in COLUMNS.items()}
    ref = {name: b.ref(spelled) for name, spelled in col.items()}
    mca = is_mca(source)

    b.parsed("ChargePeriodStart", col["date"], _parse_date, _DATE_EXPECTED, required=True, date_range=True)
    b.parsed("BillingPeriodStart", col["billing_period_start"], _parse_date, _DATE_EXPECTED, date_range=True)
    b.parsed("billing_period_end", col["billing_period_end"], _parse_date, _DATE_EXPECTED, date_range=True)
    b.parsed("cost", col["cost"], parse_money, _MONEY_EXPECTED, required=True)
    b.parsed("quantity", col["quantity"], parse_number, "a number")
    for name in ("unit_price", "payg_price", "payg_cost"):
        b.parsed(name, col[name], parse_money, _MONEY_EXPECTED)
    for name in ("charge_type", "pricing_model", "frequency"):
        b.value(name, f"lower(trim({ref[name]}))")
    b.tag_set(col["tags"], 'tags as JSON ("key": "value", ...)', json_text=_braced_tags)

    service = "coalesce(sp.ServiceName, st.ServiceName)"
    b.value("ServiceName", f"coalesce({service}, {ref['meter_category']})")
    b.value(
        "ServiceCategory",
        "CASE WHEN sp.ServiceName IS NOT NULL THEN sp.ServiceCategory "
        "WHEN st.ServiceName IS NOT NULL THEN st.ServiceCategory ELSE 'Other' END",
    )
    b.value(
        "ServiceSubcategory",
        "CASE WHEN sp.ServiceName IS NOT NULL THEN sp.ServiceSubcategory ELSE st.ServiceSubcategory END",
    )
    b.value("RegionId", f"coalesce(rg.RegionId, nullif(replace(lower({ref['location']}), ' ', ''), ''))")
    b.value("RegionName", f"coalesce(rg.RegionName, {ref['location']})")
    b.value("block_size", "coalesce(pu.PricingBlockSize, 1)")
    b.value("pricing_unit", f"coalesce(pu.DistinctUnits, {ref['unit_of_measure']})")
    b.value("resource_type", "src._resource_type")

    plain = {
        "BillingAccountId": _first(ref, "billing_profile_id", "billing_account_id")
        if mca
        else ref["billing_account_id"],
        "BillingAccountName": _first(ref, "billing_profile_name", "billing_account_name")
        if mca
        else ref["billing_account_name"],
        "BillingCurrency": f"upper(trim({ref['currency']}))",
        "SubAccountId": f"CASE WHEN nullif(trim({ref['subscription_id']}), '') IS NOT NULL "
        f"THEN '/subscriptions/' || lower(trim({ref['subscription_id']})) END",
        "SubAccountName": ref["subscription_name"],
        "ChargeDescription": ref["product"],
        "PublisherName": ref["publisher"],
        "InvoiceIssuerName": f"coalesce({ref['partner']}, 'Microsoft')",
        "resource_id": ref["resource_id"],
        "ResourceName": ref["resource_name"],
        "AvailabilityZone": ref["zone"],
        "benefit_id": ref["benefit_id"],
        "reservation_id": ref["reservation_id"],
        "CommitmentDiscountName": _first(ref, "benefit_name", "reservation_name"),
        "SkuId": ref["product_id"],
        "x_ResourceGroupName": ref["resource_group"],
        "x_SkuMeterCategory": ref["meter_category"],
        "x_SkuMeterName": ref["meter_name"],
    }
    for alias, sql in plain.items():
        b.value(alias, sql)

    b.outer.update(_outer_columns(metric, has_payg_cost=col["payg_cost"] is not None))

    b.check_values(
        ValueCheck(
            "BillingCurrency",
            col["currency"] or "BillingCurrency",
            "an ISO 4217 currency code (e.g. USD)",
            "currency",
            ISO_4217_CODES,
            required=True,
        )
    )
    for column, logical in (
        ("AvailabilityZone", "zone"),
        ("RegionName", "location"),
        ("x_SkuMeterCategory", "meter_category"),
    ):
        if col[logical]:
            kind = "zone" if column == "AvailabilityZone" else "not-a-number"
            b.check_values(ValueCheck(column, col[logical] or column, "a name, not a number or date", kind))

    if col["resource_id"]:
        # Checked on distinct values, under the charges column's name (see importer._invalid_values).
        b.value("ResourceId", f"lower({ref['resource_id']})")
        b.check_values(ValueCheck("ResourceId", col["resource_id"], RESOURCE_ID_EXPECTED, "resource-id"))

    joins = (
        f"LEFT JOIN {lookups.SERVICES_BY_PAIR} sp ON sp.consumed_service = src._consumed_service "
        f"AND sp.resource_type = src._resource_type "
        f"LEFT JOIN {lookups.SERVICES_BY_TYPE} st ON st.resource_type = src._resource_type "
        f"LEFT JOIN {lookups.REGIONS} rg ON rg.original = src._location "
        f"LEFT JOIN {lookups.PRICING_UNITS} pu ON pu.unit_of_measure = src._unit_of_measure"
    )
    mapping = b.build(
        dialect=f"Azure {'MCA' if mca else 'EA'} cost details",
        kind="azure-export",
        focus_version=None,
        metric=metric,
        joins=joins,
    )
    mapping.prepare = {
        "_resource_type": _resource_type_sql(ref["resource_id"]) if col["resource_id"] else "NULL",
        "_consumed_service": f"lower({ref['consumed_service']})",
        "_location": f"lower({ref['location']})",
        "_unit_of_measure": f"lower(trim({ref['unit_of_measure']}))",
    }
    return mapping


def _first(ref: dict[str, str], *names: str) -> str:
    return f"coalesce({', '.join(ref[name] for name in names)})"


def _outer_columns(metric: str | None, *, has_payg_cost: bool) -> dict[str, str]:
    usage = "(charge_type IS NULL OR charge_type = 'usage')"
    commitment_type = (
        "CASE WHEN lower(benefit_id) LIKE '%/microsoft.capacity/%' THEN 'Reservation' "
        "WHEN lower(benefit_id) LIKE '%/microsoft.billingbenefits/%' THEN 'Savings Plan' "
        "WHEN reservation_id IS NOT NULL OR pricing_model = 'reservation' THEN 'Reservation' "
        "WHEN pricing_model IN ('savingsplan', 'savings plan') THEN 'Savings Plan' END"
    )
    list_cost = "payg_cost" if has_payg_cost else "TRY_CAST(CAST(payg_price AS DOUBLE) * quantity AS DECIMAL(38,12))"
    return {
        "ChargePeriodEnd": "ChargePeriodStart + INTERVAL 1 DAY",
        "BillingPeriodEnd": "billing_period_end + INTERVAL 1 DAY",
        "BilledCost": "NULL" if metric == "amortized" else "cost",
        "EffectiveCost": "NULL" if metric == "actual" else "cost",
        "ListCost": list_cost,
        "ContractedCost": "TRY_CAST(CAST(unit_price AS DOUBLE) * quantity AS DECIMAL(38,12))",
        "ChargeCategory": (
            "CASE WHEN charge_type IS NULL OR charge_type IN ('usage', 'unusedreservation', 'unusedsavingsplan') "
            "THEN 'Usage' WHEN charge_type IN ('purchase', 'refund') THEN 'Purchase' WHEN charge_type = 'credit' "
            "THEN 'Credit' WHEN charge_type = 'tax' THEN 'Tax' ELSE 'Adjustment' END"
        ),
        "ChargeClass": "CASE WHEN charge_type = 'refund' THEN 'Correction' END",
        "ChargeFrequency": (
            "CASE frequency WHEN 'onetime' THEN 'One-Time' WHEN 'recurring' THEN 'Recurring' "
            "WHEN 'usagebased' THEN 'Usage-Based' WHEN NULL THEN NULL ELSE 'Other' END"
        ),
        "PricingCategory": (
            "CASE WHEN pricing_model = 'ondemand' THEN 'Standard' WHEN pricing_model = 'spot' THEN 'Dynamic' "
            f"WHEN pricing_model IN {_COMMITMENT_MODELS} THEN 'Committed' END"
        ),
        "PricingQuantity": "quantity / block_size",
        "PricingUnit": "pricing_unit",
        "ConsumedQuantity": f"CASE WHEN {usage} THEN quantity END",
        "ConsumedUnit": f"CASE WHEN {usage} THEN pricing_unit END",
        "ProviderName": "'Microsoft'",
        "ResourceId": "lower(resource_id)",
        "ResourceName": "coalesce(ResourceName, nullif(regexp_extract(rtrim(resource_id, '/'), '[^/]+$'), ''))",
        "ResourceType": "resource_type",
        "CommitmentDiscountId": "coalesce(benefit_id, reservation_id)",
        "CommitmentDiscountType": commitment_type,
        "CommitmentDiscountCategory": (
            f"CASE ({commitment_type}) WHEN 'Reservation' THEN 'Usage' WHEN 'Savings Plan' THEN 'Spend' END"
        ),
        "CommitmentDiscountStatus": (
            "CASE WHEN charge_type IN ('unusedreservation', 'unusedsavingsplan') THEN 'Unused' "
            f"WHEN charge_type = 'usage' AND pricing_model IN {_COMMITMENT_MODELS} THEN 'Used' END"
        ),
        "SkuPriceId": "NULL",
    }
