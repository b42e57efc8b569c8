"""The sync run: plans month windows per scope and metric, pulls each from Azure, replaces it atomically."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from finops_tui import clock
from finops_tui.allocation.effective import TagPolicy, refresh_derived
from finops_tui.config import Config
from finops_tui.errors import AzureError, UserError
from finops_tui.store.cache import Cache
from finops_tui.store.sources import Window, begin_window, finish_window
from finops_tui.sync import extras
from finops_tui.sync.focus_map import install_helpers
from finops_tui.sync.spool import remove_stale_spools, spool_folder
from finops_tui.sync.windows import (
    METRICS,
    MonthWindow,
    Scope,
    last_api_path,
    parse_scope,
    plan_windows,
    record_done,
    record_failed,
)

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from finops_tui.sync.clients import SyncMonitor
    from finops_tui.sync.query import FetchedQuery, GroupedQuery, QueryShape

# The Azure SDK (finops_tui.azure, sync.clients, sync.query, sync.cost_details) is imported where a run starts:
# azure-core adds about 60 ms to the explorer's start-up, which imports this module (STYLE.md, measured).

API_PATHS = ("auto", "query", "cost-details")
KIND_BY_PATH = {"query": "sync-query", "cost-details": "sync-cost-details"}


@dataclass
class SyncOptions:
    """What to sync and how; everything but `scopes` has a sensible default."""

    scopes: list[str]
    months: int = 3
    metrics: tuple[str, ...] = METRICS
    api_path: str = "auto"  # auto | query | cost-details
    arm_endpoint: str | None = None  # None: public Azure; https anywhere, http only on loopback
    credential_mode: str = "auto"  # auto | device-code | managed-identity | cli
    tag_keys: list[str] = field(default_factory=lambda: ["team", "env", "costcenter"])
    extras: bool = True  # budgets and benefit recommendations
    query_max_groupings: int | None = None  # None: start at the most the API is known to take, adapt down
    page_size: int | None = None  # sent as $top; None lets the API choose (5000 rows)
    retries: int = 8  # per request, for 429 and 5xx
    polling_interval: float = 30.0  # Cost Details LRO; a Retry-After from the service takes precedence
    max_wait_seconds: float = 900.0  # cap for any one throttling wait
    credential: TokenCredential | None = None  # injected (tests, the UI's own sign-in); else from credential_mode
    sleep: Callable[[float], None] | None = None  # injected in tests so retries do not really wait
    work_dir: Path | None = None  # where raw pages are spooled before loading; default: the system temp dir
    device_code_prompt: Callable[[str, str, Any], None] | None = None


@dataclass(frozen=True)
class SyncProgress:
    """One progress report; the UI may drop all but the latest."""

    scope: str
    metric: str | None
    window: dt.date | None  # first day of the month being synced
    rows: int  # rows of this window so far (an estimate while pages arrive; exact once written)
    state: str  # e.g. "page 3", "throttled, retrying in 12 s", "written", "failed: …"
    windows_done: int = 0
    windows_total: int = 0
    api_path: str | None = None


@dataclass(frozen=True)
class WindowFailure:
    scope: str
    metric: str
    window: dt.date
    error: str


@dataclass
class SyncResult:
    windows_done: int = 0
    windows_skipped: int = 0
    rows: int = 0
    failures: list[WindowFailure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    api_calls: int = 0
    throttled_seconds: float = 0.0
    throttle_events: int = 0
    cancelled: bool = False
    elapsed_seconds: float = 0.0
    paths: dict[str, str] = field(default_factory=dict)  # scope → the path its windows used last

    @property
    def ok(self) -> bool:
        return not self.failures and not self.cancelled


class _ScopeAborted(Exception):
    """An error that every further window of the scope would hit too (no access, no such scope)."""


def options_from_config(config: Config, **overrides: Any) -> SyncOptions:
    """SyncOptions from config.toml (`[sync]` scopes, arm_endpoint, months, credential, query_max_groupings;
    `[tags]` keys), then `overrides` (the command line, or the explorer's own choices)."""
    options = SyncOptions(
        scopes=list(config.scopes),
        months=config.sync_months,
        arm_endpoint=config.arm_endpoint,
        credential_mode=config.credential,
        tag_keys=list(config.tag_keys),
        query_max_groupings=config.query_max_groupings,
    )
    return replace(options, **overrides)


def cache_age(cache: Cache, *, scopes: list[str] | None = None) -> dt.timedelta | None:
    """Time since the last successful sync window (of `scopes`, if given); None if never synced."""
    with cache.cursor() as cur:
        if scopes:
            keys = [parse_scope(s).key for s in scopes]
            row = cur.execute(
                "SELECT max(last_success) FROM sync_state WHERE status = 'done' AND list_contains(?, scope)", [keys]
            ).fetchone()
        else:
            row = cur.execute("SELECT max(last_success) FROM sync_state WHERE status = 'done'").fetchone()
    if not row or row[0] is None:
        return None
    return max(dt.timedelta(0), clock.now() - clock.as_utc(row[0]))


def sync_due(cache: Cache, max_age_hours: float, *, scopes: list[str] | None = None) -> bool:
    """Should the explorer start a background sync by itself?"""
    age = cache_age(cache, scopes=scopes)
    return age is None or age > dt.timedelta(hours=max_age_hours)


def _nested_scopes(scopes: list[Scope]) -> list[str]:
    warnings = []
    for inner in scopes:
        for outer in scopes:
            if inner is not outer and inner.key.startswith(outer.key + "/"):
                warnings.append(f"{inner.arm} lies inside {outer.arm}: its cost is in the cache twice")
    return warnings


class _Run:
    """State of one run_sync call."""

    def __init__(
        self,
        cache: Cache,
        options: SyncOptions,
        policy: TagPolicy,
        progress: Callable[[SyncProgress], None],
        cancel: threading.Event,
    ) -> None:
        from finops_tui import azure
        from finops_tui.sync import clients

        self.cache = cache
        self.options = options
        self.policy = policy
        self.progress = progress
        self.cancel = cancel
        self.result = SyncResult()
        self.endpoint = azure.parse_endpoint(options.arm_endpoint)
        self.monitor: SyncMonitor = clients.SyncMonitor(
            cancel=cancel, sleep=options.sleep, on_wait=self._on_wait, max_wait_seconds=options.max_wait_seconds
        )
        self.current: tuple[Scope, MonthWindow | None, str | None] | None = None
        self.window_rows = 0
        self.throttled_mark = 0.0  # monitor.throttled_seconds when the current window started
        self.windows_total = 0
        self.wrote_any = False
        self.client: Any = None

    # progress ---------------------------------------------------------------------------------------------
    def emit(self, state: str, *, rows: int | None = None) -> None:
        if self.current is None:
            return
        scope, window, path = self.current
        self.progress(
            SyncProgress(
                scope=scope.arm,
                metric=window.metric if window else None,
                window=window.start if window else None,
                rows=self.window_rows if rows is None else rows,
                state=state,
                windows_done=self.result.windows_done + len(self.result.failures),
                windows_total=self.windows_total,
                api_path=path,
            )
        )

    def _on_wait(self, text: str) -> None:
        self.emit(text)

    # the run ----------------------------------------------------------------------------------------------
    def run(self) -> SyncResult:
        from finops_tui import azure
        from finops_tui.sync import clients

        started = time.perf_counter()
        if self.options.api_path not in API_PATHS:
            raise UserError(f"--path {self.options.api_path}: expected one of {', '.join(API_PATHS)}")
        unknown = [m for m in self.options.metrics if m not in METRICS]
        if unknown or not self.options.metrics:
            raise UserError(f"metric {', '.join(unknown) or '(none)'}: expected actual and/or amortized")
        scopes = list(dict.fromkeys(parse_scope(s) for s in self.options.scopes))
        if not scopes:
            raise UserError("no scope to sync: pass --scope /subscriptions/ID or set sync.scopes in config.toml")
        if self.options.api_path == "cost-details":
            for scope in scopes:
                if not scope.supports_cost_details:
                    raise UserError(f"{scope.arm}: management groups have no cost details reports; use --path query")
        self.result.warnings.extend(_nested_scopes(scopes))
        remove_stale_spools(self.options.work_dir)  # left by a sync that was killed

        credential = self.options.credential or azure.make_credential(
            self.options.credential_mode, endpoint=self.endpoint, device_code_prompt=self.options.device_code_prompt
        )
        azure.check_signed_in(credential, self.endpoint, self.options.credential_mode)
        self.client = clients.cost_management_client(
            credential,
            self.endpoint,
            self.monitor,
            retries=self.options.retries,
            polling_interval=self.options.polling_interval,
        )
        plans: list[tuple[Scope, list[MonthWindow]]] = []
        with self.cache.cursor() as cur:
            for scope in scopes:
                windows, skipped = plan_windows(cur, scope, tuple(self.options.metrics), self.options.months)
                plans.append((scope, windows))
                self.result.windows_skipped += skipped
                self.windows_total += len(windows)
        try:
            for scope, windows in plans:
                if self.cancel.is_set():
                    self.result.cancelled = True
                    break
                self._sync_scope(scope, windows)
                if self.result.cancelled:
                    break
        finally:
            if self.wrote_any:
                self._refresh_derived()
            self.result.api_calls = self.monitor.api_calls
            self.result.throttled_seconds = self.monitor.throttled_seconds
            self.result.throttle_events = self.monitor.throttle_events
            self.result.elapsed_seconds = time.perf_counter() - started
        return self.result

    def _refresh_derived(self) -> None:
        if self.current is not None:
            self.emit("updating resources and tags")
        for attempt in range(3):
            try:
                with self.cache.write() as cur:
                    refresh_derived(cur, self.policy)
                return
            except duckdb.TransactionException as exc:
                # A tag edit committed meanwhile touched the same rows: the windows are written; rebuild again.
                if attempt == 2:
                    self.result.warnings.append(
                        f"resources and tags not refreshed ({str(exc).splitlines()[0]}); the next sync retries"
                    )

    def _initial_path(self, scope: Scope) -> str:
        if self.options.api_path != "auto":
            return self.options.api_path
        if not scope.supports_cost_details:
            return "query"
        with self.cache.cursor() as cur:
            previous = last_api_path(cur, scope)
        # Stick to what worked last time: a scope whose agreement has no cost details keeps using Query.
        return previous or "cost-details"

    def _sync_scope(self, scope: Scope, windows: list[MonthWindow]) -> None:
        from finops_tui.sync.clients import SyncCancelled

        state = _ScopeState(path=self._initial_path(scope), max_groupings=self.options.query_max_groupings)
        self.current = (scope, None, state.path)
        self.result.paths[scope.key] = state.path
        by_month: dict[dt.date, list[MonthWindow]] = {}
        for window in windows:
            by_month.setdefault(window.start, []).append(window)
        try:
            for month_windows in by_month.values():
                with spool_folder(self.options.work_dir) as tmp:
                    month = _MonthSpool(tmp)
                    for window in month_windows:
                        if self.cancel.is_set():
                            raise SyncCancelled()
                        self._sync_window(window, state, month)
        except SyncCancelled:
            self.result.cancelled = True
            self.emit("cancelled")
            return
        except _ScopeAborted:
            return
        if self.options.extras and not self.cancel.is_set():
            self._sync_extras(scope)

    def _sync_window(self, window: MonthWindow, state: _ScopeState, month: _MonthSpool) -> None:
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

        from finops_tui import azure
        from finops_tui.sync import clients
        from finops_tui.sync.cost_details import CostDetailsUnsupported, ReportFailed
        from finops_tui.sync.query import MalformedResponse

        self.current = (window.scope, window, state.path)
        self.window_rows = 0
        self.throttled_mark = self.monitor.throttled_seconds
        self.emit("starting")
        try:
            while True:
                try:
                    rows = self._pull_and_write(window, state, month)
                    break
                except CostDetailsUnsupported as exc:
                    if self.options.api_path != "auto":
                        raise ReportFailed(f"no cost details reports for this scope: {exc}") from None
                    state.path = "query"
                    self.current = (window.scope, window, state.path)
                    self.result.paths[window.scope.key] = state.path
                    self.emit("no cost details reports here; using the Query API")
        except clients.SyncCancelled:
            raise
        except ClientAuthenticationError as exc:
            response = getattr(exc, "response", None)
            if response is None:  # the credential itself failed (expired az login, revoked secret)
                raise AzureError(azure.NOT_SIGNED_IN) from None
            error = f"Azure refused the credentials: {clients.describe_http_error(exc)}"
            self._fail(window, error, state.path)
            raise AzureError(f"{window.scope.arm}: {error}; run `az login` again") from None
        except HttpResponseError as exc:
            error = clients.describe_http_error(exc)
            self._fail(window, error, state.path)
            if exc.status_code in (403, 404):
                raise _ScopeAborted() from None
            return
        except ServiceRequestError as exc:
            error = f"cannot reach {self.endpoint.url}: {clients.describe_http_error(exc)}"
            self._fail(window, error, state.path)
            raise AzureError(error) from None
        except (MalformedResponse, ReportFailed, AzureError) as exc:
            self._fail(window, clients.describe_http_error(exc), state.path)
            return
        self.result.windows_done += 1
        self.result.rows += rows
        self.emit("written", rows=rows)

    def _pull_and_write(self, window: MonthWindow, state: _ScopeState, month: _MonthSpool) -> int:
        last_day = min(window.last_day, clock.today())
        loader = (
            self._fetch_query(window, state, month, last_day)
            if state.path == "query"
            else self._fetch_report(window, month, last_day)
        )
        self.emit("writing")
        throttled = self.monitor.throttled_seconds - self.throttled_mark
        with self.cache.write() as cur:
            source_id = begin_window(
                cur,
                Window(
                    kind=KIND_BY_PATH[state.path],
                    scope=window.scope.key,
                    metric=window.metric,
                    start=window.start,
                    end=window.end,
                    path=f"{window.scope.arm}/providers/Microsoft.CostManagement/"
                    + ("query" if state.path == "query" else "generateCostDetailsReport"),
                    provider="Microsoft",
                ),
            )
            install_helpers(cur)
            loader(cur, source_id)
            rows = finish_window(cur, source_id)
            record_done(cur, window, rows, state.path, throttled)
        self.wrote_any = True
        return rows

    def _on_page(self, rows: int) -> None:
        self.window_rows += rows
        self.emit("downloading")

    def _fetch_query(
        self, window: MonthWindow, state: _ScopeState, month: _MonthSpool, last_day: dt.date
    ) -> Callable[[Any, int], None]:
        from azure.core.exceptions import HttpResponseError

        from finops_tui.sync import query

        while True:
            plan = query.build_plan(state.shape.dimensions, list(self.options.tag_keys), state.shape.max_groupings)
            try:
                attributes = [
                    month.attributes(
                        plan_query,
                        lambda q, dest: query.fetch_query(
                            self.client,
                            window,
                            q,
                            last_day,
                            dest,
                            monitor=self.monitor,
                            page_size=self.options.page_size,
                            on_page=lambda n: None,
                        ),
                    )
                    for plan_query in plan.attributes
                ]
                facts = query.fetch_query(
                    self.client,
                    window,
                    plan.facts,
                    last_day,
                    month.new_dir(window.metric),
                    monitor=self.monitor,
                    page_size=self.options.page_size,
                    on_page=self._on_page,
                )
            except HttpResponseError as exc:
                if exc.status_code == 400 and state.shape.adapt(str(exc.message or exc)):
                    self.emit("the API limits the groupings; splitting the query")
                    continue
                raise
            break
        account = _billing_account(window.scope)

        def load(cur: Any, source_id: int) -> None:
            query.load_window(cur, window, facts, attributes, source_id, account)

        return load

    def _fetch_report(self, window: MonthWindow, month: _MonthSpool, last_day: dt.date) -> Callable[[Any, int], None]:
        from finops_tui.sync import cost_details

        report = cost_details.fetch_report(
            self.client,
            window,
            last_day,
            month.new_dir(window.metric),
            monitor=self.monitor,
            polling_interval=self.options.polling_interval,
            on_state=self.emit,
        )
        account = _billing_account(window.scope)

        def load(cur: Any, source_id: int) -> None:
            cost_details.load_report(cur, window, report, source_id, account)

        return load

    def _fail(self, window: MonthWindow, error: str, api_path: str | None) -> None:
        throttled = self.monitor.throttled_seconds - self.throttled_mark
        with self.cache.write() as cur:
            record_failed(cur, window, error, api_path, throttled)
        self.result.failures.append(WindowFailure(window.scope.arm, window.metric, window.start, error))
        self.emit(f"failed: {error}", rows=0)

    def _sync_extras(self, scope: Scope) -> None:
        from finops_tui.sync import clients

        self.current = (scope, None, None)
        for what, job in (
            ("budgets", extras.sync_budgets),
            ("benefit recommendations", extras.sync_benefit_recommendations),
        ):
            self.emit(f"fetching {what}")
            try:
                job(self.client, self.cache, scope)
            except clients.SyncCancelled:
                self.result.cancelled = True
                return
            except Exception as exc:  # by design: extras never fail the sync
                self.result.warnings.append(f"{scope.arm}: {what} not synced ({clients.describe_http_error(exc)})")


@dataclass
class _ScopeState:
    """Per scope during a run: the path in use and the query shape the API accepted so far."""

    path: str
    max_groupings: int | None = None
    shape: QueryShape = field(init=False)

    def __post_init__(self) -> None:
        from finops_tui.sync.query import DEFAULT_MAX_GROUPINGS, QueryShape

        self.shape = QueryShape(max_groupings=self.max_groupings or DEFAULT_MAX_GROUPINGS)


class _MonthSpool:
    """Raw pages of one month on disk; attribute queries are fetched once and shared by both metrics."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._count = 0
        self._attributes: dict[GroupedQuery, FetchedQuery] = {}

    def new_dir(self, label: str) -> Path:
        self._count += 1
        path = self.root / f"{self._count:03d}-{label}"
        path.mkdir()
        return path

    def attributes(self, query: GroupedQuery, fetch: Callable[[GroupedQuery, Path], FetchedQuery]) -> FetchedQuery:
        if query not in self._attributes:
            self._attributes[query] = fetch(query, self.new_dir("attributes"))
        return self._attributes[query]


def _billing_account(scope: Scope) -> tuple[str | None, str | None]:
    match = re.match(r"^/providers/Microsoft\.Billing/billingAccounts/([^/]+)", scope.arm, re.I)
    return (match.group(1), None) if match else (None, None)


def run_sync(
    cache: Cache,
    options: SyncOptions,
    policy: TagPolicy,
    progress: Callable[[SyncProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> SyncResult:
    """Pull the planned windows of every scope into `cache`; safe to run in a worker thread.

    `policy` (config.toml's [tags] and rules.toml, loaded by the caller) rebuilds the effective tags after.
    Each window is replaced in one transaction, so readers never see half a window and a cancelled or failed
    run leaves every finished window in place; the next run resumes with what is missing. Raises AzureError
    when signing in fails (nothing else can work then); other failures are per window, in the result.
    """
    return _Run(cache, options, policy, progress or (lambda _p: None), cancel or threading.Event()).run()
