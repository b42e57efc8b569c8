"""Shared cost pools: shared.toml's ordered `[[pool]]` tables, their split to the cent, and what they derive.

A pool names a slice of cost with rules.toml's match fields and globs (`allocation.rules.match_sql`, evaluated
on each charge row's own columns), plus `charge_category`, `unallocated = true` (rows with no effective value
for the `to` key) and `allocated = true` (also take rows a provider already split: AllocatedResourceId set).
Its cost is split, per day and per billing currency, to the values of the tag key `to` (default: the team key):

- `even`: equal shares among the recipients with direct cost in that currency in the day's calendar month;
- `proportional`: to each recipient's direct cost that day in that currency (only the rows matching `basis`,
  when given); each metric by its own direct cost, so EffectiveCost and BilledCost both foot;
- `fixed`: `weights`, normalised; the weighted recipients take a share in every currency;
- `metric`: `metric_file`, a CSV `period,recipient,value` (period YYYY-MM), among the recipients with direct
  cost in that currency that month.

`recipients` restricts who shares. Direct cost is cost no pool matched. Shares are whole cents by the largest
remainder rule (the sub-cent rest of the pool goes to the next largest remainder), so the parts sum exactly
to the pool, separately for EffectiveCost and BilledCost. What no recipient can take on a day (no recipient
had cost in that currency) stays "(unallocated)", recipient NULL. Pools apply in order: a row the first pool
matched is not matched again.

The derived state (charges.x_SharedPool, shared_pools, shared_splits; see store.schema) is rebuilt by
`refresh_shared` inside every write that rebuilds effective tags (the pools travel in the TagPolicy), except a tag
edit that changes none of the keys the pools read (`split_tag_keys`) on its resources. The
data layer never reads shared.toml: `load_pools` is for the command line and the app. With no shared.toml
(`pools=None`), a cache holding the demo estate uses the demo pools shipped in finops_tui/data/demo_shared.toml.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import fnmatch
import functools
import hashlib
import io
import json
import math
import uuid
from collections import defaultdict
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import tomlkit
import tomlkit.exceptions
import tomlkit.items

from finops_tui import clock, paths
from finops_tui.allocation.rules import Rule, match_sql
from finops_tui.config import read_text_file, read_toml, write_atomically
from finops_tui.errors import ConfigError, UserError
from finops_tui.store import Cache, summaries
from finops_tui.store.sources import DEMO_KIND
from finops_tui.textsafe import control_character

SHARED_FILE = "shared.toml"
DEMO_SHARED_FILE = "demo_shared.toml"
METHODS = ("even", "proportional", "fixed", "metric")
METHOD_TITLES = {
    "even": "even shares", "proportional": "proportional to direct cost", "fixed": "fixed weights",
    "metric": "by a usage metric",
}
CHARGE_CATEGORIES = ("usage", "purchase", "tax", "credit", "adjustment")
# rules.toml's match fields a pool takes (globs over the charge row's own columns).
MATCH_FIELDS = ("subscription", "resource_group", "resource_type", "service", "resource_name", "region")
_MATCH_KEYS = {*MATCH_FIELDS, "tags", "charge_category", "unallocated", "allocated"}
_BASIS_KEYS = {*MATCH_FIELDS, "tags", "charge_category"}
_POOL_KEYS = {"name", "match", "to", "method", "basis", "weights", "metric_file", "recipients"}
CENT = Decimal("0.01")
ZERO = Decimal(0)

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Pool:
    """One `[[pool]]` of shared.toml: which cost is shared (`match`), who receives it (`to`) and how."""

    name: str
    to: str  # a tag key, lower case
    method: str  # one of METHODS
    match: Rule  # match fields only (set_tags empty); rules.toml's matcher evaluates it per charge row
    charge_category: str | None = None
    unallocated: bool = False
    allocated: bool = False
    basis: Rule | None = None  # proportional: count only the direct cost matching this
    basis_category: str | None = None
    weights: tuple[tuple[str, Decimal], ...] = ()  # fixed
    metric_file: str | None = None  # metric: as written in shared.toml (relative to its folder)
    metric_values: tuple[tuple[str, str, Decimal], ...] = ()  # metric: (YYYY-MM, recipient, value)
    recipients: tuple[str, ...] | None = None
    index: int = 0  # 1-based position in shared.toml; earlier pools win

    @property
    def depends_on_tags(self) -> bool:
        """Whether the rows it matches change when effective tags do (a tag edit must re-mark them)."""
        return self.unallocated or bool(self.match.tags)

    def describe(self) -> str:
        """e.g. `resource_group=rg-network-hub* → team, proportional`."""
        conditions = [f"{f}={getattr(self.match, f)}" for f in MATCH_FIELDS if getattr(self.match, f)]
        conditions += [f"tag {k}={v}" for k, v in self.match.tags.items()]
        conditions += [f"charge_category={self.charge_category}"] if self.charge_category else []
        conditions += [f"no {self.to} value"] if self.unallocated else []
        return f"{' and '.join(conditions)} → {self.to}, {self.method}"

    def definition(self) -> str:
        """The pool as JSON, everything its split depends on (metric values included), stable across runs."""
        return json.dumps(
            {
                "name": self.name, "to": self.to, "method": self.method, "match": _rule_fields(self.match),
                "charge_category": self.charge_category, "unallocated": self.unallocated,
                "allocated": self.allocated, "basis": _rule_fields(self.basis) if self.basis else None,
                "basis_category": self.basis_category, "weights": [[k, str(v)] for k, v in self.weights],
                "metric": hashlib.sha256(repr(self.metric_values).encode()).hexdigest() if self.metric_values
                else None,
                "recipients": list(self.recipients) if self.recipients is not None else None,
            },
            sort_keys=True,
        )


def _rule_fields(rule: Rule) -> dict[str, Any]:
    fields = {name: getattr(rule, name) for name in MATCH_FIELDS if getattr(rule, name)}
    if rule.tags:
        fields["tags"] = dict(rule.tags)
    return fields


# --- shared.toml ----------------------------------------------------------------------------------


def shared_path() -> Path:
    return paths.config_dir() / SHARED_FILE


def load_pools(path: Path | None = None, *, team_key: str = "team") -> tuple[Pool, ...] | None:
    """Read shared.toml in order; None when there is no file; a bad pool is one line naming it and the field.

    For the command line and the app (through `allocation.effective.load_tag_policy`), never the data layer.
    """
    path = path or shared_path()
    data = read_toml(path)
    if data is None:
        return None
    return parse_pools(data, path, team_key=team_key)


@functools.lru_cache(maxsize=1)  # package data: parsed once, not on every tag edit of the demo
def demo_pools() -> tuple[Pool, ...]:
    """The three pools the demo estate ships with (package data), used when the user has no shared.toml."""
    text = resources.files("finops_tui").joinpath("data", DEMO_SHARED_FILE).read_text(encoding="utf-8")
    return parse_pools(tomlkit.parse(text).unwrap(), Path(DEMO_SHARED_FILE), team_key="team")


def parse_pools(data: Mapping[str, Any], path: Path, *, team_key: str = "team") -> tuple[Pool, ...]:
    unknown = sorted(set(data) - {"pool"})
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r}; pools are [[pool]] tables")
    tables = data.get("pool", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{path}: pools are [[pool]] tables (an array of tables)")
    pools = tuple(parse_pool(path, i + 1, table, team_key=team_key) for i, table in enumerate(tables))
    seen: dict[str, int] = {}
    for pool in pools:
        if pool.name.lower() in seen:
            raise ConfigError(
                f"{path}: pool {pool.index} ({_shown(pool.name)}): name: pool {seen[pool.name.lower()]} "
                "has the same name; give each pool its own"
            )
        seen[pool.name.lower()] = pool.index
    return pools


def parse_pool(path: Path, index: int, table: Any, *, team_key: str = "team") -> Pool:
    """One `[[pool]]` table, validated: a problem is a ConfigError naming the pool (index and name) and field."""
    where = f"{path}: pool {index}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a [[pool]] table")
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f'{where}: name: give the pool a name, e.g. name = "hub network"')
    name = name.strip()
    where = f"{where} ({_shown(name)})"

    def fail(field_name: str, what: str) -> ConfigError:
        return ConfigError(f"{where}: {field_name}: {what}")

    unknown = sorted(set(table) - _POOL_KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown field; use {', '.join(sorted(_POOL_KEYS))}")
    if control_character(name) is not None:
        raise fail("name", "must not hold control characters")
    to = table.get("to", team_key)
    if not isinstance(to, str) or not to.strip():
        raise fail("to", 'expected a tag key, e.g. to = "team"')
    to = to.strip().lower()
    method = table.get("method", "proportional")
    if method not in METHODS:
        raise fail("method", f"expected one of {', '.join(METHODS)}, got {_value(method)}")
    match_table = table.get("match")
    if not isinstance(match_table, dict) or not match_table:
        raise fail("match", 'give the cost to share, e.g. match = { resource_group = "rg-network-hub*" }')
    match, category, unallocated, allocated = _parse_match(match_table, _MATCH_KEYS, "match", fail)
    basis = None
    basis_category = None
    if "basis" in table:
        if method != "proportional":
            raise fail("basis", "only a proportional pool has a basis")
        basis_table = table["basis"]
        if not isinstance(basis_table, dict) or not basis_table:
            raise fail("basis", 'expected a match table, e.g. basis = { service = "Virtual Machines" }')
        basis, basis_category, _, _ = _parse_match(basis_table, _BASIS_KEYS, "basis", fail)
    recipients = None
    if "recipients" in table:
        value = table["recipients"]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            raise fail("recipients", 'expected a list of values of the key, e.g. recipients = ["payments", "search"]')
        recipients = tuple(dict.fromkeys(v.strip() for v in value))
    weights: tuple[tuple[str, Decimal], ...] = ()
    if method == "fixed":
        raw = table.get("weights")
        if not isinstance(raw, dict) or not raw:
            raise fail("weights", "a fixed pool needs weights, e.g. weights = { payments = 40, search = 60 }")
        parsed = []
        for key, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise fail(f"weights.{key}", f"expected a number (0 or more), got {_value(value)}")
            parsed.append((str(key).strip(), Decimal(str(value))))
        if not sum((w for _, w in parsed), ZERO):
            raise fail("weights", "at least one weight must be more than 0")
        if recipients is not None:
            parsed = [(k, w) for k, w in parsed if k in recipients]
            if not parsed:
                raise fail("recipients", "none of the recipients has a weight")
        weights = tuple(parsed)
    elif "weights" in table:
        raise fail("weights", "only a fixed pool has weights")
    metric_file = None
    metric_values: tuple[tuple[str, str, Decimal], ...] = ()
    if method == "metric":
        raw_file = table.get("metric_file")
        if not isinstance(raw_file, str) or not raw_file.strip():
            raise fail("metric_file", 'a metric pool needs a CSV file, e.g. metric_file = "requests.csv"')
        metric_file = raw_file.strip()
        csv_path = Path(metric_file).expanduser()
        if not csv_path.is_absolute():
            csv_path = path.parent / csv_path
        metric_values = read_metric_file(csv_path, where)
    elif "metric_file" in table:
        raise fail("metric_file", "only a metric pool reads a metric file")
    return Pool(
        name=name, to=to, method=method, match=match, charge_category=category, unallocated=unallocated,
        allocated=allocated, basis=basis, basis_category=basis_category, weights=weights, metric_file=metric_file,
        metric_values=metric_values, recipients=recipients, index=index,
    )


def _parse_match(
    table: dict[str, Any], allowed: set[str], field_name: str, fail: Any
) -> tuple[Rule, str | None, bool, bool]:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise fail(f"{field_name}.{unknown[0]}", f"unknown match field; use {', '.join(sorted(allowed))}")
    values: dict[str, str | None] = {}
    for name in (*MATCH_FIELDS, "charge_category"):
        value = table.get(name)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise fail(f"{field_name}.{name}", f"expected a glob string, got {_value(value)}")
        values[name] = value.strip() if isinstance(value, str) else None
    tags = table.get("tags", {})
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise fail(f"{field_name}.tags", 'expected a table of key = "value glob"')
    flags = {}
    for name in ("unallocated", "allocated"):
        value = table.get(name, False)
        if not isinstance(value, bool):
            raise fail(f"{field_name}.{name}", "expected true or false (without quotes)")
        flags[name] = value
    category = values.pop("charge_category")
    if category is not None and not any(_glob_matches(category, c) for c in CHARGE_CATEGORIES):
        raise fail(f"{field_name}.charge_category", f"expected one of Usage, Purchase, Tax, Credit, Adjustment, "
                                                     f"got {_value(category)}")
    rule = Rule(
        set_tags={}, tags={str(k).strip().lower(): v for k, v in tags.items()}, subscription=values["subscription"],
        resource_group=values["resource_group"], resource_type=values["resource_type"], service=values["service"],
        resource_name=values["resource_name"], region=values["region"],
    )
    if not (any(values.values()) or rule.tags or category or flags["unallocated"]):
        raise fail(field_name, "give at least one condition")
    return rule, category, flags["unallocated"], flags["allocated"]


def _glob_matches(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern.lower())


def read_metric_file(csv_path: Path, where: str) -> tuple[tuple[str, str, Decimal], ...]:
    """A metric CSV `period,recipient,value`; a bad row is one line naming the pool, file, row and field."""
    label = f"{where}: metric_file {csv_path}"
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{label}: no such file; give a CSV period,recipient,value beside shared.toml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{label}: cannot be read ({exc}); check the file") from None
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    if header != ["period", "recipient", "value"]:
        raise ConfigError(f"{label}: row 1: header: expected period,recipient,value")
    values: dict[tuple[str, str], Decimal] = {}
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 3:
            raise ConfigError(f"{label}: row {number}: expected 3 fields (period,recipient,value), got {len(row)}")
        period, recipient, raw = (cell.strip() for cell in row)
        try:
            dt.date.fromisoformat(period + "-01")
            ok = len(period) == 7
        except ValueError:
            ok = False
        if not ok:
            raise ConfigError(f"{label}: row {number}: period: expected YYYY-MM, got {_value(period)}")
        if not recipient or control_character(recipient) is not None:
            raise ConfigError(f"{label}: row {number}: recipient: expected a value of the key, got {_value(recipient)}")
        try:
            value = Decimal(raw)
        except decimal.InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite() or value < 0:
            raise ConfigError(f"{label}: row {number}: value: expected a number (0 or more), got {_value(raw)}")
        if (period, recipient) in values:
            raise ConfigError(f"{label}: row {number}: recipient: {recipient} appears twice for {period}")
        values[(period, recipient)] = value
    if not values:
        raise ConfigError(f"{label}: no rows; give period,recipient,value rows")
    return tuple((p, r, v) for (p, r), v in sorted(values.items()))


def _shown(name: str) -> str:
    return repr(name) if control_character(name) is not None or len(name) > 60 else name


def _value(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "…"


def pool_table(pool: Pool) -> tomlkit.items.Table:
    """A pool as a `[[pool]]` table (tomlkit quotes and escapes keys and values)."""
    table = tomlkit.table()
    table["name"] = pool.name
    table["to"] = pool.to
    table["method"] = pool.method
    table["match"] = _match_inline(pool.match, pool.charge_category, pool.unallocated, pool.allocated)
    if pool.basis is not None:
        table["basis"] = _match_inline(pool.basis, pool.basis_category, False, False)
    if pool.recipients is not None:
        table["recipients"] = list(pool.recipients)
    if pool.weights:
        weights = tomlkit.inline_table()
        for key, weight in pool.weights:
            weights[key] = int(weight) if weight == weight.to_integral_value() else float(weight)
        table["weights"] = weights
    if pool.metric_file:
        table["metric_file"] = pool.metric_file
    return table


def _match_inline(rule: Rule, category: str | None, unallocated: bool, allocated: bool) -> tomlkit.items.InlineTable:
    inline = tomlkit.inline_table()
    for name in MATCH_FIELDS:
        if getattr(rule, name):
            inline[name] = getattr(rule, name)
    if rule.tags:
        tags = tomlkit.inline_table()
        tags.update(rule.tags)
        inline["tags"] = tags
    if category:
        inline["charge_category"] = category
    if unallocated:
        inline["unallocated"] = True
    if allocated:
        inline["allocated"] = True
    return inline


def _document(path: Path) -> tomlkit.TOMLDocument:
    text = read_text_file(path) or ""
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file (nothing was saved)") from None


def _write_checked(path: Path, document: tomlkit.TOMLDocument, team_key: str, expected: int) -> tuple[Pool, ...]:
    """Validate the new text before it replaces the file: a save never leaves a shared.toml that fails to load."""
    text = tomlkit.dumps(document)
    pools = parse_pools(tomlkit.parse(text).unwrap(), path, team_key=team_key)
    if len(pools) != expected:
        raise UserError(f"{path}: the pools did not read back; check the file (nothing was saved)")
    write_atomically(path, text)
    return pools


def save_pool(pool: Pool, path: Path | None = None, *, team_key: str = "team") -> tuple[Pool, ...]:
    """Append a pool to shared.toml, keeping the file's other lines, comments and layout; returns every pool.

    The cache changes only when the pools are applied (`apply_pools`, in one write).
    """
    path = path or shared_path()
    document = _document(path)
    before = len(parse_pools(document.unwrap(), path, team_key=team_key))  # a broken file is refused first
    pools = document.get("pool")
    if pools is None:
        pools = tomlkit.aot()
        document["pool"] = pools
    pools.append(pool_table(pool))
    return _write_checked(path, document, team_key, before + 1)


def move_pool(index: int, new_index: int, path: Path | None = None, *, team_key: str = "team") -> tuple[Pool, ...]:
    """Move pool `index` (1-based) to position `new_index`, keeping comments; returns the pools in the new order."""
    path = path or shared_path()
    document = _document(path)
    count = len(parse_pools(document.unwrap(), path, team_key=team_key))
    if not (1 <= index <= count and 1 <= new_index <= count):
        raise UserError(f"{path}: no pool {index if not 1 <= index <= count else new_index} (there are {count})")
    pools = document["pool"]
    tables = list(pools.body)
    table = tables.pop(index - 1)
    tables.insert(new_index - 1, table)
    reordered = tomlkit.aot()
    for item in tables:
        reordered.append(item)
    document["pool"] = reordered
    return _write_checked(path, document, team_key, count)


def delete_pool(index: int, path: Path | None = None, *, team_key: str = "team") -> tuple[Pool, ...]:
    """Remove pool `index` (1-based), keeping the rest of the file; returns the remaining pools."""
    path = path or shared_path()
    document = _document(path)
    count = len(parse_pools(document.unwrap(), path, team_key=team_key))
    if not 1 <= index <= count:
        raise UserError(f"{path}: no pool {index} (there are {count})")
    pools = document["pool"]
    del pools[index - 1]
    if not len(pools):
        del document["pool"]
    return _write_checked(path, document, team_key, count - 1)


# --- Splitting to the cent -------------------------------------------------------------------------


def split_to_cents(amount: Decimal, weights: Mapping[K, Decimal]) -> dict[K, Decimal]:
    """`amount` split in proportion to the positive `weights`, every share a whole cent but at most one.

    Largest remainder: each share is its exact quota floored to the cent; the cents left over go one each to
    the largest remainders (ties by key), and the sub-cent rest of `amount` (it may have 12 decimals) to the
    next one. The shares sum to `amount` exactly. Credits (negative amounts) split the same way. No positive
    weight: an empty dict (the caller keeps the amount unallocated).

    Computed in integers over one common denominator (a tag edit re-splits every pool day), so every quota and
    remainder is an exact fraction.
    """
    positive = [(k, w.as_integer_ratio()) for k, w in weights.items() if w > 0]
    if not positive or not amount:
        return {k: ZERO for k, _ in positive} if positive else {}
    amount_n, amount_d = amount.as_integer_ratio()
    common = math.lcm(100, amount_d, *(d for _, (_, d) in positive))  # in units of 1/common: all integers
    units = amount_n * (common // amount_d)
    scaled = [(k, n * (common // d)) for k, (n, d) in positive]
    cent = common // 100
    denominator = sum(w for _, w in scaled) * cent
    cents: dict[K, int] = {}
    remainders = []
    for key, weight in scaled:
        cents[key], remainder = divmod(units * weight, denominator)  # floor: toward -inf for credits too
        remainders.append((-remainder, str(key), key))  # remainders share the denominator: compare numerators
    remainders.sort(key=lambda r: (r[0], r[1]))
    rest = units - sum(cents.values()) * cent  # >= 0, below one cent per recipient
    whole, leftover = divmod(rest, cent)
    for _, _, key in remainders[:whole]:
        cents[key] += 1
    shares = {key: Decimal(f"{c}E-2") for key, c in cents.items()}
    if leftover:  # this share is its cents plus the sub-cent rest of `amount`: as many places as `amount` has
        key = remainders[whole % len(remainders)][2]
        exponent = amount.as_tuple().exponent
        places = max(2, -exponent if isinstance(exponent, int) else 0)
        shares[key] = Decimal(f"{(cents[key] * cent + leftover) * 10 ** places // common}E-{places}")
    return shares


# --- What the pools derive in the cache -------------------------------------------------------------


@dataclass(frozen=True)
class SplitRow:
    """One recipient's share of one pool on one day in one currency (recipient None: nobody could take it)."""

    pool_index: int
    day: dt.date
    currency: str
    recipient: str | None
    effective: Decimal
    billed: Decimal


@dataclass
class SplitResult:
    rows: list[SplitRow] = field(default_factory=list)
    pool_cost: dict[int, dict[str, tuple[Decimal, Decimal]]] = field(default_factory=dict)  # currency -> (eff, billed)
    unsplit: dict[int, dict[str, tuple[Decimal, Decimal]]] = field(default_factory=dict)  # what stayed NULL


def resolve_pools(cur: duckdb.DuckDBPyConnection, pools: Sequence[Pool] | None) -> tuple[Pool, ...]:
    """The pools to apply: the given ones; with none given (no shared.toml), the demo pools on the demo estate."""
    if pools is not None:
        return tuple(pools)
    row = cur.execute("SELECT count(*) FROM sources WHERE kind = ?", [DEMO_KIND]).fetchone()
    return demo_pools() if row and row[0] else ()


def _rule_view(cur: duckdb.DuckDBPyConnection) -> None:
    # match_sql reads tag conditions from `_rule_view`: for pools, every effective tag.
    cur.execute("CREATE OR REPLACE TEMP VIEW _rule_view AS SELECT ResourceId, tag_key, tag_value FROM resource_tags")


def _category_sql(category: str, params: list[Any]) -> str:
    params.append(category.lower())
    return "lower(r.ChargeCategory) GLOB ?"


def pool_condition(pool: Pool, params: list[Any]) -> str:
    """A boolean over `charges r`: the row is cost this pool shares (before earlier pools take theirs)."""
    parts = [match_sql(pool.match, params)]
    if pool.charge_category:
        parts.append(_category_sql(pool.charge_category, params))
    if pool.unallocated:
        params.append(pool.to)
        parts.append(
            "coalesce(r.x_ResourceKey NOT IN (SELECT resource_key FROM resource_tags WHERE tag_key = ? "
            "AND resource_key IS NOT NULL), true)"
        )
    if not pool.allocated:
        parts.append("r.AllocatedResourceId IS NULL")
    return "(" + " AND ".join(parts) + ")"


def marker_sql(pools: Sequence[Pool], params: list[Any]) -> str:
    """`CASE WHEN <pool 1> THEN 1 WHEN <pool 2> THEN 2 … END` over `charges r`: the first pool that matches."""
    if not pools:
        return "NULL::SMALLINT"
    whens = " ".join(f"WHEN {pool_condition(p, params)} THEN {p.index}" for p in pools)
    return f"(CASE {whens} END)::SMALLINT"


def compute_splits(
    cur: duckdb.DuckDBPyConnection, pools: Sequence[Pool], marker: str = "r.x_SharedPool",
    marker_params: Sequence[Any] = (), *, only: int | None = None, days: tuple[dt.date, dt.date] | None = None,
) -> SplitResult:
    """Split each pool's cost per day and currency; `marker` says which pool a row `r` belongs to.

    Reads only: the refresh passes the stored marker column, a preview the CASE of `marker_sql` for pools not
    saved yet, so both compute the same figures. `only` limits the output to one pool, `days` to [start, end).
    """
    result = SplitResult()
    if not pools:
        return result
    day_sql = ""
    day_params: list[Any] = []
    if days is not None:
        day_sql = " AND r.x_ChargeDate >= ? AND r.x_ChargeDate < ?"
        day_params = [days[0], days[1]]
    only_sql = f" AND m.pool = {int(only)}" if only is not None else ""
    # The stored markers are in the summary too: when it is whole, its sums are the same exact sums, read from a
    # table ~75x smaller (a tag edit re-splits every pool: this is most of its cost at 10M rows).
    summary_key = summaries.whole_key(cur) if marker == "r.x_SharedPool" else None
    source = f"{summaries.SUMMARY_TABLE} r" if summary_key is not None else "charges r"
    amounts = cur.execute(
        f"""
        SELECT m.pool, m.day, m.currency, sum(m.eff), sum(m.billed) FROM (
            SELECT {marker} AS pool, r.x_ChargeDate AS day, r.BillingCurrency AS currency,
                   r.EffectiveCost AS eff, r.BilledCost AS billed
            FROM {source} WHERE r.BillingCurrency IS NOT NULL{day_sql}
        ) m WHERE m.pool IS NOT NULL{only_sql}
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        """,
        [*marker_params, *day_params],
    ).fetchall()
    if not amounts:
        return result
    wanted = {int(p) for p, *_ in amounts}
    by_index = {p.index: p for p in pools}
    direct: dict[tuple[str, str | None], dict[tuple[dt.date, str], dict[str, tuple[Decimal, Decimal]]]] = {}
    for index in sorted(wanted):
        pool = by_index[index]
        if pool.method == "fixed":
            continue
        key = (pool.to, pool.definition() if pool.basis is not None else None)
        if key not in direct:
            direct[key] = _direct_cost(cur, pool, marker, marker_params, day_sql, day_params,
                                       from_summary=summary_key is not None and summary_key == pool.to)
    monthly: dict[tuple[str, str | None], dict[tuple[str, str], set[str]]] = {}
    for key, per_day in direct.items():
        months: dict[tuple[str, str], set[str]] = defaultdict(set)
        for (day, currency), recipients in per_day.items():
            months[(day.strftime("%Y-%m"), currency)].update(
                r for r, (eff, billed) in recipients.items() if eff or billed
            )
        monthly[key] = months
    for pool_index, day, currency, eff, billed in amounts:
        pool = by_index[int(pool_index)]
        eff = eff or ZERO
        billed = billed or ZERO
        totals = result.pool_cost.setdefault(pool.index, {})
        te, tb = totals.get(currency, (ZERO, ZERO))
        totals[currency] = (te + eff, tb + billed)
        key = (pool.to, pool.definition() if pool.basis is not None else None)
        weights_eff, weights_billed = _weights(pool, day, currency, direct.get(key, {}), monthly.get(key, {}))
        eff_shares = split_to_cents(eff, weights_eff)
        # Even, fixed and metric pools weigh both metrics alike: the same amount splits the same way.
        same = billed == eff and weights_billed is weights_eff
        billed_shares = dict(eff_shares) if same else split_to_cents(billed, weights_billed)
        unsplit_eff = ZERO if eff_shares or not eff else eff
        unsplit_billed = ZERO if billed_shares or not billed else billed
        for recipient in sorted(set(eff_shares) | set(billed_shares)):
            e, b = eff_shares.get(recipient, ZERO), billed_shares.get(recipient, ZERO)
            if e or b:
                result.rows.append(SplitRow(pool.index, day, currency, recipient, e, b))
        if unsplit_eff or unsplit_billed:
            result.rows.append(SplitRow(pool.index, day, currency, None, unsplit_eff, unsplit_billed))
            left = result.unsplit.setdefault(pool.index, {})
            le, lb = left.get(currency, (ZERO, ZERO))
            left[currency] = (le + unsplit_eff, lb + unsplit_billed)
    return result


def _direct_cost(
    cur: duckdb.DuckDBPyConnection, pool: Pool, marker: str, marker_params: Sequence[Any], day_sql: str,
    day_params: list[Any], *, from_summary: bool = False,
) -> dict[tuple[dt.date, str], dict[str, tuple[Decimal, Decimal]]]:
    """Direct cost (no pool matched the row) per day, currency and value of the pool's key (within `basis`).

    `from_summary`: the summary is whole and summarises the pool's key, so its `tag_value` is each row's
    recipient; a `basis` (a match on any resource field) still needs the rows themselves.
    """
    if from_summary and pool.basis is None:
        rows = cur.execute(
            f"""
            SELECT r.{summaries.TAG_COLUMN}, r.x_ChargeDate, r.BillingCurrency, sum(r.EffectiveCost), sum(r.BilledCost)
            FROM {summaries.SUMMARY_TABLE} r
            WHERE {marker} IS NULL AND r.BillingCurrency IS NOT NULL AND r.{summaries.TAG_COLUMN} IS NOT NULL{day_sql}
            GROUP BY 1, 2, 3
            """,
            [*marker_params, *day_params],
        ).fetchall()
        return _by_day(rows)
    params: list[Any] = [pool.to, *marker_params, *day_params]
    basis_sql = ""
    if pool.basis is not None:
        basis_sql = " AND " + match_sql(pool.basis, params)
        if pool.basis_category:
            basis_sql += " AND " + _category_sql(pool.basis_category, params)
    rows = cur.execute(
        f"""
        SELECT t.tag_value, r.x_ChargeDate, r.BillingCurrency, sum(r.EffectiveCost), sum(r.BilledCost)
        FROM charges r JOIN resource_tags t ON t.resource_key = r.x_ResourceKey AND t.tag_key = ?
        WHERE {marker} IS NULL AND r.BillingCurrency IS NOT NULL{day_sql}{basis_sql}
        GROUP BY 1, 2, 3
        """,
        params,
    ).fetchall()
    return _by_day(rows)


def _by_day(rows: Sequence[tuple[Any, ...]]) -> dict[tuple[dt.date, str], dict[str, tuple[Decimal, Decimal]]]:
    out: dict[tuple[dt.date, str], dict[str, tuple[Decimal, Decimal]]] = defaultdict(dict)
    for recipient, day, currency, eff, billed in rows:
        out[(day, currency)][recipient] = (eff or ZERO, billed or ZERO)
    return out


def _weights(
    pool: Pool, day: dt.date, currency: str,
    direct: Mapping[tuple[dt.date, str], Mapping[str, tuple[Decimal, Decimal]]],
    monthly: Mapping[tuple[str, str], set[str]],
) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """The weights of each recipient that day, for EffectiveCost and for BilledCost."""
    allowed = set(pool.recipients) if pool.recipients is not None else None
    if pool.method == "fixed":
        weights = dict(pool.weights)
        return weights, weights
    if pool.method == "proportional":
        today = direct.get((day, currency), {})
        eff = {r: e for r, (e, _) in today.items() if allowed is None or r in allowed}
        billed = {r: b for r, (_, b) in today.items() if allowed is None or r in allowed}
        return eff, billed
    month = day.strftime("%Y-%m")
    present = {r for r in monthly.get((month, currency), set()) if allowed is None or r in allowed}
    if pool.method == "even":
        weights = {r: Decimal(1) for r in present}
        return weights, weights
    weights = {r: v for p, r, v in pool.metric_values if p == month and r in present}
    return weights, weights


def refresh_shared(
    cur: duckdb.DuckDBPyConnection, pools: Sequence[Pool] | None, *, resource_ids: Collection[str] | None = None
) -> SplitResult:
    """Rebuild what the pools derive, inside the caller's write: row markers, `shared_pools`, `shared_splits`.

    `resource_ids` (a tag edit) re-marks only those resources' rows when the pool definitions are unchanged;
    the splits are always recomputed, since any team's direct cost moves every proportional share.
    """
    applied = resolve_pools(cur, pools)
    stored = [r[0] for r in cur.execute("SELECT definition FROM shared_pools ORDER BY pool_index").fetchall()]
    definitions = [p.definition() for p in applied]
    cur.execute("DELETE FROM shared_splits")
    # A new version of the splits in the same transaction (read models keep shares in memory per version).
    cur.execute(f"COMMENT ON TABLE shared_splits IS '{uuid.uuid4().hex}'")
    if not applied:
        cleared = cur.execute("UPDATE charges SET x_SharedPool = NULL WHERE x_SharedPool IS NOT NULL").fetchone()
        cur.execute("DELETE FROM shared_pools")
        if cleared and cleared[0]:
            summaries.rebuild(cur)  # the summary keeps the markers
        return SplitResult()
    _rule_view(cur)
    try:
        params: list[Any] = []
        marker = marker_sql(applied, params)
        if resource_ids is None and stored == definitions and not any(p.depends_on_tags for p in applied):
            # The same pools, none reading tags: a row's marker depends on the row alone, so only rows written
            # since (still unmarked) can gain one. Re-marking every row rewrote the column of the whole table.
            cur.execute(
                f"UPDATE charges r SET x_SharedPool = {marker} WHERE r.x_SharedPool IS NULL AND {marker} IS NOT NULL",
                [*params, *params],
            )
            summaries.rebuild(cur)  # the summary keeps the markers
        elif resource_ids is None or stored != definitions:
            cur.execute(f"UPDATE charges r SET x_SharedPool = {marker}", params)
            summaries.rebuild(cur)  # the summary keeps the markers
        elif any(p.depends_on_tags for p in applied) and resource_ids:
            cur.execute(
                f"UPDATE charges r SET x_SharedPool = {marker} WHERE r.x_ResourceKey IN "
                "(SELECT resource_key FROM resource_keys WHERE ResourceId IN (SELECT unnest(?::VARCHAR[])))",
                [*params, [rid.lower() for rid in resource_ids]],
            )
        result = compute_splits(cur, applied)
    finally:
        cur.execute("DROP VIEW IF EXISTS _rule_view")
    if stored != definitions:
        cur.execute("DELETE FROM shared_pools")
        now = clock.now()
        cur.executemany(
            "INSERT INTO shared_pools VALUES (?, ?, ?, ?, ?, ?)",
            [[p.index, p.name, p.method, p.to, d, now] for p, d in zip(applied, definitions, strict=True)],
        )
    _insert_splits(cur, result.rows)
    return result


def _insert_splits(cur: duckdb.DuckDBPyConnection, rows: Iterable[SplitRow]) -> None:
    rows = list(rows)
    if not rows:
        return
    # Pool, day and money as one text of lines, split and cast by DuckDB (exact): binding lists of Decimal and
    # date objects was most of the write. Currency and recipient (any text) stay lists.
    text = "\n".join(f"{r.pool_index} {r.day.isoformat()} {r.effective} {r.billed}" for r in rows)
    cur.execute(
        """
        INSERT INTO shared_splits
        SELECT f[1]::SMALLINT, f[2]::DATE, currency, recipient, f[3]::DECIMAL(38, 12), f[4]::DECIMAL(38, 12)
        FROM (SELECT string_split(unnest(string_split($text, chr(10))), ' ') AS f, unnest($currency) AS currency,
                     unnest($recipient::VARCHAR[]) AS recipient)
        """,
        {"text": text, "currency": [r.currency for r in rows], "recipient": [r.recipient for r in rows]},
    )


def split_tag_keys(pools: Iterable[Pool]) -> set[str]:
    """Every tag key the pools' markers and splits read: recipients (`to`), tag matches, bases on tags. An edit
    of any other key leaves each row's pool and every share as they are."""
    keys: set[str] = set()
    for pool in pools:
        keys.add(pool.to)
        keys.update(pool.match.tags)
        if pool.basis is not None:
            keys.update(pool.basis.tags)
    return keys


def applied_definitions(cur: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in cur.execute("SELECT definition FROM shared_pools ORDER BY pool_index").fetchall()]


def pools_are_current(cur: duckdb.DuckDBPyConnection, pools: Sequence[Pool] | None) -> bool:
    """Whether the cache's derived state was built from exactly these pools (shared.toml unchanged since)."""
    return applied_definitions(cur) == [p.definition() for p in resolve_pools(cur, pools)]


def unsplit_problems(pools: Sequence[Pool], result: SplitResult) -> list[str]:
    """A line for each pool that has cost but gave none of it to anyone (no recipient with cost)."""
    problems = []
    for pool in pools:
        cost = result.pool_cost.get(pool.index, {})
        left = result.unsplit.get(pool.index, {})
        if cost and all(left.get(c, (ZERO, ZERO)) == totals for c, totals in cost.items()):
            who = f"none of {', '.join(pool.recipients)}" if pool.recipients else "no value of the key"
            field_name = "weights" if pool.method == "fixed" else "recipients" if pool.recipients else "to"
            problems.append(
                f"pool {pool.index} ({_shown(pool.name)}): {field_name}: {who} has direct cost under "
                f"tag {pool.to!r} when the pool has cost; check `to`, `recipients` or the metric file"
            )
    return problems


def apply_pools(cache: Cache, pools: Sequence[Pool] | None, *, path: Path | None = None) -> SplitResult:
    """Apply the pools to the cache in one write (after shared.toml changed); a pool nobody can take is refused
    with one line naming it, and the cache stays as it was."""
    with cache.write() as cur:
        result = refresh_shared(cur, pools)
        problems = unsplit_problems(resolve_pools(cur, pools), result)
        if problems:
            raise UserError(f"{path or shared_path()}: {problems[0]}")
    return result


@dataclass(frozen=True)
class PreviewShare:
    recipient: str | None  # None: the part no recipient can take ("(unallocated)")
    amount: Decimal


@dataclass(frozen=True)
class PoolPreview:
    """What a pool would split in a period if saved: its cost and each recipient's share, per currency."""

    pool: Pool
    metric: str
    currencies: dict[str, tuple[Decimal, list[PreviewShare]]]  # currency -> (pool cost, shares largest first)


def preview_pool(
    cur: duckdb.DuckDBPyConnection, pool: Pool, existing: Sequence[Pool] | None, start: dt.date, end: dt.date,
    metric: str = "effective",
) -> PoolPreview:
    """A pool's split over [start, end) as if appended after `existing`, computed without saving anything.

    Runs on a read cursor (TEMP views only). It computes with the same functions as the write, so saving
    the pool and applying it gives these figures to the cent.
    """
    before = resolve_pools(cur, existing)
    candidate = replace(pool, index=len(before) + 1)
    pools = (*before, candidate)
    _rule_view(cur)
    try:
        params: list[Any] = []
        marker = marker_sql(pools, params)
        result = compute_splits(cur, pools, marker, params, only=candidate.index, days=(start, end))
    finally:
        cur.execute("DROP VIEW IF EXISTS _rule_view")
    return _preview(candidate, metric, result)


def _preview(pool: Pool, metric: str, result: SplitResult) -> PoolPreview:
    effective = metric == "effective"
    sums: dict[str, dict[str | None, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in result.rows:
        sums[row.currency][row.recipient] += row.effective if effective else row.billed
    currencies = {}
    for currency, (eff, billed) in sorted(result.pool_cost.get(pool.index, {}).items()):
        shares = [PreviewShare(r, a) for r, a in sums[currency].items()]
        shares.sort(key=lambda s: (s.recipient is None, -s.amount, s.recipient or ""))
        currencies[currency] = (eff if effective else billed, shares)
    return PoolPreview(pool, metric, currencies)
