"""FinOps hub (Azure Data Explorer) → cache: one KQL query per month window, summarised on the cluster.

The hub's `Costs()` function is summarised on the cluster to the cache's grain (a day, a resource, a
currency and the FOCUS columns the cache keeps), both metrics in one pass. The cluster also packs the
summarised rows: each row becomes one CSV line, CHUNK_ROWS lines are gzipped and sent as one base64 string.
The client's streaming reader then parses five JSON tokens per chunk instead of a few per value, the wire
carries a tenth of the bytes, and no row passes through Python: each chunk's gzip member is spooled as it came
(one `.csv.gz` a month), and DuckDB reads them, parsing dates and sums to their types as it reads. The columns that
follow the resource (`ATTRIBUTES`: its id, name, type, group, region, subscription, tags, …) travel once per
distinct combination a month (a "variant", numbered on the cluster) in a first result table, and each row carries
only its variant's number; the insert joins them back, so `charges` gets the same rows while DuckDB reads 28
columns a row instead of 41 and lower-cases ids and parses tags once a variant.

Months are written in batches: spooled months accumulate until they hold `batch_rows` rows, then one statement
loads them all and one transaction writes them (DuckDB writes a few large inserts for much less CPU than many
small ones). Each month is still its own window, replaced exactly as before (`begin_window` / `finish_window`,
its own `sync_state` row), so a re-sync replaces it and never doubles it. What a batch means when a sync stops:
a batch is committed as one, so every window of a committed batch is complete, and the windows of a batch not yet
committed (a cancel, a crash, an auth failure) are simply absent and fetched again by the next sync, while their
previous rows stay as they were. A month the hub served badly (a malformed id, a day outside the month, a row
count the chunks disagree with, an unreadable chunk) fails alone: the batch is written again without it, from the
spool. A window throttled past its retries or failing part-way is recorded as failed with its previous rows
intact, like the API sync's.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import gzip
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb

from finops_tui.allocation.effective import TagPolicy, refresh_derived
from finops_tui.basis.arm_ids import invalid_resource_id_sql
from finops_tui.errors import AzureError, UserError
from finops_tui.store import summaries
from finops_tui.store.cache import Cache
from finops_tui.store.schema import CHARGE_COLUMNS
from finops_tui.store.sources import Window, begin_window, finish_window
from finops_tui.store.tag_sets import TAG_SET_COLUMN, add_tag_sets
from finops_tui.sync.engine import SyncProgress, SyncResult, WindowFailure
from finops_tui.sync.spool import remove_stale_spools, spool_folder
from finops_tui.sync.windows import MonthWindow, Scope, plan_windows, record_done, record_failed
from finops_tui.textsafe import control_character

HUB_KIND = "sync-hub"
HUB_METRIC = "focus"  # both BilledCost and EffectiveCost on every row
DEFAULT_DATABASE = "Hub"
# Rows per packed chunk: its text stays well under Kusto's 1 MB string limit before compression, and its base64
# under the streaming reader's 64 KB buffer (the reader rescans a string that spans buffers: quadratic past that).
CHUNK_ROWS = 500
# Rows written per batch (one INSERT, one transaction). At 100k rows an insert, DuckDB writes ~170k rows/s of
# already-typed 41-column rows (the rows go through the WAL at commit); from about 500k rows an insert it writes
# row groups as it goes, about twice as fast. A larger batch gains little more and spools more (~45 bytes a row).
BATCH_ROWS = 1_000_000
# Written after each chunk's gzip member: a gzip member of its own holding the newline that ends its last line.
_NEWLINE_MEMBER = gzip.compress(b"\n", mtime=0)
_GZIP_MAGIC = b"\x1f\x8b\x08"
# The packed column of each result table, in the order the query returns them.
_TABLES = ("Attributes", "Rows")
_DATETIME_COLUMNS = {"x_ChargeDate", "BillingPeriodStart", "BillingPeriodEnd"}
KUSTO_SCOPE = "https://kusto.kusto.windows.net/.default"
_DATABASE = re.compile(r"^[A-Za-z0-9_. -]{1,260}$")
_MANAGEMENT_GROUP = re.compile(r"^[A-Za-z0-9_().-]{1,90}$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# (cache column, KQL expression over Costs(), kind): the grain the cluster summarises to. `key` columns
# group; `sum` columns add up. Columns a hub version may lack are read with column_ifexists.
GRAIN: list[tuple[str, str, str]] = [
    ("x_ChargeDate", "startofday(ChargePeriodStart)", "key"),
    ("BillingPeriodStart", "BillingPeriodStart", "key"),
    ("BillingPeriodEnd", "BillingPeriodEnd", "key"),
    ("BillingAccountId", "BillingAccountId", "key"),
    ("BillingAccountName", "BillingAccountName", "key"),
    ("SubAccountId", "SubAccountId", "key"),
    ("SubAccountName", "SubAccountName", "key"),
    ("BillingCurrency", "BillingCurrency", "key"),
    ("ChargeCategory", "ChargeCategory", "key"),
    ("ChargeClass", "ChargeClass", "key"),
    ("ChargeFrequency", "ChargeFrequency", "key"),
    ("PricingCategory", "PricingCategory", "key"),
    ("PricingUnit", "PricingUnit", "key"),
    ("ConsumedUnit", "ConsumedUnit", "key"),
    ("ServiceName", "ServiceName", "key"),
    ("ServiceCategory", "ServiceCategory", "key"),
    ("ProviderName", "ProviderName", "key"),
    ("PublisherName", "PublisherName", "key"),
    ("InvoiceIssuerName", "InvoiceIssuerName", "key"),
    ("ResourceId", "ResourceId", "key"),
    ("ResourceName", "ResourceName", "key"),
    ("ResourceType", "ResourceType", "key"),
    ("RegionId", "RegionId", "key"),
    ("RegionName", "RegionName", "key"),
    ("CommitmentDiscountId", "CommitmentDiscountId", "key"),
    ("CommitmentDiscountName", "CommitmentDiscountName", "key"),
    ("CommitmentDiscountStatus", "CommitmentDiscountStatus", "key"),
    ("CommitmentDiscountType", "CommitmentDiscountType", "key"),
    ("CommitmentDiscountCategory", "CommitmentDiscountCategory", "key"),
    ("SkuId", "SkuId", "key"),
    ("SkuPriceId", "SkuPriceId", "key"),
    ("x_ResourceGroupName", "x_ResourceGroupName", "key"),
    ("x_SkuMeterCategory", "x_SkuMeterCategory", "key"),
    ("x_SkuMeterName", "tostring(column_ifexists('x_SkuMeterName', ''))", "key"),
    ("Tags", "tostring(Tags)", "key"),
    ("BilledCost", "BilledCost", "sum"),
    ("EffectiveCost", "EffectiveCost", "sum"),
    ("ListCost", "ListCost", "sum"),
    ("ContractedCost", "ContractedCost", "sum"),
    ("PricingQuantity", "PricingQuantity", "sum"),
    ("ConsumedQuantity", "ConsumedQuantity", "sum"),
]
_TYPES = dict(CHARGE_COLUMNS)
# Columns that follow the resource (and its account), not the day or the charge: the cluster sends each distinct
# combination of them once a month (a "variant"), and each summarised row only its variant's number.
ATTRIBUTES = ("BillingAccountId", "BillingAccountName", "SubAccountId", "SubAccountName", "ProviderName",
              "PublisherName", "InvoiceIssuerName", "ResourceId", "ResourceName", "ResourceType", "RegionId",
              "RegionName", "x_ResourceGroupName", "Tags")


@dataclass(frozen=True)
class HubTarget:
    """A hub cluster, its database and the slice to pull; `key` names its windows in sync_state."""

    cluster: str  # https://CLUSTER.REGION.kusto.windows.net (http only on loopback)
    database: str
    filters: tuple[str, ...] = ()  # KQL `where` conditions (resource groups, tags, billing profiles: each narrows)
    filter_texts: tuple[str, ...] = ()  # as the user wrote them
    subscriptions: tuple[str, ...] = ()  # subscription ids; with management groups' ones, the slice is any of them
    management_groups: tuple[str, ...] = ()  # resolved to their subscriptions through ARM before the first query

    @property
    def shown(self) -> str:
        slice_text = f" ({', '.join(self.filter_texts)})" if self.filter_texts else ""
        return f"{self.cluster}/{self.database}{slice_text}"

    @property
    def key(self) -> str:
        host = urlsplit(self.cluster).netloc.lower()
        slice_text = "?" + "&".join(sorted(self.filter_texts)) if self.filter_texts else ""
        return f"hub:{host}/{self.database}{slice_text}".lower()


def parse_hub(url: str, filters: list[str] | tuple[str, ...] = (), *, origin: str = "--hub") -> HubTarget:
    """`https://CLUSTER.REGION.kusto.windows.net[/DATABASE]` and `--hub-filter` slices, or one line saying why not."""
    from finops_tui.azure import is_loopback_host

    raw = url.strip()
    expected = "expected https://CLUSTER.REGION.kusto.windows.net[/DATABASE]"
    if control_character(raw, bidi=True) is not None:
        raise UserError(f"{origin} {raw!r}: holds control characters; {expected}")
    parts = urlsplit(raw)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise UserError(f"{origin} {raw}: {expected}")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise UserError(f"{origin} {raw}: plain http is accepted only for loopback addresses; use https")
    if parts.query or parts.fragment:
        raise UserError(f"{origin} {raw}: the cluster URL takes no query string or fragment; {expected}")
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) > 1:
        raise UserError(f"{origin} {raw}: only a database may follow the cluster; {expected}")
    database = segments[0] if segments else DEFAULT_DATABASE
    if not _DATABASE.match(database):
        raise UserError(f"{origin} {raw}: {database!r} is not a database name")
    conditions: list[str] = []
    subscriptions: list[str] = []
    groups: list[str] = []
    for text in filters:
        kind, value = _filter(text)
        {"condition": conditions, "subscription": subscriptions, "management-group": groups}[kind].append(value)
    return HubTarget(f"{parts.scheme}://{parts.netloc}", database, tuple(conditions), tuple(t.strip() for t in filters),
                     tuple(dict.fromkeys(subscriptions)), tuple(dict.fromkeys(groups)))


def _filter(text: str) -> tuple[str, str]:
    """A `--hub-filter` as ("condition", KQL), ("subscription", id) or ("management-group", id); values become KQL
    string literals, never query text."""
    name, sep, value = text.strip().partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not value or control_character(text, bidi=True) is not None:
        raise UserError(f"--hub-filter {text!r}: expected subscription=ID, resource-group=NAME or tag:KEY=VALUE")
    if name.lower() == "subscription":
        sub = value.split("/")[-1] if value.lower().startswith("/subscriptions/") else value
        if not _GUID.match(sub):
            raise UserError(f"--hub-filter {text!r}: {value!r} is not a subscription id")
        return "subscription", sub.lower()
    if name.lower() == "management-group":
        group = value.split("/")[-1] if value.lower().startswith("/providers/microsoft.management/") else value
        if not _MANAGEMENT_GROUP.match(group):
            raise UserError(f"--hub-filter {text!r}: {value!r} is not a management group id (up to 90 letters, "
                            "digits, hyphens, underscores, periods and parentheses)")
        return "management-group", group
    return "condition", _filter_condition(text, name, value)


def _filter_condition(text: str, name: str, value: str) -> str:
    if name.lower() == "resource-group":
        return f"x_ResourceGroupName =~ {_kql_string(value)}"
    if name.lower().startswith("tag:") and len(name) > 4:
        return f"tostring(Tags[{_kql_string(name[4:])}]) =~ {_kql_string(value)}"
    if name.lower() in ("billing-profile", "invoice-section"):
        column = {"billing-profile": "x_BillingProfileId", "invoice-section": "x_InvoiceSectionId"}[name.lower()]
        return f"{column} =~ {_kql_string(value)}"
    raise UserError(
        f"--hub-filter {text!r}: unknown slice {name!r}; expected subscription=ID, management-group=ID, "
        "resource-group=NAME, tag:KEY=VALUE, billing-profile=ID or invoice-section=ID"
    )


def _kql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def window_query(target: HubTarget, start: dt.date, end: dt.date, chunk_rows: int = CHUNK_ROWS) -> str:
    """The KQL of one month window: filter, summarise to the cache's grain on the cluster, pack in gzipped CSV
    chunks. Two result tables: the month's distinct resource attributes, each numbered once (`Variant`), then the
    summarised rows carrying their variant's number instead of the attributes themselves."""
    keys = [(column, expr) for column, expr, kind in GRAIN if kind == "key"]
    sums = [(column, expr) for column, expr, kind in GRAIN if kind == "sum"]
    if target.management_groups:
        raise AssertionError("resolve_management_groups() first: Costs() has no management group column")
    where = [f"ChargePeriodStart >= datetime({start.isoformat()})", f"ChargePeriodStart < datetime({end.isoformat()})",
             *target.filters]
    if target.subscriptions:
        # SubAccountId is the ARM id in Microsoft's exports; the bare GUID too, for data shaped by other tools.
        ids = ", ".join(f"{_kql_string('/subscriptions/' + sub)}, {_kql_string(sub)}" for sub in target.subscriptions)
        where.append(f"SubAccountId in~ ({ids})")
    by = ",\n    ".join(f"{column} = {expr}" for column, expr in keys)
    summed = ", ".join(f"{column} = sum({expr})" for column, expr in sums)
    attributes = ", ".join(ATTRIBUTES)
    attribute_fields = ", ".join(_csv_field(column, "key") for column in ATTRIBUTES)
    fact_fields = ", ".join(_csv_field(column, kind) for column, _, kind in GRAIN if column not in ATTRIBUTES)
    return (
        # Batch statements answer in their order (the variants, then the rows). materialize(): a `let` binds a
        # calculation, not its value, so without it each statement could summarise again and number differently.
        "let Summarised = materialize(Costs()\n"
        f"| where {' and '.join(where)}\n"
        f"| summarize {summed} by\n    {by});\n"
        f"let Variants = materialize(Summarised\n| summarize by {attributes}\n| serialize Variant = row_number());\n"
        "Variants\n"
        f"| project Line = strcat_delim(',', {attribute_fields}, Variant)\n"
        f"{_packing(chunk_rows, 'Attributes')};\n"
        "Summarised\n"
        f"| lookup kind=inner Variants on {attributes}\n"
        f"| project Line = strcat_delim(',', {fact_fields}, Variant)\n"
        f"{_packing(chunk_rows, 'Rows')}"
    )


def _packing(chunk_rows: int, name: str) -> str:
    """KQL packing a table's `Line`s into gzipped base64 chunks of `chunk_rows` lines, one result row a chunk."""
    return (f"| serialize Chunk = (row_number() - 1) / {int(chunk_rows)}\n"
            "| summarize Lines = make_list(Line), RowCount = count() by Chunk\n"
            f"| project Chunk, RowCount, {name} = gzip_compress_to_base64_string(strcat_array(Lines, '\\n'))")


def _csv_field(column: str, kind: str) -> str:
    """One CSV field of a row as KQL: dates and sums bare, text quoted with its quotes doubled (RFC 4180)."""
    if column in _DATETIME_COLUMNS:
        return f"format_datetime({column}, 'yyyy-MM-dd HH:mm:ss')"
    if kind == "sum":
        # Sums travel as text: the cluster's own digits, cast to DECIMAL by DuckDB without a float in between.
        return f"tostring({column})"
    return f"strcat('\"', replace_string(tostring({column}), '\"', '\"\"'), '\"')"


def resolve_management_groups(target: HubTarget, subscriptions_of: Callable[[str], list[str]]) -> HubTarget:
    """The target with its management groups replaced by the subscriptions below them (`subscriptions_of` asks ARM);
    a group without any subscription is one line, never an unfiltered pull."""
    found = list(target.subscriptions)
    for group in target.management_groups:
        ids = [sub.lower() for sub in subscriptions_of(group) if _GUID.match(sub)]
        if not ids:
            raise UserError(f"--hub-filter management-group={group}: the group holds no subscription this sign-in "
                            "can see; nothing to pull")
        found.extend(ids)
    return replace(target, subscriptions=tuple(dict.fromkeys(found)), management_groups=())


@dataclass
class HubOptions:
    url: str
    filters: list[str] = field(default_factory=list)
    arm_endpoint: str | None = None  # where management groups are resolved (default: the public cloud)
    months: int = 3
    credential_mode: str = "auto"
    credential: Any = None  # an azure-identity TokenCredential (tests, the explorer); else from credential_mode
    retries: int = 6  # per window, for throttling and transient errors
    max_wait_seconds: float = 300.0
    sleep: Callable[[float], None] | None = None  # injected in tests so retries do not really wait
    work_dir: Path | None = None
    origin: str = "--hub"
    chunk_rows: int = CHUNK_ROWS
    batch_rows: int = BATCH_ROWS  # spooled months are written together once they hold this many rows
    timeout_seconds: float = 1800.0


class _WindowFailed(Exception):
    """This window cannot be pulled now; the next sync retries it."""


@dataclass(frozen=True)
class _Spooled:
    """A month fetched into the spool, waiting for its batch to be written."""

    window: MonthWindow
    path: Path  # the rows' chunks (gzip members), as the hub sent them
    served: int  # rows, as the chunks counted them

    @property
    def attributes(self) -> Path:
        """The month's variants (its distinct resource attributes), spooled beside its rows."""
        return _attributes_path(self.path)


def _attributes_path(rows_path: Path) -> Path:
    return rows_path.with_name(rows_path.name.replace(".csv.gz", ".attributes.csv.gz"))


class _Rejected(Exception):
    """Months of a batch the hub served badly (the batch's transaction rolled back); an empty dict: the batch could
    not be read and the bad month is not known."""

    def __init__(self, reasons: dict[_Spooled, str]) -> None:
        super().__init__("; ".join(reasons.values()))
        self.reasons = reasons


class _Run:
    def __init__(self, cache: Cache, options: HubOptions, policy: TagPolicy,
                 progress: Callable[[SyncProgress], None], cancel: threading.Event) -> None:
        from finops_tui.sync.clients import SyncMonitor

        self.cache = cache
        self.options = options
        self.policy = policy
        self.progress = progress
        self.cancel = cancel
        self.result = SyncResult()
        self.target = parse_hub(options.url, options.filters, origin=options.origin)
        self.monitor = SyncMonitor(cancel=cancel, sleep=options.sleep, max_wait_seconds=options.max_wait_seconds,
                                   on_wait=lambda text: self.emit(text))
        self.window: MonthWindow | None = None
        self.windows_total = 0
        self.rows = 0

    def emit(self, state: str, rows: int | None = None) -> None:
        window = self.window
        self.progress(SyncProgress(
            scope=self.target.shown, metric=window.metric if window else None, window=window.start if window else None,
            rows=self.rows if rows is None else rows, state=state,
            windows_done=self.result.windows_done + len(self.result.failures), windows_total=self.windows_total,
            api_path="hub",
        ))

    def run(self) -> SyncResult:
        from finops_tui.sync.clients import SyncCancelled

        started = time.perf_counter()
        windows, skipped = self.plan()
        self.result.windows_skipped = skipped
        self.windows_total = len(windows)
        remove_stale_spools(self.options.work_dir)
        if windows and self.target.management_groups:
            self.emit("resolving management groups")
            self.target = self._resolved(self.target)
        client = self._client() if windows else None
        try:
            with spool_folder(self.options.work_dir) as spool:
                batch: list[_Spooled] = []
                for window in windows:
                    if self.cancel.is_set():
                        raise SyncCancelled()
                    self.window = window
                    self.rows = 0
                    path = spool / f"{window.start:%Y-%m}.csv.gz"
                    try:
                        batch.append(_Spooled(window, path, self._fetch_with_retries(client, window, path)))
                    except _WindowFailed as exc:
                        self._failed(window, str(exc))
                    if batch and sum(s.served for s in batch) >= self.options.batch_rows:
                        self._write(batch)
                        batch = []
                if batch:
                    if self.cancel.is_set():
                        raise SyncCancelled()
                    self._write(batch)
        except SyncCancelled:
            self.result.cancelled = True
            self.emit("cancelled")
        finally:
            if client is not None:
                client.close()
            if self.result.windows_done:
                self.emit("updating resources and tags")
                with self.cache.write() as cur:
                    refresh_derived(cur, self.policy)
            self.result.api_calls = self.monitor.api_calls
            self.result.throttled_seconds = self.monitor.throttled_seconds
            self.result.throttle_events = self.monitor.throttle_events
            self.result.elapsed_seconds = time.perf_counter() - started
        return self.result

    def plan(self) -> tuple[list[MonthWindow], int]:
        with self.cache.cursor() as cur:
            return plan_windows(cur, Scope(self.target.key, "hub"), (HUB_METRIC,), self.options.months)

    def _credential(self) -> Any:
        from finops_tui import azure

        if self.options.credential is None:
            self.options.credential = azure.make_credential(self.options.credential_mode)
        return self.options.credential

    def _resolved(self, target: HubTarget) -> HubTarget:
        from finops_tui import azure
        from finops_tui.sync.clients import arm_client, management_group_subscriptions

        endpoint = azure.parse_endpoint(self.options.arm_endpoint)
        credential = self._credential()
        azure.check_signed_in(credential, endpoint, self.options.credential_mode)
        client = arm_client(credential, endpoint, self.monitor)
        try:
            return resolve_management_groups(target, lambda group: management_group_subscriptions(
                client, endpoint, group))
        finally:
            client.close()

    def _client(self) -> Any:
        from azure.core.exceptions import ClientAuthenticationError
        from azure.kusto.data import KustoClient, KustoConnectionStringBuilder

        from finops_tui import azure

        credential = self._credential()
        try:
            credential.get_token(KUSTO_SCOPE)  # fail fast with one line, before any window
        except ClientAuthenticationError:
            raise AzureError(azure.NOT_SIGNED_IN) from None
        builder = KustoConnectionStringBuilder.with_azure_token_credential(self.target.cluster, credential)
        return KustoClient(builder)

    def _failed(self, window: MonthWindow, error: str) -> None:
        with self.cache.write() as cur:
            record_failed(cur, window, error, "hub", self.monitor.throttled_seconds)
        self.result.failures.append(WindowFailure(self.target.shown, HUB_METRIC, window.start, error))
        self.window = window
        self.emit(f"failed: {error}", rows=0)

    def _write(self, batch: list[_Spooled]) -> None:
        """Write the batch's months in one transaction; a month served badly fails alone and the others are written
        again without it (an unreadable batch: each month on its own, to find which)."""
        self.window = batch[0].window
        self.emit("writing", rows=sum(s.served for s in batch))
        try:
            rows = self._write_together(batch)
        except _Rejected as exc:
            if not exc.reasons:
                for spooled in batch:
                    self._write([spooled])
                return
            for spooled, reason in exc.reasons.items():
                self._failed(spooled.window, reason)
            rest = [s for s in batch if s not in exc.reasons]
            if rest:
                self._write(rest)
            return
        for spooled in batch:
            spooled.path.unlink(missing_ok=True)
            spooled.attributes.unlink(missing_ok=True)
        for spooled, count in zip(batch, rows, strict=True):
            self.result.windows_done += 1
            self.result.rows += count
            self.window = spooled.window
            self.emit("written", rows=count)

    def _write_together(self, batch: list[_Spooled]) -> list[int]:
        """One transaction: each month's window begun (its previous rows dropped), all months' rows inserted in one
        statement, checked per month, each window finished and recorded done; the rows of each, in batch order."""
        with self.cache.write() as cur:
            source_ids = [begin_window(cur, Window(HUB_KIND, self.target.key, HUB_METRIC, s.window.start, s.window.end,
                                                   path=self.target.shown)) for s in batch]
            loaded = [(s, source_id) for s, source_id in zip(batch, source_ids, strict=True) if s.served]
            if loaded:
                _load(cur, loaded)
            rows = []
            for spooled, source_id in zip(batch, source_ids, strict=True):
                # The summary's days are settled once, after the last window.
                rows.append(finish_window(cur, source_id, settle_summary=False))
                record_done(cur, spooled.window, rows[-1], "hub", self.monitor.throttled_seconds)
            summaries.settle(cur)
        return rows

    def _fetch_with_retries(self, client: Any, window: MonthWindow, path: Path) -> int:
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._fetch(client, window, path)
            except _Retryable as exc:
                if attempt > self.options.retries:
                    raise _WindowFailed(f"{exc.reason}; gave up after {attempt} attempts, retried next sync") from None
                self.monitor.wait(exc.wait if exc.wait is not None else min(60.0, 2.0 ** attempt), exc.reason,
                                  throttled=exc.throttled)

    def _fetch(self, client: Any, window: MonthWindow, path: Path) -> int:
        """One attempt: stream the chunks' gzip members (each followed by a newline's member) of the variants table
        into `_attributes_path(path)` and of the rows into `path`; the rows served, as their chunks count them."""
        from azure.kusto.data import ClientRequestProperties
        from azure.kusto.data.exceptions import (
            KustoError,
            KustoMultiApiError,
            KustoNetworkError,
            KustoServiceError,
            KustoThrottlingError,
        )

        from finops_tui.sync.clients import SyncCancelled

        query = window_query(self.target, window.start, window.end, self.options.chunk_rows)
        properties = ClientRequestProperties()
        properties.application = "finops-tui"
        # A month of a large estate is more than the default 64 MB / 500k-record result: never cut it short silently.
        properties.set_option("notruncation", True)
        self.monitor.count_call()
        self.emit("querying the hub")
        served = 0
        try:
            dataset = client.execute_streaming_query(
                self.target.database, query, timeout=dt.timedelta(seconds=self.options.timeout_seconds),
                properties=properties)
            files = {"Attributes": _attributes_path(path), "Rows": path}
            answered: list[str] = []
            for table in dataset.iter_primary_results():
                columns = [c.column_name for c in table.columns]
                kind = columns[-1] if columns[:2] == ["Chunk", "RowCount"] and len(columns) == 3 else ""
                # The variants come first: a row's variant is always known by the time its rows are read.
                if len(answered) == len(_TABLES) or kind != _TABLES[len(answered)]:
                    raise _WindowFailed(f"the hub answered columns {columns}; expected a table of Chunk, RowCount, "
                                        "Attributes, then one of Chunk, RowCount, Rows")
                answered.append(kind)
                with files[kind].open("wb") as out:
                    for _chunk, count, packed in table.raw_rows:
                        if self.cancel.is_set():
                            raise SyncCancelled()
                        out.write(_unpack(packed, count))
                        out.write(_NEWLINE_MEMBER)
                        if kind == "Rows":
                            served += int(count)
                            self.rows = served
                            self.emit("downloading")
                table.finished = True
            if tuple(answered) != _TABLES:
                raise _WindowFailed(f"the hub answered {len(answered)} result tables, not the variants and the rows")
            # Errors after the last row (a result cut short on the cluster) are reported at the end.
            errors = _completion_errors(dataset)
            if errors:
                raise _WindowFailed(f"the hub reported an error after {served:,} rows: {errors}; retried next sync")
        except KustoThrottlingError as exc:
            raise _Retryable("the hub is throttling queries", _retry_after(exc), throttled=True) from None
        except KustoMultiApiError as exc:
            raise _WindowFailed(f"the hub query failed part-way, after {served:,} rows ({_first_line(exc)}); "
                                "retried next sync") from None
        except KustoNetworkError:
            raise _Retryable("cannot reach the hub", None, throttled=False) from None
        except KustoServiceError as exc:
            status = getattr(getattr(exc, "http_response", None), "status_code", None)
            if status is not None and status >= 500:
                raise _Retryable(f"the hub answered {status}", _retry_after(exc), throttled=False) from None
            if status in (401, 403):
                raise AzureError(f"{self.target.shown}: the hub refused the credentials ({status}); run `az login` "
                                 "with an account that can read the hub database") from None
            raise _WindowFailed(f"the hub refused the query: {_first_line(exc)}") from None
        except KustoError as exc:
            raise _WindowFailed(f"the hub query failed part-way: {_first_line(exc)}; retried next sync") from None
        except (OSError, ValueError) as exc:
            raise _Retryable(f"connection to the hub failed ({_first_line(exc)})", None, throttled=False) from None
        return served


class _Retryable(Exception):
    def __init__(self, reason: str, wait: float | None, *, throttled: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait
        self.throttled = throttled


def _retry_after(exc: Exception) -> float | None:
    # KustoServiceError keeps the response as http_response; KustoThrottlingError only in its args.
    response = getattr(exc, "http_response", None) or next((a for a in exc.args if hasattr(a, "headers")), None)
    headers = getattr(response, "headers", None) or {}
    try:
        return float(headers.get("Retry-After") or "")
    except (TypeError, ValueError):
        return None


def _completion_errors(dataset: Any) -> str:
    """OneApiErrors of the DataSetCompletion frame (read after the primary results)."""
    for _ in dataset:  # the tables after the primary result: QueryCompletionInformation and the like
        pass
    try:
        exceptions = dataset.get_exceptions()
    except Exception:
        return ""
    return "; ".join(exceptions)[:300]


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def _unpack(rows: Any, count: Any) -> bytes:
    """A chunk's gzip member (its CSV lines, still compressed: DuckDB inflates them as it reads) from its base64
    text; anything that is not base64 of a gzip member fails the window. A member cut short is found by the read."""
    if not isinstance(rows, str) or isinstance(count, bool) or not isinstance(count, int | float) or count < 0:
        raise _WindowFailed("the hub answered a chunk that is not packed rows")
    try:
        member = base64.b64decode(rows, validate=True)
    except (binascii.Error, ValueError):
        member = b""
    if not member.startswith(_GZIP_MAGIC):
        raise _WindowFailed("the hub answered a chunk that is not gzipped CSV; the month is not written")
    return member


def _load(cur: duckdb.DuckDBPyConnection, loaded: list[tuple[_Spooled, int]]) -> None:
    """Insert the spooled months in one statement, each row under its month's source_id (by the file it came from),
    then check each month: a malformed id, a day outside its month, a currency that is not a code or a row count
    other than the chunks' fails that month (`_Rejected`; the caller's transaction rolls back). A read error cannot
    name its month: `_Rejected` without reasons when the batch holds several, the month's own when one.

    One pass from the CSV into `charges` (no staging table) measured 1.45 s against 1.75 s per 100k rows; the reader
    parsing dates and sums to their column types itself (no text column cast after it), 17% less DuckDB time again;
    one statement for a batch of 100k-row months, about a fifth less CPU than one a month."""
    fact_fields = ", ".join(f"'{column}': '{_wire_type(column, kind)}'" for column, _, kind in GRAIN
                            if column not in ATTRIBUTES)
    attribute_fields = ", ".join(f"'{column}': 'VARCHAR'" for column in ATTRIBUTES)
    # An empty field, quoted or not, is NULL: the cache keeps no empty strings.
    facts = _read_csv("$paths", f"{fact_fields}, 'Variant': 'BIGINT'")
    variants = _read_csv("$attribute_paths", f"{attribute_fields}, 'Variant': 'BIGINT'")
    paths = [str(spooled.path) for spooled, _ in loaded]
    attribute_paths = [str(spooled.attributes) for spooled, _ in loaded]
    # Each variant's month (its source_id) from its file, through a join with the batch's (file, source_id) pairs;
    # ids lower-cased and tags parsed once a variant, not once a row. The rows join their variants on the month's
    # file and the variant's number: a join lets DuckDB write row groups in any order (rows in `charges` have no
    # order of their own: the read models order their answers, a resource's latest row is picked by date), 15-20%
    # less CPU than an order-keeping insert. A row without its variant, or a variant twice, changes the month's
    # row count: the check below fails the month.
    months = ("(SELECT unnest($paths) AS path, unnest($attribute_paths) AS attribute_path, "
              "unnest($source_ids) AS source_id)")
    attributes = ", ".join(_attribute_sql(column) for column in ATTRIBUTES)
    variants_of_months = (f"(SELECT m.path, v.Variant, m.source_id, {attributes} FROM {variants} v "
                          f"JOIN {months} m ON m.attribute_path = v.filename)")
    try:
        cur.execute(f"INSERT INTO charges ({', '.join(_target_columns())}) SELECT {_select_sql('v.source_id')} "
                    f"FROM {facts} r JOIN {variants_of_months} v ON v.path = r.filename AND v.Variant = r.Variant",
                    {"paths": paths, "attribute_paths": attribute_paths,
                     "source_ids": [source_id for _, source_id in loaded]})
    except (duckdb.ConversionException, duckdb.InvalidInputException, duckdb.IOException) as exc:
        if len(loaded) > 1:
            raise _Rejected({}) from None
        text = _first_line(exc)
        for path in (attribute_paths[0], paths[0]):
            text = text.replace(path, "the spooled chunks")
        raise _Rejected({loaded[0][0]: f"unreadable hub rows ({text}); the month is not written"}) from None
    by_id = {source_id: spooled for spooled, source_id in loaded}
    add_tag_sets(cur, f"source_id IN ({', '.join(str(source_id) for source_id in by_id)})")
    # The text tests run on each month's distinct ids and currencies, not on every row: a tenth of the CPU.
    checked = cur.execute(
        f"""
        WITH batch AS (SELECT * FROM charges WHERE source_id IN (SELECT unnest($ids))),
        counts AS (
            SELECT source_id, count(*) AS n, count(*) FILTER (WHERE x_ChargeDate IS NULL) AS undated,
                   min(x_ChargeDate) AS first_day, max(x_ChargeDate) AS last_day
            FROM batch GROUP BY source_id
        ),
        texts AS (
            SELECT source_id,
                   any_value(ResourceId) FILTER (WHERE ResourceId <> '' AND {invalid_resource_id_sql('ResourceId')})
                       AS bad_id,
                   any_value(coalesce(BillingCurrency, '')) FILTER (
                       WHERE NOT regexp_full_match(coalesce(BillingCurrency, ''), '[A-Z]{{3}}')) AS bad_currency
            FROM (SELECT DISTINCT source_id, ResourceId, BillingCurrency FROM batch) GROUP BY source_id
        )
        SELECT source_id, n, undated, first_day, last_day, bad_id, bad_currency FROM counts JOIN texts USING (source_id)
        """,
        {"ids": list(by_id)},
    ).fetchall()
    counted = {row[0]: row for row in checked}
    reasons: dict[_Spooled, str] = {}
    for source_id, spooled in by_id.items():
        _, rows_in, undated, first, last, bad_id, currency = counted.get(source_id, (source_id, 0, 0, None, None,
                                                                                     None, None))
        window = spooled.window
        if bad_id is not None:
            reasons[spooled] = f"the hub served a malformed resource id {bad_id!r}; the month is not written"
        elif undated or (first and first < window.start) or (last and last >= window.end):
            reasons[spooled] = "the hub served rows outside the month asked for; the month is not written"
        elif currency is not None:
            reasons[spooled] = f"the hub served a currency {currency!r} that is not an ISO 4217 code"
        elif rows_in != spooled.served:
            reasons[spooled] = f"the hub served {spooled.served:,} rows but {rows_in:,} were in the window"
    if reasons:
        raise _Rejected(reasons)


def _target_columns() -> list[str]:
    """The `charges` columns of the batch insert, in GRAIN's order: a variant's Tags go to its tag set."""
    return ([f'"{TAG_SET_COLUMN if column == "Tags" else column}"' for column, _, _ in GRAIN]
            + ['"ChargePeriodStart"', '"ChargePeriodEnd"', '"source_id"'])


def _wire_type(column: str, kind: str) -> str:
    """The type the CSV reader parses a field to: dates and sums typed on read (the sums' digits straight to DECIMAL,
    never through a float), text as text."""
    if column in _DATETIME_COLUMNS:
        return "TIMESTAMP"
    return _TYPES[column] if kind == "sum" else "VARCHAR"


def _read_csv(paths: str, columns: str) -> str:
    return (f"read_csv({paths}, columns = {{{columns}}}, header = false, delim = ',', quote = '\"', escape = '\"', "
            "auto_detect = false, strict_mode = true, compression = 'gzip', filename = true)")


def _attribute_sql(column: str) -> str:
    """A variant's attribute as the cache keeps it (computed once a variant)."""
    if column == "ResourceId":
        return "lower(ResourceId) AS ResourceId"
    if column == "Tags":
        # A tag value that is not text (a number in the hub's dynamic bag) is kept as its JSON text. The row keeps
        # the tags as a tag set (store.tag_sets): the JSON text of their MAP, which parses back to that MAP.
        return ("CASE WHEN json_valid(Tags) AND json_type(Tags) = 'OBJECT' THEN "
                "to_json(CAST(json_transform(Tags, '\"MAP(VARCHAR, VARCHAR)\"') AS MAP(VARCHAR, VARCHAR)))::VARCHAR "
                "END AS Tags")
    return column


def _select_sql(source_id: str) -> str:
    items = []
    for column, _, _ in GRAIN:
        if column in ATTRIBUTES:
            items.append(f"v.{column}")
        elif column == "x_ChargeDate":
            items.append("CAST(x_ChargeDate AS DATE)")
        else:
            items.append(f"r.{column}")
    items.append("CAST(x_ChargeDate AS DATE)::TIMESTAMP")
    items.append("CAST(x_ChargeDate AS DATE)::TIMESTAMP + INTERVAL 1 DAY")
    items.append(source_id)
    return ", ".join(items)


def sync_hub(
    cache: Cache,
    options: HubOptions,
    policy: TagPolicy,
    progress: Callable[[SyncProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> SyncResult:
    """Pull the planned month windows of the hub into `cache`; safe in a worker thread.

    Raises AzureError when signing in fails or the hub refuses the credentials; other failures are per
    window, in the result, and retried by the next sync.
    """
    return _Run(cache, options, policy, progress or (lambda _p: None), cancel or threading.Event()).run()


def planned_queries(cache: Cache, options: HubOptions, policy: TagPolicy) -> list[tuple[MonthWindow, str]]:
    """`--dry-run`: the KQL each planned month window would run, in order; no query is sent to the hub (management
    groups are resolved through ARM, so the text is the one a sync would send)."""
    run = _Run(cache, options, policy, lambda _p: None, threading.Event())
    windows, _ = run.plan()
    target = run._resolved(run.target) if windows and run.target.management_groups else run.target
    return [(window, window_query(target, window.start, window.end, options.chunk_rows)) for window in windows]
