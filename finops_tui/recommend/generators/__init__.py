"""Recommendation generators: each a `(cursor, Context) -> list[Recommendation]` over the cache."""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from finops_tui.recommend.generators.anomalies import KIND_SPIKE, KIND_STEP, detect_anomalies
from finops_tui.recommend.generators.budgets import KIND as KIND_BUDGET
from finops_tui.recommend.generators.budgets import budgets_at_risk
from finops_tui.recommend.generators.commitments import (
    KIND_PURCHASE,
    KIND_UNUSED,
    commitment_candidates,
    unused_commitments,
)
from finops_tui.recommend.generators.growth import KIND as KIND_GROWTH
from finops_tui.recommend.generators.growth import steady_growth
from finops_tui.recommend.generators.idle import KIND_ORPHANS, KIND_STOPPED, idle_resources
from finops_tui.recommend.generators.new_sku import KIND as KIND_NEW_SKU
from finops_tui.recommend.generators.new_sku import KIND_NEW_RESOURCE, new_expensive_resources, new_expensive_skus
from finops_tui.recommend.generators.tag_hygiene import (
    KIND_KEYS,
    KIND_VALUES,
    tag_key_variants,
    tag_value_variants,
)
from finops_tui.recommend.generators.unallocated import KIND as KIND_UNALLOCATED
from finops_tui.recommend.generators.unallocated import unallocated_hotspots
from finops_tui.recommend.model import Context, Recommendation

Generator = Callable[[duckdb.DuckDBPyConnection, Context], list[Recommendation]]

# name → (generator, kinds it yields); the order is the order they run in.
GENERATORS: dict[str, tuple[Generator, tuple[str, ...]]] = {
    "unallocated": (unallocated_hotspots, (KIND_UNALLOCATED,)),
    "anomalies": (detect_anomalies, (KIND_SPIKE, KIND_STEP)),
    "new-sku": (new_expensive_skus, (KIND_NEW_SKU,)),
    "new-resources": (new_expensive_resources, (KIND_NEW_RESOURCE,)),
    "unused-commitments": (unused_commitments, (KIND_UNUSED,)),
    "growth": (steady_growth, (KIND_GROWTH,)),
    "idle": (idle_resources, (KIND_ORPHANS, KIND_STOPPED)),
    "commitment-candidates": (commitment_candidates, (KIND_PURCHASE,)),
    "tag-keys": (tag_key_variants, (KIND_KEYS,)),
    "tag-values": (tag_value_variants, (KIND_VALUES,)),
    "budgets": (budgets_at_risk, (KIND_BUDGET,)),
}

# Every kind, with the words the screen and the report show for it.
KIND_TITLES: dict[str, str] = {
    KIND_UNALLOCATED: "Unallocated spend",
    KIND_SPIKE: "Cost spike",
    KIND_STEP: "Cost level shift",
    KIND_NEW_SKU: "New expensive SKU",
    KIND_NEW_RESOURCE: "New expensive resource",
    KIND_UNUSED: "Unused commitment",
    KIND_GROWTH: "Steady growth",
    KIND_ORPHANS: "Orphan resources",
    KIND_STOPPED: "Stopped compute, storage left",
    KIND_PURCHASE: "Commitment purchase",
    KIND_KEYS: "Tag key variants",
    KIND_VALUES: "Tag value variants",
    KIND_BUDGET: "Budget at risk",
}

__all__ = ["GENERATORS", "KIND_TITLES", "Generator"]
