"""The demo estate: a deterministic synthetic Azure bill (13 months, ~2,000 resources) with planted problems."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import json
import math
import os
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal
from importlib import resources as package_files
from pathlib import Path
from typing import Any

import duckdb

from finops_tui.allocation.effective import TagPolicy, refresh_derived
from finops_tui.errors import UserError
from finops_tui.store.cache import open_cache
from finops_tui.store.schema import MONEY_TYPE
from finops_tui.store.sources import DEMO_KIND, Window, begin_window, finish_window

# Bump whenever the generated figures change, so an old demo cache is rebuilt instead of reused.
GENERATOR_VERSION = 2  # 2: the monthly support plan charge (shared costs)

DEFAULT_MONTHS = 13
DEFAULT_RESOURCES = 2000
DEFAULT_SEED = 42

CURRENCY = "USD"
BILLING_ACCOUNT_NUMBER = "8611537"
BILLING_ACCOUNT_ID = f"/providers/Microsoft.Billing/billingAccounts/{BILLING_ACCOUNT_NUMBER}"
BILLING_ACCOUNT_NAME = "Contoso Retail Ltd"
# The scope a demo window is registered under, spelled as the sync spells billing-account scopes.
DEMO_SCOPE = f"providers/microsoft.billing/billingaccounts/{BILLING_ACCOUNT_NUMBER}"

_ID_NAMESPACE = uuid.UUID("6f1c3b9e-0d55-4c4e-9a55-3f5b8d2e7a10")


def _guid(name: str) -> str:
    """A stable lower-case GUID for a name: ids must not depend on the seed, so PLANTED can name them."""
    return str(uuid.uuid5(_ID_NAMESPACE, name))


def _hex(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


# --------------------------------------------------------------------------------------------------
# Estate layout: subscriptions, teams, regions, meters, resource kinds, resource groups
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    name: str

    @property
    def guid(self) -> str:
        return _guid(f"subscription:{self.name}")

    @property
    def sub_account_id(self) -> str:
        """FOCUS SubAccountId as Azure's FOCUS export writes it."""
        return f"/subscriptions/{self.guid}"


SUBSCRIPTIONS: dict[str, Subscription] = {
    name: Subscription(name) for name in ("prod-core", "prod-data", "shared-platform", "staging", "dev-sandbox")
}

# team -> cost centre; platform and sre share one (real cost centres rarely map one-to-one).
TEAM_COST_CENTERS: dict[str, str] = {
    "payments": "CC-1001",
    "checkout": "CC-1002",
    "catalog": "CC-1003",
    "search": "CC-1004",
    "identity": "CC-1005",
    "mobile-api": "CC-1006",
    "web-frontend": "CC-1007",
    "notifications": "CC-1008",
    "fulfillment": "CC-1009",
    "data-platform": "CC-1010",
    "analytics": "CC-1011",
    "ml-platform": "CC-1012",
    "platform": "CC-1013",
    "sre": "CC-1013",
    "security": "CC-1014",
}
TEAMS = tuple(TEAM_COST_CENTERS)

# RegionId -> (RegionName, meter region as Azure prints it in descriptions, list-price factor vs East US)
REGIONS: dict[str, tuple[str, str, float]] = {
    "eastus": ("East US", "US East", 1.0),
    "eastus2": ("East US 2", "US East 2", 0.98),
    "westeurope": ("West Europe", "EU West", 1.12),
    "uksouth": ("UK South", "UK South", 1.10),
}

# Azure UnitOfMeasure -> (FOCUS PricingUnit, block size), as in data/PricingUnits.csv.
UNITS: dict[str, tuple[str, int]] = {
    "1 Hour": ("Hours", 1),
    "1/Month": ("Units/Month", 1),
    "1 GB/Month": ("GB/Month", 1),
    "1 GB": ("GB", 1),
    "1 GB Second": ("GB Seconds", 1),
    "100/Hour": ("Units/Hour", 100),
    "10K": ("Units", 10000),
    "1K": ("Units", 1000),
}


@dataclass(frozen=True)
class Meter:
    """One Azure meter: x_SkuMeterCategory / x_SkuMeterName, unit of measure and East US list price."""

    category: str
    name: str
    unit: str  # key of UNITS
    list_price: float  # USD per unit of measure

    @property
    def sku_id(self) -> str:
        """A product id shaped like Azure's (`DZH318Z0BQ4L/00F4`)."""
        code = hashlib.sha256(f"sku:{self.category}:{self.name}".encode()).hexdigest().upper()
        return f"DZH3{code[:8]}/{code[8:12]}"

    def sku_price_id(self, region: str) -> str:
        return _guid(f"meter:{self.category}:{self.name}:{region}")

    def description(self, region: str) -> str:
        return f"{self.category} - {self.name} - {REGIONS[region][1]}"


def _vm(name: str, hourly: float) -> Meter:
    return Meter("Virtual Machines", name, "1 Hour", hourly)


VM_PROD = ((_vm("D4s v5", 0.192), 4), (_vm("D8s v5", 0.384), 3), (_vm("D16s v5", 0.768), 1),
           (_vm("E8s v5", 0.504), 1), (_vm("E16s v5", 1.008), 0.5), (_vm("F8s v2", 0.338), 1))
VM_NONPROD = ((_vm("B2ms", 0.0832), 3), (_vm("D2s v5", 0.096), 3), (_vm("D4s v5", 0.192), 2))
VM_GPU_SPOT = ((_vm("NC4as T4 v3 Spot", 0.526), 2), (_vm("NC6s v3 Spot", 3.06), 1))
RESERVED_VM = _vm("D16s v5", 0.768)
GPU_VM = _vm("NC24ads A100 v4", 3.673)


def _disk(name: str, monthly: float) -> Meter:
    return Meter("Storage", f"{name} LRS Disk", "1/Month", monthly)


DISK_OS_PROD = ((_disk("P10", 19.71), 3), (_disk("P20", 38.02), 1))
DISK_OS_NONPROD = ((_disk("E10", 9.60), 2), (_disk("S10", 5.89), 1))
DISK_DATA = ((_disk("P20", 38.02), 2), (_disk("P30", 135.17), 2), (_disk("P40", 259.05), 1), (_disk("E10", 9.60), 1))


@dataclass(frozen=True)
class Kind:
    """A kind of resource: its ARM type, meters, daily quantity range and how its usage moves."""

    key: str
    resource_type: str
    consumed_service: str  # with resource_type, the key into data/Services.csv
    path: str  # ARM provider path after `/providers/`; {name} and {rg} are filled in
    name: str  # name template; {rg} is the group name without `rg-`, {n} a counter, {hex} a stable suffix
    meters: tuple[tuple[Meter, float], ...]
    qty: tuple[float, float]  # daily quantity in units of measure (per month for monthly units), log-uniform
    noise: float = 0.0  # ± day-to-day jitter
    weekend_prod: float = 1.0
    weekend_nonprod: float = 1.0  # dev/staging machines are shut down or idle at weekends
    scales: bool = True  # usage-based: follows the team's growth trend (fixed-capacity kinds do not)


KINDS: dict[str, Kind] = {k.key: k for k in (
    Kind("vm", "microsoft.compute/virtualmachines", "microsoft.compute", "microsoft.compute/virtualmachines/{name}",
         "vm-{rg}-{n:02d}", VM_PROD, (24, 24), weekend_nonprod=0.3, scales=False),
    Kind("vmss", "microsoft.compute/virtualmachinescalesets", "microsoft.compute",
         "microsoft.compute/virtualmachinescalesets/{name}", "aks-pool{n}-{digits}-vmss",
         ((_vm("D8s v5", 0.384), 1),), (24 * 3, 24 * 10), noise=0.08, weekend_nonprod=0.5),
    Kind("disk", "microsoft.compute/disks", "microsoft.compute", "microsoft.compute/disks/{name}",
         "disk-{rg}-{n:02d}", DISK_DATA, (1, 1), scales=False),
    Kind("storage", "microsoft.storage/storageaccounts", "microsoft.storage",
         "microsoft.storage/storageaccounts/{name}", "st{rgalnum}{hex}",
         ((Meter("Storage", "Hot LRS Data Stored", "1 GB/Month", 0.0208), 3),
          (Meter("Storage", "Hot GRS Data Stored", "1 GB/Month", 0.0458), 1),
          (Meter("Storage", "Cool LRS Data Stored", "1 GB/Month", 0.0152), 1)),
         (100, 30_000), noise=0.02),
    Kind("sql", "microsoft.sql/servers/databases", "microsoft.sql",
         "microsoft.sql/servers/sql-{rg}/databases/{name}", "db-{rg}-{n:02d}",
         ((Meter("SQL Database", "General Purpose - Compute Gen5 vCore", "1 Hour", 0.2522), 3),
          (Meter("SQL Database", "Business Critical - Compute Gen5 vCore", "1 Hour", 0.6784), 0.5)),
         (24 * 1, 24 * 4), noise=0.01),
    Kind("cosmos", "microsoft.documentdb/databaseaccounts", "microsoft.documentdb",
         "microsoft.documentdb/databaseaccounts/{name}", "cosmos-{rg}-{n:02d}",
         ((Meter("Azure Cosmos DB", "100 RU/s", "100/Hour", 0.008), 1),), (24 * 4, 24 * 100), noise=0.12),
    Kind("aks", "microsoft.containerservice/managedclusters", "microsoft.containerservice",
         "microsoft.containerservice/managedclusters/{name}", "aks-{rg}",
         ((Meter("Azure Kubernetes Service", "Standard Uptime SLA", "1 Hour", 0.10), 1),), (24, 24), scales=False),
    Kind("plan", "microsoft.web/serverfarms", "microsoft.web", "microsoft.web/serverfarms/{name}",
         "asp-{rg}-{n:02d}",
         ((Meter("Azure App Service", "P1 v3 App", "1 Hour", 0.169), 3),
          (Meter("Azure App Service", "P2 v3 App", "1 Hour", 0.338), 2),
          (Meter("Azure App Service", "S1 App", "1 Hour", 0.10), 2)),
         (24, 24 * 2.5), scales=False),
    Kind("func", "microsoft.web/sites", "functions", "microsoft.web/sites/{name}", "func-{rg}-{n:02d}",
         ((Meter("Functions", "Standard Execution Time", "1 GB Second", 0.000016), 1),),
         (10_000, 800_000), noise=0.3, weekend_prod=0.8, weekend_nonprod=0.5),
    Kind("law", "microsoft.operationalinsights/workspaces", "microsoft.operationalinsights",
         "microsoft.operationalinsights/workspaces/{name}", "log-{rg}-{n:02d}",
         ((Meter("Log Analytics", "Analytics Logs Data Ingestion", "1 GB", 2.30), 1),),
         (0.2, 12), noise=0.2, weekend_prod=0.85, weekend_nonprod=0.6),
    Kind("kv", "microsoft.keyvault/vaults", "microsoft.keyvault", "microsoft.keyvault/vaults/{name}",
         "kv-{rg}-{hex4}", ((Meter("Key Vault", "Operations", "10K", 0.03), 1),), (2, 120), noise=0.3),
    Kind("lb", "microsoft.network/loadbalancers", "microsoft.network", "microsoft.network/loadbalancers/{name}",
         "lb-{rg}-{n:02d}",
         ((Meter("Load Balancer", "Standard Included LB Rules and Outbound Rules", "1 Hour", 0.025), 1),),
         (24, 24 * 2), noise=0.05, scales=False),
    Kind("pip", "microsoft.network/publicipaddresses", "microsoft.network",
         "microsoft.network/publicipaddresses/{name}", "pip-{rg}-{n:02d}",
         ((Meter("Virtual Network", "Standard IPv4 Static Public IP", "1 Hour", 0.005), 1),), (24, 24), scales=False),
    Kind("agw", "microsoft.network/applicationgateways", "microsoft.network",
         "microsoft.network/applicationgateways/{name}", "agw-{rg}-{n:02d}",
         ((Meter("Application Gateway", "Standard_v2 Fixed Cost", "1 Hour", 0.246), 1),
          (Meter("Application Gateway", "WAF_v2 Fixed Cost", "1 Hour", 0.443), 1)),
         (24, 24), scales=False),
    Kind("redis", "microsoft.cache/redis", "microsoft.cache", "microsoft.cache/redis/{name}", "redis-{rg}-{n:02d}",
         ((Meter("Redis Cache", "C2 Cache Instance", "1 Hour", 0.222), 2),
          (Meter("Redis Cache", "P1 Cache Instance", "1 Hour", 0.554), 1)),
         (24, 24 * 2), scales=False),
    Kind("backup", "microsoft.dataprotection/backupvaults", "microsoft.dataprotection",
         "microsoft.dataprotection/backupvaults/{name}", "bvault-{rg}-{n:02d}",
         ((Meter("Backup", "LRS Data Stored", "1 GB/Month", 0.0224), 1),), (500, 30_000), noise=0.02),
    Kind("evh", "microsoft.eventhub/namespaces", "microsoft.eventhub", "microsoft.eventhub/namespaces/{name}",
         "evhns-{rg}-{n:02d}", ((Meter("Event Hubs", "Standard Throughput Unit", "1 Hour", 0.03), 1),),
         (24, 24 * 20), noise=0.1),
    Kind("oai", "microsoft.cognitiveservices/accounts", "microsoft.cognitiveservices",
         "microsoft.cognitiveservices/accounts/{name}", "oai-{rg}-{n:02d}",
         ((Meter("Cognitive Services", "gpt-4o 0806 Input global Tokens", "1K", 0.0025), 2),
          (Meter("Cognitive Services", "gpt-4o 0806 Output global Tokens", "1K", 0.01), 1)),
         (400, 20_000), noise=0.35, weekend_prod=0.7, weekend_nonprod=0.3),
)}


@dataclass(frozen=True)
class ResourceGroupSpec:
    """A resource group: who owns it, where it lives, what it holds and how badly it is tagged."""

    name: str
    subscription: str
    team: str | None  # the real owner; None for groups nobody claims
    env: str
    region: str
    weight: int  # share of filler resources (0: only the planted ones)
    mix: dict[str, float]  # kind -> weight
    untagged: bool = False  # the whole group carries no team tag
    team_keys: tuple[tuple[str, float], ...] = (("team", 1.0),)
    team_values: tuple[tuple[str, float], ...] = ()  # misspelled spellings of the team and their weights
    extra_tags: tuple[tuple[str, str], ...] = ()
    growth: float = 0.002  # weekly growth of usage-based kinds
    spot: bool = False  # VMs run on spot (PricingCategory Dynamic)
    names: tuple[tuple[str, str], ...] = ()  # kind -> name template, where the group names things its own way
    max_fillers: int | None = None  # Azure's own default groups stay small however large the estate

    @property
    def short(self) -> str:
        return self.name.removeprefix("rg-")


_AKS_TAGS = (("aks-managed-cluster-name", "aks-prod"), ("aks-managed-cluster-rg", "rg-aks-prod"))
_AKS_NAMES = (("disk", "pvc-{uuid}"), ("pip", "kubernetes-{hex}"))
# The payments team writes `Team` and cannot agree on its own name; data-platform lost its hyphen.
_PAYMENTS_KEYS = (("Team", 0.7), ("team", 0.3))
_PAYMENTS_VALUES = (("payments", 0.75), ("payment", 0.15), ("Payments", 0.10))
_DATA_VALUES = (("data-platform", 0.8), ("dataplatform", 0.2))
_DATA_GROWTH = 0.02
_ML_GROWTH = 0.035

RESOURCE_GROUPS: tuple[ResourceGroupSpec, ...] = (
    # prod-core
    ResourceGroupSpec("rg-payments-prod", "prod-core", "payments", "prod", "eastus", 3,
                      {"vm": 3, "sql": 2, "plan": 2, "redis": 1, "kv": 1, "storage": 1, "law": 1, "func": 1},
                      team_keys=_PAYMENTS_KEYS, team_values=_PAYMENTS_VALUES),
    ResourceGroupSpec("rg-payments-prod-weu", "prod-core", "payments", "prod", "westeurope", 1,
                      {"vm": 2, "sql": 1, "plan": 1, "kv": 1, "storage": 1},
                      team_keys=_PAYMENTS_KEYS, team_values=_PAYMENTS_VALUES),
    ResourceGroupSpec("rg-checkout-web", "prod-core", "checkout", "prod", "eastus", 2,
                      {"plan": 3, "func": 2, "redis": 1, "storage": 1, "kv": 1, "agw": 1, "pip": 1}),
    ResourceGroupSpec("rg-checkout-api", "prod-core", "checkout", "prod", "eastus", 2,
                      {"vm": 3, "sql": 1, "redis": 1, "kv": 1, "lb": 1}),
    ResourceGroupSpec("rg-catalog-prod", "prod-core", "catalog", "prod", "eastus", 2,
                      {"vm": 2, "cosmos": 2, "storage": 1, "redis": 1, "func": 1}),
    ResourceGroupSpec("rg-search-prod", "prod-core", "search", "prod", "eastus", 2,
                      {"vm": 2, "law": 1, "storage": 1, "cosmos": 1}, growth=0.01),
    ResourceGroupSpec("rg-identity-prod", "prod-core", "identity", "prod", "eastus", 1,
                      {"plan": 2, "sql": 1, "kv": 2, "redis": 1}),
    ResourceGroupSpec("rg-mobile-api-prod", "prod-core", "mobile-api", "prod", "westeurope", 1,
                      {"plan": 2, "func": 2, "cosmos": 1, "evh": 1}),
    ResourceGroupSpec("rg-web-frontend-prod", "prod-core", "web-frontend", "prod", "eastus", 1,
                      {"plan": 2, "storage": 2, "agw": 1, "pip": 1}),
    ResourceGroupSpec("rg-notifications-prod", "prod-core", "notifications", "prod", "eastus", 1,
                      {"func": 3, "evh": 2, "storage": 1}),
    ResourceGroupSpec("rg-fulfillment-prod", "prod-core", "fulfillment", "prod", "eastus2", 1,
                      {"vm": 2, "sql": 2, "evh": 1}),
    ResourceGroupSpec("rg-aks-prod", "prod-core", "platform", "prod", "eastus", 1, {"law": 1, "kv": 1}),
    ResourceGroupSpec("mc_rg-aks-prod_aks-prod_eastus", "prod-core", "platform", "prod", "eastus", 2,
                      {"disk": 6, "pip": 1, "vmss": 0.3}, untagged=True, extra_tags=_AKS_TAGS, names=_AKS_NAMES),
    ResourceGroupSpec("rg-legacy-batch", "prod-core", "fulfillment", "prod", "eastus", 0, {}),
    # prod-data
    ResourceGroupSpec("rg-data-lake", "prod-data", "data-platform", "prod", "eastus2", 3,
                      {"storage": 4, "backup": 1}, team_values=_DATA_VALUES, growth=_DATA_GROWTH),
    ResourceGroupSpec("rg-data-ingest", "prod-data", "data-platform", "prod", "eastus2", 2,
                      {"evh": 2, "func": 2, "storage": 1, "vm": 1}, team_keys=(("TEAM", 0.8), ("team", 0.2)),
                      team_values=_DATA_VALUES, growth=_DATA_GROWTH),
    ResourceGroupSpec("rg-data-warehouse", "prod-data", "analytics", "prod", "eastus2", 2,
                      {"sql": 3, "storage": 1, "vm": 1}),
    ResourceGroupSpec("rg-analytics-prod", "prod-data", "analytics", "prod", "eastus2", 1,
                      {"vm": 2, "storage": 1, "cosmos": 1}),
    ResourceGroupSpec("rg-cosmos-prod", "prod-data", "catalog", "prod", "eastus2", 1, {"cosmos": 3}),
    ResourceGroupSpec("rg-ml-training", "prod-data", "ml-platform", "prod", "eastus2", 1,
                      {"vm": 2, "storage": 2}, growth=_ML_GROWTH),
    ResourceGroupSpec("rg-ml-inference", "prod-data", "ml-platform", "prod", "eastus2", 1,
                      {"oai": 2, "storage": 1, "kv": 1}, growth=_ML_GROWTH),
    ResourceGroupSpec("rg-openai-prod", "prod-data", "ml-platform", "prod", "eastus2", 1,
                      {"oai": 3, "kv": 1, "law": 1}, growth=_ML_GROWTH),
    # shared-platform
    ResourceGroupSpec("rg-network-hub", "shared-platform", "platform", "prod", "eastus", 1,
                      {"agw": 2, "lb": 2, "pip": 3}),
    ResourceGroupSpec("rg-network-hub-weu", "shared-platform", "platform", "prod", "westeurope", 1,
                      {"agw": 1, "lb": 1, "pip": 2}),
    ResourceGroupSpec("rg-monitoring", "shared-platform", "sre", "prod", "eastus", 1, {"law": 3, "storage": 1}),
    ResourceGroupSpec("rg-security-ops", "shared-platform", "security", "prod", "eastus", 1,
                      {"law": 2, "kv": 2, "storage": 1}),
    ResourceGroupSpec("rg-backup", "shared-platform", "sre", "prod", "eastus", 1, {"backup": 3, "storage": 1}),
    ResourceGroupSpec("rg-shared-keyvaults", "shared-platform", "security", "prod", "eastus", 1, {"kv": 4}),
    ResourceGroupSpec("rg-devops-agents", "shared-platform", "platform", "prod", "eastus", 1,
                      {"vm": 3, "storage": 1}),
    ResourceGroupSpec("defaultresourcegroup-eus", "shared-platform", None, "prod", "eastus", 1, {"law": 1},
                      untagged=True, max_fillers=3),
    ResourceGroupSpec("networkwatcherrg", "shared-platform", None, "prod", "eastus", 1, {"storage": 1},
                      untagged=True, max_fillers=2),
    # staging
    ResourceGroupSpec("rg-payments-staging", "staging", "payments", "staging", "eastus", 1,
                      {"vm": 2, "sql": 1, "plan": 1},
                      team_keys=_PAYMENTS_KEYS, team_values=_PAYMENTS_VALUES),
    ResourceGroupSpec("rg-checkout-staging", "staging", "checkout", "staging", "eastus", 1,
                      {"plan": 2, "redis": 1, "sql": 1}, team_keys=(("team", 0.6), ("TEAM", 0.4))),
    ResourceGroupSpec("rg-search-staging", "staging", "search", "staging", "eastus", 1, {"vm": 2, "cosmos": 1}),
    ResourceGroupSpec("rg-data-staging", "staging", "data-platform", "staging", "eastus2", 1,
                      {"storage": 2, "evh": 1, "func": 1}, team_values=_DATA_VALUES, growth=_DATA_GROWTH),
    ResourceGroupSpec("rg-aks-staging", "staging", "platform", "staging", "eastus", 1,
                      {"vmss": 1, "disk": 2, "law": 1}, names=_AKS_NAMES),
    # dev-sandbox
    ResourceGroupSpec("rg-dev-sandbox", "dev-sandbox", None, "dev", "eastus", 2,
                      {"vm": 3, "storage": 1, "disk": 1, "pip": 1}, untagged=True),
    ResourceGroupSpec("rg-ml-experiments", "dev-sandbox", "ml-platform", "dev", "eastus", 1,
                      {"vm": 2, "storage": 1, "oai": 1}, spot=True, growth=_ML_GROWTH),
    ResourceGroupSpec("rg-migration-2024", "dev-sandbox", None, "dev", "eastus", 0, {}, untagged=True),
    ResourceGroupSpec("rg-poc-genai", "dev-sandbox", None, "dev", "eastus2", 1,
                      {"oai": 2, "func": 1, "storage": 1}, untagged=True, growth=0.02),
    ResourceGroupSpec("rg-mobile-dev", "dev-sandbox", "mobile-api", "dev", "uksouth", 1,
                      {"plan": 1, "func": 1, "cosmos": 1}),
    ResourceGroupSpec("rg-web-dev", "dev-sandbox", "web-frontend", "dev", "eastus", 1, {"plan": 1, "storage": 1}),
    ResourceGroupSpec("rg-identity-dev", "dev-sandbox", "identity", "dev", "eastus", 1,
                      {"plan": 1, "sql": 1, "kv": 1}),
    ResourceGroupSpec("rg-notifications-dev", "dev-sandbox", "notifications", "dev", "eastus", 1,
                      {"func": 1, "evh": 1}),
)
_RG_BY_NAME = {rg.name: rg for rg in RESOURCE_GROUPS}


def _resource_id(rg: ResourceGroupSpec, kind: Kind, name: str) -> str:
    sub = SUBSCRIPTIONS[rg.subscription]
    path = kind.path.format(name=name, rg=rg.short)
    return f"/subscriptions/{sub.guid}/resourcegroups/{rg.name}/providers/{path}".lower()


# --------------------------------------------------------------------------------------------------
# Planted problems: what a recommendations engine or a reviewer should find, stated in one place
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reservation:
    id: str
    name: str
    meter: Meter
    region: str
    capacity: int  # instances
    monthly_fee: Decimal  # billed on the 1st of each month (monthly payments)
    subscription: str  # where purchase and unused rows are billed


@dataclass(frozen=True)
class Planted:
    """The problems planted in the demo estate. Day offsets count back from `end` (0 = end itself)."""

    # A Log Analytics ingestion spike (debug logging left on) in one resource group.
    spike_resource_group: str
    spike_service: str
    spike_days_before_end: tuple[int, int]  # first, last (inclusive)
    spike_factor: float
    # A subscription whose daily cost steps up and stays up.
    step_subscription: str
    step_days_before_end: int  # first day at the new level
    step_factor: float
    # An existing VM resized onto an expensive GPU meter.
    new_sku_resource_id: str
    new_sku_old_meter: str
    new_sku_new_meter: str
    new_sku_days_before_end: int  # first day on the new meter
    # A shared reservation with idle capacity (worse once the legacy batch VMs stop).
    reservation: Reservation
    reservation_covered_vm_ids: tuple[str, ...]
    # A group whose VMs stopped while disks, IPs and storage keep billing.
    stopped_resource_group: str
    stopped_vm_ids: tuple[str, ...]
    stopped_days_before_end: int  # the last day the VMs ran
    # A group whose VMs were deleted long ago, leaving disks and public IPs behind.
    orphan_resource_group: str
    orphan_vm_days_before_end: int  # the last day the deleted VMs ran
    # Disks and public IPs billing in a group with no compute for 14+ days.
    idle_disk_ids: tuple[str, ...]
    idle_public_ip_ids: tuple[str, ...]
    # Tag hygiene.
    untagged_resource_groups: tuple[str, ...]
    team_key_variants: tuple[str, ...]
    misspelled_team_values: dict[str, tuple[str, ...]]  # canonical team -> misspellings in the data
    team_growth_per_week: dict[str, float]  # teams whose usage grows steadily
    weekend_dip_envs: tuple[str, ...]

    def spike_days(self, end: dt.date) -> list[dt.date]:
        first, last = self.spike_days_before_end
        return [end - dt.timedelta(days=n) for n in range(first, last - 1, -1)]

    def step_first_day(self, end: dt.date) -> dt.date:
        return end - dt.timedelta(days=self.step_days_before_end)

    def new_sku_first_day(self, end: dt.date) -> dt.date:
        return end - dt.timedelta(days=self.new_sku_days_before_end)

    def stopped_last_day(self, end: dt.date) -> dt.date:
        return end - dt.timedelta(days=self.stopped_days_before_end)

    def orphaned_last_vm_day(self, end: dt.date) -> dt.date:
        return end - dt.timedelta(days=self.orphan_vm_days_before_end)


def _rid(rg_name: str, kind: str, name: str) -> str:
    return _resource_id(_RG_BY_NAME[rg_name], KINDS[kind], name)


_RESERVATION_ORDER = _guid("reservation-order:d16s-v5-eastus")
_RESERVATION = Reservation(
    id=f"/providers/microsoft.capacity/reservationorders/{_RESERVATION_ORDER}/reservations/"
       f"{_guid('reservation:d16s-v5-eastus')}",
    name="VM_RI_D16s_v5_EastUS_1yr",
    meter=RESERVED_VM,
    region="eastus",
    capacity=30,
    monthly_fee=Decimal("9923.07"),  # 30 x 730 h x $0.4531/h (1-year reserved rate)
    subscription="shared-platform",
)
# (resource group, how many reserved D16s v5 VMs it runs)
_COVERED_VMS = (("rg-checkout-api", 8), ("rg-payments-prod", 6), ("rg-catalog-prod", 6), ("rg-legacy-batch", 6))
_STOPPED_DAYS_BEFORE_END = 31
_ORPHAN_VM_DAYS_BEFORE_END = 75


def _vm_name(rg: str, n: int) -> str:
    return KINDS["vm"].name.format(rg=_RG_BY_NAME[rg].short, n=n)


def _disk_name(vm_name: str, role: str) -> str:
    # Azure names OS disks `<vm>_OsDisk_1_<32 hex>`; the hex is stable so PLANTED can name them.
    return f"{vm_name}_{role}_1_{_hex('disk:' + vm_name + role, 32)}"


_LEGACY_VMS = tuple(_vm_name("rg-legacy-batch", n) for n in range(1, 7))
_MIGRATION_VMS = tuple(_vm_name("rg-migration-2024", n) for n in range(1, 5))
_MIGRATION_DATA_DISKS = _MIGRATION_VMS[:3]
_LEGACY_PIPS = ("pip-legacy-batch-01", "pip-legacy-batch-02")
_MIGRATION_PIPS = ("pip-migration-2024-01", "pip-migration-2024-02", "pip-migration-2024-03")

PLANTED = Planted(
    spike_resource_group="rg-search-prod",
    spike_service="Azure Monitor",
    spike_days_before_end=(11, 9),
    spike_factor=4.0,
    step_subscription=SUBSCRIPTIONS["prod-data"].sub_account_id,
    step_days_before_end=20,
    step_factor=1.4,
    new_sku_resource_id=_rid("rg-ml-training", "vm", _vm_name("rg-ml-training", 1)),
    new_sku_old_meter="D8s v5",
    new_sku_new_meter=GPU_VM.name,
    new_sku_days_before_end=11,
    reservation=_RESERVATION,
    reservation_covered_vm_ids=tuple(
        _rid(rg, "vm", _vm_name(rg, n)) for rg, count in _COVERED_VMS for n in range(1, count + 1)
    ),
    stopped_resource_group="rg-legacy-batch",
    stopped_vm_ids=tuple(_rid("rg-legacy-batch", "vm", name) for name in _LEGACY_VMS),
    stopped_days_before_end=_STOPPED_DAYS_BEFORE_END,
    orphan_resource_group="rg-migration-2024",
    orphan_vm_days_before_end=_ORPHAN_VM_DAYS_BEFORE_END,
    idle_disk_ids=tuple(
        [_rid("rg-legacy-batch", "disk", _disk_name(vm, role)) for vm in _LEGACY_VMS for role in ("osdisk", "datadisk")]
        + [_rid("rg-migration-2024", "disk", _disk_name(vm, "osdisk")) for vm in _MIGRATION_VMS]
        + [_rid("rg-migration-2024", "disk", _disk_name(vm, "datadisk")) for vm in _MIGRATION_DATA_DISKS]
    ),
    idle_public_ip_ids=tuple(
        [_rid("rg-legacy-batch", "pip", name) for name in _LEGACY_PIPS]
        + [_rid("rg-migration-2024", "pip", name) for name in _MIGRATION_PIPS]
    ),
    untagged_resource_groups=tuple(rg.name for rg in RESOURCE_GROUPS if rg.untagged),
    team_key_variants=("team", "Team", "TEAM"),
    misspelled_team_values={"payments": ("payment", "Payments"), "data-platform": ("dataplatform",)},
    team_growth_per_week={"ml-platform": 0.035, "data-platform": 0.02},
    weekend_dip_envs=("dev", "staging"),
)

# Non-production resources are smaller: fewer instances, less data, less traffic.
ENV_SIZE = {"prod": 1.0, "staging": 0.5, "dev": 0.3}

# Scattered resources in tagged groups lose their team tag until this share of spend is untagged.
TARGET_UNTAGGED_SHARE = 0.25


# --------------------------------------------------------------------------------------------------
# The resource catalogue (Python; small) — one row per resource, expanded to days in SQL
# --------------------------------------------------------------------------------------------------


@dataclass
class CatalogueRow:
    """One resource with everything the SQL expansion needs. Field order = column order of demo_catalogue."""

    rkey: int
    resource_id: str
    resource_name: str
    resource_type: str
    resource_group: str
    sub_account_id: str
    sub_account_name: str
    region_id: str
    region_name: str
    service_name: str
    service_category: str
    service_subcategory: str
    meter_category: str
    meter_name: str
    sku_id: str
    sku_price_id: str
    description: str
    pricing_unit: str
    block_size: int
    unit_price: float  # list price per unit of measure in this region
    discount_ratio: float  # effective / list: EA discount, or the spot discount
    pricing_category: str  # Standard | Dynamic | Committed
    per_month: bool  # quantity is per month (disks, storage): spread over the month's days
    base_qty: float  # quantity per day (or month) at `end`
    noise: float
    weekend: float
    growth: float
    alive_from: int  # day index, inclusive
    alive_to: int  # day index, inclusive
    committed: bool = False
    alt_from: int | None = None  # day index from which the resource runs on the alt meter
    alt_meter_name: str | None = None
    alt_sku_id: str | None = None
    alt_sku_price_id: str | None = None
    alt_description: str | None = None
    alt_unit_price: float | None = None
    tag_keys: list[str] = field(default_factory=list)
    tag_values: list[str] = field(default_factory=list)
    # Not columns: bookkeeping for tag hygiene.
    team_key: str | None = None
    planted: bool = False

    def alive_days(self) -> int:
        return max(0, self.alive_to - self.alive_from + 1)


_NOT_COLUMNS = {"team_key", "planted"}
CATALOGUE_COLUMNS = [f.name for f in fields(CatalogueRow) if f.name not in _NOT_COLUMNS]


@functools.cache
def _load_services() -> dict[tuple[str, str], tuple[str, str, str]]:
    """(ConsumedService, ResourceType) -> (ServiceName, ServiceCategory, ServiceSubcategory) from Services.csv."""
    text = (package_files.files("finops_tui.data") / "Services.csv").read_text(encoding="utf-8")
    return {
        (row["ConsumedService"], row["ResourceType"]): (
            row["ServiceName"], row["ServiceCategory"], row["ServiceSubcategory"]
        )
        for row in csv.DictReader(text.splitlines())
    }


def _pick(rng: random.Random, weighted: Sequence[tuple[Any, float]]) -> Any:
    total = sum(weight for _, weight in weighted)
    point = rng.random() * total
    for item, weight in weighted:
        point -= weight
        if point < 0:
            return item
    return weighted[-1][0]


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(math.log(low) + rng.random() * (math.log(high) - math.log(low)))


class _CatalogueBuilder:
    """Builds resources group by group: the planted ones first, then fillers round-robin over the groups."""

    def __init__(self, seed: int, days: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.days = days
        self.services = _load_services()
        self.rows: list[CatalogueRow] = []
        self.row_count = 0  # charge rows the catalogue will expand to
        self._counters: dict[tuple[str, str], int] = {}

    def next_number(self, rg: ResourceGroupSpec, kind: str) -> int:
        key = (rg.name, kind)
        self._counters[key] = self._counters.get(key, 0) + 1
        return self._counters[key]

    def name_for(self, rg: ResourceGroupSpec, kind: str) -> str:
        """The next resource name of `kind` in `rg`, from the group's or the kind's name template."""
        number = self.next_number(rg, kind)
        template = dict(rg.names).get(kind, KINDS[kind].name)
        stable = f"{self.seed}:{rg.name}:{kind}:{number}"
        return template.format(
            rg=rg.short, n=number, hex=_hex(stable, 6), hex4=_hex(stable, 4),
            rgalnum="".join(ch for ch in rg.short if ch.isalnum())[:12],
            uuid=str(uuid.UUID(_hex(stable, 32))),
            digits=str(int(_hex(stable, 8), 16) % 10**8).zfill(8),
        )

    def index(self, days_before_end: int) -> int:
        return self.days - 1 - days_before_end

    def add(
        self, rg: ResourceGroupSpec, kind: Kind, name: str, meter: Meter, base_qty: float, *,
        alive: tuple[int, int] | None = None, pricing_category: str = "Standard", planted: bool = False,
        noise: float | None = None, weekend: float | None = None,
    ) -> CatalogueRow | None:
        alive_from, alive_to = alive if alive is not None else (0, self.days - 1)
        alive_from, alive_to = max(alive_from, 0), min(alive_to, self.days - 1)
        if alive_to < alive_from:
            return None  # never billed inside the window
        sub = SUBSCRIPTIONS[rg.subscription]
        region_name, _, price_factor = REGIONS[rg.region]
        service, category, subcategory = self.services[(kind.consumed_service, kind.resource_type)]
        pricing_unit, block = UNITS[meter.unit]
        nonprod = rg.env != "prod"
        # Spot runs at about a quarter of the list price; EA discounts favour compute over platform services.
        discount = 0.25 if pricing_category == "Dynamic" else 0.88 if kind.key in ("vm", "vmss", "sql") else 0.95
        row = CatalogueRow(
            rkey=len(self.rows) + 1,
            resource_id=_resource_id(rg, kind, name),
            resource_name=name.rsplit("/", 1)[-1],
            resource_type=kind.resource_type,
            resource_group=rg.name,
            sub_account_id=sub.sub_account_id,
            sub_account_name=sub.name,
            region_id=rg.region,
            region_name=region_name,
            service_name=service,
            service_category=category,
            service_subcategory=subcategory,
            meter_category=meter.category,
            meter_name=meter.name,
            sku_id=meter.sku_id,
            sku_price_id=meter.sku_price_id(rg.region),
            description=meter.description(rg.region),
            pricing_unit=pricing_unit,
            block_size=block,
            unit_price=round(meter.list_price * price_factor, 6),
            discount_ratio=discount,
            pricing_category=pricing_category,
            per_month=meter.unit.endswith("/Month"),
            base_qty=base_qty,
            noise=kind.noise if noise is None else noise,
            weekend=weekend if weekend is not None else (kind.weekend_nonprod if nonprod else kind.weekend_prod),
            growth=rg.growth if kind.scales else 0.0,
            alive_from=alive_from,
            alive_to=alive_to,
            committed=pricing_category == "Committed",
            planted=planted,
        )
        self._tag(row, rg)
        self.rows.append(row)
        self.row_count += row.alive_days()
        return row

    def _tag(self, row: CatalogueRow, rg: ResourceGroupSpec) -> None:
        tags: list[tuple[str, str]] = list(rg.extra_tags)
        if not rg.untagged and rg.team is not None:
            team_key = _pick(self.rng, rg.team_keys)
            team_value = _pick(self.rng, rg.team_values) if rg.team_values else rg.team
            tags += [(team_key, team_value), ("env", rg.env), ("costcenter", TEAM_COST_CENTERS[rg.team])]
            row.team_key = team_key
        elif rg.name == "rg-dev-sandbox":
            tags.append(("env", "dev"))  # people tag the environment long before the owner
        row.tag_keys = [key for key, _ in tags]
        row.tag_values = [value for _, value in tags]

    def lifetime(self, rg: ResourceGroupSpec) -> tuple[int, int]:
        """Most resources live through the window; some are created or deleted inside it (more in dev)."""
        churn = 0.35 if rg.env == "dev" else 0.18
        draw = self.rng.random()
        if draw >= churn:
            return 0, self.days - 1
        day = int(self.rng.random() * self.days)
        if draw < churn * 0.6:
            return day, self.days - 1  # created during the window
        return 0, max(day, 14)  # deleted during the window

    # ---- bundles -----------------------------------------------------------------------------

    def add_vm(
        self, rg: ResourceGroupSpec, *, meter: Meter | None = None, alive: tuple[int, int] | None = None,
        pricing_category: str | None = None, planted: bool = False, data_disk: bool | None = None,
        disk_alive: tuple[int, int] | None = None,
    ) -> CatalogueRow | None:
        """A VM with its OS disk (and maybe a data disk); the disks outlive a stopped VM."""
        kind = KINDS["vm"]
        nonprod = rg.env != "prod"
        if meter is None:
            meter = _pick(self.rng, VM_GPU_SPOT if rg.spot else VM_NONPROD if nonprod else VM_PROD)
        if pricing_category is None:
            pricing_category = "Dynamic" if rg.spot else "Standard"
        alive = alive if alive is not None else self.lifetime(rg)
        name = self.name_for(rg, "vm")
        # Dev and staging VMs run office hours (auto-shutdown), prod VMs run all day.
        hours, noise = (14.0, 0.2) if nonprod else (24.0, 0.0)
        vm = self.add(rg, kind, name, meter, hours, alive=alive, pricing_category=pricing_category,
                      planted=planted, noise=noise)
        os_meter = _pick(self.rng, DISK_OS_NONPROD if nonprod else DISK_OS_PROD)
        disks_alive = disk_alive or alive
        self.add(rg, KINDS["disk"], _disk_name(name, "osdisk"), os_meter, 1.0, alive=disks_alive, planted=planted)
        if data_disk if data_disk is not None else self.rng.random() < 0.4:
            self.add(rg, KINDS["disk"], _disk_name(name, "datadisk"), _pick(self.rng, DISK_DATA), 1.0,
                     alive=disks_alive, planted=planted)
        return vm

    def add_filler(self, rg: ResourceGroupSpec) -> None:
        kind = KINDS[_pick(self.rng, list(rg.mix.items()))]
        if kind.key == "vm":
            self.add_vm(rg)
            return
        name = self.name_for(rg, kind.key)
        low, high = kind.qty
        high = max(low, high * ENV_SIZE[rg.env])
        self.add(rg, kind, name, _pick(self.rng, kind.meters), _log_uniform(self.rng, low, high),
                 alive=self.lifetime(rg))


def _plant(builder: _CatalogueBuilder) -> None:
    """The planted estate: always present, whatever the seed or size."""
    rg = _RG_BY_NAME
    ri = PLANTED.reservation
    for group, count in _COVERED_VMS:
        for _ in range(count):
            stop = builder.index(_STOPPED_DAYS_BEFORE_END) if group == "rg-legacy-batch" else builder.days - 1
            builder.add_vm(rg[group], meter=ri.meter, alive=(0, stop), pricing_category="Committed",
                           planted=True, data_disk=group == "rg-legacy-batch", disk_alive=(0, builder.days - 1))
    legacy = rg["rg-legacy-batch"]
    for _ in _LEGACY_PIPS:
        builder.add(legacy, KINDS["pip"], builder.name_for(legacy, "pip"), KINDS["pip"].meters[0][0], 24,
                    planted=True)
    builder.add(legacy, KINDS["storage"], "stlegacybatch01", KINDS["storage"].meters[0][0], 18_000, planted=True)
    builder.add(legacy, KINDS["lb"], builder.name_for(legacy, "lb"), KINDS["lb"].meters[0][0], 24, planted=True)

    migration = rg["rg-migration-2024"]
    orphaned_at = builder.index(_ORPHAN_VM_DAYS_BEFORE_END)
    for n, _ in enumerate(_MIGRATION_VMS, start=1):
        builder.add_vm(migration, meter=VM_PROD[0][0], alive=(0, orphaned_at), planted=True,
                       data_disk=n <= len(_MIGRATION_DATA_DISKS), disk_alive=(0, builder.days - 1))
    for _ in _MIGRATION_PIPS:
        builder.add(migration, KINDS["pip"], builder.name_for(migration, "pip"), KINDS["pip"].meters[0][0], 24,
                    planted=True)
    builder.add(migration, KINDS["storage"], "stmigration2024", KINDS["storage"].meters[2][0], 9_000, planted=True)

    training = rg["rg-ml-training"]
    gpu = builder.add_vm(training, meter=VM_PROD[1][0], alive=(0, builder.days - 1), planted=True, data_disk=True)
    assert gpu is not None  # alive for the whole window by construction
    gpu.alt_from = builder.index(PLANTED.new_sku_days_before_end)
    gpu.alt_meter_name = GPU_VM.name
    gpu.alt_sku_id = GPU_VM.sku_id
    gpu.alt_sku_price_id = GPU_VM.sku_price_id(training.region)
    gpu.alt_description = GPU_VM.description(training.region)
    gpu.alt_unit_price = round(GPU_VM.list_price * REGIONS[training.region][2], 6)

    search = rg["rg-search-prod"]
    # The workspace whose ingestion spikes: big enough that the spike stands out in its group.
    builder.add(search, KINDS["law"], builder.name_for(search, "law"), KINDS["law"].meters[0][0], 45.0, planted=True)

    aks = rg["rg-aks-prod"]
    builder.add(aks, KINDS["aks"], "aks-prod", KINDS["aks"].meters[0][0], 24, planted=True)
    nodes = rg["mc_rg-aks-prod_aks-prod_eastus"]
    builder.add(nodes, KINDS["vmss"], "aks-system-31415926-vmss", VM_PROD[0][0], 24 * 3, planted=True, noise=0.0)
    builder.add(nodes, KINDS["vmss"], "aks-user-27182818-vmss", VM_PROD[1][0], 24 * 9, planted=True)
    builder.add(nodes, KINDS["lb"], "kubernetes", KINDS["lb"].meters[0][0], 24, planted=True)


def _calibrate_untagged(builder: _CatalogueBuilder) -> None:
    """Strip the team tag from scattered resources until about TARGET_UNTAGGED_SHARE of spend is untagged.

    Whole untagged groups come first; the scattered ones are what people forget to tag.
    """
    def expected_cost(row: CatalogueRow) -> float:
        daily = row.base_qty * row.unit_price * row.discount_ratio / (30.4 if row.per_month else 1.0)
        if row.growth == 0:
            return daily * row.alive_days()
        # sum of (1+g)^((i - last)/7) over the alive days: a geometric series
        ratio = (1 + row.growth) ** (1 / 7)
        first_term = ratio ** (row.alive_from - (builder.days - 1))
        return daily * first_term * (ratio ** row.alive_days() - 1) / (ratio - 1)

    costs = [expected_cost(row) for row in builder.rows]
    total = sum(costs)
    untagged = sum(cost for row, cost in zip(builder.rows, costs, strict=True) if row.team_key is None)
    candidates = [i for i, row in enumerate(builder.rows) if row.team_key is not None and not row.planted]
    builder.rng.shuffle(candidates)
    for i in candidates:
        if untagged >= TARGET_UNTAGGED_SHARE * total:
            break
        # Skip the giants: one forgotten storage account should not carry the whole gap.
        if untagged + costs[i] > (TARGET_UNTAGGED_SHARE + 0.01) * total:
            continue
        row = builder.rows[i]
        keep = {"env", "costcenter"} if builder.rng.random() < 0.5 else set()
        pairs = [(k, v) for k, v in zip(row.tag_keys, row.tag_values, strict=True) if k in keep]
        row.tag_keys, row.tag_values = [k for k, _ in pairs], [v for _, v in pairs]
        row.team_key = None
        untagged += costs[i]


def _add_conflicting_keys(builder: _CatalogueBuilder) -> None:
    """A few payments resources carry both `Team` and `team` (someone added a second key, not a fix)."""
    added = 0
    for row in builder.rows:
        if added == 2:
            break
        if row.resource_group == "rg-payments-prod" and row.team_key == "Team" and not row.planted:
            row.tag_keys.append("team")
            row.tag_values.append("payments")
            added += 1


def build_catalogue(
    *, seed: int, days: int, resources: int | None = None, rows: int | None = None
) -> list[CatalogueRow]:
    """The resource catalogue: planted resources, then fillers until `resources` or `rows` charge rows."""
    builder = _CatalogueBuilder(seed, days)
    _plant(builder)
    fillers = [rg for rg in RESOURCE_GROUPS for _ in range(rg.weight)]
    filled: dict[str, int] = {}

    def enough() -> bool:
        if rows is not None:
            return builder.row_count >= rows
        return len(builder.rows) >= (resources if resources is not None else DEFAULT_RESOURCES)

    while not enough():
        for rg in fillers:
            if rg.max_fillers is not None and filled.get(rg.name, 0) >= rg.max_fillers:
                continue
            filled[rg.name] = filled.get(rg.name, 0) + 1
            builder.add_filler(rg)
            if enough():
                break
    _calibrate_untagged(builder)
    _add_conflicting_keys(builder)
    return builder.rows


# --------------------------------------------------------------------------------------------------
# SQL: expand resources x days into charges
# --------------------------------------------------------------------------------------------------

def _money(expr: str) -> str:
    # Round in floating point, then store as DECIMAL: sums over the stored values are exact.
    return f"CAST(ROUND({expr}, 6) AS {MONEY_TYPE})"


_CHARGE_INSERT_COLUMNS = """
    ChargePeriodStart, ChargePeriodEnd, BillingPeriodStart, BillingPeriodEnd,
    BillingAccountId, BillingAccountName, SubAccountId, SubAccountName,
    BilledCost, EffectiveCost, ListCost, ContractedCost, BillingCurrency,
    ChargeCategory, ChargeClass, ChargeFrequency, ChargeDescription, PricingCategory,
    PricingQuantity, PricingUnit, ConsumedQuantity, ConsumedUnit,
    ServiceName, ServiceCategory, ServiceSubcategory, ProviderName, PublisherName, InvoiceIssuerName,
    ResourceId, ResourceName, ResourceType, RegionId, RegionName, AvailabilityZone,
    CommitmentDiscountId, CommitmentDiscountName, CommitmentDiscountStatus, CommitmentDiscountType,
    CommitmentDiscountCategory, SkuId, SkuPriceId, Tags,
    x_ResourceGroupName, x_SkuMeterCategory, x_SkuMeterName, x_ChargeDate, source_id
"""

# One month of usage rows. Quantity = base x jitter x growth x weekend x planted anomalies; jitter is a
# hash of (resource, day, seed), so the same inputs always give the same figures.
_USAGE_SQL = f"""
INSERT INTO charges ({_CHARGE_INSERT_COLUMNS})
WITH usage AS (
    SELECT r.*, d.day, d.month_start, d.next_month, d.reserved_instance_day,
           d.day_idx >= coalesce(r.alt_from, 2147483647) AS on_alt,
           CASE WHEN r.committed THEN r.base_qty ELSE
               r.base_qty
               * CASE WHEN r.per_month THEN 1.0 / d.days_in_month ELSE 1.0 END
               * (1 + r.noise * ((hash(r.rkey, d.day_idx, $seed) % 1000001) / 500000.0 - 1))
               * pow(1 + r.growth, (d.day_idx - $last_idx) / 7.0)
               * CASE WHEN d.weekend THEN r.weekend ELSE 1.0 END
               * CASE WHEN r.resource_group = $spike_rg AND r.service_name = $spike_service
                           AND d.day_idx BETWEEN $spike_first AND $spike_last THEN $spike_factor ELSE 1.0 END
               * CASE WHEN r.sub_account_id = $step_sub AND d.day_idx >= $step_first THEN $step_factor ELSE 1.0 END
           END AS qty
    FROM demo_catalogue r
    JOIN demo_days d ON d.day_idx BETWEEN r.alive_from AND r.alive_to
    WHERE d.month_idx = $month
), priced AS (
    SELECT *, qty * CASE WHEN on_alt THEN alt_unit_price ELSE unit_price END AS list_raw FROM usage
)
SELECT
    day::TIMESTAMP, (day + 1)::TIMESTAMP, month_start::TIMESTAMP, next_month::TIMESTAMP,
    $account_id, $account_name, sub_account_id, sub_account_name,
    CASE WHEN committed THEN 0::{MONEY_TYPE} ELSE {_money("list_raw * discount_ratio")} END,
    CASE WHEN committed THEN {_money("reserved_instance_day")} ELSE {_money("list_raw * discount_ratio")} END,
    {_money("list_raw")},
    {_money("list_raw * discount_ratio")},
    '{CURRENCY}', 'Usage', NULL, 'Usage-Based',
    CASE WHEN on_alt THEN alt_description ELSE description END,
    pricing_category,
    qty, pricing_unit, qty * block_size, pricing_unit,
    service_name, service_category, service_subcategory, 'Microsoft', 'Microsoft', 'Microsoft',
    resource_id, resource_name, resource_type, region_id, region_name, NULL,
    CASE WHEN committed THEN $ri_id END, CASE WHEN committed THEN $ri_name END,
    CASE WHEN committed THEN 'Used' END, CASE WHEN committed THEN 'Reservation' END,
    CASE WHEN committed THEN 'Usage' END,
    CASE WHEN on_alt THEN alt_sku_id ELSE sku_id END,
    CASE WHEN on_alt THEN alt_sku_price_id ELSE sku_price_id END,
    tags, resource_group, meter_category,
    CASE WHEN on_alt THEN alt_meter_name ELSE meter_name END,
    day, $source_id
FROM priced
"""

# Idle reservation hours, one row a day: capacity minus the covered instances that ran that day.
_UNUSED_SQL = f"""
INSERT INTO charges ({_CHARGE_INSERT_COLUMNS})
WITH used AS (
    SELECT d.day_idx, count(r.rkey) AS instances
    FROM demo_days d LEFT JOIN demo_catalogue r
      ON r.committed AND d.day_idx BETWEEN r.alive_from AND r.alive_to
    GROUP BY d.day_idx
)
SELECT
    d.day::TIMESTAMP, (d.day + 1)::TIMESTAMP, d.month_start::TIMESTAMP, d.next_month::TIMESTAMP,
    $account_id, $account_name, $sub_id, $sub_name,
    0::{MONEY_TYPE},
    {_money("d.reserved_instance_day")} * ($capacity - u.instances),
    {_money("d.reserved_instance_day")} * ($capacity - u.instances),
    {_money("d.reserved_instance_day")} * ($capacity - u.instances),
    '{CURRENCY}', 'Usage', NULL, 'Usage-Based', $description, 'Committed',
    24.0 * ($capacity - u.instances), 'Hours', 24.0 * ($capacity - u.instances), 'Hours',
    $service_name, $service_category, $service_subcategory, 'Microsoft', 'Microsoft', 'Microsoft',
    $ri_id, $ri_name, 'microsoft.capacity/reservationorders/reservations', $region_id, $region_name, NULL,
    $ri_id, $ri_name, 'Unused', 'Reservation', 'Usage', $sku_id, NULL, NULL,
    NULL, $meter_category, $meter_name, d.day, $source_id
FROM demo_days d JOIN used u USING (day_idx)
WHERE u.instances < $capacity
"""

# The reservation's monthly payment: billed on the 1st, amortized into the usage rows (EffectiveCost 0).
_PURCHASE_SQL = f"""
INSERT INTO charges ({_CHARGE_INSERT_COLUMNS})
SELECT
    month_start::TIMESTAMP, next_month::TIMESTAMP, month_start::TIMESTAMP, next_month::TIMESTAMP,
    $account_id, $account_name, $sub_id, $sub_name,
    $fee::{MONEY_TYPE}, 0::{MONEY_TYPE}, $fee::{MONEY_TYPE}, $fee::{MONEY_TYPE},
    '{CURRENCY}', 'Purchase', NULL, 'Recurring', $description, 'Standard',
    $capacity, 'Units', $capacity, 'Units',
    $service_name, $service_category, $service_subcategory, 'Microsoft', 'Microsoft', 'Microsoft',
    $ri_id, $ri_name, 'microsoft.capacity/reservationorders/reservations', $region_id, $region_name, NULL,
    $ri_id, $ri_name, NULL, 'Reservation', 'Usage', $sku_id, NULL, NULL,
    NULL, $meter_category, $meter_name, day, $source_id
FROM demo_days WHERE day = month_start
"""


# The support plan: billed monthly to no resource (untaggable), one of the demo's shared cost pools.
SUPPORT_MONTHLY_FEE = Decimal("1000.00")
SUPPORT_SERVICE = "Azure Support"
_SUPPORT_SQL = f"""
INSERT INTO charges ({_CHARGE_INSERT_COLUMNS})
SELECT
    month_start::TIMESTAMP, next_month::TIMESTAMP, month_start::TIMESTAMP, next_month::TIMESTAMP,
    $account_id, $account_name, $sub_id, $sub_name,
    $fee::{MONEY_TYPE}, $fee::{MONEY_TYPE}, $fee::{MONEY_TYPE}, $fee::{MONEY_TYPE},
    '{CURRENCY}', 'Purchase', NULL, 'Recurring', 'Azure Support Plan - Professional Direct (monthly)', 'Standard',
    1, 'Units', 1, 'Units',
    '{SUPPORT_SERVICE}', 'Management and Governance', 'Support', 'Microsoft', 'Microsoft', 'Microsoft',
    NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    NULL, 'Support', 'Professional Direct', day, $source_id
FROM demo_days WHERE day = month_start
"""


def window_start(end: dt.date, months: int) -> dt.date:
    """First day of the data: the 1st of the month `months - 1` months before `end`'s month."""
    index = end.year * 12 + end.month - 1 - (months - 1)
    return dt.date(index // 12, index % 12 + 1, 1)


def _create_days(cur: duckdb.DuckDBPyConnection, start: dt.date, end: dt.date) -> None:
    ri = PLANTED.reservation
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE demo_days AS
        SELECT i::INTEGER AS day_idx, day, month_start, next_month,
               datediff('day', month_start, next_month) AS days_in_month,
               isodow(day) >= 6 AS weekend,
               datediff('month', $start, day)::INTEGER AS month_idx,
               -- one reserved instance-day, amortized: the monthly fee spread over capacity and days
               $fee / $capacity / datediff('day', month_start, next_month) AS reserved_instance_day
        FROM (
            SELECT i, ($start + i::INTEGER) AS day, date_trunc('month', $start + i::INTEGER)::DATE AS month_start,
                   (date_trunc('month', $start + i::INTEGER) + INTERVAL 1 MONTH)::DATE AS next_month
            FROM range(0, $count) t(i)
        )
        """,
        {"start": start, "count": (end - start).days + 1, "fee": float(ri.monthly_fee), "capacity": ri.capacity},
    )


def _create_catalogue(cur: duckdb.DuckDBPyConnection, catalogue: list[CatalogueRow]) -> None:
    """Ship the catalogue as column lists and unnest them side by side (no pyarrow or pandas needed)."""
    columns = {name: [getattr(row, name) for row in catalogue] for name in CATALOGUE_COLUMNS}
    selects = ", ".join(f"unnest(${name}) AS {name}" for name in CATALOGUE_COLUMNS)
    cur.execute(f"CREATE OR REPLACE TEMP TABLE demo_catalogue_raw AS SELECT {selects}", columns)
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE demo_catalogue AS
        SELECT * EXCLUDE (tag_keys, tag_values),
               CASE WHEN len(tag_keys) > 0 THEN map(tag_keys, tag_values) END AS tags
        FROM demo_catalogue_raw
        """
    )
    cur.execute("DROP TABLE demo_catalogue_raw")


def _reservation_params(source_id: int) -> dict[str, Any]:
    ri = PLANTED.reservation
    sub = SUBSCRIPTIONS[ri.subscription]
    service, category, subcategory = _load_services()[("microsoft.compute", "microsoft.compute/virtualmachines")]
    return {
        "account_id": BILLING_ACCOUNT_ID, "account_name": BILLING_ACCOUNT_NAME,
        "sub_id": sub.sub_account_id, "sub_name": sub.name,
        "ri_id": ri.id, "ri_name": ri.name, "capacity": ri.capacity,
        "service_name": service, "service_category": category, "service_subcategory": subcategory,
        "region_id": ri.region, "region_name": REGIONS[ri.region][0],
        "sku_id": ri.meter.sku_id, "meter_category": ri.meter.category, "meter_name": ri.meter.name,
        "source_id": source_id,
    }


def _insert_charges(
    cur: duckdb.DuckDBPyConnection, catalogue: list[CatalogueRow], *, start: dt.date, end: dt.date,
    months: int, seed: int, source_id: int,
) -> None:
    _create_days(cur, start, end)
    _create_catalogue(cur, catalogue)
    last_idx = (end - start).days
    spike_first, spike_last = PLANTED.spike_days_before_end
    params: dict[str, Any] = {
        "seed": seed, "last_idx": last_idx, "source_id": source_id,
        "account_id": BILLING_ACCOUNT_ID, "account_name": BILLING_ACCOUNT_NAME,
        "spike_rg": PLANTED.spike_resource_group, "spike_service": PLANTED.spike_service,
        "spike_first": last_idx - spike_first, "spike_last": last_idx - spike_last,
        "spike_factor": PLANTED.spike_factor,
        "step_sub": PLANTED.step_subscription, "step_first": last_idx - PLANTED.step_days_before_end,
        "step_factor": PLANTED.step_factor,
        "ri_id": PLANTED.reservation.id, "ri_name": PLANTED.reservation.name,
    }
    # Month by month: rows land roughly in date order, which keeps DuckDB's zone maps on x_ChargeDate useful.
    for month in range(months):
        cur.execute(_USAGE_SQL, {**params, "month": month})
    ri = PLANTED.reservation
    reservation = _reservation_params(source_id)
    cur.execute(_UNUSED_SQL, {**reservation, "description": f"Unused reservation - {ri.meter.description(ri.region)}"})
    cur.execute(_PURCHASE_SQL, {**reservation, "fee": ri.monthly_fee,
                                "description": f"Reservation purchase (monthly) - {ri.name}"})
    support = SUBSCRIPTIONS["shared-platform"]
    cur.execute(_SUPPORT_SQL, {"account_id": BILLING_ACCOUNT_ID, "account_name": BILLING_ACCOUNT_NAME,
                               "sub_id": support.sub_account_id, "sub_name": support.name,
                               "fee": SUPPORT_MONTHLY_FEE, "source_id": source_id})
    cur.execute("DROP TABLE demo_catalogue")
    cur.execute("DROP TABLE demo_days")


# --------------------------------------------------------------------------------------------------
# Build, reuse, summarize
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoParams:
    """Everything the figures depend on: equal params (and generator version) give identical caches."""

    end: dt.date
    months: int = DEFAULT_MONTHS
    rows: int | None = None
    seed: int = DEFAULT_SEED

    def to_json(self) -> str:
        return json.dumps({"generator": GENERATOR_VERSION, "end": self.end.isoformat(), "months": self.months,
                           "rows": self.rows, "seed": self.seed}, sort_keys=True)

    def fingerprint(self) -> str:
        return "demo:" + hashlib.sha256(self.to_json().encode()).hexdigest()[:32]


@dataclass(frozen=True)
class DemoSummary:
    path: Path
    rows: int
    start: dt.date
    end: dt.date
    subscriptions: int
    resource_groups: int
    resources: int
    services: int
    teams: int  # distinct values of the (case-folded) team key, misspellings included
    effective_cost: dict[str, Decimal]  # per currency, amortized
    billed_cost: dict[str, Decimal]  # per currency, actual
    untagged_share: float  # share of EffectiveCost with no team tag
    build_seconds: float
    reused: bool = False

    def describe(self) -> str:
        """A short human summary, as `finops-tui demo --no-open` prints it."""
        days = (self.end - self.start).days + 1
        how = "reused (same parameters; --force rebuilds)" if self.reused else f"built in {self.build_seconds:.1f} s"
        cost = "; ".join(
            f"{cur} {self.effective_cost[cur]:,.2f} amortized, {self.billed_cost.get(cur, Decimal(0)):,.2f} actual"
            for cur in sorted(self.effective_cost)
        )
        return "\n".join([
            f"demo estate: {self.path} ({how})",
            f"  period     {self.start} .. {self.end} ({days} days)",
            f"  rows       {self.rows:,}",
            f"  estate     {self.subscriptions} subscriptions, {self.resource_groups} resource groups, "
            f"{self.resources:,} resources, {self.services} services, {self.teams} team tag values",
            f"  cost       {cost}",
            f"  untagged   {self.untagged_share:.1%} of amortized cost has no team tag",
        ])


def summarize(cur: duckdb.DuckDBPyConnection, path: Path, build_seconds: float, reused: bool) -> DemoSummary:
    counts = cur.execute(
        """
        SELECT count(*), min(x_ChargeDate), max(x_ChargeDate), count(DISTINCT SubAccountId),
               count(DISTINCT x_ResourceGroupName), count(DISTINCT ServiceName)
        FROM charges
        """
    ).fetchone()
    assert counts is not None
    resources = cur.execute("SELECT count(*) FROM resources").fetchone()
    teams = cur.execute("SELECT count(DISTINCT tag_value) FROM resource_tags WHERE tag_key = 'team'").fetchone()
    totals = cur.execute(
        "SELECT BillingCurrency, sum(EffectiveCost), sum(BilledCost) FROM charges GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return DemoSummary(
        path=path, rows=int(counts[0]), start=counts[1], end=counts[2], subscriptions=int(counts[3]),
        resource_groups=int(counts[4]), services=int(counts[5]),
        resources=int(resources[0]) if resources else 0, teams=int(teams[0]) if teams else 0,
        effective_cost={cur_: eff for cur_, eff, _ in totals}, billed_cost={cur_: billed for cur_, _, billed in totals},
        untagged_share=untagged_share(cur), build_seconds=build_seconds, reused=reused,
    )


def untagged_share(cur: duckdb.DuckDBPyConnection, key: str = "team") -> float:
    """Share of EffectiveCost on resources with no effective `key` tag (all currencies together: demo is USD)."""
    row = cur.execute(
        """
        SELECT sum(c.EffectiveCost) FILTER (WHERE t.ResourceId IS NULL), sum(c.EffectiveCost)
        FROM charges c LEFT JOIN resource_tags t ON t.resource_key = c.x_ResourceKey AND t.tag_key = ?
        """,
        [key],
    ).fetchone()
    if not row or not row[1]:
        return 0.0
    return float((row[0] or 0) / row[1])


def existing_summary(path: Path, params: DemoParams) -> DemoSummary | None:
    """The summary of the demo cache at `path` if it was built with `params`; None means (re)build.

    Raises UserError when `path` is anything but a demo cache (imported or synced cost data, another
    file): a demo build replaces the file, and must never replace real data.
    """
    if not path.exists():
        return None
    cache = open_cache(path, read_only=True)  # a locked, foreign or newer file raises a clear UserError
    try:
        with cache.cursor() as cur:
            kinds = dict(cur.execute(
                "SELECT kind, arg_max(file_hash, source_id) FROM sources GROUP BY kind"
            ).fetchall())
            if set(kinds) - {DEMO_KIND}:
                raise UserError(
                    f"{path}: holds imported or synced cost data, not a demo estate; "
                    "build the demo into another file with --cache PATH"
                )
            if kinds.get(DEMO_KIND) != params.fingerprint():
                return None
            return summarize(cur, path, 0.0, reused=True)
    finally:
        cache.close()


def build_demo(
    cache_path: Path | str, policy: TagPolicy, *, end: dt.date, months: int = DEFAULT_MONTHS,
    rows: int | None = None, seed: int = DEFAULT_SEED,
) -> DemoSummary:
    """Build the demo estate into `cache_path`, atomically: a temp file renamed over the old cache.

    `rows` scales the estate (more resources) to about that many charge rows, for benchmarks. `policy` (the
    user's tag settings and rules) derives the effective tags, as after an import.
    """
    if months < 1:
        raise ValueError("months must be at least 1")
    path = Path(cache_path).expanduser()
    params = DemoParams(end=end, months=months, rows=rows, seed=seed)
    started = time.perf_counter()
    start = window_start(end, months)
    days = (end - start).days + 1
    # The unused-reservation, reservation purchase and support rows come on top of the resource-days.
    overhead = days + 2 * months
    catalogue = build_catalogue(seed=seed, days=days, rows=None if rows is None else max(rows - overhead, 1))

    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(path)
    temp = path.with_name(f".{path.name}.building-{os.getpid()}")
    _remove_cache_files(temp)
    try:
        cache = open_cache(temp)
        try:
            with cache.write() as cur:
                source_id = begin_window(cur, Window(
                    kind=DEMO_KIND, scope=DEMO_SCOPE, metric="focus", start=start, end=end + dt.timedelta(days=1),
                    path=params.to_json(), file_hash=params.fingerprint(), provider="Microsoft",
                    focus_version="1.2",
                ))
                _insert_charges(cur, catalogue, start=start, end=end, months=months, seed=seed, source_id=source_id)
                finish_window(cur, source_id, settle_summary=False)  # refresh_derived rebuilds the summary
                refresh_derived(cur, policy)
            build_seconds = time.perf_counter() - started
            with cache.cursor() as cur:
                summary = summarize(cur, path, build_seconds, reused=False)
        finally:
            cache.close()
        # A write-ahead log left by a crashed session of the old cache must not be replayed into the new one.
        Path(f"{path}.wal").unlink(missing_ok=True)
        os.replace(temp, path)
    except BaseException:
        _remove_cache_files(temp)
        raise
    return summary


def _remove_cache_files(path: Path) -> None:
    for candidate in (path, Path(f"{path}.wal")):
        candidate.unlink(missing_ok=True)


def _remove_abandoned_builds(path: Path) -> None:
    """Temp files of builds whose process is gone (killed mid-build): at 10M rows they weigh a gigabyte."""
    for temp in path.parent.glob(f".{path.name}.building-*"):
        pid = temp.name.rsplit("-", 1)[-1]
        if not pid.isdigit():
            continue  # the .wal beside a temp file goes with it
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            _remove_cache_files(temp)
        except PermissionError:
            pass  # another user's live process


def iter_planted_ids() -> Iterator[str]:
    """Every resource id PLANTED names (handy for tests that each one exists)."""
    yield PLANTED.new_sku_resource_id
    yield PLANTED.reservation.id
    yield from PLANTED.reservation_covered_vm_ids
    yield from PLANTED.stopped_vm_ids
    yield from PLANTED.idle_disk_ids
    yield from PLANTED.idle_public_ip_ids
