"""Which month windows a sync pulls, ARM scope normalisation, and the `sync_state` bookkeeping."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import duckdb

from finops_tui import clock
from finops_tui.config import MAX_SYNC_MONTHS
from finops_tui.errors import UserError

METRICS = ("actual", "amortized")
AZURE_COST_TYPE = {"actual": "ActualCost", "amortized": "AmortizedCost"}
# The previous month still changes until its invoice closes: re-pull it until this many days after it ends.
CLOSE_GRACE_DAYS = 5

_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_SEGMENT = r"[^/]+"
SCOPE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("subscription", re.compile(rf"^/subscriptions/{_SEGMENT}$", re.I)),
    ("resource-group", re.compile(rf"^/subscriptions/{_SEGMENT}/resourceGroups/{_SEGMENT}$", re.I)),
    ("management-group", re.compile(rf"^/providers/Microsoft\.Management/managementGroups/{_SEGMENT}$", re.I)),
    ("billing-account", re.compile(rf"^/providers/Microsoft\.Billing/billingAccounts/{_SEGMENT}$", re.I)),
    (
        "billing-profile",
        re.compile(rf"^/providers/Microsoft\.Billing/billingAccounts/{_SEGMENT}/billingProfiles/{_SEGMENT}$", re.I),
    ),
    (
        "invoice-section",
        re.compile(
            rf"^/providers/Microsoft\.Billing/billingAccounts/{_SEGMENT}/billingProfiles/{_SEGMENT}"
            rf"/invoiceSections/{_SEGMENT}$",
            re.I,
        ),
    ),
    (
        "department",
        re.compile(rf"^/providers/Microsoft\.Billing/billingAccounts/{_SEGMENT}/departments/{_SEGMENT}$", re.I),
    ),
    (
        "enrollment-account",
        re.compile(rf"^/providers/Microsoft\.Billing/billingAccounts/{_SEGMENT}/enrollmentAccounts/{_SEGMENT}$", re.I),
    ),
    ("customer", re.compile(rf"^/providers/Microsoft\.Billing/billingAccounts/{_SEGMENT}/customers/{_SEGMENT}$", re.I)),
]


@dataclass(frozen=True)
class Scope:
    """An ARM scope as the user spelled it (sent to Azure) and its kind."""

    arm: str
    kind: str

    @property
    def key(self) -> str:
        """How the cache names the scope: lower-cased, like `sources.scope`."""
        return self.arm.lower()

    @property
    def supports_cost_details(self) -> bool:
        return self.kind != "management-group"

    @property
    def subscription_id(self) -> str | None:
        match = re.match(r"^/subscriptions/([^/]+)", self.arm, re.I)
        return match.group(1) if match else None


def parse_scope(text: str) -> Scope:
    """Normalise a scope: leading slash, no trailing slash; a bare subscription GUID is accepted."""
    raw = text.strip()
    if re.fullmatch(_GUID, raw):
        raw = f"/subscriptions/{raw}"
    # The SDK pastes the scope into the URL as-is: a trailing slash would give `//providers` (AZURE_API.md §1.2).
    arm = "/" + raw.strip("/")
    for kind, pattern in SCOPE_PATTERNS:
        if pattern.match(arm):
            return Scope(arm, kind)
    raise UserError(
        f"{text!r} is not a Cost Management scope; expected /subscriptions/ID, /subscriptions/ID/resourceGroups/NAME, "
        "/providers/Microsoft.Management/managementGroups/ID or "
        "/providers/Microsoft.Billing/billingAccounts/ID[/billingProfiles/ID]"
    )


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class MonthWindow:
    """One calendar month [start, end) of one scope and metric."""

    scope: Scope
    metric: str
    start: dt.date
    end: dt.date  # exclusive

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)

    def label(self) -> str:
        return f"{self.scope.arm} {self.metric} {self.start:%Y-%m}"


@dataclass(frozen=True)
class WindowState:
    status: str
    last_success: dt.datetime | None


def read_states(cur: duckdb.DuckDBPyConnection, scope: Scope, metric: str) -> dict[dt.date, WindowState]:
    rows = cur.execute(
        "SELECT window_start, status, last_success FROM sync_state WHERE scope = ? AND metric = ?",
        [scope.key, metric],
    ).fetchall()
    return {row[0]: WindowState(row[1], row[2]) for row in rows}


def needs_pull(window: MonthWindow, state: WindowState | None, today: dt.date) -> bool:
    """Open months and the previous month inside its grace period are always re-pulled; a closed month once
    more after it closed (a pull made while it was still open may have missed late charges), then never."""
    closes_on = window.end + dt.timedelta(days=CLOSE_GRACE_DAYS)
    if today < closes_on:
        return True
    if state is None or state.status != "done" or state.last_success is None:
        return True
    return state.last_success.date() < closes_on


def plan_windows(
    cur: duckdb.DuckDBPyConnection, scope: Scope, metrics: tuple[str, ...], months: int, today: dt.date | None = None
) -> tuple[list[MonthWindow], int]:
    """The windows to pull, newest month first (users want this month soonest), and how many were skipped."""
    if not 1 <= months <= MAX_SYNC_MONTHS:
        raise UserError(f"--months {months}: expected 1 to {MAX_SYNC_MONTHS}")
    today = today or clock.today()
    current = month_start(today)
    planned: list[MonthWindow] = []
    skipped = 0
    states = {metric: read_states(cur, scope, metric) for metric in metrics}
    for back in range(months):
        start = add_months(current, -back)
        for metric in metrics:
            window = MonthWindow(scope, metric, start, add_months(start, 1))
            if needs_pull(window, states[metric].get(start), today):
                planned.append(window)
            else:
                skipped += 1
    return planned, skipped


def record_done(
    cur: duckdb.DuckDBPyConnection, window: MonthWindow, rows: int, api_path: str, throttled_seconds: float
) -> None:
    """Inside the window's transaction: the window is complete."""
    cur.execute(
        """
        INSERT INTO sync_state (scope, metric, window_start, window_end, status, rows, api_path, last_success,
                                last_error, throttled_seconds)
        VALUES (?, ?, ?, ?, 'done', ?, ?, ?, NULL, ?)
        ON CONFLICT (scope, metric, window_start) DO UPDATE SET
            window_end = excluded.window_end, status = 'done', rows = excluded.rows, api_path = excluded.api_path,
            last_success = excluded.last_success, last_error = NULL, throttled_seconds = excluded.throttled_seconds
        """,
        [window.scope.key, window.metric, window.start, window.end, rows, api_path, clock.now(), throttled_seconds],
    )


def record_failed(
    cur: duckdb.DuckDBPyConnection, window: MonthWindow, error: str, api_path: str | None, throttled_seconds: float
) -> None:
    """After the window's transaction rolled back: keep the previous success (its rows are still there)."""
    cur.execute(
        """
        INSERT INTO sync_state (scope, metric, window_start, window_end, status, rows, api_path, last_success,
                                last_error, throttled_seconds)
        VALUES (?, ?, ?, ?, 'failed', NULL, ?, NULL, ?, ?)
        ON CONFLICT (scope, metric, window_start) DO UPDATE SET
            status = 'failed', last_error = excluded.last_error,
            api_path = coalesce(excluded.api_path, sync_state.api_path),
            throttled_seconds = excluded.throttled_seconds
        """,
        [window.scope.key, window.metric, window.start, window.end, api_path, error, throttled_seconds],
    )


def last_api_path(cur: duckdb.DuckDBPyConnection, scope: Scope) -> str | None:
    """The path the last successful window of this scope used (auto mode sticks to what worked)."""
    row = cur.execute(
        "SELECT api_path FROM sync_state WHERE scope = ? AND status = 'done' ORDER BY last_success DESC LIMIT 1",
        [scope.key],
    ).fetchone()
    return str(row[0]) if row and row[0] else None
