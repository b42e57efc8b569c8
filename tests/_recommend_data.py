"""Small crafted estates for the recommendation tests: daily charges per resource, written to a real cache."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from finops_tui.allocation.effective import TagPolicy, refresh_derived
from finops_tui.store import Cache, open_cache

END = dt.date(2026, 3, 31)

ARM_TYPES = {
    "Virtual machine": "microsoft.compute/virtualmachines",
    "Disk": "microsoft.compute/disks",
    "Public IP address": "microsoft.network/publicipaddresses",
    "Snapshot": "microsoft.compute/snapshots",
    "Storage account": "microsoft.storage/storageaccounts",
    "Log Analytics workspace": "microsoft.operationalinsights/workspaces",
    "SQL database": "microsoft.sql/servers/databases",
}


@dataclass
class Res:
    """One resource of a crafted estate; `cost(day)` gives its cost that day (None: no charge)."""

    name: str
    cost: Callable[[dt.date], float | None]
    sub: str = "sub-1"
    rg: str = "rg-a"
    service: str = "Virtual Machines"
    rtype: str = "Virtual machine"
    meter: Callable[[dt.date], str] | str = "D4s v5"
    meter_category: str | None = None
    tags: dict[str, str] = field(default_factory=lambda: {"team": "payments"})
    currency: str = "USD"
    pricing: str = "Standard"
    region: str = "eastus"
    commitment_id: str | None = None
    commitment_status: Callable[[dt.date], str | None] | None = None

    @property
    def resource_id(self) -> str:
        arm_type = ARM_TYPES[self.rtype]
        return f"/subscriptions/{self.sub}/resourcegroups/{self.rg}/providers/{arm_type}/{self.name}".lower()


def days(end: dt.date = END, count: int = 120) -> list[dt.date]:
    return [end - dt.timedelta(days=count - 1 - i) for i in range(count)]


def steady(level: float, *, noise: float = 0.03, weekend: float = 0.8, seed: int = 1) -> Callable[[dt.date], float]:
    """A daily cost around `level` with a weekday pattern and a little noise (deterministic)."""

    def cost(day: dt.date) -> float:
        rng = random.Random(f"{seed}-{day.isoformat()}")
        factor = weekend if day.weekday() >= 5 else 1.0
        return round(level * factor * (1 + rng.uniform(-noise, noise)), 4)

    return cost


def charges(resources: Iterable[Res], span: Iterable[dt.date]) -> pa.Table:
    cols: dict[str, list] = {name: [] for name in (
        "ChargePeriodStart", "ChargePeriodEnd", "x_ChargeDate", "BilledCost", "EffectiveCost", "BillingCurrency",
        "SubAccountId", "SubAccountName", "x_ResourceGroupName", "ServiceName", "ResourceId", "ResourceName",
        "ResourceType", "x_SkuMeterName", "x_SkuMeterCategory", "SkuId", "tag_keys", "tag_values",
        "PricingCategory", "ChargeCategory", "RegionId", "CommitmentDiscountId", "CommitmentDiscountName",
        "CommitmentDiscountStatus", "CommitmentDiscountType",
    )}
    span = list(span)
    for res in resources:
        for day in span:
            amount = res.cost(day)
            if amount is None:
                continue
            meter = res.meter(day) if callable(res.meter) else res.meter
            start = dt.datetime.combine(day, dt.time())
            status = res.commitment_status(day) if res.commitment_status else None
            row = {
                "ChargePeriodStart": start, "ChargePeriodEnd": start + dt.timedelta(days=1), "x_ChargeDate": day,
                "BilledCost": _money(amount), "EffectiveCost": _money(amount),
                "BillingCurrency": res.currency, "SubAccountId": res.sub, "SubAccountName": res.sub.upper(),
                "x_ResourceGroupName": res.rg, "ServiceName": res.service,
                "ResourceId": None if status == "Unused" else res.resource_id,
                "ResourceName": res.name, "ResourceType": res.rtype, "x_SkuMeterName": meter,
                "x_SkuMeterCategory": res.meter_category or ("Virtual Machines" if res.rtype == "Virtual machine"
                                                              else res.service),
                "SkuId": meter, "tag_keys": list(res.tags), "tag_values": list(res.tags.values()),
                "PricingCategory": "Committed" if status == "Used" else res.pricing, "ChargeCategory": "Usage",
                "RegionId": res.region, "CommitmentDiscountId": res.commitment_id if status else None,
                "CommitmentDiscountName": "ri-1" if status else None, "CommitmentDiscountStatus": status,
                "CommitmentDiscountType": "Reservation" if status else None,
            }
            for key, value in row.items():
                cols[key].append(value)
    money = pa.decimal128(38, 12)
    types = {"BilledCost": money, "EffectiveCost": money, "tag_keys": pa.list_(pa.string()),
             "tag_values": pa.list_(pa.string()), "x_ChargeDate": pa.date32(), "ChargePeriodStart": pa.timestamp("us"),
             "ChargePeriodEnd": pa.timestamp("us")}
    return pa.table({k: pa.array(v, type=types.get(k, pa.string())) for k, v in cols.items()})


def add(cache: Cache, resources: Iterable[Res], span: Iterable[dt.date] | None = None) -> None:
    """Insert the resources' daily charges and rebuild resources and effective tags, as an import does."""
    table = charges(resources, days() if span is None else span)
    with cache.write() as cur:
        cur.register("crafted", table)
        cur.execute(
            """
            INSERT INTO charges BY NAME
            SELECT * EXCLUDE (tag_keys, tag_values), map(tag_keys, tag_values) AS Tags FROM crafted
            """
        )
        cur.unregister("crafted")
        refresh_derived(cur, TagPolicy())


def build(path: Path, resources: Iterable[Res], span: Iterable[dt.date] | None = None) -> Cache:
    cache = open_cache(path)
    add(cache, resources, span)
    return cache


def _money(amount: float) -> Decimal:
    return Decimal(str(amount)).quantize(Decimal("0.000001"))
