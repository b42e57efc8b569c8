"""Import cost files into the cache: each file (or export folder) one window, all in one transaction.

How one window loads, inside the transaction, without rows passing through Python:

1. The window is registered with a provisional scope and no days (`begin_window`), because its real
   scope and days are only known from the rows; so rows are written once, never moved afterwards.
2. One `INSERT INTO charges SELECT ... FROM read_csv/read_parquet(...)` per file, every column read with
   an explicit type, values parsed with TRY_CAST; each row's checks send it to the window's source_id,
   or to a negative placeholder (never committed) when it is bad or kept with a note (unreadable Tags).
3. Aggregates over the new rows check distinct values (currency codes, ChargeCategory, names holding
   numbers) and gather the window: days, billing accounts, providers, currency totals.
4. Bad rows refuse the import (one line naming file, row, field, value and what was expected), or
   with --skip-bad-rows are deleted and listed on stderr. Finding which rows reads the file again,
   only then.
5. `claim_window` drops the rows the window supersedes (same scope and metric, same billing periods)
   and gives the source its real scope and period; `finish_window` records counts; `refresh_derived`
   runs once.

A file's window is its billing period(s), not the days its rows are charged on: a March invoice carrying
an adjustment for 15 January replaces March only. Its billing periods are the BillingPeriodStart/End
(FOCUS; BillingPeriodStartDate/EndDate in Azure's cost details) of rows charged within them; a row
billed in a period the file does not otherwise cover (usage of the 30th's last hours billed in the next
month) is kept with the file and replaces nothing. Rows without a billing period count by the calendar
month of their charge. A file of several billing periods replaces each of them, and only those. An
export folder's window is its manifest's period.

A file that cannot be read at all (a truncated gzip, say) refuses the whole import; with
--skip-bad-rows the transaction is replayed without that file and the file is reported as skipped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb

from finops_tui.allocation.effective import TagPolicy, refresh_derived
from finops_tui.basis.arm_ids import resource_id_problem
from finops_tui.errors import UserError
from finops_tui.ingest import azure_legacy, focus, lookups
from finops_tui.ingest.badrows import (
    BadRowReport,
    StructuralReject,
    find_bad_rows,
    read_rejects,
    structural_report,
    value_check_sql,
)
from finops_tui.ingest.contract_commitments import ContractImport, load_contract_commitments
from finops_tui.ingest.currencies import ISO_4217_CODES
from finops_tui.ingest.files import SourceFile, inspect, lone_carriage_return_row
from finops_tui.ingest.manifest import MANIFEST_NAME, ExportManifest, is_export_directory, read_manifest
from finops_tui.ingest.mapping import Mapping, RowCheck, ValueCheck, quote_ident
from finops_tui.ingest.progress import Reporter, SilentReporter
from finops_tui.store import summaries
from finops_tui.store.cache import Cache
from finops_tui.store.sources import Window, begin_window, claim_window, discard_source, finish_window
from finops_tui.store.tag_sets import TAG_SET_COLUMN, add_tag_sets, tags_from_json

_SHIFT_HINT = "(the row looks shifted by a column)"
_DAY0 = dt.date(1970, 1, 1)  # a provisional window's empty range [day0, day0)


@dataclass
class ImportResult:
    """What one window brought in, for the summary line."""

    label: str
    rows: int
    start: dt.date | None
    end: dt.date | None  # exclusive
    providers: list[str]
    dialect: str
    metric: str
    totals: dict[str, tuple[Decimal | None, Decimal | None]]  # currency -> (billed, effective)
    source_id: int | None
    skipped_rows: int = 0
    noted_rows: int = 0
    notes: list[str] = field(default_factory=list)
    replaced: str = ""  # the billing period(s) the import replaced, as the summary names them

    def summary(self) -> str:
        if self.rows == 0:
            return f"{self.label}: 0 rows ({self.dialect}); nothing to import"
        last = (self.end - dt.timedelta(days=1)) if self.end else None
        period = f"{self.start}..{last}" if self.start and last and last != self.start else f"{self.start}"
        money = "; ".join(
            _money_text(currency, billed, effective, self.metric)
            for currency, (billed, effective) in sorted(self.totals.items())
        )
        skipped = f"; skipped {self.skipped_rows} bad rows" if self.skipped_rows else ""
        replaced = f", {self.replaced}" if self.replaced else ""
        return (
            f"{self.label}: {self.rows:,} rows, {period}, {'+'.join(self.providers) or 'unknown provider'}, "
            f"{self.dialect}, metric {self.metric}{replaced}, {money}{skipped}"
        )


@dataclass
class ImportOutcome:
    results: list[ImportResult | ContractImport]
    skipped_files: list[str]  # one line per file that could not be read at all (--skip-bad-rows)


@dataclass(frozen=True)
class _Part:
    source: SourceFile
    mapping: Mapping
    expected_rows: int | None = None


@dataclass(frozen=True)
class _Unit:
    """One window to load: a single file, or an export folder's parts."""

    label: str
    path: Path
    parts: list[_Part]
    manifest: ExportManifest | None = None

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256("|".join(p.source.fingerprint for p in self.parts).encode()).hexdigest()


class _UnreadableFile(Exception):
    """A file DuckDB could not read through (it aborts the transaction)."""

    def __init__(self, unit: _Unit, message: str) -> None:
        super().__init__(message)
        self.unit = unit
        self.message = message


def import_paths(
    cache: Cache,
    policy: TagPolicy,
    paths: Sequence[Path],
    *,
    skip_bad_rows: bool = False,
    reporter: Reporter | None = None,
) -> ImportOutcome:
    """Import every path (file or export folder) in one transaction; refused input raises UserError.

    `policy` (the user's tag settings and rules) rebuilds the effective tags in the same transaction.
    """
    sink: Reporter = reporter or SilentReporter()
    contract_files, paths = _contract_files(paths)
    units, skipped = _plan(paths, skip_bad_rows=skip_bad_rows, reporter=sink) if paths else ([], [])
    while True:
        try:
            with cache.write() as cur:
                results: list[ImportResult | ContractImport] = list(
                    _load_all(cur, policy, units, skip_bad_rows=skip_bad_rows, reporter=sink))
                results += _load_contracts(cur, contract_files, skip_bad_rows=skip_bad_rows, reporter=sink)
        except _UnreadableFile as exc:
            if not skip_bad_rows:
                raise UserError(exc.message) from None
            # The failed read aborted the transaction: replay it without the unreadable file.
            skipped.append(exc.message)
            sink.note(f"{exc.message} (skipped: importing the other files)")
            units = [u for u in units if u is not exc.unit]
            continue
        return ImportOutcome(results, skipped)


def _contract_files(paths: Sequence[Path]) -> tuple[list[SourceFile], list[Path]]:
    """FOCUS 1.3 Contract Commitment files apart from the cost files (anything unreadable stays with the cost
    files, whose planning says why)."""
    contracts: list[SourceFile] = []
    others: list[Path] = []
    for path in paths:
        source = None
        if Path(path).is_file() and Path(path).name != MANIFEST_NAME:
            try:
                source = inspect(Path(path))
            except UserError:
                source = None
        if source is not None and focus.is_contract_commitment(source) and not focus.looks_like_focus(source):
            contracts.append(source)
        else:
            others.append(Path(path))
    return contracts, others


def _load_contracts(
    cur: duckdb.DuckDBPyConnection, sources: list[SourceFile], *, skip_bad_rows: bool, reporter: Reporter
) -> list[ContractImport]:
    """Contract commitments describe cost: a cache without any is refused (an empty cache is not kept)."""
    if not sources:
        return []
    if cur.execute("SELECT 1 FROM charges LIMIT 1").fetchone() is None:
        raise UserError(
            f"{sources[0].name}: a FOCUS 1.3 Contract Commitment file, but the cache holds no cost yet; import the "
            "FOCUS cost and usage export first (or in the same command)"
        )
    results = [load_contract_commitments(cur, source, skip_bad_rows=skip_bad_rows) for source in sources]
    for result in results:
        for note in result.notes:
            reporter.note(note)
    return results


def import_in_transaction(
    cur: duckdb.DuckDBPyConnection, policy: TagPolicy, paths: Sequence[Path], *, reporter: Reporter | None = None,
    derive: bool = True,
) -> list[ImportResult]:
    """Import inside the caller's write transaction, so it can record its own state beside the rows (the
    export sync records each run with its window); any refusal raises UserError and the caller rolls back.

    `derive=False` settles only the summary's changed days and leaves resources and effective tags to the caller's
    one `refresh_derived` after its last import (as the API sync does after its last window)."""
    sink: Reporter = reporter or SilentReporter()
    units, _ = _plan(paths, skip_bad_rows=False, reporter=sink)
    try:
        return _load_all(cur, policy, units, skip_bad_rows=False, reporter=sink, derive=derive)
    except _UnreadableFile as exc:
        raise UserError(exc.message) from None


def _plan(paths: Sequence[Path], *, skip_bad_rows: bool, reporter: Reporter) -> tuple[list[_Unit], list[str]]:
    units: list[_Unit] = []
    skipped: list[str] = []
    seen: dict[str, str] = {}
    for path in paths:
        try:
            unit = _plan_one(Path(path))
        except UserError as exc:
            if not skip_bad_rows or len(paths) == 1:
                raise
            skipped.append(str(exc))
            reporter.note(f"{exc} (skipped: importing the other files)")
            continue
        if unit.fingerprint in seen:
            reporter.note(f"{unit.label}: same content as {seen[unit.fingerprint]}, imported once")
            continue
        seen[unit.fingerprint] = unit.label
        units.append(unit)
    return units, skipped


def _plan_one(path: Path) -> _Unit:
    if path.name == MANIFEST_NAME and path.is_file():
        path = path.parent  # the manifest stands for its export folder
    if is_export_directory(path):
        manifest = read_manifest(path)
        hint = azure_legacy.metric_from_name(manifest.dataset or "") or azure_legacy.metric_from_name(
            manifest.export_name or ""
        )
        parts = [
            _Part(source, _mapping_for(source, hint), part.expected_rows)
            for part in manifest.parts
            for source in [inspect(part.path)]
        ]
        return _Unit(path.name or str(path), path, parts, manifest)
    source = inspect(path)
    return _Unit(source.name, path, [_Part(source, _mapping_for(source, None))])


def _mapping_for(source: SourceFile, metric_hint: str | None) -> Mapping:
    if focus.looks_like_focus(source):
        missing = focus.missing_required(source)
        if missing:
            raise UserError(
                f"{source.name}: FOCUS file without the required column(s) {', '.join(missing)}; "
                "export it again with all FOCUS columns"
            )
        return focus.build_mapping(source)
    if azure_legacy.looks_like_azure_export(source):
        return azure_legacy.build_mapping(source, metric_hint or azure_legacy.metric_from_name(source.name))
    if focus.is_contract_commitment(source):
        raise UserError(
            f"{source.name}: a FOCUS 1.3 Contract Commitment file inside an export folder; import it on its own "
            "(`finops-tui import FILE`), beside the FOCUS cost and usage export"
        )
    raise UserError(
        f"{source.name}: not a cost file: its header has neither FOCUS columns (BilledCost, ChargePeriodStart, "
        "BillingCurrency, ...) nor Azure cost details columns (Date, Cost or CostInBillingCurrency, MeterCategory, "
        "...); export FOCUS or Azure cost details and import that"
    )


def _load_all(
    cur: duckdb.DuckDBPyConnection, policy: TagPolicy, units: list[_Unit], *, skip_bad_rows: bool,
    reporter: Reporter, derive: bool = True,
) -> list[ImportResult]:
    # Timestamps with an offset convert to UTC, and naive ones are read as UTC, whatever the machine's zone.
    cur.execute("SET TimeZone = 'UTC'")
    if any(p.mapping.prepare for u in units for p in u.parts):
        lookups.create_lookups(cur)
    placeholders = itertools.count(-1, -1)
    loaded: list[tuple[_Unit, Window]] = []
    results = []
    for unit in units:
        result, window = _load_unit(
            cur, unit, placeholders, skip_bad_rows=skip_bad_rows, reporter=reporter, derive=derive
        )
        if window is not None:
            _refuse_overlap(unit, window, loaded)
            loaded.append((unit, window))
        results.append(result)
    if derive and any(r.source_id is not None for r in results):  # rows were added or replaced
        refresh_derived(cur, policy)  # rebuilds the whole summary: the windows' days with it
    else:
        summaries.settle(cur)
    return results


@dataclass
class _Ids:
    """Where one window's rows go while loading: good rows straight under the window's source_id (rows
    are written once: updating a million just-written rows costs as much as a third of writing them),
    rows with a note and bad rows under negative placeholders that are never committed."""

    ok: int
    noted: int
    bad: int

    @property
    def all(self) -> list[int]:
        return [self.ok, self.noted, self.bad]


def _load_unit(
    cur: duckdb.DuckDBPyConnection,
    unit: _Unit,
    placeholders: itertools.count[int],
    *,
    skip_bad_rows: bool,
    reporter: Reporter,
    derive: bool = True,
) -> tuple[ImportResult, Window | None]:
    mapping = unit.parts[0].mapping
    # The real window (scope, days) is known only once the rows are in: register a provisional one.
    provisional = Window(mapping.kind, f"pending-import:{uuid.uuid4()}", mapping.metric or "actual", _DAY0, _DAY0)
    ids = _Ids(begin_window(cur, provisional), next(placeholders), next(placeholders))
    known_keys = cur.execute("SELECT 1 FROM resource_keys LIMIT 1").fetchone() is not None
    rejects: list[list[StructuralReject]] = []
    for index, part in enumerate(unit.parts):
        rejects_table = f"_finops_rejects_{-next(placeholders)}" if part.source.format == "csv" else None
        sql = part.mapping.insert_sql(
            part.source.reader_sql(rejects_table=rejects_table), ok_id=ids.ok, warn_id=ids.noted, bad_id=ids.bad,
            known_keys=known_keys,
        )
        label = part.source.name
        if len(unit.parts) > 1:
            label = f"{unit.label}/{part.source.name} ({index + 1}/{len(unit.parts)})"
        with reporter.watch(cur, label, part.source.estimated_rows):
            try:
                inserted_row = cur.execute(sql).fetchone()
            except duckdb.Error as exc:
                raise _UnreadableFile(unit, _unreadable_message(part.source, exc)) from None
        part_rejects = read_rejects(cur, rejects_table) if rejects_table else []
        if rejects_table:
            cur.execute(f"DROP TABLE IF EXISTS {quote_ident(rejects_table)}")
            cur.execute(f"DROP TABLE IF EXISTS {quote_ident(rejects_table + '_scans')}")
        rejects.append(part_rejects)
        inserted = int(inserted_row[0]) if inserted_row else 0
        _check_row_count(unit, part, inserted + len(part_rejects))
        if inserted + len(part_rejects) == 0 and part.source.head_has_rows:
            # DuckDB drops a line longer than its buffer without a word: "0 rows" would hide the data.
            raise _UnreadableFile(
                unit,
                f"{part.source.name}: no row could be read, though the file has data after its header: its first "
                "row is longer than DuckDB can read (32 MB); check that the file is a complete CSV cost export",
            )

    if any(part.mapping.tags_check for part in unit.parts):
        _note_unparsed_tags(cur, ids)
    # One survey of the new rows (a few aggregate queries) answers the value checks and describes the window;
    # it is repeated only when the checks or notes move rows between the placeholders (never on a clean file).
    survey = _survey(cur, mapping, ids)
    invalid = survey.invalid
    if invalid:
        _mark_bad_values(cur, ids, invalid)
    bad = (_count(cur, [ids.bad]) if invalid else survey.rows_of(ids.bad)) + sum(len(r) for r in rejects)
    if bad:
        report = BadRowReport()
        value_checks = [_value_row_check(check, values) for check, values in invalid.items()]
        for part, part_rejects in zip(unit.parts, rejects, strict=True):
            rejected_rows = [r.row for r in part_rejects]
            report.add(structural_report(part.source, part_rejects))
            report.add(
                find_bad_rows(cur, part.source, part.mapping, [*part.mapping.row_checks, *value_checks], rejected_rows)
            )
        report.total = bad
        if not skip_bad_rows:
            raise UserError(_refusal(unit, report))
        cur.execute(f"DELETE FROM charges WHERE source_id = {ids.bad}")
        reporter.note(_skip_text(unit, report))

    notes: list[str] = []
    noted = _count(cur, [ids.noted]) if invalid else survey.rows_of(ids.noted)
    if noted:
        warn_report = BadRowReport()
        for part, part_rejects in zip(unit.parts, rejects, strict=True):
            warn_report.add(
                find_bad_rows(cur, part.source, part.mapping, part.mapping.warnings, [r.row for r in part_rejects])
            )
        first = warn_report.examples[0].describe() if warn_report.examples else ""
        fields = " or ".join(dict.fromkeys(check.field for check in mapping.warnings)) or "Tags"
        notes.append(f"{unit.label}: {noted} rows kept without tags, their {fields} did not parse (first: {first})")
        reporter.note(notes[-1])
        cur.execute(f"UPDATE charges SET source_id = {ids.ok} WHERE source_id = {ids.noted}")

    if invalid or noted:
        survey = _survey(cur, mapping, ids)
    stats = survey.stats
    manifest = unit.manifest
    export_period = (manifest.start, manifest.end) if manifest and manifest.start and manifest.end else None
    resource_ids = survey.resource_ids(mapping)
    if stats.rows == 0 and export_period is None:
        # An export with no rows and no period has nothing to replace: nothing is registered.
        discard_source(cur, ids.ok)
        metric = mapping.metric or "actual"
        return ImportResult(unit.label, 0, None, None, [], mapping.dialect, metric, {}, None, skipped_rows=bad), None

    metric = mapping.metric or _decide_metric(stats, unit, reporter, notes)
    if mapping.metric is None:
        # Both cost columns held the cost until the rows told which metric the file is.
        emptied = "EffectiveCost" if metric == "actual" else "BilledCost"
        cur.execute(f"UPDATE charges SET {emptied} = NULL WHERE source_id = {ids.ok}")
    periods = [export_period] if export_period else survey.periods
    window = _window(unit, mapping, metric, stats, periods)
    claim_window(cur, ids.ok, window)
    add_tag_sets(cur, f"source_id = {ids.ok}")  # the rows are final: bad ones gone, noted ones without tags
    # refresh_derived rebuilds the summary after (derive), or settle sums the marked days.
    # The survey after the last move of rows lists the window's resource ids: keys are registered from that list
    # rather than from another pass over the rows.
    finish_window(cur, ids.ok, settle_summary=False, rebuild_follows=derive, resource_ids=resource_ids)
    totals = {
        currency: (billed if metric != "amortized" else None, effective if metric != "actual" else None)
        for currency, (billed, effective) in stats.totals.items()
    }
    result = ImportResult(
        label=unit.label,
        rows=stats.rows,
        start=stats.first_day,
        end=stats.last_day + dt.timedelta(days=1) if stats.last_day else None,
        providers=stats.providers,
        dialect=mapping.dialect,
        metric=metric,
        totals=totals,
        source_id=ids.ok,
        skipped_rows=bad,
        noted_rows=noted,
        notes=notes,
        replaced=_periods_text(periods, "export period" if export_period else "billing period"),
    )
    return result, window


def _note_unparsed_tags(cur: duckdb.DuckDBPyConnection, ids: _Ids) -> None:
    """Good rows whose tags text does not parse are kept without tags, with a note, as a row warning would keep
    them; judged on the window's distinct tag sets, not row by row (parsing each row's text cost 0.7 s of CPU a
    million rows; the parse is a column of the distinct texts, not a filter DuckDB would push below DISTINCT)."""
    unparsed = cur.execute(
        f"""
        SELECT list(t) FILTER (WHERE t IS NOT NULL AND tags IS NULL) FROM (
            SELECT t, {tags_from_json('t')} AS tags
            FROM (SELECT DISTINCT {TAG_SET_COLUMN} AS t FROM charges WHERE source_id = {ids.ok}) AS named
        ) AS parsed
        """
    ).fetchone()
    if unparsed and unparsed[0]:  # rare: an UPDATE even of no row scans the window (0.8 s a million rows)
        cur.execute(
            f"UPDATE charges SET source_id = {ids.noted}, {TAG_SET_COLUMN} = NULL "
            f"WHERE source_id = {ids.ok} AND {TAG_SET_COLUMN} IN (SELECT unnest($texts::VARCHAR[]))",
            {"texts": unparsed[0]},
        )


_ID_COLUMNS = ("ResourceId", "AllocatedResourceId")  # the `charges` columns naming resources


def _id_list(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)


def _count(cur: duckdb.DuckDBPyConnection, ids: list[int]) -> int:
    row = cur.execute(f"SELECT count(*) FROM charges WHERE source_id IN ({_id_list(ids)})").fetchone()
    return int(row[0]) if row else 0


def _check_row_count(unit: _Unit, part: _Part, found: int) -> None:
    """An export part holding fewer rows than its manifest promised was cut short."""
    if part.expected_rows is not None and found != part.expected_rows:
        raise _UnreadableFile(
            unit,
            f"{unit.label}/{part.source.name}: manifest.json says {part.expected_rows:,} rows, the file has "
            f"{found:,}; the part is incomplete, download the export folder again",
        )


def _unreadable_message(source: SourceFile, exc: duckdb.Error) -> str:
    text = str(exc)
    lowered = text.lower()
    if "out of memory" in lowered:
        return f"{source.name}: not enough memory to import it ({text.splitlines()[0]}); close other programs and retry"
    if "gzip" in lowered or "zlib" in lowered or "deflate" in lowered:
        return f"{source.name}: the gzip data ends early or is damaged (a truncated download?); copy the file again"
    if "parquet" in lowered or "magic" in lowered or "footer" in lowered or "thrift" in lowered:
        return f"{source.name}: a damaged Parquet file ({text.splitlines()[0]}); copy the file again"
    if "state machine" in lowered and source.format == "csv":
        # DuckDB's CSV reader gives up on a carriage return outside quotes in a file whose lines end in LF.
        row = lone_carriage_return_row(source)
        if row is not None:
            return (
                f"{source.name}: row {row} holds a carriage return (CR) outside quotes, which splits the row; "
                "quote that field or remove the CR, then import the file again"
            )
        return (
            f"{source.name}: the CSV does not parse ({text.splitlines()[0]}); check that it is a complete cost export"
        )
    return f"{source.name}: cannot read the file ({text.splitlines()[0]}); check that it is a complete cost export"


def _value_ok(check: ValueCheck, value: str) -> bool:
    if check.kind == "currency":
        return value in ISO_4217_CODES
    if check.kind == "enum":
        return value in check.allowed
    if check.kind == "resource-id":
        return resource_id_problem(value) is None
    if check.kind == "zone" and value.strip().isdigit():
        return 1 <= int(value) <= 9  # zones are numbered from 1 (Azure's 1, 2, 3); 0 or 37 is a slid value
    return not _looks_like_number_or_date(value)


def _looks_like_number_or_date(value: str) -> bool:
    """A bare decimal number (0.05, -1.2E-05) or an ISO date; integers pass (Azure zones are 1, 2, 3)."""
    text = value.strip()
    if len(text) >= 10 and text[4] == "-" and text[7] == "-" and text[:4].isdigit() and text[5:7].isdigit():
        return True
    if not any(ch in text for ch in ".eE"):
        return False
    try:
        float(text)
    except ValueError:
        return False
    return text.lower() not in {"inf", "nan", "infinity", "-inf", "+inf"}


def _value_row_check(check: ValueCheck, values: list[str | None]) -> RowCheck:
    """The per-row form of a failed value check, to find the rows holding the bad values."""
    hint = f" {_SHIFT_HINT}" if check.kind in ("not-a-number", "zone") else ""
    return RowCheck(check.field, check.expected + hint, value_check_sql(check, values), quote_ident(check.column))


def _mark_bad_values(cur: duckdb.DuckDBPyConnection, ids: _Ids, invalid: dict[ValueCheck, list[str | None]]) -> None:
    condition = " OR ".join(value_check_sql(check, values) for check, values in invalid.items())
    cur.execute(
        f"UPDATE charges SET source_id = {ids.bad} WHERE source_id IN ({ids.ok}, {ids.noted}) AND ({condition})"
    )


@dataclass
class _Stats:
    rows: int
    first_day: dt.date | None
    last_day: dt.date | None
    billing_accounts: list[str]
    sub_accounts: list[str]
    providers: list[str]
    totals: dict[str, tuple[Decimal | None, Decimal | None]]
    unused_commitment_rows: int = 0
    covered_usage_with_cost: int = 0
    commitment_purchases_with_cost: int = 0


@dataclass
class _Survey:
    """What the survey of a window's new rows tells: rows per placeholder, the values failing the value
    checks (among good and noted rows), and the good rows' stats and billing periods."""

    rows: dict[int, int]
    invalid: dict[ValueCheck, list[str | None]]
    stats: _Stats
    periods: list[tuple[dt.date, dt.date]]
    distinct: dict[str, list[str]] = field(default_factory=dict)  # checked `charges` column -> its values

    def rows_of(self, source_id: int) -> int:
        return self.rows.get(source_id, 0)

    def resource_ids(self, mapping: Mapping) -> list[str] | None:
        """Every resource id the good rows name (owning resources and hosts of provider splits), when the value
        checks listed each id column the mapping reads; None when they did not."""
        ids: set[str] = set()
        for column in _ID_COLUMNS:
            if column in self.distinct:
                ids.update(self.distinct[column])
            elif mapping.reads(column):
                return None
        return sorted(ids)


# The billing period a row counts in: its BillingPeriodStart/End, else the calendar month of its charge; a
# period ending within a day (a provider's billing day boundary at 07:00 UTC) ends after that day.
_PERIOD_START = "coalesce(BillingPeriodStart, date_trunc('month', x_ChargeDate))"
_PERIOD_END = (
    "CASE WHEN BillingPeriodStart IS NULL THEN date_trunc('month', x_ChargeDate) + INTERVAL 1 MONTH "
    "WHEN BillingPeriodEnd > BillingPeriodStart THEN BillingPeriodEnd ELSE BillingPeriodStart + INTERVAL 1 MONTH END"
)


def _survey(cur: duckdb.DuckDBPyConnection, mapping: Mapping, ids: _Ids) -> _Survey:
    """Aggregates of the new rows: distinct values of the checked columns (good and noted rows), the good
    rows' stats, and their totals by currency and billing period. (Distinct aggregates stay in queries of
    their own, without FILTER or GROUP BY: DuckDB ran them two to four times slower so.)

    A file's billing periods are those its good rows are charged within; a file none of whose rows is
    charged within its billing period (late adjustments only) replaces the periods its rows are billed in.
    """
    checks = mapping.value_checks
    invalid: dict[ValueCheck, list[str | None]] = {}
    distinct: dict[str, list[str]] = {}
    if checks:
        lists = ", ".join(f"list(DISTINCT {quote_ident(c.column)})" for c in checks)
        # Whether a column holds a NULL matters only where a value is required (a third of the query's cost
        # when asked of every checked column).
        required = [c for c in checks if c.required]
        nulls = "".join(f", bool_or({quote_ident(c.column)} IS NULL)" for c in required)
        checked = cur.execute(
            f"SELECT {lists}{nulls} FROM charges WHERE source_id IN ({ids.ok}, {ids.noted})"
        ).fetchone()
        assert checked is not None
        missing = {c for c, holds in zip(required, checked[len(checks):], strict=True) if holds}
        for index, check in enumerate(checks):
            values = sorted(v for v in checked[index] or [] if v is not None)
            distinct[check.column] = values
            failing: list[str | None] = [v for v in values if not _value_ok(check, str(v))]
            if check in missing:
                failing.append(None)
            if failing:
                invalid[check] = failing
    rows = dict(
        cur.execute(f"SELECT source_id, count(*) FROM charges WHERE source_id IN ({_id_list(ids.all)}) GROUP BY 1")
        .fetchall()
    )
    row = cur.execute(
        f"""
        SELECT min(x_ChargeDate), max(x_ChargeDate),
               list(DISTINCT lower(BillingAccountId)) FILTER (WHERE BillingAccountId IS NOT NULL),
               list(DISTINCT lower(SubAccountId)) FILTER (WHERE SubAccountId IS NOT NULL),
               list(DISTINCT ProviderName) FILTER (WHERE ProviderName IS NOT NULL),
               count(*) FILTER (WHERE CommitmentDiscountStatus = 'Unused'),
               count(*) FILTER (WHERE CommitmentDiscountStatus = 'Used' AND BilledCost <> 0),
               count(*) FILTER (WHERE ChargeCategory = 'Purchase' AND CommitmentDiscountType IS NOT NULL
                                  AND BilledCost <> 0)
        FROM charges WHERE source_id = {ids.ok}
        """
    ).fetchone()
    assert row is not None
    groups = cur.execute(
        f"""
        WITH billed AS (
            SELECT ChargePeriodStart, BillingCurrency, BilledCost, EffectiveCost,
                   {_PERIOD_START} AS _period_start, {_PERIOD_END} AS _period_end
            FROM charges WHERE source_id = {ids.ok}
        )
        SELECT BillingCurrency, CAST(_period_start AS DATE),
               CAST(_period_end AS DATE) + CASE WHEN _period_end > CAST(CAST(_period_end AS DATE) AS TIMESTAMP)
                                                THEN 1 ELSE 0 END,
               count(*) FILTER (WHERE ChargePeriodStart >= _period_start AND ChargePeriodStart < _period_end),
               sum(BilledCost), sum(EffectiveCost)
        FROM billed GROUP BY ALL ORDER BY 2, 3
        """
    ).fetchall()
    accounts = sorted(row[2] or [])
    stats = _Stats(
        rows=rows.get(ids.ok, 0),
        first_day=row[0],
        last_day=row[1],
        billing_accounts=accounts,
        sub_accounts=[] if accounts else sorted(row[3] or []),
        providers=sorted(row[4] or []),
        totals={},
        unused_commitment_rows=int(row[5]),
        covered_usage_with_cost=int(row[6]),
        commitment_purchases_with_cost=int(row[7]),
    )
    periods: dict[tuple[dt.date, dt.date], int] = {}
    for currency, start, end, charged_within, billed, effective in groups:
        sums = stats.totals.get(str(currency), (None, None))
        stats.totals[str(currency)] = (_plus(sums[0], billed), _plus(sums[1], effective))
        periods[(start, end)] = periods.get((start, end), 0) + charged_within
    anchored = [period for period, charged_within in periods.items() if charged_within]
    return _Survey(rows, invalid, stats, anchored or list(periods), distinct)


def _plus(total: Decimal | None, value: Decimal | None) -> Decimal | None:
    """A sum over groups as SQL's sum gives it: NULL only when every group's sum is."""
    if value is None:
        return total
    return value if total is None else total + value


def _decide_metric(stats: _Stats, unit: _Unit, reporter: Reporter, notes: list[str]) -> str:
    """Actual or amortized from the rows of an Azure export whose name does not say."""
    amortized = stats.unused_commitment_rows > 0 or stats.covered_usage_with_cost > 0
    actual = stats.commitment_purchases_with_cost > 0
    if amortized and not actual:
        return "amortized"
    if actual and not amortized:
        return "actual"
    why = "it has both amortized and actual signs" if actual else "it has no reservation or savings plan rows"
    note = (
        f"{unit.label}: cannot tell actual from amortized cost ({why}); imported as actual. "
        "Rename the file to contain ActualCost or AmortizedCost to choose"
    )
    notes.append(note)
    reporter.note(note)
    return "actual"


def _periods_text(periods: list[tuple[dt.date, dt.date]], label: str) -> str:
    """`billing period 2024-09`, `billing periods 2025-01..2025-03`, or the days of periods that are not months."""

    def whole_month(start: dt.date, end: dt.date) -> bool:
        return start.day == 1 and end == (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)

    if not periods:
        return ""
    ordered = sorted(periods)
    months = all(whole_month(*period) for period in ordered)
    contiguous = all(a[1] == b[0] for a, b in itertools.pairwise(ordered))
    if months and contiguous:
        first, last = ordered[0][0], ordered[-1][0]
        if len(ordered) == 1:
            return f"{label} {first:%Y-%m}"
        return f"{label}s {first:%Y-%m}..{last:%Y-%m}"
    if len(ordered) == 1:
        start, end = ordered[0]
        return f"{label} {start}..{end - dt.timedelta(days=1)}"
    return f"{len(ordered)} {label}s, {ordered[0][0]}..{ordered[-1][1] - dt.timedelta(days=1)}"


def _window(
    unit: _Unit, mapping: Mapping, metric: str, stats: _Stats, periods: list[tuple[dt.date, dt.date]]
) -> Window:
    manifest = unit.manifest
    start, end = min(p[0] for p in periods), max(p[1] for p in periods)
    if manifest and manifest.scope:
        scope = manifest.scope
    elif stats.billing_accounts:
        scope = ",".join(stats.billing_accounts)
    else:
        scope = _sub_account_scope(stats)
    provider = "+".join(stats.providers) or None
    return Window(
        kind=mapping.kind,
        scope=scope,
        metric=metric,
        start=start,
        end=end,
        path=str(unit.path.resolve()),
        file_hash=unit.fingerprint,
        provider=provider,
        focus_version=mapping.focus_version,
        periods=tuple(periods),
    )


def _sub_account_scope(stats: _Stats) -> str:
    provider = ("+".join(stats.providers) or "unknown").lower()
    accounts = stats.sub_accounts
    if len(accounts) <= 5:
        return f"{provider}:{','.join(accounts)}"
    digest = hashlib.sha256(",".join(accounts).encode()).hexdigest()[:16]
    return f"{provider}:{len(accounts)}-sub-accounts-{digest}"


def _refuse_overlap(unit: _Unit, window: Window, loaded: list[tuple[_Unit, Window]]) -> None:
    """Two inputs of one command replacing each other's billing periods would silently drop the first one's rows."""
    for other_unit, other in loaded:
        same_data = (other.scope, other.metric) == (window.scope, window.metric)
        overlap = any(
            start < other_end and other_start < end
            for start, end in window.replaced_periods()
            for other_start, other_end in other.replaced_periods()
        )
        if same_data and overlap:
            raise UserError(
                f"{unit.label} and {other_unit.label} cover the same scope ({window.scope}), metric ({window.metric}) "
                f"and billing period; the later would replace the earlier. Import an export's part files together "
                "as its folder (with manifest.json), or import the files one at a time"
            )


def _refusal(unit: _Unit, report: BadRowReport) -> str:
    first = report.examples[0].describe() if report.examples else "a bad row"
    more = f"; {report.total:,} bad rows in all ({report.counts_text()})" if report.total > 1 else ""
    return (
        f"{unit.label}: {first}{more}. Import refused, the cache is unchanged; "
        "fix the file or use --skip-bad-rows to import the rest"
    )


def _skip_text(unit: _Unit, report: BadRowReport) -> str:
    lines = [f"{unit.label}: skipped {report.total:,} bad rows ({report.counts_text()}); first:"]
    for row in report.examples:
        where = f"{row.file}: " if row.file != unit.label else ""
        lines.append(f"  {where}{row.describe()}")
    return "\n".join(lines)


def _money_text(currency: str, billed: Decimal | None, effective: Decimal | None, metric: str) -> str:
    def fmt(value: Decimal | None) -> str:
        return "n/a" if value is None else f"{value.quantize(Decimal('0.01')):,}"

    if metric == "actual":
        return f"{currency} {fmt(billed)}"
    if metric == "amortized":
        return f"{currency} {fmt(effective)}"
    return f"{currency} billed {fmt(billed)} effective {fmt(effective)}"
