"""Small hand-written charge sets for allocation and tagging tests, loaded into real DuckDB files."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from finops_tui.allocation.effective import TagPolicy, refresh_derived
from finops_tui.allocation.rules import load_rules
from finops_tui.store import Cache, open_cache
from finops_tui.store.sources import Window, begin_window, finish_window

END = dt.date(2026, 11, 26)  # the last day with data; "today" is pinned to the 27th in tests
TODAY = END + dt.timedelta(days=1)


def rid(sub: str, rg: str, name: str) -> str:
    """A VM's id as the cache stores it (lower case)."""
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}".lower()


def _segment(resource: str | None, after: str) -> str | None:
    parts = (resource or "").split("/")
    lowered = [p.lower() for p in parts]
    return parts[lowered.index(after) + 1] if after in lowered else None


@dataclass
class Charge:
    day: dt.date
    resource: str | None  # id; None for charges with no resource (a purchase)
    cost: Decimal
    sub: str | None = None  # default: from the resource id (else sub-a)
    rg: str | None = None  # default: from the resource id
    name: str | None = None
    tags: Mapping[str, str] | None = None
    currency: str = "USD"
    billed: Decimal | None = None
    service: str = "Virtual Machines"
    resource_type: str = "Virtual machine"
    meter: str = "D2s v3"
    category: str = "Usage"
    extra: dict[str, object] = field(default_factory=dict)


def load(path: Path | None, charges: Iterable[Charge], *, aliases: Mapping[str, str] | None = None) -> Cache:
    """Write the charges into a new cache (a file, or in memory with None) and derive resources and tags,
    as an import would: with `aliases` and the rules.toml of the test's config dir."""
    rows = list(charges)
    cache = open_cache(path)
    start = min((c.day for c in rows), default=END)
    end = max((c.day for c in rows), default=END) + dt.timedelta(days=1)
    # Columns set through `Charge.extra` (ConsumedQuantity, PricingCategory, ...): NULL where a charge has none.
    extra = sorted({name for c in rows for name in c.extra})
    with cache.write() as cur:
        sid = begin_window(cur, Window("focus-file", "test", "focus", start, end))
        cur.executemany(
            f"""
            INSERT INTO charges (ChargePeriodStart, ChargePeriodEnd, x_ChargeDate, ResourceId, ResourceName,
                ResourceType, ServiceName, SubAccountId, SubAccountName, x_ResourceGroupName, RegionId,
                BillingCurrency, EffectiveCost, BilledCost, ChargeCategory, x_SkuMeterCategory, x_SkuMeterName,
                Tags, source_id{"".join(f", {name}" for name in extra)})
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'eastus', ?, ?, ?, ?, 'Compute', ?, ?, ?{", ?" * len(extra)})
            """,
            [
                [
                    *_dates(c.day), c.resource.lower() if c.resource else None,
                    c.name or (c.resource.rsplit("/", 1)[-1] if c.resource else None),
                    c.resource_type if c.resource else None, c.service, _sub(c), f"Subscription {_sub(c).upper()}",
                    c.rg or _segment(c.resource, "resourcegroups"), c.currency, c.cost,
                    c.billed if c.billed is not None else c.cost, c.category, c.meter,
                    dict(c.tags) if c.tags is not None else None, sid, *(c.extra.get(name) for name in extra),
                ]
                for c in rows
            ],
        )
        finish_window(cur, sid)
        refresh_derived(cur, TagPolicy(aliases=dict(aliases or {}), rules=tuple(load_rules())))
    return cache


def _dates(day: dt.date) -> tuple[dt.datetime, dt.datetime, dt.date]:
    start = dt.datetime.combine(day, dt.time())
    return start, start + dt.timedelta(days=1), day


def _sub(charge: Charge) -> str:
    return charge.sub or _segment(charge.resource, "subscriptions") or "sub-a"


def days(start: dt.date, count: int) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range(count)]


def fresh_copy(template: Path, folder: Path) -> Path:
    """A copy of a module's template cache for one test to write to (building it once is the slow part)."""
    path = folder / "cache.duckdb"
    shutil.copyfile(template, path)
    return path
