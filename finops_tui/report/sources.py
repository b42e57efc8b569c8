"""Where a read model's figures come from: the smallest summary table that can answer exactly, else `charges`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from finops_tui.basis.dimensions import UNALLOCATED, Dimension, dimension
from finops_tui.store import summaries


class _SummaryTag(Dimension):
    """A tag dimension read from the summary's denormalised tag column: no join."""

    def join_sql(self, alias: str | None = None) -> str:
        return ""


@dataclass(frozen=True)
class Source:
    """The table behind `FROM … c` and how a dimension, a path step and a row count read over it.

    Over `charges` everything is as the read models always wrote it; over `daily_summary` the same column
    names hold per-day group sums, so `sum(c.EffectiveCost)` is a sum of sums (exact) and rows are counted
    with `sum(c.row_count)`.
    """

    table: str = "charges"
    tag_key: str | None = None  # the tag key the summary holds

    @property
    def is_summary(self) -> bool:
        return self.table != "charges"

    @property
    def rows_sql(self) -> str:
        return "sum(c.row_count)" if self.is_summary else "count(*)"

    def level(self, dim: Dimension, alias: str) -> Dimension:
        """`dim` over this source, its tag join (over charges) aliased `alias`."""
        if not dim.is_tag:
            return dim
        if self.is_summary:
            column = f"c.{summaries.TAG_COLUMN}"
            return _SummaryTag(dim.name, dim.title, column, f"coalesce({column}, '{UNALLOCATED}')", dim.tag_key,
                               alias)
        return dimension(dim.name, alias=alias)

    def tag_filter(self, tag_key: str, value: str | None, name: str, params: dict[str, Any]) -> str:
        """`AND …` keeping the rows whose owning resource has `value` (None: no value) for `tag_key`."""
        if self.is_summary:
            if value is None:
                return f" AND c.{summaries.TAG_COLUMN} IS NULL"
            params[name] = value
            return f" AND c.{summaries.TAG_COLUMN} = ${name}"
        params[f"{name}_k"] = tag_key
        # Keyed on the owning resource (a provider-split row's consumer), as the tag joins are.
        tagged = f"SELECT resource_key FROM resource_tags WHERE tag_key = ${name}_k AND resource_key IS NOT NULL"
        if value is None:  # no effective value, including charges that belong to no resource at all
            return f" AND (c.x_ResourceKey IS NULL OR c.x_ResourceKey NOT IN ({tagged}))"
        params[name] = value
        return f" AND c.x_ResourceKey IN ({tagged} AND tag_value = ${name})"

    def owners_join(self, steps: Sequence[tuple[str, str, str]], level_tag_key: str | None, params: dict[str, Any],
                    alias: str) -> str:
        """` JOIN (…) alias`: over `charges`, the owning resources that have every (param name, tag key, value) of
        `steps`, with their value for `level_tag_key` as `alias.tag_value` (NULL: none), joined once.

        It stands in for a semi-join per tag step plus the level's LEFT JOIN: the tags are read once, joined among
        themselves (a few thousand resources), and `charges` probes one small table. Equal answers: a resource
        has at most one value per tag key, so the inner join keeps each row once, as the semi-join did."""
        (owner, owner_key, owner_value), *rest = steps
        params[f"{owner}_k"], params[owner] = owner_key, owner_value
        joins = ""
        for name, tag_key, value in rest:
            params[f"{name}_k"], params[name] = tag_key, value
            joins += (f" JOIN resource_tags {name} ON {name}.resource_key = {owner}.resource_key"
                      f" AND {name}.tag_key = ${name}_k AND {name}.tag_value = ${name}")
        value_sql = "NULL"
        if level_tag_key is not None:
            params[f"{alias}_k"] = level_tag_key
            joins += (f" LEFT JOIN resource_tags {alias} ON {alias}.resource_key = {owner}.resource_key"
                      f" AND {alias}.tag_key = ${alias}_k")
            value_sql = f"{alias}.tag_value"
        return (f" JOIN (SELECT {owner}.resource_key, {value_sql} AS tag_value FROM resource_tags {owner}{joins}"
                f" WHERE {owner}.tag_key = ${owner}_k AND {owner}.tag_value = ${owner}"
                f" AND {owner}.resource_key IS NOT NULL) {alias} ON {alias}.resource_key = c.x_ResourceKey")

    def tag_value_sql(self, tag_key: str, alias: str = "t") -> tuple[str, str]:
        """(JOIN clause, value expression) giving each row's effective value for `tag_key`."""
        if self.is_summary:
            return "", f"c.{summaries.TAG_COLUMN}"
        key = tag_key.replace("'", "''")
        return (f" LEFT JOIN resource_tags {alias} ON {alias}.resource_key = c.x_ResourceKey"
                f" AND {alias}.tag_key = '{key}'", f"{alias}.tag_value")


CHARGES = Source()


def _answerable(dim: Dimension, state: summaries.SummaryState) -> bool:
    if dim.is_tag:
        return dim.tag_key == state.tag_key
    return dim.name in summaries.SUMMARY_DIMENSIONS


def _columns(dim: Dimension) -> set[str]:
    """The summary columns a dimension's key and label read."""
    if dim.is_tag:
        return {summaries.TAG_COLUMN}
    return set(re.findall(r"\bc\.(\w+)", f"{dim.key_sql} {dim.label_sql}"))


def source_for(
    cur: duckdb.DuckDBPyConnection, dims: Iterable[Dimension | str] = (), *, tag_keys: Sequence[str] = ()
) -> Source:
    """The smallest table that answers exactly for these dimensions (and tag keys): when the summary is current
    and holds every one of them, the first of its rollups (smallest first) that keeps every column they read (the
    day, the currency and the pool marker are in all), else the summary itself; otherwise `charges`."""
    state = summaries.current(cur)
    if state is None:
        return CHARGES
    resolved = [d if isinstance(d, Dimension) else dimension(d) for d in dims]
    if not (all(_answerable(d, state) for d in resolved) and all(k.lower() == state.tag_key for k in tag_keys)):
        return CHARGES
    needed = set().union(*(_columns(d) for d in resolved), {summaries.TAG_COLUMN} if tag_keys else set())
    table = next(name for name, columns in summaries.TABLES if needed <= set(columns))
    return Source(table, state.tag_key)
