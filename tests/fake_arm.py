"""A fake Azure Resource Manager on 127.0.0.1 for the sync tests: Cost Management query, cost details, budgets…

Deterministic synthetic cost facts per scope, with exact totals (integer micro-units) to check the cache
against. See AZURE_API.md §2.3 and §7 for what it reproduces. Stdlib only.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

# The dimension list from the live API's 400 message (azure-rest-api-specs#32810) plus the benefit dimensions.
VALID_DIMENSIONS = [
    "ResourceGroup",
    "ResourceGroupName",
    "ResourceLocation",
    "ConsumedService",
    "ResourceType",
    "ResourceId",
    "MeterId",
    "BillingMonth",
    "MeterCategory",
    "MeterSubcategory",
    "Meter",
    "AccountName",
    "DepartmentName",
    "SubscriptionId",
    "SubscriptionName",
    "ServiceName",
    "ServiceTier",
    "EnrollmentAccountName",
    "BillingAccountId",
    "ResourceGuid",
    "BillingPeriod",
    "InvoiceNumber",
    "ChargeType",
    "PublisherType",
    "ReservationId",
    "ReservationName",
    "Frequency",
    "PartNumber",
    "CostAllocationRuleName",
    "MarkupRuleName",
    "PricingModel",
    "BenefitId",
    "BenefitName",
]
COST_MGMT = "/providers/microsoft.costmanagement/"
MANAGEMENT_GROUPS = "/providers/microsoft.management/managementgroups/"
QPU_REMAINING = "x-ms-ratelimit-microsoft.costmanagement-qpu-remaining"
THROTTLE_HEADERS = {
    "x-ms-ratelimit-microsoft.costmanagement-clienttype-retry-after": "2",
    "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after": "1",
    "x-ms-ratelimit-remaining-microsoft.costmanagement-clienttype-requests": "DefaultQuota:0",
    "x-ms-ratelimit-microsoft.costmanagement-qpu-consumed": "0",
}


def _header(line: str) -> list[str]:
    """A header line of a real Cost Details CSV, kept verbatim (AZURE_API.md §4.1)."""
    return line.split(",")


EA_HEADER = _header(
    "BillingAccountId,BillingAccountName,BillingPeriodStartDate,BillingPeriodEndDate,BillingProfileId,"
    "BillingProfileName,AccountOwnerId,AccountName,SubscriptionId,SubscriptionName,Date,Product,PartNumber,"
    "MeterId,ServiceFamily,MeterCategory,MeterSubCategory,MeterRegion,MeterName,Quantity,EffectivePrice,Cost,"
    "UnitPrice,BillingCurrency,ResourceLocation,AvailabilityZone,ConsumedService,ResourceId,ResourceName,"
    "ServiceInfo1,ServiceInfo2,AdditionalInfo,Tags,InvoiceSectionId,InvoiceSection,CostCenter,UnitOfMeasure,"
    "ResourceGroup,ReservationId,ReservationName,ProductOrderId,ProductOrderName,OfferId,"
    "IsAzureCreditEligible,Term,PublisherName,PlanName,ChargeType,Frequency,PublisherType,PayGPrice,"
    "PricingModel,CostAllocationRuleName,benefitId,benefitName"
)
MCA_HEADER = _header(
    "invoiceId,previousInvoiceId,billingAccountId,billingAccountName,billingProfileId,billingProfileName,"
    "invoiceSectionId,invoiceSectionName,resellerName,resellerMpnId,costCenter,billingPeriodEndDate,"
    "billingPeriodStartDate,servicePeriodEndDate,servicePeriodStartDate,date,serviceFamily,productOrderId,"
    "productOrderName,consumedService,meterId,meterName,meterCategory,meterSubCategory,meterRegion,ProductId,"
    "ProductName,SubscriptionId,subscriptionName,publisherType,publisherId,publisherName,resourceGroupName,"
    "ResourceId,resourceLocation,location,effectivePrice,quantity,unitOfMeasure,chargeType,billingCurrency,"
    "pricingCurrency,costInBillingCurrency,costInPricingCurrency,costInUsd,paygCostInBillingCurrency,"
    "paygCostInUsd,exchangeRatePricingToBilling,exchangeRateDate,isAzureCreditEligible,serviceInfo1,"
    "serviceInfo2,additionalInfo,tags,PayGPrice,frequency,term,reservationId,reservationName,pricingModel,"
    "unitPrice,costAllocationRuleName,benefitId,benefitName,provider"
)

# (ARM type, MeterCategory, Meter, legacy ServiceName, ConsumedService) by resource kind
KINDS = [
    ("Microsoft.Compute/virtualMachines", "Virtual Machines", "D2s v3", "Virtual Machines", "Microsoft.Compute"),
    ("Microsoft.Storage/storageAccounts", "Storage", "Hot LRS Data Stored", "Storage", "Microsoft.Storage"),
    ("Microsoft.Sql/servers/databases", "SQL Database", "vCore", "SQL Database", "Microsoft.Sql"),
    ("Microsoft.Web/sites", "Azure App Service", "P1 v3 App", "Azure App Service", "Microsoft.Web"),
    ("Microsoft.KeyVault/vaults", "Key Vault", "Operations", "Key Vault", "Microsoft.KeyVault"),
]
LOCATIONS = ["eastus", "westeurope", "EU West", "uksouth"]  # "EU West" exercises Regions.csv's raw spellings
TEAMS = ["platform", "data", "web", "ml", "security"]


def micros_text(micros: int) -> str:
    """Exact decimal text of an amount in micro-units (what a JSON number or CSV field carries)."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), 1_000_000)
    return f"{sign}{whole}.{frac:06d}"


@dataclass(frozen=True)
class Resource:
    index: int
    resource_id: str
    name: str
    group: str
    subscription_id: str
    subscription_name: str
    arm_type: str
    meter_category: str
    meter: str
    service_name: str
    consumed_service: str
    location: str
    tags: dict[str, str]
    reserved: bool


@dataclass(frozen=True)
class Fact:
    """One line item: a day, its dimensions (Query API names), tags and cost in micro-units."""

    day: dt.date
    dims: dict[str, str]
    tags: dict[str, str]
    micros: int
    resource: Resource | None
    quantity: str = "1"


class Estate:
    """The synthetic cost of one scope: `n_resources` resources, daily facts for every day before `today`."""

    def __init__(
        self,
        scope: str,
        n_resources: int,
        *,
        subscriptions: list[tuple[str, str]] | None = None,
        currency: str = "USD",
        cost_details: str | None = "ea",
    ) -> None:
        self.scope = scope
        self.currency = currency
        self.cost_details = cost_details  # "ea" | "mca" | None (no cost details reports for this agreement)
        sub_id = scope.split("/")[2] if scope.lower().startswith("/subscriptions/") else None
        self.subscriptions = subscriptions or [(sub_id or "00000000-0000-0000-0000-0000000000aa", "Sub A")]
        self.reservation_id = (
            "/providers/Microsoft.Capacity/reservationOrders/11111111-2222-3333-4444-555555555555"
            "/reservations/66666666-7777-8888-9999-000000000000"
        )
        self.resources = [self._resource(i) for i in range(n_resources)]

    def _resource(self, i: int) -> Resource:
        arm_type, category, meter, service, consumed = KINDS[i % len(KINDS)]
        sub_id, sub_name = self.subscriptions[i % len(self.subscriptions)]
        group = f"rg-{['web', 'data', 'ml', 'shared'][i % 4]}-{i % 3}"
        name = f"res{i:06d}"
        if arm_type == "Microsoft.Sql/servers/databases":
            tail = f"Microsoft.Sql/servers/sql{i % 3}/databases/{name}"
        else:
            tail = f"{arm_type}/{name}"
        tags: dict[str, str] = {}
        if i % 6 != 0:  # every sixth resource is untagged
            tags["Team" if i % 11 == 0 else "team"] = TEAMS[i % len(TEAMS)]
            tags["env"] = "prod" if i % 2 else "dev"
            if i % 4 == 1:
                tags["costcenter"] = f"cc-{100 + i % 7}"
        return Resource(
            index=i,
            resource_id=f"/subscriptions/{sub_id}/resourceGroups/{group}/providers/{tail}",
            name=name,
            group=group,
            subscription_id=sub_id,
            subscription_name=sub_name,
            arm_type=arm_type,
            meter_category=category,
            meter=meter,
            service_name=service,
            consumed_service=consumed,
            location=LOCATIONS[i % len(LOCATIONS)],
            tags=tags,
            reserved=i % 10 == 5,  # VMs (kind 0) under a reservation
        )

    # cost model -------------------------------------------------------------------------------------------
    @staticmethod
    def usage_micros(index: int, day: dt.date) -> int:
        return 10_000 + (index * 7919 + day.toordinal() * 104_729) % 4_990_000

    def _dims(self, r: Resource, charge_type: str, pricing: str, benefit: str) -> dict[str, str]:
        return {
            "ResourceId": r.resource_id,
            "ResourceGroupName": r.group,
            "ResourceGroup": r.group,
            "SubscriptionId": r.subscription_id,
            "SubscriptionName": r.subscription_name,
            "ServiceName": r.service_name,
            "MeterCategory": r.meter_category,
            "Meter": r.meter,
            "ResourceLocation": r.location,
            "ResourceType": r.arm_type.lower(),
            "ConsumedService": r.consumed_service,
            "ChargeType": charge_type,
            "PricingModel": pricing,
            "BenefitId": benefit,
            "BenefitName": "vm-ri-3y" if benefit else "",
            "ReservationId": benefit,
            "ReservationName": "vm-ri-3y" if benefit else "",
            "Frequency": "UsageBased",
        }

    def _extra_dims(self, charge_type: str, frequency: str) -> dict[str, str]:
        sub_id, sub_name = self.subscriptions[0]
        return {
            "ResourceId": "",
            "ResourceGroupName": "",
            "ResourceGroup": "",
            "SubscriptionId": sub_id,
            "SubscriptionName": sub_name,
            "ServiceName": "Virtual Machines",
            "MeterCategory": "Virtual Machines",
            "Meter": "Reservation-Base VM",
            "ResourceLocation": "",
            "ResourceType": "",
            "ConsumedService": "",
            "ChargeType": charge_type,
            "PricingModel": "Reservation",
            "BenefitId": self.reservation_id,
            "BenefitName": "vm-ri-3y",
            "ReservationId": self.reservation_id,
            "ReservationName": "vm-ri-3y",
            "Frequency": frequency,
        }

    def resource_fact(self, metric: str, r: Resource, day: dt.date) -> Fact:
        usage = self.usage_micros(r.index, day)
        if r.reserved:
            micros = 0 if metric == "actual" else usage * 6 // 10
            dims = self._dims(r, "Usage", "Reservation", self.reservation_id)
        else:
            micros = usage
            dims = self._dims(r, "Usage", "OnDemand", "")
        return Fact(day, dims, r.tags, micros, r, quantity="24")

    def extra_facts(self, metric: str, day: dt.date) -> list[Fact]:
        """Rows without a resource: the reservation purchase (actual, 1st) or its unused hours (amortized)."""
        if metric == "actual":
            if day.day != 1:
                return []
            return [Fact(day, self._extra_dims("Purchase", "Recurring"), {}, 1_234_567_800, None)]
        return [Fact(day, self._extra_dims("UnusedReservation", "UsageBased"), {}, 412_300, None)]

    def facts_per_day(self, metric: str, day: dt.date) -> int:
        return len(self.resources) + len(self.extra_facts(metric, day))

    def facts(self, metric: str, days: list[dt.date]) -> Iterator[Fact]:
        for day in days:
            for r in self.resources:
                yield self.resource_fact(metric, r, day)
            yield from self.extra_facts(metric, day)

    def total_micros(self, metric: str, days: list[dt.date]) -> int:
        """The exact total of `facts(metric, days)`, without building every fact (benchmarks sum millions)."""
        total = 0
        for day in days:
            for r in self.resources:
                usage = self.usage_micros(r.index, day)
                total += usage if not r.reserved else (0 if metric == "actual" else usage * 6 // 10)
            total += sum(f.micros for f in self.extra_facts(metric, day))
        return total


def _month_days(start: dt.date, today: dt.date) -> list[dt.date]:
    end = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return [start + dt.timedelta(days=i) for i in range((min(end, today) - start).days)]


def _days_between(first: dt.date, last: dt.date, today: dt.date) -> list[dt.date]:
    last = min(last, today - dt.timedelta(days=1))  # data lags: nothing for today yet
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass
class ScriptedResponse:
    """Answer the next `times` requests matching `match(method, path)` with this instead."""

    match: Callable[[str, str], bool]
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | str | dict[str, Any] | None = None
    times: int = 1


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    body: Any


class RowSource:
    """The rows of one query result, rendered as JSON array texts on demand (pages need not be materialised)."""

    def __init__(self, count: int, render: Callable[[int, int], list[str]]) -> None:
        self.count = count
        self.render = render


def is_query(method: str, path: str) -> bool:
    return method == "POST" and path.lower().endswith("/providers/microsoft.costmanagement/query")


class FakeArm:
    """ThreadingHTTPServer on 127.0.0.1:0 answering the ARM calls the sync makes. Use as a context manager."""

    def __init__(self, *, today: dt.date, page_size: int = 5000) -> None:
        self.today = today
        self.page_size = page_size
        self.max_groupings = 15
        self.invalid_dimensions: set[str] = set()
        self.lro_polls = 1
        # A falsy Retry-After ("0") makes azure-core fall back to polling_interval (30 s in production), so
        # the CLI tests would wait; a tiny truthy value keeps the LRO fast whatever the client's interval.
        self.lro_retry_after = "0.01"
        self.blob_parts = 1
        self.qpu_remaining = "QueriesPerHour:597,QueriesPerMin:57,QueriesPer10Sec:9"
        self.estates: dict[str, Estate] = {}
        self.script: list[ScriptedResponse] = []
        self.requests: list[Request] = []
        self.accepted_tokens: set[str] | None = None
        self.budgets_status = 200
        self.extra_subscriptions: list[tuple[str, str]] = []
        # management group id -> its direct children: ("group", id) or ("subscription", subscription id)
        self.management_groups: dict[str, list[tuple[str, str]]] = {}
        self.server_seconds = 0.0  # time spent building answers (excluded from client-side benchmarks)
        self.server_cpu_seconds = 0.0  # the CPU time of that (benchmarks share the machine with the fake)
        self.record_requests = True
        self._operations: dict[str, dict[str, Any]] = {}
        self._sources: OrderedDict[str, RowSource] = OrderedDict()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # setup --------------------------------------------------------------------------------------------------
    def add_scope(self, scope: str, n_resources: int, **kwargs: Any) -> Estate:
        estate = Estate(scope, n_resources, **kwargs)
        self.estates[scope.lower()] = estate
        return estate

    def throttle(self, times: int, match: Callable[[str, str], bool] = is_query, **headers: str) -> None:
        """Queue `times` 429s with Cost Management headers and no standard Retry-After."""
        self.script.append(
            ScriptedResponse(
                match,
                429,
                {**THROTTLE_HEADERS, **headers},
                {"error": {"code": "429", "message": "Too many requests. Please retry."}},
                times,
            )
        )

    def fail(self, times: int, status: int = 500, match: Callable[[str, str], bool] = is_query) -> None:
        self.script.append(
            ScriptedResponse(match, status, {}, {"error": {"code": "InternalServerError", "message": "boom"}}, times)
        )

    def answer(self, match: Callable[[str, str], bool], status: int, body: bytes | str | dict[str, Any]) -> None:
        """Answer the next matching request with this body (e.g. a malformed 200)."""
        self.script.append(ScriptedResponse(match, status, {}, body, 1))

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeArm:
        fake = self

        class Handler(_Handler):
            arm = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # ground truth for the tests -------------------------------------------------------------------------------
    def days(self, month: dt.date) -> list[dt.date]:
        return _month_days(month, self.today)

    def total(self, scope: str, metric: str, month: dt.date) -> Decimal:
        micros = self.estates[scope.lower()].total_micros(metric, self.days(month))
        return Decimal(micros_text(micros))

    def rows(self, scope: str, metric: str, month: dt.date) -> int:
        estate = self.estates[scope.lower()]
        return sum(estate.facts_per_day(metric, d) for d in self.days(month))

    def requests_to(self, suffix: str, method: str | None = None) -> list[Request]:
        return [
            r
            for r in self.requests
            if r.path.lower().endswith(suffix.lower()) and (method is None or r.method == method)
        ]

    # request handling ---------------------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(raw_path)
        path = parts.path
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        auth = headers.get("Authorization")
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        if self.record_requests:
            with self._lock:
                self.requests.append(Request(method, path, query, auth, parsed))
        if path.startswith("/blobs/"):  # a SAS link: the signature in the URL is the credential
            return self._scripted(method, path) or self._blob(path, query)
        if not auth or not auth.startswith("Bearer "):
            return _error(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        if self.accepted_tokens is not None and auth[len("Bearer ") :] not in self.accepted_tokens:
            return _error(401, "InvalidAuthenticationToken", "The access token is invalid.")
        if "api-version" not in query:
            return _error(
                400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required."
            )
        scripted = self._scripted(method, path)
        if scripted:
            return scripted
        lowered = path.lower()
        if lowered == "/subscriptions" and method == "GET":
            return self._subscriptions(query)
        if lowered.startswith(MANAGEMENT_GROUPS) and lowered.endswith("/descendants") and method == "GET":
            return self._descendants(path[len(MANAGEMENT_GROUPS):-len("/descendants")], query)
        if COST_MGMT not in lowered:
            return _error(404, "NotFound", f"no fake route for {method} {path}")
        scope, _, operation = path.partition("/providers/Microsoft.CostManagement/")
        if not operation:
            scope, _, operation = lowered.partition(COST_MGMT)
        estate = self.estates.get(scope.lower())
        op = operation.lower()
        if op.startswith("costdetailsoperationresults/") and method == "GET":
            return self._operation_result(operation.split("/", 1)[1], query)
        if estate is None:
            return _error(404, "ResourceNotFound", f"The scope '{scope}' could not be found.")
        if op == "query" and method == "POST":
            return self._query(estate, parsed, query)
        if op == "generatecostdetailsreport" and method == "POST":
            return self._generate_report(estate, parsed, query)
        if op == "budgets" and method == "GET":
            return self._budgets(estate)
        if op == "benefitrecommendations" and method == "GET":
            return self._benefit_recommendations(estate, query)
        return _error(404, "NotFound", f"no fake route for {method} {path}")

    def _scripted(self, method: str, path: str) -> tuple[int, dict[str, str], bytes] | None:
        with self._lock:
            for entry in self.script:
                if entry.times > 0 and entry.match(method, path):
                    entry.times -= 1
                    if isinstance(entry.body, bytes):
                        payload = entry.body
                    elif isinstance(entry.body, str):
                        payload = entry.body.encode()
                    else:
                        payload = json.dumps(entry.body or {}).encode()
                    return entry.status, {"Content-Type": "application/json", **entry.headers}, payload
        return None

    def _subscriptions(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        subs: dict[str, str] = {}
        for estate in self.estates.values():
            for sub_id, name in estate.subscriptions:
                subs[sub_id] = name
        for sub_id, name in self.extra_subscriptions:
            subs[sub_id] = name
        items = sorted(subs.items())
        start = int(query.get("$skiptoken", "0"))
        page = items[start : start + 2]  # small pages: the client must follow nextLink
        body: dict[str, Any] = {
            "value": [
                {
                    "id": f"/subscriptions/{s}",
                    "subscriptionId": s,
                    "displayName": n,
                    "state": "Enabled",
                    "tenantId": "11111111-1111-1111-1111-111111111111",
                }
                for s, n in page
            ]
        }
        if start + 2 < len(items):
            body["nextLink"] = f"{self.base_url}/subscriptions?api-version=2022-12-01&$skiptoken={start + 2}"
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def _descendants(self, group: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """GET .../managementGroups/{id}/descendants: every group and subscription below it, two a page."""
        if group not in self.management_groups:
            return _error(404, "NotFound", f"'{group}' not found")
        found: list[dict[str, Any]] = []
        pending = [group]
        while pending:
            parent = pending.pop(0)
            for kind, child in self.management_groups.get(parent, []):
                parent_ref = {"id": f"/providers/Microsoft.Management/managementGroups/{parent}"}
                if kind == "group":
                    pending.append(child)
                    found.append({"id": f"/providers/Microsoft.Management/managementGroups/{child}",
                                  "type": "Microsoft.Management/managementGroups", "name": child,
                                  "properties": {"displayName": child.title(), "parent": parent_ref}})
                else:
                    found.append({"id": f"/subscriptions/{child}", "type": "/subscriptions", "name": child,
                                  "properties": {"displayName": f"sub {child[-4:]}", "parent": parent_ref}})
        start = int(query.get("$skiptoken", "0"))
        body: dict[str, Any] = {"value": found[start:start + 2]}
        if start + 2 < len(found):
            body["nextLink"] = (f"{self.base_url}/providers/Microsoft.Management/managementGroups/{group}/descendants"
                                f"?api-version=2020-05-01&$skiptoken={start + 2}")
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    # query ------------------------------------------------------------------------------------------------------
    def _query(self, estate: Estate, body: Any, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            if not isinstance(body, dict):
                return _error(400, "BadRequest", "Invalid query definition: the body is not JSON.")
            metric = {"ActualCost": "actual", "AmortizedCost": "amortized", "Usage": "actual"}.get(body.get("type", ""))
            if metric is None:
                return _error(400, "BadRequest", f"Invalid query definition: invalid type '{body.get('type')}'.")
            period = body.get("timePeriod") or {}
            first = dt.date.fromisoformat(str(period.get("from", ""))[:10])
            last = dt.date.fromisoformat(str(period.get("to", ""))[:10])
            if (last - first).days > 366:
                return _error(400, "BadRequest", "The time period for pulling the data cannot exceed 1 year(s).")
            dataset = body.get("dataset") or {}
            grouping = dataset.get("grouping") or []
            if len(grouping) > self.max_groupings:
                return _error(
                    400,
                    "BadRequest",
                    f"Invalid query definition: the number of groupings cannot exceed {self.max_groupings}.",
                )
            valid = [d for d in VALID_DIMENSIONS if d not in self.invalid_dimensions]
            if estate.scope.lower().startswith("/subscriptions/"):
                valid = [d for d in valid if d != "ConsumedService"]  # azure-rest-api-specs#36332
            canonical = {d.lower(): d for d in valid}
            for group in grouping:
                if group.get("type") == "Dimension" and str(group.get("name", "")).lower() not in canonical:
                    listed = ",".join(f"'{d}'" for d in valid)
                    return _error(
                        400,
                        "BadRequest",
                        f"Invalid query definition: Invalid dataset grouping: '{group.get('name')}'; "
                        f"valid values: {listed}.",
                    )
            aggregation = next(iter((dataset.get("aggregation") or {"totalCost": {"name": "Cost"}}).values()))
            key = json.dumps([estate.scope, body], sort_keys=True)
            with self._lock:
                source = self._sources.get(key)
            if source is None:
                source = self._build_source(estate, metric, first, last, dataset, grouping, canonical)
                with self._lock:
                    self._sources[key] = source
                    while len(self._sources) > 8:
                        self._sources.popitem(last=False)
            columns = [{"name": aggregation.get("name", "Cost"), "type": "Number"}]
            if dataset.get("granularity") == "Daily":
                columns.append({"name": "UsageDate", "type": "Number"})
            for group in grouping:
                if group.get("type") == "TagKey":
                    columns += [{"name": "TagKey", "type": "String"}, {"name": "TagValue", "type": "String"}]
                else:
                    columns.append({"name": canonical[str(group["name"]).lower()], "type": "String"})
            columns.append({"name": "Currency", "type": "String"})
            offset = _decode_token(params.get("$skiptoken"))
            size = min(self.page_size, int(params.get("$top", self.page_size)))
            rows = source.render(offset, size)
            next_link = None
            if offset + size < source.count:
                token = quote(_encode_token(offset + size), safe="")
                top = f"&$top={params['$top']}" if "$top" in params else ""
                next_link = (
                    f"{self.base_url}{estate.scope}/providers/Microsoft.CostManagement/query"
                    f"?api-version=2025-03-01{top}&$skiptoken={token}"
                )
            # Real answers put nextLink first; its '&' arrives escaped as \u0026 from .NET serialisers.
            link_json = "null" if next_link is None else json.dumps(next_link).replace("&", "\\u0026")
            text = (
                '{"id":"' + estate.scope + '/providers/Microsoft.CostManagement/query/00000000",'
                '"name":"00000000","type":"Microsoft.CostManagement/query","location":null,"sku":null,"eTag":null,'
                '"properties":{"nextLink":'
                + link_json
                + ',"columns":'
                + json.dumps(columns)
                + ',"rows":['
                + ",".join(rows)
                + "]}}"
            )
            return (
                200,
                {
                    "Content-Type": "application/json",
                    QPU_REMAINING: self.qpu_remaining,
                    "x-ms-ratelimit-microsoft.costmanagement-qpu-consumed": "1",
                },
                text.encode(),
            )
        finally:
            with self._lock:
                self.server_seconds += time.perf_counter() - started
                self.server_cpu_seconds += time.thread_time() - cpu_started

    def _build_source(
        self,
        estate: Estate,
        metric: str,
        first: dt.date,
        last: dt.date,
        dataset: dict[str, Any],
        grouping: list[dict[str, Any]],
        canonical: dict[str, str],
    ) -> RowSource:
        days = _days_between(first, last, self.today)
        daily = dataset.get("granularity") == "Daily"
        dims = [canonical[str(g["name"]).lower()] if g.get("type") != "TagKey" else None for g in grouping]
        tag_keys = [str(g["name"]) for g in grouping if g.get("type") == "TagKey"]
        # Only the first TagKey grouping is filled (azure-sdk-for-java#24285); the others come back null.
        first_tag = tag_keys[0] if tag_keys else None

        def group_values(fact: Fact) -> list[Any]:
            values: list[Any] = []
            tag_seen = False
            for name in dims:
                if name is None:
                    if tag_seen:
                        values += [None, None]
                        continue
                    tag_seen = True
                    spelled = next((k for k in fact.tags if first_tag and k.lower() == first_tag.lower()), None)
                    values += [spelled or "", fact.tags.get(spelled, "") if spelled else ""]
                else:
                    values.append(fact.dims.get(name, ""))
            return values

        def render_row(micros: int, day: dt.date | None, values: list[Any]) -> str:
            head = micros_text(micros) + ("," + day.strftime("%Y%m%d") if day is not None else "")
            middle = json.dumps(values)[1:-1]
            return "[" + head + ("," + middle if middle else "") + ',"' + estate.currency + '"]'

        # Every fact is its own group when the grouping holds its identity: render pages lazily (benchmarks).
        if daily and "ResourceId" in dims and "ChargeType" in dims:
            per_day = [estate.facts_per_day(metric, d) for d in days]
            starts = [0]
            for n in per_day:
                starts.append(starts[-1] + n)
            static: dict[int, str] = {}

            def render(offset: int, limit: int) -> list[str]:
                out = []
                index = offset
                day_index = 0
                while day_index + 1 < len(starts) and starts[day_index + 1] <= index:
                    day_index += 1
                while index < min(offset + limit, starts[-1]):
                    day = days[day_index]
                    position = index - starts[day_index]
                    if position < len(estate.resources):
                        resource = estate.resources[position]
                        fact = estate.resource_fact(metric, resource, day)
                        fragment = static.get(resource.index)
                        if fragment is None:
                            fragment = static[resource.index] = json.dumps(group_values(fact))[1:-1]
                        out.append(
                            "["
                            + micros_text(fact.micros)
                            + ","
                            + day.strftime("%Y%m%d")
                            + ","
                            + fragment
                            + ',"'
                            + estate.currency
                            + '"]'
                        )
                    else:
                        fact = estate.extra_facts(metric, day)[position - len(estate.resources)]
                        out.append(render_row(fact.micros, day, group_values(fact)))
                    index += 1
                    if index >= starts[day_index + 1]:
                        day_index += 1
                return out

            return RowSource(starts[-1], render)

        totals: dict[tuple[Any, ...], int] = {}
        for fact in estate.facts(metric, days):
            key = (fact.day if daily else None, *map(lambda v: json.dumps(v), group_values(fact)))
            totals[key] = totals.get(key, 0) + fact.micros
        rendered = [
            render_row(micros, key[0], [json.loads(v) for v in key[1:]])
            for key, micros in sorted(totals.items(), key=lambda item: (str(item[0][0]), item[0][1:]))
        ]
        return RowSource(len(rendered), lambda offset, limit: rendered[offset : offset + limit])

    # cost details ---------------------------------------------------------------------------------------------
    def _generate_report(self, estate: Estate, body: Any, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if estate.cost_details is None or "managementgroups" in estate.scope.lower():
            return _error(400, "BadRequest", "Cost details are not supported for this scope or agreement type.")
        if not isinstance(body, dict) or body.get("metric") not in ("ActualCost", "AmortizedCost"):
            return _error(400, "BadRequest", "Invalid metric.")
        period = body.get("timePeriod") or {}
        first = dt.date.fromisoformat(period["start"])
        last = dt.date.fromisoformat(period["end"])
        if (last - first).days > 31:
            return _error(400, "BadRequest", "The time period cannot exceed one month.")
        with self._lock:
            op_id = f"op{len(self._operations) + 1:04d}"
            self._operations[op_id] = {
                "estate": estate,
                "metric": "actual" if body["metric"] == "ActualCost" else "amortized",
                "first": first,
                "last": last,
                "polls": self.lro_polls,
                "request": body,
            }
        return 202, self._operation_headers(estate, op_id), b""

    def _operation_headers(self, estate: Estate, op_id: str) -> dict[str, str]:
        location = (
            f"{self.base_url}{estate.scope}/providers/Microsoft.CostManagement/costDetailsOperationResults/"
            f"{op_id}?api-version=2025-03-01"
        )
        return {"Location": location, "Retry-After": self.lro_retry_after, "Content-Length": "0"}

    def _operation_result(self, op_id: str, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            op = self._operations.get(op_id)
            if op is None:
                return _error(404, "NotFound", "no such operation")
            if op["polls"] > 0:
                op["polls"] -= 1
                return 202, self._operation_headers(op["estate"], op_id), b""
        estate: Estate = op["estate"]
        days = _days_between(op["first"], op["last"], self.today)
        if not days:
            body = {"id": op_id, "name": op_id, "status": "NoDataFound", "manifest": None}
            return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()
        blobs = [
            {"blobLink": f"{self.base_url}/blobs/{op_id}/part_{n}_0001.csv?sv=2023-11-03&sig=fake%3D", "byteCount": 0}
            for n in range(self.blob_parts)
        ]
        body = {
            "id": f"{estate.scope}/providers/Microsoft.CostManagement/costDetailsOperationResults/{op_id}",
            "name": op_id,
            "status": "Completed",
            "manifest": {
                "manifestVersion": "2025-03-01",
                "dataFormat": "Csv",
                "blobCount": len(blobs),
                "byteCount": 0,
                "compressData": False,
                "requestContext": {"requestScope": estate.scope.lstrip("/"), "requestBody": op["request"]},
                "blobs": blobs,
            },
            "validTill": "2099-01-01T00:00:00Z",
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def _blob(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            return self._render_blob(path, params)
        finally:
            with self._lock:
                self.server_seconds += time.perf_counter() - started
                self.server_cpu_seconds += time.thread_time() - cpu_started

    def _render_blob(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if "sig" not in params:
            return 403, {}, b"AuthenticationFailed"
        _, _, op_id, name = path.split("/", 3)
        op = self._operations.get(op_id)
        if op is None:
            return 404, {}, b"BlobNotFound"
        part = int(name.split("_")[1])
        estate: Estate = op["estate"]
        days = _days_between(op["first"], op["last"], self.today)
        facts = [f for i, f in enumerate(estate.facts(op["metric"], days)) if i % self.blob_parts == part]
        text = render_csv(estate, facts)
        return 200, {"Content-Type": "text/csv"}, ("\ufeff" + text).encode("utf-8")

    # budgets and recommendations ------------------------------------------------------------------------------
    def _budgets(self, estate: Estate) -> tuple[int, dict[str, str], bytes]:
        if self.budgets_status != 200:
            return _error(self.budgets_status, "RBACAccessDenied", "The client does not have authorization.")
        budget = {
            "id": f"{estate.scope}/providers/Microsoft.CostManagement/budgets/monthly-cap",
            "name": "monthly-cap",
            "type": "Microsoft.CostManagement/budgets",
            "eTag": '"1"',
            "properties": {
                "category": "Cost",
                "amount": 5000.1,
                "timeGrain": "Monthly",
                "timePeriod": {"startDate": "2024-01-01T00:00:00Z", "endDate": "2030-12-31T00:00:00Z"},
                "currentSpend": {"amount": 1234.56, "unit": estate.currency},
                "forecastSpend": {"amount": 4321.09, "unit": estate.currency},
                "notifications": {},
            },
        }
        return 200, {"Content-Type": "application/json"}, json.dumps({"value": [budget]}).encode()

    def _benefit_recommendations(self, estate: Estate, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        flt = params.get("$filter", "")
        term = "P1Y" if "'P1Y'" in flt else "P3Y"
        scope_kind = "Shared" if "'Shared'" in flt else "Single"
        item = {
            "id": f"{estate.scope}/providers/Microsoft.CostManagement/benefitRecommendations/sp-{term.lower()}",
            "name": f"sp-{term.lower()}",
            "type": "Microsoft.CostManagement/benefitRecommendations",
            "kind": "SavingsPlan",
            "properties": {
                "scope": scope_kind,
                "lookBackPeriod": "Last30Days",
                "term": term,
                "armSkuName": "Compute_Savings_Plan",
                "commitmentGranularity": "Hourly",
                "currencyCode": estate.currency,
                "costWithoutBenefit": 1000.25,
                "recommendationDetails": {
                    "commitmentAmount": 0.5,
                    "savingsAmount": 123.45 if term == "P1Y" else 234.56,
                    "savingsPercentage": 12.3 if term == "P1Y" else 23.4,
                    "totalCost": 876.8,
                    "benefitCost": 800.0,
                    "overageCost": 76.8,
                    "wastageCost": 1.5,
                    "coveragePercentage": 80.0,
                    "averageUtilizationPercentage": 98.5,
                },
            },
        }
        return 200, {"Content-Type": "application/json"}, json.dumps({"value": [item]}).encode()


def _encode_token(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    return int(base64.b64decode(token).decode().split(":")[1])


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return status, {"Content-Type": "application/json"}, body


def _csv_field(value: str) -> str:
    if any(c in value for c in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def render_csv(estate: Estate, facts: list[Fact]) -> str:
    """Cost Details line items in the estate's flavour (EA PascalCase or MCA camelCase headers)."""
    flavour = estate.cost_details or "ea"
    header = EA_HEADER if flavour == "ea" else MCA_HEADER
    lines = [",".join(header)]
    for n, fact in enumerate(facts):
        d = fact.dims
        month_start = fact.day.replace(day=1)
        month_end = (month_start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        resource_id = d["ResourceId"]
        if resource_id and n % 2:  # real files vary the casing of the same resource id between rows
            resource_id = resource_id.upper()
        elif not resource_id and d["ChargeType"] in ("Purchase", "UnusedReservation"):
            resource_id = estate.reservation_id
        cost = micros_text(fact.micros)
        # Prices as Cost Details gives them: the negotiated unit price, and pay-as-you-go 25% above it.
        quantity = int(fact.quantity)
        unit_micros = fact.micros // quantity if quantity else 0
        payg_unit_micros = unit_micros * 5 // 4
        tags = json.dumps(fact.tags, separators=(",", ": "))[1:-1] if fact.tags else ""
        values = {
            "billingaccountid": "8611537",
            "billingaccountname": "Contoso EA",
            "billingprofileid": "AB12-CD34",
            "billingprofilename": "Contoso profile",
            "billingperiodstartdate": month_start.strftime("%m/%d/%Y"),
            "billingperiodenddate": month_end.strftime("%m/%d/%Y"),
            "subscriptionid": d["SubscriptionId"],
            "subscriptionname": d["SubscriptionName"],
            "date": fact.day.strftime("%m/%d/%Y"),
            "product": f"{d['MeterCategory']} - {d['Meter']}",
            "metercategory": d["MeterCategory"],
            "metername": d["Meter"],
            "meterid": "aaaef613-0000-0000-0000-000000000001",
            "quantity": fact.quantity,
            "cost": cost,
            "costinbillingcurrency": cost,
            "costinpricingcurrency": cost,
            "costinusd": cost,
            "billingcurrency": estate.currency,
            "pricingcurrency": estate.currency,
            "resourcelocation": d["ResourceLocation"],
            "location": d["ResourceLocation"],
            "consumedservice": d["ConsumedService"],
            "resourceid": resource_id,
            "resourcename": resource_id.rsplit("/", 1)[-1] if resource_id else "",
            "tags": tags,
            "unitofmeasure": "1 Hour",
            "resourcegroup": d["ResourceGroupName"],
            "resourcegroupname": d["ResourceGroupName"],
            "reservationid": d["ReservationId"].rsplit("/", 1)[-1],
            "reservationname": d["ReservationName"],
            "chargetype": d["ChargeType"],
            "frequency": d["Frequency"],
            "pricingmodel": d["PricingModel"],
            "benefitid": d["BenefitId"],
            "benefitname": d["BenefitName"],
            "unitprice": micros_text(unit_micros),
            "paygprice": micros_text(payg_unit_micros),
            "paygcostinbillingcurrency": micros_text(payg_unit_micros * quantity),
            "publishername": "Microsoft",
            "publishertype": "Azure",
            "isazurecrediteligible": "True",
            "provider": "Azure",
        }
        lines.append(",".join(_csv_field(values.get(column.lower(), "")) for column in header))
    return "\n".join(lines) + "\n"


class _Handler(BaseHTTPRequestHandler):
    arm: FakeArm
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # keep-alive + a separate body write would otherwise stall 40 ms per request

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.arm.handle(self.command, self.path, self.headers, body)
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


# test helpers -----------------------------------------------------------------------------------------------------
FAKE_AZ = (
    "#!/bin/sh\n"
    'case "$*" in *"account get-access-token"*)\n'
    '  printf \'{"accessToken":"cli-fake-token","expiresOn":"2099-01-01 00:00:00.000000",'
    '"expires_on":%s,"tokenType":"Bearer","tenant":"11111111-1111-1111-1111-111111111111"}\\n\' '
    "$(( $(date +%s)+3600 ));;\n"
    "*) echo \"ERROR: Please run 'az login' to set up an account.\" >&2; exit 1;; esac\n"
)
FAKE_AZ_LOGGED_OUT = """#!/bin/sh
echo "ERROR: Please run 'az login' to set up an account." >&2
exit 1
"""


def install_fake_az(directory: Path, monkeypatch: pytest.MonkeyPatch, *, signed_in: bool = True) -> Path:
    """Put a fake `az` first on PATH (AZURE_API.md §6): AzureCliCredential then gets `cli-fake-token`."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "az"
    script.write_text(FAKE_AZ if signed_in else FAKE_AZ_LOGGED_OUT)
    script.chmod(script.stat().st_mode | stat.S_IEXEC | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ.get('PATH', '')}")
    return script


class FakeCredential:
    """A TokenCredential that never leaves the process."""

    def __init__(self, token: str = "fake-token") -> None:
        self.token = token
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.calls += 1
        return AccessToken(self.token, int(time.time()) + 3600)

    def close(self) -> None:
        pass


# pytest fixtures and helpers shared by tests/test_sync_*.py (import them into the module) --------------------------
TODAY = dt.date(2025, 3, 15)  # March is open, February closed more than five days ago
SUB = "/subscriptions/00000000-0000-0000-0000-000000000001"


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    with FakeArm(today=TODAY) as fake:
        yield fake


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Any]:
    from finops_tui.store.cache import open_cache

    with open_cache(tmp_path / "cache.duckdb") as opened:
        yield opened


@dataclass
class SyncRun:
    """What one run_sync call returned and reported."""

    result: Any
    progress: list[Any]
    sleeps: list[float]

    def states(self) -> list[str]:
        return [p.state for p in self.progress]


def sync(fake: FakeArm, cache: Any, **overrides: Any) -> SyncRun:
    """run_sync against the fake with a fake credential and a sleep that only records (tests never wait).

    `policy` (a TagPolicy) rebuilds the effective tags; the default policy has no rules.
    """
    from finops_tui.allocation.effective import TagPolicy
    from finops_tui.sync import SyncOptions, run_sync

    progress: list[Any] = []
    sleeps: list[float] = []
    cancel = overrides.pop("cancel", None)
    policy = overrides.pop("policy", None) or TagPolicy()
    on_progress = overrides.pop("on_progress", None)
    options = {
        "scopes": [SUB],
        "months": 3,
        "arm_endpoint": fake.base_url,
        "credential": FakeCredential(),
        "sleep": sleeps.append,
        "polling_interval": 0,
        **overrides,
    }

    def record(p: Any) -> None:
        progress.append(p)
        if on_progress:
            on_progress(p)

    result = run_sync(cache, SyncOptions(**options), policy, progress=record, cancel=cancel)
    return SyncRun(result, progress, sleeps)


def month_total(cache: Any, column: str, month: dt.date, scope: str = SUB) -> Decimal:
    """Sum of a cost column over one month of one scope's sources, exactly."""
    end = (month + dt.timedelta(days=32)).replace(day=1)
    with cache.cursor() as cur:
        row = cur.execute(
            f"""SELECT coalesce(sum(c.{column}), 0) FROM charges c JOIN sources s USING (source_id)
                WHERE s.scope = ? AND c.x_ChargeDate >= ? AND c.x_ChargeDate < ?""",
            [scope.lower(), month, end],
        ).fetchone()
    return Decimal(row[0])


MONTHS = [dt.date(2025, 3, 1), dt.date(2025, 2, 1), dt.date(2025, 1, 1)]


def query_periods(fake: FakeArm) -> list[str]:
    """The month ("2025-03") of every Query API request, in order."""
    return [r.body["timePeriod"]["from"][:7] for r in fake.requests if is_query(r.method, r.path)]
