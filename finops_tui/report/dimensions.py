"""Dimensions users group cost by: names, SQL expressions over `charges c`, and tag joins."""

from __future__ import annotations

from dataclasses import dataclass

from finops_tui.errors import UsageError

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
    "resource": ("Resource", "c.ResourceId", "coalesce(c.ResourceName, c.ResourceId)"),
    "provider": ("Provider", "c.ProviderName", "c.ProviderName"),
    "meter-category": ("Meter category", "c.x_SkuMeterCategory", "c.x_SkuMeterCategory"),
    "sku": ("SKU / meter", "coalesce(c.x_SkuMeterName, c.SkuId)", "coalesce(c.x_SkuMeterName, c.SkuId)"),
}

PLAIN_DIMENSIONS = tuple(_PLAIN)
ALIASES = {"rg": "resource-group", "resourcegroup": "resource-group", "sub": "subscription", "team": "tag:team"}


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


def parse_dimensions(spec: str) -> list[Dimension]:
    """`tag:team,subscription,resource-group` → dimensions with distinct tag-join aliases."""
    parts = [p for p in (s.strip() for s in spec.split(",")) if p]
    if not parts:
        raise UsageError("--by: give at least one dimension, e.g. tag:team,subscription")
    return [dimension(p, alias=f"t{i}") for i, p in enumerate(parts)]
