"""Cost Management clients for the sync: retry and throttling policies, the cancellable monitor, subscriptions."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline import PipelineRequest, PipelineResponse, policies
from azure.core.pipeline.policies import HTTPPolicy, RetryPolicy
from azure.core.rest import HttpRequest

from finops_tui.azure import AllowHttpPolicy, Endpoint
from finops_tui.errors import AzureError

SUBSCRIPTIONS_API_VERSION = "2022-12-01"
MANAGEMENT_GROUPS_API_VERSION = "2020-05-01"

# Cost Management answers 429 with these instead of a standard Retry-After (AZURE_API.md §2.4).
RETRY_AFTER_HEADERS = (
    "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after",
    "x-ms-ratelimit-microsoft.costmanagement-entity-retry-after",
    "x-ms-ratelimit-microsoft.costmanagement-tenant-retry-after",
    "x-ms-ratelimit-microsoft.costmanagement-clienttype-retry-after",
    "x-ms-ratelimit-microsoft.costmanagement-client-retry-after",
    "x-ms-ratelimit-microsoft.consumption-retry-after",
)
QPU_REMAINING_HEADER = "x-ms-ratelimit-microsoft.costmanagement-qpu-remaining"

_log = logging.getLogger(__name__)


class SyncCancelled(Exception):
    """The caller set the cancel event; raised between pages or while waiting out throttling."""


@dataclass
class SyncMonitor:
    """Shared by the policies of one sync: counts calls, waits (cancellably) and reports waits."""

    cancel: threading.Event = field(default_factory=threading.Event)
    sleep: Callable[[float], None] | None = None  # injectable: tests must not really sleep
    on_wait: Callable[[str], None] = lambda text: None
    max_wait_seconds: float = 900.0
    api_calls: int = 0
    throttled_seconds: float = 0.0
    throttle_events: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise SyncCancelled()

    def count_call(self) -> None:
        with self._lock:
            self.api_calls += 1

    def wait(self, seconds: float, reason: str, *, throttled: bool, retrying: bool = True) -> None:
        """Wait `seconds` (capped) while telling the caller why; a cancel ends the wait at once."""
        seconds = max(0.0, min(float(seconds), self.max_wait_seconds))
        self.check_cancel()
        if throttled:
            with self._lock:
                self.throttled_seconds += seconds
                self.throttle_events += 1
        if seconds <= 0:
            return
        self.on_wait(f"{reason}, {'retrying in' if retrying else 'waiting'} {_format_seconds(seconds)}")
        if self.sleep is not None:
            self.sleep(seconds)
        elif self.cancel.wait(seconds):
            raise SyncCancelled()
        self.check_cancel()


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"


class CostMgmtRetryPolicy(RetryPolicy):
    """azure-core's RetryPolicy, plus Cost Management's own retry-after headers and retried POST queries.

    Query and report POSTs are read-only, so retrying them is safe. Waits go through the SyncMonitor so
    the user sees "throttled, retrying in N s" and a cancel interrupts the wait.
    """

    def __init__(self, monitor: SyncMonitor, *, server_error_retries: int = 4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._monitor = monitor
        self._server_error_retries = server_error_retries
        self._method_whitelist = frozenset(["HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"])

    def is_retry(self, settings: dict[str, Any], response: PipelineResponse[Any, Any]) -> bool:
        # A throttled request is worth many retries (the service says when); a failing server only a few,
        # or an outage would keep a cron job backing off for minutes per request.
        if response.http_response.status_code >= 500:
            failures = sum(
                1
                for attempt in settings["history"]
                if attempt.http_response is not None and attempt.http_response.status_code >= 500
            )
            if failures >= self._server_error_retries:
                return False
        return bool(super().is_retry(settings, response))

    def get_retry_after(self, response: PipelineResponse[Any, Any]) -> float | None:
        standard = super().get_retry_after(response)
        if standard:
            return standard
        headers = response.http_response.headers
        values = []
        for name in RETRY_AFTER_HEADERS:
            raw = headers.get(name)
            if raw:
                try:
                    values.append(float(raw))
                except ValueError:
                    _log.debug("ignoring unparsable %s: %r", name, raw)
        return max(values) if values else None

    def sleep(
        self, settings: dict[str, Any], transport: Any, response: PipelineResponse[Any, Any] | None = None
    ) -> None:
        delay: float | None = None
        if response is not None:
            delay = self.get_retry_after(response)
            status = response.http_response.status_code
            throttled = status == 429
            reason = "throttled" if throttled else f"server error {status}"
        else:
            throttled, reason = False, "connection failed"
        if not delay:
            # Throttled without a hint: the first retry would be immediate; wait a little instead.
            delay = max(self.get_backoff_time(settings), 1.0 if throttled else 0.0)
        self._monitor.wait(delay, reason, throttled=throttled)


@dataclass
class QpuPacer:
    """Reads the qpu-remaining header and holds the next request when the per-10 s or per-minute budget is spent."""

    monitor: SyncMonitor
    hold_until: float = 0.0
    remaining: dict[str, int] = field(default_factory=dict)

    def observe(self, headers: Any) -> None:
        raw = headers.get(QPU_REMAINING_HEADER)
        if not raw:
            return
        remaining: dict[str, int] = {}
        for part in str(raw).split(","):
            name, _, value = part.partition(":")
            try:
                remaining[name.strip()] = int(value)
            except ValueError:
                continue
        self.remaining = remaining
        now = time.monotonic()
        if remaining.get("QueriesPerMin", 1) <= 0:
            self.hold_until = max(self.hold_until, now + 60)
        elif remaining.get("QueriesPer10Sec", 1) <= 0:
            self.hold_until = max(self.hold_until, now + 10)
        elif remaining.get("QueriesPerHour", 1) <= 0:
            self.hold_until = max(self.hold_until, now + 300)

    def before_request(self) -> None:
        delay = self.hold_until - time.monotonic()
        self.hold_until = 0.0
        if delay > 0:
            self.monitor.wait(delay, "query budget spent", throttled=True, retrying=False)


class MonitorPolicy(HTTPPolicy):
    """Per attempt: check cancel, pace by the qpu budget, count the call, read the budget headers."""

    def __init__(self, monitor: SyncMonitor, pacer: QpuPacer) -> None:
        super().__init__()
        self._monitor = monitor
        self._pacer = pacer

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        self._monitor.check_cancel()
        self._pacer.before_request()
        self._monitor.count_call()
        response = self.next.send(request)
        self._pacer.observe(response.http_response.headers)
        return response


def _client_kwargs(endpoint: Endpoint, monitor: SyncMonitor, *, retries: int) -> dict[str, Any]:
    per_call: list[Any] = [AllowHttpPolicy()] if endpoint.allow_http else []
    return {
        "per_call_policies": per_call,
        "per_retry_policies": [MonitorPolicy(monitor, QpuPacer(monitor))],
        "retry_policy": CostMgmtRetryPolicy(
            monitor, retry_total=retries, retry_status=retries, retry_connect=3, retry_read=3, retry_backoff_max=60
        ),
        "credential_scopes": [endpoint.credential_scope],
        "user_agent": "finops-tui",
        # An undocumented but widely used trick: our own ClientType gets its own throttling bucket.
        "headers": {"ClientType": "finops-tui"},
    }


def cost_management_client(
    credential: TokenCredential,
    endpoint: Endpoint,
    monitor: SyncMonitor,
    *,
    retries: int = 8,
    polling_interval: float = 30,
) -> Any:
    # The Cost Management SDK (about 45 ms with azure-mgmt-core) only when a sync starts, not for --list-scopes.
    from azure.mgmt.costmanagement import CostManagementClient

    return CostManagementClient(
        credential,
        base_url=endpoint.url,
        polling_interval=polling_interval,
        # Query pages (~1.8 MB) are read as a stream: azure-core's default 4 KB blocks cost ~450 generator
        # rounds through requests and urllib3 per page; 1 MB blocks read a page in two.
        connection_data_block_size=1 << 20,
        **_client_kwargs(endpoint, monitor, retries=retries),
    )


def arm_client(credential: TokenCredential, endpoint: Endpoint, monitor: SyncMonitor, *, retries: int = 4) -> Any:
    """A bare ARMPipelineClient with the same credential and policies, for plain ARM GETs."""
    from azure.mgmt.core import ARMPipelineClient  # about 11 ms, for --list-scopes only
    from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy

    kwargs = _client_kwargs(endpoint, monitor, retries=retries)
    pipeline_policies = [
        policies.RequestIdPolicy(),
        policies.HeadersPolicy(kwargs["headers"]),
        policies.UserAgentPolicy(sdk_moniker="finops-tui"),
        *kwargs["per_call_policies"],
        policies.ContentDecodePolicy(),
        policies.RedirectPolicy(),
        kwargs["retry_policy"],
        ARMChallengeAuthenticationPolicy(credential, endpoint.credential_scope),
        *kwargs["per_retry_policies"],
        policies.NetworkTraceLoggingPolicy(),
    ]
    return ARMPipelineClient(base_url=endpoint.url, policies=pipeline_policies)


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    name: str
    state: str
    tenant_id: str

    @property
    def scope(self) -> str:
        return f"/subscriptions/{self.subscription_id}"


def list_subscriptions(client: Any, endpoint: Endpoint) -> Iterator[Subscription]:
    """GET /subscriptions, following nextLink."""
    url: str | None = f"{endpoint.url}/subscriptions?api-version={SUBSCRIPTIONS_API_VERSION}"
    while url:
        response = client.send_request(HttpRequest("GET", url))
        if response.status_code == 401:
            raise AzureError(f"Azure refused the credentials (HTTP 401): {_error_message(response)}")
        try:
            response.raise_for_status()
        except HttpResponseError:
            raise AzureError(
                f"listing subscriptions failed (HTTP {response.status_code}): {_error_message(response)}"
            ) from None
        try:
            body = response.json()
            items = body.get("value", [])
        except (ValueError, AttributeError):
            raise AzureError("listing subscriptions: the answer was not the expected JSON") from None
        for item in items:
            yield Subscription(
                subscription_id=str(item.get("subscriptionId", "")),
                name=str(item.get("displayName", "")),
                state=str(item.get("state", "")),
                tenant_id=str(item.get("tenantId", "")),
            )
        url = body.get("nextLink") or None


def management_group_subscriptions(client: Any, endpoint: Endpoint, group: str) -> list[str]:
    """The ids of every subscription below a management group (its descendants, at any depth), following nextLink."""
    from urllib.parse import quote

    url: str | None = (f"{endpoint.url}/providers/Microsoft.Management/managementGroups/{quote(group, safe='')}"
                       f"/descendants?api-version={MANAGEMENT_GROUPS_API_VERSION}")
    found: list[str] = []
    while url:
        response = client.send_request(HttpRequest("GET", url))
        if response.status_code in (403, 404):
            raise AzureError(
                f"management group {group!r}: not found or not readable by this sign-in (HTTP {response.status_code}: "
                f"{_error_message(response)}); use the group's id (not its display name) and a login that can read it")
        if response.status_code == 401:
            raise AzureError(f"Azure refused the credentials (HTTP 401): {_error_message(response)}")
        try:
            response.raise_for_status()
            body = response.json()
            items = body.get("value", [])
        except HttpResponseError:
            raise AzureError(f"listing management group {group!r} failed (HTTP {response.status_code}): "
                             f"{_error_message(response)}") from None
        except (ValueError, AttributeError):
            raise AzureError(f"listing management group {group!r}: the answer was not the expected JSON") from None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and str(item.get("type", "")).lower() in ("/subscriptions",
                                                                               "microsoft.resources/subscriptions"):
                found.append(str(item.get("name", "")))
        url = body.get("nextLink") or None
    return found


def _error_message(response: Any) -> str:
    try:
        error = response.json().get("error", {})
        return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    except (ValueError, AttributeError):
        return (response.text() or "")[:200]


def describe_http_error(exc: Exception) -> str:
    """One line for an azure-core error: status, ARM error code and message, no traceback."""
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        code = getattr(exc.error, "code", None) if exc.error is not None else None
        message = getattr(exc.error, "message", None) if exc.error is not None else None
        if not message:
            message = str(exc.message or exc).splitlines()[0]
        message = " ".join(str(message).split())
        return _clip(f"HTTP {status}" + (f" {code}" if code else "") + f": {message}")
    return _clip(" ".join(str(exc).split()) or type(exc).__name__)


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
