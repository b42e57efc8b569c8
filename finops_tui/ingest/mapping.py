"""How one file's columns become `charges` columns: SQL expressions plus the checks that make a row bad."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from finops_tui.store.schema import ALLOCATION_COLUMNS, CHARGE_COLUMNS, MONEY_TYPE
from finops_tui.store.sources import owning_resource_sql
from finops_tui.store.tag_sets import TAG_SET_COLUMN, tags_from_json

# Every spelling of the literal NULL that some exporters write instead of an empty field.
NULL_SPELLINGS: tuple[str, ...] = tuple(
    "".join(letters) for letters in itertools.product(*((c.lower(), c.upper()) for c in "null"))
)

# Dates a cost row may carry: anything outside is a typo or a placeholder (0001-01-01, 9999-12-31) that
# would stretch every "all" period over millennia and overflow Python's dates when read back.
FIRST_DATE = "2000-01-01"
END_DATE = "2101-01-01"  # exclusive: the years 2000 to 2100
DATE_RANGE_TEXT = "in the years 2000 to 2100"

# Columns filled by the loader itself rather than by a mapping. x_ResourceKey comes from resource_keys in the INSERT
# for the ids the cache knows already (see Mapping.insert_sql); finish_window stamps the others.
LOADER_COLUMNS = ("x_ChargeDate", "source_id", "x_ResourceKey")
MAPPED_COLUMNS: tuple[str, ...] = (
    *(name for name, _ in CHARGE_COLUMNS if name not in LOADER_COLUMNS), TAG_SET_COLUMN
)
# What a mapping that does not read FOCUS 1.3's columns (FOCUS 1.0-1.2, Azure cost details) puts in them:
# the provider names from their predecessors, and no provider split.
_ALLOCATION_NAMES = frozenset(column for column, _ in ALLOCATION_COLUMNS)
_PREDECESSORS = {"ServiceProviderName": "ProviderName", "HostProviderName": "PublisherName"}


def quote_ident(name: str) -> str:
    """A DuckDB identifier, quoted so that any header text is safe."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_list(values: list[str]) -> str:
    return "[" + ", ".join(quote_literal(v) for v in values) + "]"


@dataclass(frozen=True)
class RowCheck:
    """A per-row test evaluated while loading: `failed_sql` is true when the row cannot be imported.

    `failed_sql` and `raw_sql` are expressions over the mapping's inner query (typed aliases and raw
    source columns), so the same text works for the INSERT and for the query that lists bad rows.
    """

    field: str  # the column as the file spells it
    expected: str  # what a good value looks like, for the message
    failed_sql: str
    raw_sql: str  # the offending value, as text


@dataclass(frozen=True)
class ValueCheck:
    """A test on the distinct values of one loaded column (cheap: runs on distinct values, not rows).

    `column` is a `charges` column; `field` names it as the file spells it, for messages.
    """

    column: str
    field: str
    expected: str
    kind: str  # "currency" | "enum" | "not-a-number" | "zone" | "resource-id"
    allowed: frozenset[str] = frozenset()
    required: bool = False


@dataclass
class Mapping:
    """The SQL that turns one source relation into `charges` rows, and how to judge them."""

    dialect: str  # human label: "FOCUS 1.2", "Azure EA cost details"
    kind: str  # sources.kind: focus-file | azure-export
    focus_version: str | None
    metric: str | None  # focus | actual | amortized; None: decide from the loaded rows
    inner: dict[str, str]  # alias -> SQL over the source columns (typed values and raw values)
    outer: dict[str, str]  # charges column -> SQL over the inner aliases
    joins: str = ""  # LEFT JOINs to lookup tables, placed after the source relation
    prepare: dict[str, str] = field(default_factory=dict)  # join keys computed over the source first
    row_checks: list[RowCheck] = field(default_factory=list)
    row_warnings: list[RowCheck] = field(default_factory=list)
    value_checks: list[ValueCheck] = field(default_factory=list)
    # Tags text that does not parse: a warning the INSERT does not test row by row (the loader tests the window's
    # distinct tag sets after it, see importer._note_unparsed_tags); listing the rows reads the file with it.
    tags_check: RowCheck | None = None

    @property
    def warnings(self) -> list[RowCheck]:
        """Every check that keeps a row with a note."""
        return [*self.row_warnings, *([self.tags_check] if self.tags_check else [])]

    def inner_select(self, source_sql: str, *, source_alias: str = "src", extra: str = "") -> str:
        """SELECT of the typed and raw aliases over `source_sql` (with its lookups joined)."""
        items = [f"{sql} AS {quote_ident(alias)}" for alias, sql in self.inner.items()]
        if extra:
            items.insert(0, extra)
        if self.prepare:
            keys = ", ".join(f"{sql} AS {quote_ident(alias)}" for alias, sql in self.prepare.items())
            source_sql = f"(SELECT *, {keys} FROM {source_sql} AS {source_alias})"
        return f"SELECT {', '.join(items)} FROM {source_sql} AS {source_alias} {self.joins}"

    def any_failed_sql(self, checks: list[RowCheck]) -> str:
        return " OR ".join(f"coalesce({c.failed_sql}, false)" for c in checks) or "false"

    def column_sql(self, name: str) -> str:
        """The SQL of one `charges` column over the inner aliases; a FOCUS 1.3 column the mapping does not read
        takes its predecessor's value (provider names) or none (no provider split)."""
        if name == TAG_SET_COLUMN and name not in self.outer:
            return "NULL"
        if name in self.outer or name in self.inner or name not in _ALLOCATION_NAMES:
            return self.outer.get(name, quote_ident(name))
        predecessor = _PREDECESSORS.get(name)
        return self.column_sql(predecessor) if predecessor else "NULL"

    def reads(self, name: str) -> bool:
        """Whether the mapping gives the `charges` column a value at all (not a constant NULL)."""
        sql = self.column_sql(name)
        if sql == quote_ident(name):
            sql = self.inner.get(name, sql)
        return sql != "NULL"

    def insert_sql(self, source_sql: str, *, ok_id: int, warn_id: int, bad_id: int, known_keys: bool = False) -> str:
        """INSERT every source row: good rows under `ok_id` (the window's source_id), rows with a note
        under `warn_id` and bad rows under `bad_id` (negative placeholders, never committed: the loader
        counts and reports those rows, then keeps or deletes them).

        `known_keys` (the cache has resource keys): a row whose owning resource has one gets it here, not from the
        UPDATE after (finish_window keys only the rest). Re-importing a million Parquet rows took 0.55 s less wall
        time and 0.16-0.28 s less CPU so; into an empty cache the join would only cost (up to 0.1 s of CPU a
        million rows)."""
        columns = ", ".join(quote_ident(c) for c in (*MAPPED_COLUMNS, *LOADER_COLUMNS))
        mapped = ", ".join(f"{self.column_sql(name)} AS {quote_ident(name)}" for name in MAPPED_COLUMNS)
        flag = (
            f"CASE WHEN {self.any_failed_sql(self.row_checks)} THEN {bad_id} "
            f"WHEN {self.any_failed_sql(self.row_warnings)} THEN {warn_id} ELSE {ok_id} END"
        )
        rows = f"(SELECT {mapped}, {flag} AS _flag FROM ({self.inner_select(source_sql)}) AS typed) AS mapped"
        if not known_keys:
            return (
                f"INSERT INTO charges ({columns}) "
                f"SELECT * EXCLUDE (_flag), CAST(ChargePeriodStart AS DATE), _flag, NULL FROM {rows}"
            )
        return (
            f"INSERT INTO charges ({columns}) "
            f"SELECT mapped.* EXCLUDE (_flag), CAST(mapped.ChargePeriodStart AS DATE), mapped._flag, k.resource_key "
            f"FROM {rows} LEFT JOIN resource_keys k ON k.ResourceId = {owning_resource_sql('mapped')}"
        )


Parse = Callable[[str, str], tuple[str, bool]]  # (source SQL, source type) -> (typed SQL, can fail)


class MappingBuilder:
    """Collects a mapping's typed values, raw values and checks, column by column."""

    def __init__(self, source: SourceColumns) -> None:
        self.source = source
        self.inner: dict[str, str] = {}
        self.outer: dict[str, str] = {}
        self.joins: list[str] = []
        self.row_checks: list[RowCheck] = []
        self.row_warnings: list[RowCheck] = []
        self.value_checks: list[ValueCheck] = []
        self.tags_check: RowCheck | None = None

    def ref(self, field_name: str | None) -> str:
        """A source column as it is, but for the NULL texts a non-CSV file may hold (see parse_ref)."""
        return self.source.parse_ref(field_name) if field_name else "NULL"

    def raw(self, field_name: str) -> str:
        """Alias of the raw source value, kept for checks and messages."""
        alias = f"raw:{field_name}"
        self.inner.setdefault(alias, self.source.parse_ref(field_name))
        return alias

    def value(self, alias: str, sql: str) -> None:
        self.inner[alias] = sql

    def parsed(
        self,
        alias: str,
        field_name: str | None,
        parse: Parse,
        expected: str,
        *,
        required: bool = False,
        warn_only: bool = False,
        by_distinct_value: bool = False,
        date_range: bool = False,
    ) -> None:
        """`alias` = parse(source value); a value that is present but does not parse makes the row bad
        (or, `warn_only`, is kept as NULL and noted). With `date_range`, so does a date outside 2000..2100.

        `by_distinct_value` parses each distinct value once and joins the result back: for costly
        parses of repetitive columns (Tags) in columnar files, where reading one column again is cheap.
        """
        if field_name is None:
            self.inner[alias] = "NULL"
            return
        source_type = self.source.types.get(field_name, "VARCHAR").upper()
        typed, can_fail = parse(self.source.parse_ref(field_name), source_type)
        # A value that cannot fail to parse is typed already (a MAP column of a Parquet file): its cast is no
        # work worth a second read of the column and a join on it.
        if by_distinct_value and can_fail:
            join = f"_distinct_{len(self.joins)}"
            value = self.source.parse_ref(field_name, alias="d")
            parsed_value, _ = parse("d_key", source_type)
            distinct = f"SELECT DISTINCT {value} AS d_key FROM {self.source.reader_sql()} AS d"
            self.joins.append(
                f"LEFT JOIN (SELECT d_key, {parsed_value} AS d_value FROM ({distinct})) AS {join} "
                f"ON {join}.d_key = {self.source.parse_ref(field_name)}"
            )
            typed = f"{join}.d_value"
        self.inner[alias] = typed
        if can_fail:
            raw_alias = self.raw(field_name)
            failed = f"({quote_ident(raw_alias)} IS NOT NULL AND {quote_ident(alias)} IS NULL)"
            target = self.row_warnings if warn_only else self.row_checks
            target.append(RowCheck(field_name, expected, failed, quote_ident(raw_alias)))
        if date_range:
            # A check on the parsed value (computed once, in the inner query), not a second parse.
            value = quote_ident(alias)
            outside = f"({value} < TIMESTAMP '{FIRST_DATE}' OR {value} >= TIMESTAMP '{END_DATE}')"
            raw = quote_ident(self.raw(field_name))
            self.row_checks.append(RowCheck(field_name, f"{expected} {DATE_RANGE_TEXT}", outside, raw))
        if required:
            self.require(alias, field_name)

    def tag_set(self, field_name: str | None, expected: str, *, json_text: Callable[[str], str] = str) -> None:
        """Provider tags. A text column, `json_text` of it a JSON object, becomes the row's tag set as it is
        (store.tag_sets: the loader parses each distinct text once, registers its MAP and keeps the rows of a
        text that does not parse without tags, with a note). A MAP column (Parquet) is the row's Tags as it is."""
        if field_name is None:
            self.inner["Tags"] = "NULL"
            return
        source_type = self.source.types.get(field_name, "VARCHAR").upper()
        if source_type.startswith("MAP"):
            self.inner["Tags"], _ = parse_tags(self.source.parse_ref(field_name), source_type)
            return
        raw = quote_ident(self.raw(field_name))
        self.outer["Tags"] = "NULL"
        self.outer[TAG_SET_COLUMN] = json_text(raw)
        failed = f"({raw} IS NOT NULL AND {tags_from_json(json_text(raw))} IS NULL)"
        self.tags_check = RowCheck(field_name, expected, failed, raw)

    def require(self, alias: str, field_name: str) -> None:
        self.row_checks.append(
            RowCheck(field_name, "a value (the column is required)", f"({quote_ident(alias)} IS NULL)", "NULL")
        )

    def check_values(self, check: ValueCheck) -> None:
        self.value_checks.append(check)

    def build(
        self, *, dialect: str, kind: str, focus_version: str | None, metric: str | None, joins: str = ""
    ) -> Mapping:
        return Mapping(
            dialect=dialect,
            kind=kind,
            focus_version=focus_version,
            metric=metric,
            inner=self.inner,
            outer=self.outer,
            joins=" ".join([joins, *self.joins]).strip(),
            row_checks=self.row_checks,
            row_warnings=self.row_warnings,
            value_checks=self.value_checks,
            tags_check=self.tags_check,
        )


class SourceColumns(Protocol):
    """What a mapping needs to know of its source (implemented by files.SourceFile)."""

    @property
    def types(self) -> dict[str, str]: ...

    def ref(self, column: str, alias: str = "src") -> str: ...

    def parse_ref(self, column: str, alias: str = "src") -> str: ...

    def reader_sql(self, *, rejects_table: str | None = None, row_numbers: bool = False) -> str: ...


_NUMERIC_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "REAL",
    "DOUBLE",
    "DECIMAL",
)


def _is_numeric(source_type: str) -> bool:
    return source_type.startswith(_NUMERIC_TYPES)


def parse_money(expr: str, source_type: str) -> tuple[str, bool]:
    """Exact money: text parses straight to DECIMAL(38,12) (scientific notation included), never via float."""
    if source_type == MONEY_TYPE:
        return expr, False
    return f"TRY_CAST({expr} AS {MONEY_TYPE})", True


def parse_number(expr: str, source_type: str) -> tuple[str, bool]:
    if source_type == "DOUBLE":
        return expr, False
    if _is_numeric(source_type):
        return f"CAST({expr} AS DOUBLE)", False
    return f"TRY_CAST({expr} AS DOUBLE)", True


def parse_timestamp(expr: str, source_type: str) -> tuple[str, bool]:
    """A naive UTC timestamp: ISO text honours an explicit offset (the cursor's TimeZone is UTC)."""
    if source_type == "TIMESTAMP":
        return expr, False
    if source_type.startswith(("TIMESTAMP", "DATE")):
        return f"CAST({expr} AS TIMESTAMP)", False
    # Text ending in Z is UTC already: the plain cast reads it alike at half the cost of the offset-aware one.
    return (
        f"CASE WHEN suffix({expr}, 'Z') THEN TRY_CAST({expr} AS TIMESTAMP) "
        f"ELSE CAST(TRY_CAST({expr} AS TIMESTAMPTZ) AS TIMESTAMP) END",
        True,
    )


def parse_tags(expr: str, source_type: str) -> tuple[str, bool]:
    if source_type.startswith("MAP"):
        return f"CAST({expr} AS MAP(VARCHAR, VARCHAR))", False
    return tags_from_json(expr), True
