"""Cost Details path: generate a month's report (LRO), download its CSV blobs, load EA or MCA line items."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from finops_tui.azure import check_url_allowed
from finops_tui.sync.clients import SyncMonitor
from finops_tui.sync.focus_map import insert_charges, stage_select
from finops_tui.sync.windows import AZURE_COST_TYPE, MonthWindow

# A 4xx from generateCostDetailsReport means "not for this agreement/scope" (PAYG, MSDN, management groups):
# auto mode then falls back to the Query API. 401 and 429 are handled elsewhere and never land here.
UNSUPPORTED_STATUSES = frozenset({400, 403, 404, 405, 409, 422, 501})
DOWNLOAD_RETRIES = 4
DOWNLOAD_CHUNK = 1 << 20

# Logical field → header names (lower-cased) in preference order. EA headers are PascalCase, MCA camelCase;
# the real files differ in case between exports, so every lookup is case-insensitive.
CSV_FIELDS: dict[str, tuple[str, ...]] = {
    "date": ("date", "usagedate", "usagedatetime"),
    "cost": ("costinbillingcurrency", "cost", "pretaxcost"),
    "currency": ("billingcurrency", "billingcurrencycode", "currency"),
    "resource_id": ("resourceid", "instanceid"),
    "resource_name": ("resourcename",),
    "resource_group": ("resourcegroup", "resourcegroupname"),
    "subscription_id": ("subscriptionid", "subscriptionguid"),
    "subscription_name": ("subscriptionname",),
    "consumed_service": ("consumedservice",),
    "meter_category": ("metercategory",),
    "meter_name": ("metername",),
    "meter_id": ("meterid",),
    "location": ("resourcelocation", "location"),
    "availability_zone": ("availabilityzone",),
    "charge_type": ("chargetype",),
    "pricing_model": ("pricingmodel",),
    "frequency": ("frequency",),
    "benefit_id": ("benefitid", "reservationid"),
    "benefit_name": ("benefitname", "reservationname"),
    "tags": ("tags",),
    "quantity": ("quantity",),
    "unit": ("unitofmeasure",),
    "product": ("product", "productname"),
    "publisher_name": ("publishername",),
    "billing_account_id": ("billingaccountid",),
    "billing_account_name": ("billingaccountname",),
    "billing_period_start": ("billingperiodstartdate",),
    "billing_period_end": ("billingperiodenddate",),
    "payg_cost": ("paygcostinbillingcurrency",),  # MCA: the line at pay-as-you-go prices
    "payg_price": ("paygprice",),  # EA: pay-as-you-go unit price
    "unit_price": ("unitprice",),  # the negotiated unit price
}


class CostDetailsUnsupported(Exception):
    """The scope or agreement has no Cost Details reports; use the Query API."""


class ReportFailed(Exception):
    """The report finished with status Failed, or its blobs could not be downloaded."""


@dataclass
class FetchedReport:
    files: list[Path]
    status: str
    flavour: str | None = None  # "ea" | "mca", known once loaded


def _wait_for(poller: Any, monitor: SyncMonitor, on_state: Callable[[str], None]) -> Any:
    on_state("generating the cost details report")
    while not poller.done():
        monitor.check_cancel()
        poller.wait(0.2)
    return poller.result()


def fetch_report(
    client: Any,
    window: MonthWindow,
    last_day: dt.date,
    dest: Path,
    *,
    monitor: SyncMonitor,
    polling_interval: float,
    on_state: Callable[[str], None],
    download: Callable[[str, Path, SyncMonitor], int] | None = None,
) -> FetchedReport:
    """Generate the report for [window.start, last_day] and download every blob of its manifest."""
    body = {
        "metric": AZURE_COST_TYPE[window.metric],
        "timePeriod": {"start": window.start.isoformat(), "end": last_day.isoformat()},
    }
    try:
        poller = client.generate_cost_details_report.begin_create_operation(
            window.scope.arm, body, polling_interval=polling_interval
        )
    except ClientAuthenticationError:
        raise
    except HttpResponseError as exc:
        if exc.status_code in UNSUPPORTED_STATUSES:
            raise CostDetailsUnsupported(str(exc.message or exc).splitlines()[0]) from None
        raise
    result = _wait_for(poller, monitor, on_state)
    status = str(getattr(result.status, "value", result.status) or "")  # a str enum: str() would give its name
    if status == "NoDataFound":
        return FetchedReport([], status)
    if status != "Completed":
        error = getattr(result, "error", None)
        detail = f"{getattr(error, 'code', '')} {getattr(error, 'message', '')}".strip() if error else ""
        raise ReportFailed(f"{window.label()}: the cost details report ended as {status or 'unknown'} {detail}".strip())
    manifest = result.manifest
    blobs = list(getattr(manifest, "blobs", None) or [])
    compressed = bool(getattr(manifest, "compress_data", False))
    files = []
    for number, blob in enumerate(blobs):
        link = getattr(blob, "blob_link", None)
        if not link:
            raise ReportFailed(f"{window.label()}: the report manifest lists a blob without a link")
        check_url_allowed(link)
        target = dest / f"part_{number:04d}.csv{'.gz' if compressed else ''}"
        on_state(f"downloading report part {number + 1} of {len(blobs)}")
        (download or download_blob)(link, target, monitor)
        files.append(target)
    return FetchedReport(files, status)


class _TransientDownloadError(Exception):
    pass


def download_blob(url: str, target: Path, monitor: SyncMonitor) -> int:
    """Plain GET of a SAS link (no bearer token: the signature is the credential), retrying 5xx and resets."""
    import requests  # about 40 ms on top of azure-core: only the Cost Details path downloads blobs

    attempt = 0
    while True:
        monitor.check_cancel()
        try:
            with requests.get(url, stream=True, timeout=(10, 300)) as response:
                if response.status_code >= 500 or response.status_code == 429:
                    raise _TransientDownloadError(f"HTTP {response.status_code}")
                if response.status_code >= 400:
                    raise ReportFailed(
                        f"downloading the report failed: HTTP {response.status_code} (the link may have expired)"
                    )
                size = 0
                with target.open("wb") as out:
                    for chunk in response.iter_content(DOWNLOAD_CHUNK):
                        out.write(chunk)
                        size += len(chunk)
                return size
        except (requests.ConnectionError, requests.Timeout, _TransientDownloadError) as exc:
            attempt += 1
            reason = str(exc) if isinstance(exc, _TransientDownloadError) else type(exc).__name__
            if attempt > DOWNLOAD_RETRIES:
                raise ReportFailed(f"downloading the report failed: {reason}") from None
            monitor.wait(min(2.0**attempt, 60.0), f"report download failed ({reason})", throttled=False)


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _csv_source(files: list[Path]) -> str:
    return (
        f"read_csv({_sql_list(files)}, header = true, all_varchar = true, union_by_name = true, "
        "delim = ',', quote = '\"', escape = '\"')"
    )


def _date(expr: str) -> str:
    # Real files use MM/DD/YYYY; some newer ones ISO dates. A value that is neither fails the window loudly
    # rather than dropping its cost silently.
    return f"CASE WHEN {expr} LIKE '%/%' THEN strptime({expr}, '%m/%d/%Y') ELSE CAST(left({expr}, 10) AS DATE) END"


def _tags(expr: str) -> str:
    # The CSV `Tags` is JSON without its outer braces ("env": "prod","org": "trey"); some exports keep them.
    return (
        f"CASE WHEN coalesce(trim({expr}), '') = '' THEN NULL "
        f"WHEN trim({expr}) LIKE '{{%' THEN try(from_json(trim({expr}), '\"MAP(VARCHAR, VARCHAR)\"')) "
        f"ELSE try(from_json('{{' || trim({expr}) || '}}', '\"MAP(VARCHAR, VARCHAR)\"')) END"
    )


def load_report(
    cur: duckdb.DuckDBPyConnection,
    window: MonthWindow,
    report: FetchedReport,
    source_id: int,
    billing_account: tuple[str | None, str | None],
) -> None:
    """Inside the window's transaction: map the CSV line items (EA or MCA flavour) to FOCUS and insert them."""
    if not report.files:
        return
    source = _csv_source(report.files)
    try:
        described = cur.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    except duckdb.Error as exc:
        raise ReportFailed(f"{window.label()}: unreadable report CSV ({str(exc).splitlines()[0]})") from None
    headers = {str(row[0]).strip().lstrip("\ufeff").lower(): str(row[0]) for row in described}

    def column(field: str) -> str | None:
        for name in CSV_FIELDS[field]:
            if name in headers:
                return '"' + headers[name].replace('"', '""') + '"'
        return None

    date, cost = column("date"), column("cost")
    if not date or not cost:
        raise ReportFailed(f"{window.label()}: the report CSV has no date or cost column")
    report.flavour = "mca" if "costinbillingcurrency" in headers else "ea"
    if report.flavour == "mca" and "billingprofileid" in headers:
        # Microsoft's FOCUS mapping: an MCA invoice belongs to the billing profile, so that is the account.
        headers["billingaccountid"] = headers["billingprofileid"]
        if "billingprofilename" in headers:
            headers["billingaccountname"] = headers["billingprofilename"]
    expressions: dict[str, str] = {"usage_date": _date(date), "cost": f"nullif(trim({cost}), '')"}
    for field in CSV_FIELDS:
        if field in ("date", "cost", "tags", "quantity", "billing_period_start", "billing_period_end",
                     "payg_cost", "payg_price", "unit_price"):
            continue
        expr = column(field)
        if expr:
            expressions[field] = expr
    # Both benefitId and reservationId exist in EA files; take whichever this row fills.
    for field, names in (
        ("benefit_id", ("benefitid", "reservationid")),
        ("benefit_name", ("benefitname", "reservationname")),
    ):
        present = ['"' + headers[n] + '"' for n in names if n in headers]
        if len(present) > 1:
            expressions[field] = "coalesce(" + ", ".join(f"nullif({p}, '')" for p in present) + ")"
    if tags := column("tags"):
        expressions["tags"] = _tags(tags)
    if quantity := column("quantity"):
        expressions["quantity"] = f"try_cast({quantity} AS DOUBLE)"
    # ListCost / ContractedCost as the legacy import maps them (products in double precision, as Microsoft's own
    # FOCUS conversion computes them): what commitments' savings are measured against.
    quantity_sql = f"try_cast({quantity} AS DOUBLE)" if quantity else None
    if payg_cost := column("payg_cost"):
        expressions["list_cost"] = f"try_cast(nullif(trim({payg_cost}), '') AS DECIMAL(38,12))"
    elif (payg_price := column("payg_price")) and quantity_sql:
        expressions["list_cost"] = f"try_cast(try_cast({payg_price} AS DOUBLE) * {quantity_sql} AS DECIMAL(38,12))"
    if (unit_price := column("unit_price")) and quantity_sql:
        expressions["contracted_cost"] = (
            f"try_cast(try_cast({unit_price} AS DOUBLE) * {quantity_sql} AS DECIMAL(38,12))"
        )
    if period_start := column("billing_period_start"):
        expressions["billing_period_start"] = (
            f"CASE WHEN coalesce({period_start}, '') <> '' THEN {_date(period_start)} END"
        )
    if period_end := column("billing_period_end"):
        # The CSV's end date is inclusive; FOCUS's BillingPeriodEnd is exclusive.
        expressions["billing_period_end"] = (
            f"CASE WHEN coalesce({period_end}, '') <> '' THEN {_date(period_end)} + INTERVAL 1 DAY END"
        )
    try:
        insert_charges(
            cur,
            stage_select(expressions, source),
            metric=window.metric,
            source_id=source_id,
            start=window.start,
            end=window.end,
            billing_account=billing_account,
        )
    except (duckdb.InvalidInputException, duckdb.ConversionException) as exc:
        raise ReportFailed(f"{window.label()}: unreadable report CSV ({str(exc).splitlines()[0]})") from None
