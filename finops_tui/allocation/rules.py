"""Allocation rules: ordered `[[rule]]` tables in rules.toml that fill tag keys nothing else set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import tomlkit
import tomlkit.items

from finops_tui import paths
from finops_tui.allocation.tag_limits import tag_problem
from finops_tui.basis.metrics import metric_column, resolve_currency
from finops_tui.basis.periods import Period
from finops_tui.config import read_text_file, read_toml, write_atomically
from finops_tui.errors import UserError
from finops_tui.store.sources import owning_resource_sql
from finops_tui.textsafe import control_character

RULES_FILE = "rules.toml"

# Match fields of a rule (all optional, all case-insensitive globs: `*`, `?`, `[abc]`).
MATCH_FIELDS = ("subscription", "resource_group", "resource_type", "service", "resource_name", "region")
# Fields of allocation rules only (not of shared cost pools, which match charge rows): `host` globs the name or
# id of the shared resource a provider split an allocated resource's cost from; `allocated` (true / false)
# keeps only the resources a provider split cost to (Kubernetes workloads, say), or only the others.
SPLIT_FIELDS = ("host", "allocated")
_KNOWN_FIELDS = {"name", "set", "tags", *MATCH_FIELDS, *SPLIT_FIELDS}


@dataclass(frozen=True)
class Rule:
    """Resources matching every given field get `set` (key -> value) where they have no other value.

    `subscription` matches the id or the name; `resource_type` the FOCUS type or the ARM type
    (`microsoft.compute/virtualmachines`); `tags` matches other effective tags (key -> value glob), which
    for an allocated resource (a provider split's consumer, e.g. a Kubernetes workload) are its AllocatedTags.
    """

    set_tags: dict[str, str]
    name: str | None = None
    subscription: str | None = None
    resource_group: str | None = None
    resource_type: str | None = None
    service: str | None = None
    resource_name: str | None = None
    region: str | None = None
    host: str | None = None
    allocated: bool | None = None  # true: only resources a provider split cost to; false: only the others
    tags: dict[str, str] = field(default_factory=dict)
    index: int = 0  # 1-based position in rules.toml; earlier rules win

    @property
    def label(self) -> str:
        """The rule's name, or a description built from what it matches."""
        return self.name or self.describe()

    def describe(self) -> str:
        """e.g. `resource_group=rg-payments-* → team=payments`."""
        conditions = [f"{f}={getattr(self, f)}" for f in MATCH_FIELDS if getattr(self, f)]
        if self.host:
            conditions.append(f"host={self.host}")
        if self.allocated is not None:
            conditions.append(f"allocated={str(self.allocated).lower()}")
        conditions += [f"tag {k}={v}" for k, v in self.tags.items()]
        sets = ", ".join(f"{k}={v}" for k, v in self.set_tags.items())
        return f"{' and '.join(conditions) or 'every resource'} → {sets}"


def rules_path() -> Path:
    return paths.config_dir() / RULES_FILE


def load_rules(path: Path | None = None) -> list[Rule]:
    """Read rules.toml in order; no file means no rules, a broken one a clear error naming the rule.

    Called by the command line and the app (through `allocation.effective.load_tag_policy`), never by the
    data layer: every rebuild gets its rules as an argument.
    """
    path = path or rules_path()
    data = read_toml(path)
    if data is None:
        return []
    tables = data.get("rule", [])
    if not isinstance(tables, list):
        raise UserError(f"{path}: rules are [[rule]] tables (an array of tables)")
    return [_parse_rule(path, i + 1, table) for i, table in enumerate(tables)]


def _parse_rule(path: Path, index: int, table: Any) -> Rule:
    where = f"{path}: rule {index}"
    if not isinstance(table, dict):
        raise UserError(f"{where}: expected a [[rule]] table")
    unknown = sorted(set(table) - _KNOWN_FIELDS)
    if unknown:
        raise UserError(f"{where}: unknown field {unknown[0]!r}; use {', '.join(sorted(_KNOWN_FIELDS))}")
    sets = table.get("set")
    if not isinstance(sets, dict) or not sets:
        raise UserError(f'{where}: give the tags to set, e.g. set = {{ team = "payments" }}')
    tags = table.get("tags", {})
    if not isinstance(tags, dict):
        raise UserError(f'{where}: tags is a table of key = "value glob"')
    allocated = table.get("allocated")
    if allocated is not None and not isinstance(allocated, bool):
        raise UserError(f"{where}: allocated must be true or false, without quotes")
    fields: dict[str, str | None] = {}
    for name in (*MATCH_FIELDS, "name", "host"):
        value = table.get(name)
        if value is not None and not isinstance(value, str):
            raise UserError(f"{where}: {name} must be a string")
        fields[name] = value
    if fields["name"] and fields["name"].strip():
        where = f"{where} ({_shown_name(fields['name'].strip())})"
    set_tags = {str(k).strip().lower(): str(v).strip() for k, v in sets.items()}
    if any(not k or not v for k, v in set_tags.items()):
        raise UserError(f"{where}: tag keys and values in `set` must not be empty")
    for key, value in set_tags.items():
        problem = tag_problem(key, value)
        if problem is not None:
            raise UserError(f"{where}: tag {key!r}: {problem}")
    return Rule(
        set_tags=set_tags, tags={str(k).strip().lower(): str(v) for k, v in tags.items()}, index=index,
        name=fields["name"], subscription=fields["subscription"], resource_group=fields["resource_group"],
        resource_type=fields["resource_type"], service=fields["service"], resource_name=fields["resource_name"],
        region=fields["region"], host=fields["host"], allocated=allocated,
    )


def _shown_name(name: str) -> str:
    """A rule's name for a message: as written, unless quoting is needed to show it safely."""
    return repr(name) if control_character(name) is not None or len(name) > 60 else name


def rule_table(rule: Rule) -> tomlkit.items.Table:
    """A rule as a `[[rule]]` table (tomlkit quotes and escapes keys and values)."""
    table = tomlkit.table()
    if rule.name:
        table["name"] = rule.name
    for name in MATCH_FIELDS:
        value = getattr(rule, name)
        if value:
            table[name] = value
    if rule.host:
        table["host"] = rule.host
    if rule.allocated is not None:
        table["allocated"] = rule.allocated
    if rule.tags:
        table["tags"] = _inline_table(rule.tags)
    table["set"] = _inline_table(rule.set_tags)
    return table


def rule_to_toml(rule: Rule) -> str:
    document = tomlkit.document()
    rules = tomlkit.aot()
    rules.append(rule_table(rule))
    document["rule"] = rules
    return tomlkit.dumps(document)


def _inline_table(pairs: dict[str, str]) -> tomlkit.items.InlineTable:
    table = tomlkit.inline_table()
    table.update(pairs)
    return table


def save_rule(rule: Rule, path: Path | None = None) -> Rule:
    """Append a rule to rules.toml, keeping the file's other lines, comments and layout; returns it with its index.

    Effective tags change only after `rebuild_resource_tags` (see `allocation.effective.reapply_rules`).
    """
    path = path or rules_path()
    existing = read_text_file(path) or ""
    before = len(load_rules(path)) if existing else 0  # a broken file is refused before anything is written
    document = tomlkit.parse(existing)
    rules = document.get("rule")
    if rules is None:
        rules = tomlkit.aot()
        rules.append(rule_table(rule))
        document["rule"] = rules
    else:
        rules.append(rule_table(rule))
    write_atomically(path, tomlkit.dumps(document))
    saved = load_rules(path)
    if len(saved) != before + 1:
        raise UserError(f"{path}: the rule did not read back; check the file")
    return saved[-1]


# --- Evaluation -----------------------------------------------------------------------------------


def _glob(column_sql: str, value: str, params: list[Any]) -> str:
    params.append(value.lower())
    return f"lower({column_sql}) GLOB ?"


def match_sql(rule: Rule, params: list[Any]) -> str:
    """A WHERE clause over `resources r` (and `_rule_view` for tag conditions).

    Shared cost pools (allocation.shared) evaluate the same clause over `charges` aliased `r`: every column it
    reads has the same name there.
    """
    parts: list[str] = []
    if rule.subscription:
        parts.append(f"({_glob('r.SubAccountId', rule.subscription, params)} "
                     f"OR {_glob('r.SubAccountName', rule.subscription, params)})")
    if rule.resource_group:
        parts.append(_glob("r.x_ResourceGroupName", rule.resource_group, params))
    if rule.resource_type:
        arm_type = r"regexp_extract(r.ResourceId, '/providers/([^/]+/[^/]+)/[^/]+$', 1)"
        parts.append(f"({_glob('r.ResourceType', rule.resource_type, params)} "
                     f"OR {_glob(arm_type, rule.resource_type, params)})")
    if rule.service:
        parts.append(_glob("r.ServiceName", rule.service, params))
    if rule.resource_name:
        parts.append(_glob("coalesce(r.ResourceName, regexp_extract(r.ResourceId, '[^/]+$'))",
                           rule.resource_name, params))
    if rule.region:
        parts.append(_glob("r.RegionId", rule.region, params))
    if rule.host:
        host_match = f"({_glob('h.host_id', rule.host, params)} OR {_glob('h.host_name', rule.host, params)})"
        parts.append(f"EXISTS (SELECT 1 FROM _rule_hosts h WHERE h.ResourceId = r.ResourceId AND {host_match})")
    if rule.allocated is not None:
        negation = "" if rule.allocated else "NOT "
        parts.append(f"r.ResourceId {negation}IN (SELECT ResourceId FROM _rule_hosts)")
    for key, value in rule.tags.items():
        params.append(key)
        parts.append(
            "EXISTS (SELECT 1 FROM _rule_view v WHERE v.ResourceId = r.ResourceId AND v.tag_key = ? "
            f"AND {_glob('v.tag_value', value, params)})"
        )
    return " AND ".join(parts) or "true"


def evaluate_rules(
    cur: duckdb.DuckDBPyConnection, rules: Sequence[Rule], scope_table: str | None = None
) -> None:
    """Fill TEMP table `_rule_output(ResourceId, tag_key, tag_value, rule_index)` with what the rules set.

    Inputs are provider tags and live manual edits (a rule never overrides either, and matches on
    them), then each rule in order sees what earlier rules set. The same inputs give the same output
    whether called while rebuilding effective tags or later to say which rule set a tag.
    """
    scope = f" AND ResourceId IN (SELECT ResourceId FROM {scope_table})" if scope_table else ""
    r_scope = f" AND r.ResourceId IN (SELECT ResourceId FROM {scope_table})" if scope_table else ""
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _rule_manual AS
        SELECT ResourceId, tag_key, arg_max(new_value, edit_id) AS tag_value
        FROM tag_edits WHERE NOT undone{scope} GROUP BY 1, 2
        """
    )
    # Keys a rule must leave alone: any provider value or manual edit (an edit to no value included).
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _rule_blocked AS
        SELECT ResourceId, tag_key FROM resource_tags WHERE origin = 'provider'{scope}
        UNION SELECT ResourceId, tag_key FROM _rule_manual
        """
    )
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _rule_view AS
        SELECT ResourceId, tag_key, tag_value FROM resource_tags t WHERE origin = 'provider'{scope}
          AND NOT EXISTS (SELECT 1 FROM _rule_manual m WHERE m.ResourceId = t.ResourceId AND m.tag_key = t.tag_key)
        UNION ALL SELECT ResourceId, tag_key, tag_value FROM _rule_manual WHERE tag_value IS NOT NULL
        """
    )
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _rule_output "
        "(ResourceId VARCHAR, tag_key VARCHAR, tag_value VARCHAR, rule_index INTEGER)"
    )
    if any(rule.host or rule.allocated is not None for rule in rules):
        # Allocated resources and the hosts their cost was split from: one pass over the split rows.
        cur.execute(
            """
            CREATE OR REPLACE TEMP TABLE _rule_hosts AS
            SELECT s.ResourceId, s.host_id, hr.ResourceName AS host_name
            FROM (SELECT DISTINCT AllocatedResourceId AS ResourceId, ResourceId AS host_id FROM charges
                  WHERE AllocatedResourceId IS NOT NULL) s
            LEFT JOIN resources hr ON hr.ResourceId = s.host_id
            """
        )
    for rule in rules:
        params: list[Any] = []
        where = match_sql(rule, params)
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE _rule_match AS SELECT r.ResourceId FROM resources r WHERE {where}{r_scope}",
            params,
        )
        for key, value in rule.set_tags.items():
            cur.execute(
                """
                INSERT INTO _rule_output
                SELECT m.ResourceId, $key, $value, $index FROM _rule_match m
                WHERE NOT EXISTS (SELECT 1 FROM _rule_blocked b WHERE b.ResourceId = m.ResourceId AND b.tag_key = $key)
                  AND NOT EXISTS (SELECT 1 FROM _rule_output o WHERE o.ResourceId = m.ResourceId AND o.tag_key = $key)
                """,
                {"key": key, "value": value, "index": rule.index},
            )
        cur.execute(
            "INSERT INTO _rule_view SELECT ResourceId, tag_key, tag_value FROM _rule_output WHERE rule_index = ?",
            [rule.index],
        )
    for name in ("_rule_manual", "_rule_blocked", "_rule_view", "_rule_match", "_rule_hosts"):
        cur.execute(f"DROP TABLE IF EXISTS {name}")


def apply_rules(cur: duckdb.DuckDBPyConnection, rules: Sequence[Rule], *, scope_table: str | None = None) -> None:
    """Called by `rebuild_resource_tags` after provider tags: add each rule's tags with origin 'rule'.

    `scope_table` (a TEMP table of ResourceId) limits the work to some resources.
    """
    if not rules:
        return
    evaluate_rules(cur, rules, scope_table)
    cur.execute(
        "INSERT INTO resource_tags (ResourceId, tag_key, tag_value, origin, raw_key) "
        "SELECT ResourceId, tag_key, tag_value, 'rule', tag_key FROM _rule_output"
    )
    cur.execute("DROP TABLE _rule_output")


def rule_attribution(
    cur: duckdb.DuckDBPyConnection, resource_ids: Sequence[str] | None = None, *, rules: Sequence[Rule]
) -> dict[tuple[str, str], Rule]:
    """(resource, key) -> the rule that set it, for the given resources (all when None)."""
    if not rules:
        return {}
    scope = None
    if resource_ids is not None:
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _attribution_scope AS SELECT DISTINCT unnest(?::VARCHAR[]) AS ResourceId",
            [[r.lower() for r in resource_ids]],
        )
        scope = "_attribution_scope"
    evaluate_rules(cur, rules, scope)
    by_index = {r.index: r for r in rules}
    rows = cur.execute("SELECT ResourceId, tag_key, rule_index FROM _rule_output").fetchall()
    cur.execute("DROP TABLE _rule_output")
    if scope:
        cur.execute(f"DROP TABLE {scope}")
    return {(rid, key): by_index[index] for rid, key, index in rows}


@dataclass(frozen=True)
class RuleAllocation:
    """How much spend one rule allocates in a period: the resources it tagged and their cost.

    `cost` counts each resource once; `cost_by_key` splits it by the keys the rule filled (a rule that
    sets team and env may fill env only where a provider tag already says the team).
    """

    rule: Rule
    currency: str
    resources: int
    cost: Decimal
    cost_by_key: dict[str, Decimal] = field(default_factory=dict)


def rule_allocations(
    cur: duckdb.DuckDBPyConnection, period: Period, metric: str = "effective", currency: str | None = None,
    *, rules: Sequence[Rule],
) -> list[RuleAllocation]:
    """Each rule in file order with the resources it tagged and their cost in `period` (one currency).

    Rules that allocate nothing are listed with zero, so dead rules are easy to spot.
    """
    if not rules:
        return []
    code = resolve_currency(cur, period, metric, currency)
    col = metric_column(metric)
    owning = owning_resource_sql("")  # a provider-split row's cost is its consumer's
    evaluate_rules(cur, rules)
    rows = cur.execute(
        f"""
        WITH rc AS (
            SELECT {owning} AS ResourceId, sum({col}) AS cost FROM charges
            WHERE x_ChargeDate >= ? AND x_ChargeDate < ? AND BillingCurrency = ?
              AND {owning} IN (SELECT ResourceId FROM _rule_output)
            GROUP BY 1
        )
        SELECT o.rule_index, o.tag_key, count(*), coalesce(sum(rc.cost), 0) FROM _rule_output o
        LEFT JOIN rc USING (ResourceId) GROUP BY 1, 2
        UNION ALL
        SELECT h.rule_index, NULL, count(*), coalesce(sum(rc.cost), 0)
        FROM (SELECT DISTINCT rule_index, ResourceId FROM _rule_output) h LEFT JOIN rc USING (ResourceId) GROUP BY 1
        """,
        [period.start, period.end, code],
    ).fetchall()
    cur.execute("DROP TABLE _rule_output")
    totals: dict[int, tuple[int, Decimal]] = {}
    by_key: dict[int, dict[str, Decimal]] = {}
    for index, key, count, cost in rows:
        if key is None:
            totals[int(index)] = (int(count), cost)
        else:
            by_key.setdefault(int(index), {})[key] = cost
    return [
        RuleAllocation(rule, code, *totals.get(rule.index, (0, Decimal(0))), by_key.get(rule.index, {}))
        for rule in rules
    ]
