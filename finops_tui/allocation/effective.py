"""Derived per-resource tables, `resources` and `resource_tags` (effective tags), and the TagPolicy behind them."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import duckdb

from finops_tui.allocation.rules import Rule, apply_rules, load_rules
from finops_tui.allocation.shared import (
    Pool,
    load_pools,
    pools_are_current,
    refresh_shared,
    resolve_pools,
    split_tag_keys,
)
from finops_tui.config import Config
from finops_tui.store import Cache, summaries
from finops_tui.store.sources import PROVIDER_SPLIT_SQL, assign_resource_keys
from finops_tui.store.tag_sets import has_tags_sql, row_tags_sql
from finops_tui.store.tag_sets import join_sql as tag_sets_join_sql


@dataclass(frozen=True)
class TagPolicy:
    """How provider tags become effective tags: key aliases, then case folding, then the allocation rules.

    The data layer never reads it from disk: the command line and the app load config.toml's `[tags]` and
    rules.toml (`load_tag_policy`) and pass it to every write that rebuilds effective tags.
    """

    fold_case: bool = True  # Team, TEAM and team are one key
    aliases: Mapping[str, str] = field(default_factory=dict)  # provider key -> canonical key
    rules: tuple[Rule, ...] = ()  # in rules.toml's order; earlier rules win
    # shared.toml's cost pools, refreshed with the effective tags they read; None: no shared.toml (the demo
    # estate then uses its demo pools, see allocation.shared)
    pools: tuple[Pool, ...] | None = None
    # The tag key whose effective value the summary tables hold (config.toml's team_key): breakdowns and tree
    # levels by it read the summaries; other keys read `charges`.
    summary_key: str = summaries.DEFAULT_TAG_KEY

    @classmethod
    def from_config(
        cls, config: Config, rules: Collection[Rule] = (), pools: Collection[Pool] | None = None
    ) -> TagPolicy:
        return cls(fold_case=config.fold_key_case, aliases=dict(config.tag_aliases), rules=tuple(rules),
                   pools=tuple(pools) if pools is not None else None, summary_key=config.team_key.lower())


def load_tag_policy(config: Config) -> TagPolicy:
    """The user's tag policy: `config`'s [tags], rules.toml and shared.toml read now. For the command line and
    the app."""
    return TagPolicy.from_config(config, load_rules(), load_pools(team_key=config.team_key))


# The attributes `resources` keeps of each resource, as SQL over a charge row `c`, for the resource that owns
# the row (`owner`: the consumer of a provider split, described by its Allocated* columns) and for the host
# of a split row (`host`: its own columns). In the table's column order.
_ATTRIBUTES = (
    ("ResourceName", f"CASE WHEN {PROVIDER_SPLIT_SQL} THEN c.AllocatedResourceName ELSE c.ResourceName END",
     "c.ResourceName"),
    ("ResourceType", f"CASE WHEN {PROVIDER_SPLIT_SQL} THEN NULL ELSE c.ResourceType END", "c.ResourceType"),
    *((name, f"c.{name}", f"c.{name}") for name in (
        "x_ResourceGroupName", "SubAccountId", "SubAccountName", "RegionId", "ServiceName", "ProviderName")),
    ("Tags", f"CASE WHEN {PROVIDER_SPLIT_SQL} THEN c.AllocatedTags ELSE {row_tags_sql()} END", row_tags_sql()),
)
# Whether a row holds each attribute, as _ATTRIBUTES' SQL IS NOT NULL, without the tag sets joined.
_HELD = {"Tags": (f"CASE WHEN {PROVIDER_SPLIT_SQL} THEN c.AllocatedTags IS NOT NULL ELSE {has_tags_sql()} END",
                  has_tags_sql())}


def refresh_resources(cur: duckdb.DuckDBPyConnection) -> None:
    """Rebuild `resources` from `charges`: each resource's latest name, type, group, subscription and tags.

    Each attribute is the resource's latest non-null one (by ChargePeriodStart). A provider-split row describes
    two resources: its consumer (AllocatedResourceId), which owns the row's cost and takes its name and provider
    tags from AllocatedResourceName / AllocatedTags, never the host's; and its host (ResourceId), listed with its
    own name and tags though the split cost is not its own. A consumer has no resource type of its own (the
    host's would make rules on the host's type match it).

    Every row carries its owning resource's key (assign_resource_keys runs first). One pass over `charges` reads
    only keys and dates and picks each resource's latest row (its rowid, doubled, plus 1 when it describes a
    split's host); only those few thousand rows are read whole. Just the resources whose latest row lacks an
    attribute (no tags, say) are looked at again, attribute by attribute. Taking the values with arg_max over
    every row read each text and tag MAP of a million rows, at four times the cost.
    """
    latest_values = ", ".join(f"v.{name}" for name, _, _ in _ATTRIBUTES)
    cur.execute("DELETE FROM resources")
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _resource_latest AS
        WITH described AS ({_described_rows()}),
        latest AS (
            SELECT resource_key, arg_max(pick, ChargePeriodStart) AS pick, min(x_ChargeDate) AS first_seen,
                   max(x_ChargeDate) AS last_seen
            FROM described GROUP BY resource_key
        )
        SELECT l.resource_key, l.first_seen, l.last_seen, {latest_values}
        FROM latest l JOIN ({_picked_rows("SELECT pick // 2 FROM latest")}) AS v ON v.pick = l.pick
        """
    )
    lacking = " OR ".join(f"{name} IS NULL" for name, _, _ in _ATTRIBUTES)
    picks = ", ".join(
        f"arg_max(pick, ChargePeriodStart) FILTER (WHERE has_{i}) AS pick_{i}" for i in range(len(_ATTRIBUTES))
    )
    joins = " ".join(f"LEFT JOIN picked_rows v{i} ON v{i}.pick = p.pick_{i}" for i in range(len(_ATTRIBUTES)))
    filled = ", ".join(f"v{i}.{name}" for i, (name, _, _) in enumerate(_ATTRIBUTES))
    # A value found by its own pick, else the latest row's: the same wherever the latest row has one.
    chosen = ", ".join(f"coalesce(f.{name}, l.{name})" for name, _, _ in _ATTRIBUTES)
    cur.execute(
        f"""
        INSERT INTO resources
        WITH lacking AS (SELECT resource_key FROM _resource_latest WHERE {lacking}),
        described AS ({_described_rows("IN (SELECT resource_key FROM lacking)", flags=True)}),
        picked AS (SELECT resource_key, {picks} FROM described GROUP BY resource_key),
        picked_rows AS ({_picked_rows(
            f"SELECT unnest([{', '.join(f'pick_{i}' for i in range(len(_ATTRIBUTES)))}]) // 2 FROM picked")}),
        filled AS (SELECT p.resource_key, {filled} FROM picked p {joins})
        SELECT k.ResourceId, {chosen}, l.first_seen, l.last_seen
        FROM _resource_latest l JOIN resource_keys k ON k.resource_key = l.resource_key
        LEFT JOIN filled f ON f.resource_key = l.resource_key
        """
    )
    cur.execute("DROP TABLE _resource_latest")


def _described_rows(keys: str = "IS NOT NULL", *, flags: bool = False) -> str:
    """The charge rows describing each resource whose key is `keys` (SQL after the key): the rows it owns, and
    the split rows it hosts; with the row's pick and dates and, with `flags`, whether it holds each attribute
    (has_0, has_1, ...: reading every attribute, so only for a few resources)."""

    def held(side: int) -> str:
        if not flags:
            return ""
        tests = [_HELD.get(name, (f"({owner}) IS NOT NULL", f"({host}) IS NOT NULL"))[side - 1]
                 for name, owner, host in _ATTRIBUTES]
        return "".join(f", {test} AS has_{i}" for i, test in enumerate(tests))

    return f"""
        SELECT c.x_ResourceKey AS resource_key, c.rowid * 2 AS pick, c.ChargePeriodStart, c.x_ChargeDate{held(1)}
        FROM charges c WHERE c.x_ResourceKey {keys}
        UNION ALL
        SELECT k.resource_key, c.rowid * 2 + 1, c.ChargePeriodStart, c.x_ChargeDate{held(2)}
        FROM charges c JOIN resource_keys k ON k.ResourceId = c.ResourceId
        WHERE {PROVIDER_SPLIT_SQL} AND k.resource_key {keys}
    """


def _picked_rows(row_ids_sql: str) -> str:
    """The attributes of the charge rows whose rowids `row_ids_sql` selects, as their owner's (pick = 2 * rowid)
    and as their host's (2 * rowid + 1)."""
    values = ", ".join(f"CASE WHEN h.host THEN {host} ELSE {owner} END AS {name}" for name, owner, host in _ATTRIBUTES)
    return f"""
        SELECT c.rowid * 2 + CAST(h.host AS INTEGER) AS pick, {values}
        FROM charges c {tag_sets_join_sql()}, (VALUES (false), (true)) AS h(host)
        WHERE c.rowid IN ({row_ids_sql})
    """


def set_tag_aliases(cur: duckdb.DuckDBPyConnection, aliases: Mapping[str, str]) -> None:
    """Store configured key aliases (raw key -> canonical key), replacing the previous set."""
    cur.execute("DELETE FROM tag_aliases")
    if aliases:
        cur.executemany("INSERT INTO tag_aliases VALUES (?, ?)", [[k, v] for k, v in aliases.items()])


def rebuild_resource_tags(
    cur: duckdb.DuckDBPyConnection, policy: TagPolicy, *, resource_ids: Collection[str] | None = None
) -> None:
    """Recompute effective tags for every resource: manual edit > provider tag > allocation rule.

    Provider keys fold through the policy's aliases first, then (unless `fold_case` is off) to lower case,
    so `Team`, `TEAM` and `team` count as one key. When one resource carries several variants, the canonical
    spelling wins. `resource_ids` limits the work to those resources (a tag edit repaints in milliseconds,
    not seconds); a full rebuild also stores the policy's aliases, which the scoped ones then read.
    """
    canonical = (
        "coalesce(a.canonical_key, lower(e.raw_key))" if policy.fold_case else "coalesce(a.canonical_key, e.raw_key)"
    )
    scope_sql = ""
    pools = resolve_pools(cur, policy.pools)
    if resource_ids is not None and any(p.allocated and p.depends_on_tags for p in pools):
        resource_ids = _with_consumers(cur, resource_ids)
    # A tag edit touches only its resources' rows (in the summary, in the pools), unless the pools changed since
    # they were applied (every row re-marked).
    scoped_edit = resource_ids is not None and pools_are_current(cur, pools)
    delta = scoped_edit and summaries.begin_resource_change(cur, list(resource_ids or ()))
    split_keys = sorted(split_tag_keys(pools))
    if resource_ids is None:
        set_tag_aliases(cur, policy.aliases)
        cur.execute("DELETE FROM resource_tags")
    else:
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _tag_scope AS SELECT DISTINCT unnest(?::VARCHAR[]) AS ResourceId",
            [list(resource_ids)],
        )
        if scoped_edit:  # what the pools read of these resources, before
            cur.execute(f"CREATE OR REPLACE TEMP TABLE {_SPLIT_TAGS_BEFORE} AS {_SPLIT_TAGS}", {"keys": split_keys})
        cur.execute("DELETE FROM resource_tags WHERE ResourceId IN (SELECT ResourceId FROM _tag_scope)")
        scope_sql = " AND r.ResourceId IN (SELECT ResourceId FROM _tag_scope)"
    cur.execute(
        f"""
        INSERT INTO resource_tags (ResourceId, tag_key, tag_value, origin, raw_key)
        WITH entries AS (
            SELECT r.ResourceId, unnest(map_keys(r.Tags)) AS raw_key, unnest(map_values(r.Tags)) AS raw_value
            FROM resources r WHERE r.Tags IS NOT NULL{scope_sql}
        ), folded AS (
            SELECT e.ResourceId, {canonical} AS tag_key, trim(e.raw_value) AS tag_value, e.raw_key
            FROM entries e LEFT JOIN tag_aliases a ON a.alias_key = e.raw_key
            WHERE e.raw_value IS NOT NULL AND trim(e.raw_value) <> '' AND upper(trim(e.raw_value)) <> 'NULL'
        )
        SELECT ResourceId, tag_key,
               arg_min(tag_value, (raw_key <> tag_key, raw_key)), 'provider',
               arg_min(raw_key, (raw_key <> tag_key, raw_key))
        FROM folded GROUP BY ResourceId, tag_key
        """
    )
    scoped = resource_ids is not None
    # Allocation rules fill keys that neither provider tags nor manual edits set (see allocation.rules).
    apply_rules(cur, policy.rules, scope_table="_tag_scope" if scoped else None)
    _apply_manual_edits(cur, scoped)
    cur.execute(
        "UPDATE resource_tags SET resource_key = k.resource_key FROM resource_keys k "
        "WHERE resource_tags.resource_key IS NULL AND k.ResourceId = resource_tags.ResourceId"
    )
    # Shared cost pools read effective tags (recipients, `unallocated`, tag matches, bases): refreshed in the same
    # transaction, unless the edit changed none of the keys they read on its resources (then nothing they derive
    # can change: each row's pool and every share stay as they are).
    resplit = not scoped_edit or _split_tags_changed(cur, split_keys)
    if scoped:
        cur.execute("DROP TABLE _tag_scope")
    remark = resplit and any(p.depends_on_tags for p in pools)
    summaries.expect_rebuild(cur)
    if delta:
        if remark:  # rows may change pools: they leave the summary as they are and come back re-marked
            summaries.take_out_resources(cur)
        else:  # made whole first, so the re-split reads the summary instead of scanning `charges`
            summaries.end_resource_change(cur)
    if resplit:
        refresh_shared(cur, pools, resource_ids=resource_ids)  # rebuilds the summary when it re-marks every row
    if delta:
        if remark:
            summaries.end_resource_change(cur)
    elif not summaries.rebuilt(cur) or (resource_ids is None and summaries.stored_tag_key(cur) != policy.summary_key):
        summaries.rebuild(cur, policy.summary_key if resource_ids is None else None)


def _with_consumers(cur: duckdb.DuckDBPyConnection, resource_ids: Collection[str]) -> list[str]:
    """The resources and the consumers a provider split their cost to."""
    # An `allocated = true` pool matches a split row by its host's tags, so editing a host may move rows that
    # belong to its consumers: they join the edit's scope (their summary rows and pool markers follow).
    ids = sorted({r.lower() for r in resource_ids})
    consumers = cur.execute(
        "SELECT DISTINCT AllocatedResourceId FROM charges WHERE AllocatedResourceId IS NOT NULL "
        "AND ResourceId IN (SELECT unnest(?::VARCHAR[]))",
        [ids],
    ).fetchall()
    return sorted({*ids, *(row[0] for row in consumers)})


# The values of the keys the shared pools read ($keys) on a scoped rebuild's resources (_tag_scope).
_SPLIT_TAGS_BEFORE = "_split_tags_before"
_SPLIT_TAGS = ("SELECT ResourceId, tag_key, tag_value FROM resource_tags WHERE ResourceId IN "
               "(SELECT ResourceId FROM _tag_scope) AND tag_key IN (SELECT unnest($keys::VARCHAR[]))")


def _split_tags_changed(cur: duckdb.DuckDBPyConnection, keys: list[str]) -> bool:
    """After a scoped rebuild: whether any of those values changed (set, removed or another value)."""
    row = cur.execute(
        f"""
        SELECT count(*) FROM ((SELECT * FROM {_SPLIT_TAGS_BEFORE} EXCEPT ALL {_SPLIT_TAGS})
                              UNION ALL ({_SPLIT_TAGS} EXCEPT ALL SELECT * FROM {_SPLIT_TAGS_BEFORE}))
        """,
        {"keys": keys},
    ).fetchone()
    cur.execute(f"DROP TABLE {_SPLIT_TAGS_BEFORE}")
    return bool(row and row[0])


def _apply_manual_edits(cur: duckdb.DuckDBPyConnection, scoped: bool = False) -> None:
    """The newest live manual edit per (resource, key) wins; an edit to no value removes the tag."""
    scope_sql = " AND ResourceId IN (SELECT ResourceId FROM _tag_scope)" if scoped else ""
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _latest_edits AS
        SELECT ResourceId, tag_key, arg_max(new_value, edit_id) AS new_value
        FROM tag_edits WHERE NOT undone{scope_sql} GROUP BY ResourceId, tag_key
        """
    )
    cur.execute(
        "DELETE FROM resource_tags rt USING _latest_edits e "
        "WHERE rt.ResourceId = e.ResourceId AND rt.tag_key = e.tag_key"
    )
    cur.execute(
        """
        INSERT INTO resource_tags (ResourceId, tag_key, tag_value, origin, raw_key)
        SELECT ResourceId, tag_key, new_value, 'manual', tag_key FROM _latest_edits WHERE new_value IS NOT NULL
        """
    )
    cur.execute("DROP TABLE _latest_edits")


def refresh_derived(cur: duckdb.DuckDBPyConnection, policy: TagPolicy) -> None:
    """After charges change: rebuild resources and effective tags (inside the caller's transaction)."""
    assign_resource_keys(cur)  # rows written without finish_window (tests, tools) still join to their tags
    refresh_resources(cur)
    rebuild_resource_tags(cur, policy)


def reapply_rules(cache: Cache, policy: TagPolicy) -> None:
    """Recompute every effective tag after rules.toml or the [tags] settings changed, in one write (readers
    never see half). A few thousand resources: milliseconds."""
    with cache.write() as cur:
        rebuild_resource_tags(cur, policy)
