"""Dimensions users group cost by: names, SQL expressions over `charges c`, and tag joins."""

from __future__ import annotations

from dataclasses import dataclass, replace

import duckdb

from finops_tui.errors import UsageError
from finops_tui.store.sources import OWNING_RESOURCE_SQL, PROVIDER_SPLIT_SQL

UNALLOCATED = "(unallocated)"
NONE_LABEL = "(none)"


@dataclass(frozen=True)
class Dimension:
    """One grouping level. `key_sql` groups, `label_sql` names a group for people (both over `c`)."""

    name: str  # service, subscription, tag:team, ...
    title: str
    key_sql: str
    label_sql: str
    tag_key: str | None = None
    alias: str = "t0"  # the tag join's table alias; `key_sql` refers to it

    @property
    def is_tag(self) -> bool:
        return self.tag_key is not None

    def join_sql(self, alias: str | None = None) -> str:
        """The LEFT JOIN a tag dimension needs (effective tags live per resource, beside the facts)."""
        alias = alias or self.alias
        if self.tag_key is None:
            return ""
        key = self.tag_key.replace("'", "''")
        return (
            f" LEFT JOIN resource_tags {alias} ON {alias}.resource_key = c.x_ResourceKey"
            f" AND {alias}.tag_key = '{key}'"
        )


_OWNING_NAME_SQL = (
    f"CASE WHEN {PROVIDER_SPLIT_SQL} THEN coalesce(c.AllocatedResourceName, c.AllocatedResourceId) "
    "ELSE coalesce(c.ResourceName, c.ResourceId) END"
)

_PLAIN: dict[str, tuple[str, str, str]] = {
    # name: (title, key expression, label expression)
    "service": ("Service", "c.ServiceName", "c.ServiceName"),
    "service-category": ("Service category", "c.ServiceCategory", "c.ServiceCategory"),
    "subscription": ("Subscription", "c.SubAccountId", "coalesce(c.SubAccountName, c.SubAccountId)"),
    "resource-group": ("Resource group", "c.x_ResourceGroupName", "c.x_ResourceGroupName"),
    "region": ("Region", "c.RegionId", "coalesce(c.RegionName, c.RegionId)"),
    "resource-type": ("Resource type", "c.ResourceType", "c.ResourceType"),
    "charge-category": ("Charge category", "c.ChargeCategory", "c.ChargeCategory"),
    "pricing-category": ("Pricing category", "c.PricingCategory", "c.PricingCategory"),
    "commitment": (
        "Commitment", "c.CommitmentDiscountId", "coalesce(c.CommitmentDiscountName, c.CommitmentDiscountId)"
    ),
    # The owning resource: a provider-split row's consumer (AllocatedResourceId), else ResourceId.
    "resource": ("Resource", OWNING_RESOURCE_SQL, _OWNING_NAME_SQL),
    # The consumers a provider split shared cost to (none for rows that were not split), and those rows' hosts.
    "allocated-resource": (
        "Allocated resource", "c.AllocatedResourceId", "coalesce(c.AllocatedResourceName, c.AllocatedResourceId)"
    ),
    "host": (
        "Host (split)", f"CASE WHEN {PROVIDER_SPLIT_SQL} THEN c.ResourceId END",
        f"CASE WHEN {PROVIDER_SPLIT_SQL} THEN coalesce(c.ResourceName, c.ResourceId) END",
    ),
    "provider": ("Provider", "c.ProviderName", "c.ProviderName"),
    "meter-category": ("Meter category", "c.x_SkuMeterCategory", "c.x_SkuMeterCategory"),
    "sku": ("SKU / meter", "coalesce(c.x_SkuMeterName, c.SkuId)", "coalesce(c.x_SkuMeterName, c.SkuId)"),
}

PLAIN_DIMENSIONS = tuple(_PLAIN)
ALIASES = {
    "rg": "resource-group", "resourcegroup": "resource-group", "sub": "subscription", "team": "tag:team",
    "allocated": "allocated-resource",
}


def dimension(name: str, alias: str = "t0") -> Dimension:
    """Resolve a dimension name such as `service` or `tag:team`; `alias` names the tag join."""
    raw = name.strip()
    lowered = ALIASES.get(raw.lower(), raw.lower())
    if lowered.startswith("tag:"):
        key = lowered[4:] if raw.lower() in ALIASES else raw.split(":", 1)[1].strip()
        if not key:
            raise UsageError(f"dimension {name!r}: give a tag key, e.g. tag:team")
        # Keys are folded to lower case in resource_tags unless aliases say otherwise.
        key = key.lower()
        return Dimension(
            f"tag:{key}", f"Tag {key}", f"{alias}.tag_value", f"coalesce({alias}.tag_value, '{UNALLOCATED}')", key,
            alias,
        )
    if lowered in _PLAIN:
        title, key_sql, label_sql = _PLAIN[lowered]
        return Dimension(lowered, title, key_sql, label_sql)
    raise UsageError(
        f"unknown dimension {name!r}: use one of {', '.join(PLAIN_DIMENSIONS)} or tag:KEY"
    )


# Account names are chosen by people and repeat across clouds (sandbox-dev on Azure, AWS and GCP): with
# cost from more than one provider in the cache, these dimensions name the provider in their labels.
PROVIDER_LABELLED = frozenset({"subscription"})


def cached_providers(cur: duckdb.DuckDBPyConnection) -> list[str]:
    """The providers whose cost the cache holds, from the record of each import, sync or demo build.

    Reads `sources` (one row per load), never the charges, so every query can afford to ask.
    """
    rows = cur.execute(
        """
        SELECT DISTINCT trim(p) FROM (SELECT unnest(string_split(provider, '+')) AS p FROM sources
                                      WHERE provider IS NOT NULL AND row_count > 0)
        WHERE trim(p) <> '' ORDER BY 1
        """
    ).fetchall()
    return [r[0] for r in rows]


def provider_qualified_sql(label_sql: str, provider_sql: str = "c.ProviderName") -> str:
    """SQL for `label (provider)`; the bare label where the provider is unknown."""
    return f"(({label_sql}) || coalesce(' (' || {provider_sql} || ')', ''))"


def with_provider_label(dim: Dimension) -> Dimension:
    """`dim` with labels such as `sandbox-dev (AWS)` when it is one of the dimensions that need it."""
    if dim.name not in PROVIDER_LABELLED:
        return dim
    return replace(dim, label_sql=provider_qualified_sql(dim.label_sql))


def labelled_for_cache(cur: duckdb.DuckDBPyConnection, dims: list[Dimension]) -> list[Dimension]:
    """The dimensions as this cache needs them labelled: with the provider where several are present."""
    if not any(d.name in PROVIDER_LABELLED for d in dims) or len(cached_providers(cur)) < 2:
        return dims
    return [with_provider_label(d) for d in dims]


def parse_dimensions(spec: str) -> list[Dimension]:
    """`tag:team,subscription,resource-group` → dimensions with distinct tag-join aliases."""
    parts = [p for p in (s.strip() for s in spec.split(",")) if p]
    if not parts:
        raise UsageError("--by: give at least one dimension, e.g. tag:team,subscription")
    return [dimension(p, alias=f"t{i}") for i, p in enumerate(parts)]
