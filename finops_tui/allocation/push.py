"""Tag write-back: preview pending manual edits, then merge them into Azure through the ARM Tags API."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import duckdb

from finops_tui import __version__, clock
from finops_tui.allocation.tag_limits import count_problem, tag_problem
from finops_tui.basis.arm_ids import (
    InvalidResourceId,
    ResourceId,
    arm_resource_id,
    parse_resource_id,
    printable,
    resource_id_problem,
)
from finops_tui.errors import AzureError, UserError
from finops_tui.store import Cache
from finops_tui.store.sources import DEMO_KIND, SYNCED_KIND_PREFIX

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

# The Azure SDK and finops_tui.azure (which loads azure-core) are imported where a push starts: about 60 ms
# of start-up for every command and screen that only previews or journals tags (STYLE.md; pinned by
# tests/test_tag_push.py::test_the_data_layer_imports_neither_azure_nor_textual).

TAGS_API_VERSION = "2021-04-01"
MAX_ATTEMPTS = 5  # per resource, throttling and transient server errors included
MAX_RETRY_AFTER = 60.0  # seconds; a longer Retry-After leaves the edit pending rather than hang the push
_TRANSIENT = {500, 502, 503, 504}
DEMO_REFUSAL = ("this is the demo estate: its resources are made up, so tag edits stay local "
                "(`finops-tui tags export` writes them out)")
ALLOCATED_REFUSAL = ("an allocated resource (cost a provider split from a shared resource, e.g. a Kubernetes "
                     "workload), not an Azure resource: its tags are local and never pushed")
IMPORTED_REFUSAL = ("it came from imported files, not from a sync of Azure: only resources that `finops-tui sync` "
                    "brought in are pushed (`finops-tui tags export` writes the edits for your own pipeline)")


@dataclass(frozen=True)
class PushItem:
    """One resource and the tags to merge into it: the latest value per key of its unsent edits."""

    resource_id: str  # as cached (lower-case)
    arm_id: str  # the id sent to ARM, in the provider's casing where known
    name: str | None
    tags: dict[str, str]  # key as spelled on the resource (or most often in the estate) -> value
    edit_ids: tuple[int, ...]  # every unsent edit this merge settles, superseded ones included
    last_error: str | None = None  # why the previous attempt failed, if it did
    invalid: str | None = None  # why Azure must never get this merge (a malformed id, tags past Azure's limits)
    not_pushable: str | None = None  # why push refuses it (demo estate, imported files, not a full ARM id)

    @property
    def refusal(self) -> str | None:
        """Why this merge is not sent (None: it may be), for one line."""
        return self.invalid or self.not_pushable

    @property
    def body(self) -> dict[str, Any]:
        return {"operation": "Merge", "properties": {"tags": dict(self.tags)}}


@dataclass(frozen=True)
class PushResult:
    item: PushItem
    status: str  # pushed | failed
    error: str | None = None
    http_status: int | None = None
    attempts: int = 1


@dataclass
class PushReport:
    results: list[PushResult] = field(default_factory=list)

    @property
    def pushed(self) -> list[PushResult]:
        return [r for r in self.results if r.status == "pushed"]

    @property
    def failed(self) -> list[PushResult]:
        return [r for r in self.results if r.status == "failed"]


def preview(cur: duckdb.DuckDBPyConnection) -> list[PushItem]:
    """What `push` would send: per resource, the merged tags of its live, unsent manual edits.

    Only the latest edit of each (resource, key) counts; if it is local-only or removes the tag,
    nothing is sent for that key. Keys are spelled as the resource already spells them in Azure
    (`Team`), else as most resources in the estate do, else in canonical lower case. Items that push
    would refuse carry the reason (`refusal`, see `check_items`); they are listed, never sent.
    """
    rows = cur.execute(
        """
        WITH live AS (
            SELECT * FROM tag_edits WHERE NOT undone AND origin = 'manual'
        ), latest AS (
            SELECT ResourceId, tag_key, max(edit_id) AS edit_id FROM live GROUP BY 1, 2
        ), wanted AS (
            SELECT l.ResourceId, l.tag_key, e.new_value, e.push_error,
                   (SELECT list(x.edit_id ORDER BY x.edit_id) FROM live x
                    WHERE x.ResourceId = l.ResourceId AND x.tag_key = l.tag_key
                      AND x.push_status IN ('pending', 'failed')) AS edit_ids
            FROM latest l JOIN tag_edits e ON e.edit_id = l.edit_id
            WHERE e.push_status IN ('pending', 'failed') AND e.new_value IS NOT NULL
        ), spellings AS (
            SELECT lower(k) AS key_lower, arg_max(k, n) AS spelling FROM (
                SELECT unnest(map_keys(Tags)) AS k, count(*) AS n FROM resources WHERE Tags IS NOT NULL GROUP BY 1
            ) GROUP BY 1
        ), own AS (
            SELECT r.ResourceId, unnest(map_keys(r.Tags)) AS k FROM resources r
            WHERE r.Tags IS NOT NULL AND r.ResourceId IN (SELECT ResourceId FROM wanted)
        )
        SELECT w.ResourceId, r.ResourceName, r.x_ResourceGroupName, w.tag_key,
               coalesce((SELECT min(o.k) FROM own o WHERE o.ResourceId = w.ResourceId AND lower(o.k) = w.tag_key),
                        s.spelling, w.tag_key) AS spelled,
               w.new_value, w.push_error, w.edit_ids
        FROM wanted w LEFT JOIN resources r ON r.ResourceId = w.ResourceId
        LEFT JOIN spellings s ON s.key_lower = w.tag_key
        ORDER BY w.ResourceId, w.tag_key
        """
    ).fetchall()
    items: list[PushItem] = []
    for rid, name, rg, _key, spelled, value, error, edit_ids in rows:
        if items and items[-1].resource_id == rid:
            last = items[-1]
            items[-1] = PushItem(
                rid, last.arm_id, name, {**last.tags, spelled: value}, (*last.edit_ids, *edit_ids),
                last.last_error or error,
            )
        else:
            items.append(PushItem(rid, arm_resource_id(rid, rg, name), name, {spelled: value}, tuple(edit_ids), error))
    return check_items(cur, items)


def check_items(cur: duckdb.DuckDBPyConnection, items: Sequence[PushItem]) -> list[PushItem]:
    """The items with `invalid` and `not_pushable` set from the cache, whatever they carried before.

    Invalid: the id is no provider's resource id, or a tag breaks Azure's limits (length, characters,
    reserved prefixes, 50 tags per resource counting those it has). Not pushable: the resource did not
    come from a sync of Azure (the demo estate, imported files: their ids prove nothing about your
    tenant), or its id is not a full ARM resource id, or it is an allocated resource (a provider split's
    consumer, such as a Kubernetes workload: its tags are local). These are the rules the sync applies too.
    """
    if not items:
        return []
    ids = [item.resource_id for item in items]
    demo = cur.execute("SELECT count(*) FROM sources WHERE kind = ?", [DEMO_KIND]).fetchone()
    allocated = {
        rid for (rid,) in cur.execute(
            "SELECT DISTINCT AllocatedResourceId FROM charges "
            "WHERE AllocatedResourceId IN (SELECT unnest(?::VARCHAR[]))",
            [ids],
        ).fetchall()
    }
    synced = {
        rid for (rid,) in cur.execute(
            "SELECT DISTINCT c.ResourceId FROM charges c JOIN sources s ON s.source_id = c.source_id "
            "WHERE c.ResourceId IN (SELECT unnest(?::VARCHAR[])) AND starts_with(s.kind, ?)",
            [ids, SYNCED_KIND_PREFIX],
        ).fetchall()
    }
    own_keys = {
        rid: {str(k).lower() for k in keys or []} for rid, keys in cur.execute(
            "SELECT ResourceId, map_keys(Tags) FROM resources WHERE ResourceId IN (SELECT unnest(?::VARCHAR[]))",
            [ids],
        ).fetchall()
    }
    checked = []
    for item in items:
        invalid = _invalid(item, own_keys.get(item.resource_id, set()))
        if item.resource_id in allocated:
            not_pushable: str | None = ALLOCATED_REFUSAL
        elif demo and demo[0]:
            not_pushable = DEMO_REFUSAL
        elif item.resource_id not in synced:
            not_pushable = IMPORTED_REFUSAL
        else:
            not_pushable = None
            try:
                parse_resource_id(item.arm_id)
            except InvalidResourceId as exc:
                not_pushable = f"not a full Azure resource id: {exc}"
        checked.append(replace(item, invalid=invalid, not_pushable=not_pushable))
    return checked


def _invalid(item: PushItem, own_keys: set[str]) -> str | None:
    problem = resource_id_problem(item.resource_id)
    if problem is not None:
        return f"not a resource id: {problem}"
    for key, value in item.tags.items():
        problem = tag_problem(key, value)
        if problem is not None:
            return f"tag {printable(key)}: {problem}"
    return count_problem(len(own_keys | {key.lower() for key in item.tags}))


def refusal_line(refused: Sequence[PushItem], *, sendable: int) -> str:
    """One line on the items that are not sent: `nothing can be pushed: …` or `N resource(s) not sent: …`."""
    head = "nothing can be pushed" if not sendable else f"{len(refused):,} resource(s) not sent"
    reasons = list(dict.fromkeys(item.refusal for item in refused))
    if len(reasons) == 1 and len(refused) > 1:
        return f"{head}: {reasons[0]}"
    first = refused[0]
    more = f" (and {len(refused) - 1:,} more)" if len(refused) > 1 else ""
    return f"{head}: {printable(first.arm_id)}: {first.refusal}{more}"


def tags_url(endpoint_url: str, resource: ResourceId) -> str:
    """The Tags API URL of a parsed resource id: its path can name that resource only."""
    return (
        f"{endpoint_url.rstrip('/')}{resource.url_path()}"
        f"/providers/Microsoft.Resources/tags/default?api-version={TAGS_API_VERSION}"
    )


def make_tags_client(credential: TokenCredential, endpoint_url: str, allow_http: bool) -> Any:
    """An ARMPipelineClient without its own retries: `push` retries itself so waits are visible and testable."""
    from azure.core.pipeline.policies import (
        ContentDecodePolicy,
        HeadersPolicy,
        NetworkTraceLoggingPolicy,
        RequestIdPolicy,
        UserAgentPolicy,
    )
    from azure.mgmt.core import ARMPipelineClient
    from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy

    from finops_tui.azure import AllowHttpPolicy

    policies: list[Any] = [
        RequestIdPolicy(),
        HeadersPolicy(),
        UserAgentPolicy(user_agent=f"finops-tui/{__version__}"),
        ContentDecodePolicy(),
        ARMChallengeAuthenticationPolicy(credential, f"{endpoint_url.rstrip('/')}/.default"),
        NetworkTraceLoggingPolicy(),
    ]
    # Per-call policies run before the bearer policy, which refuses plain http unless told otherwise.
    per_call = [AllowHttpPolicy()] if allow_http else []
    return ARMPipelineClient(base_url=endpoint_url, policies=policies, per_call_policies=per_call)


def push(
    cache: Cache,
    items: Sequence[PushItem],
    credential: TokenCredential,
    endpoint: str | None = None,
    *,
    sleep: Callable[[float], object] = time.sleep,
    max_attempts: int = MAX_ATTEMPTS,
    max_retry_after: float = MAX_RETRY_AFTER,
    on_result: Callable[[PushResult], None] | None = None,
    on_wait: Callable[[PushItem, float, str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    client: Any = None,
) -> PushReport:
    """PATCH each item's tags (operation Merge) and record every result in the journal as it arrives.

    Each result is its own short write (`Cache.write`): no cursor is held while a request or a throttling
    wait is under way, so the explorer's reads and other writes go on meanwhile.

    429 waits out Retry-After (bounded by `max_retry_after` and `max_attempts`); 5xx retries with a short
    backoff; 403, 404 and other refusals fail that resource only, kept pending with the reason so a
    re-run retries it. An auth failure or an unreachable endpoint stops the push (AzureError); what
    was sent before stays recorded. `endpoint` follows `--arm-endpoint`: https, or http on loopback.

    Every item is checked against the cache first (`check_items`): if any would be refused, nothing
    is sent (UserError); callers pass only the items whose `refusal` is None. Each URL is built from
    the parsed id, never from the text.

    From a UI worker: `cancelled=lambda: worker.is_cancelled` stops before the next resource, and
    `sleep=worker.cancelled_event.wait` cuts a throttling wait short (the rest stays pending).
    """
    from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
    from azure.core.rest import HttpRequest

    from finops_tui.azure import NOT_SIGNED_IN, parse_endpoint

    with cache.cursor() as cur:
        checked = check_items(cur, items)
    refused = next((item for item in checked if item.refusal is not None), None)
    if refused is not None:
        raise UserError(f"{printable(refused.arm_id)}: not sent: {refused.refusal}; nothing was sent")
    resources = {item.resource_id: parse_resource_id(item.arm_id) for item in checked}
    target = parse_endpoint(endpoint)
    client = client or make_tags_client(credential, target.url, target.allow_http)
    report = PushReport()
    for item in items:
        if cancelled is not None and cancelled():
            break
        attempts = 0
        while True:
            if attempts and cancelled is not None and cancelled():
                return report  # stopped during a wait: this item stays pending, untouched
            attempts += 1
            request = HttpRequest("PATCH", tags_url(target.url, resources[item.resource_id]), json=item.body)
            try:
                response = client.send_request(request)
            except ClientAuthenticationError as exc:
                raise AzureError(f"{NOT_SIGNED_IN} ({_first_line(exc)})") from None
            except (ServiceRequestError, ServiceResponseError) as exc:
                if attempts < max_attempts and isinstance(exc, ServiceResponseError):
                    sleep(min(2.0**attempts, max_retry_after))
                    continue
                raise AzureError(
                    f"cannot reach {target.url} ({_first_line(exc)}); {len(report.pushed)} sent, the rest stay pending"
                ) from None
            status = response.status_code
            if status in (200, 201, 202, 204):
                result = PushResult(item, "pushed", None, status, attempts)
                break
            if status == 401:
                raise AzureError(f"{NOT_SIGNED_IN} (HTTP 401: {_arm_error(response)})")
            wait = _retry_after(response.headers) if status == 429 else None
            if status == 429 and attempts < max_attempts and (wait is None or wait <= max_retry_after):
                wait = 2.0 ** (attempts - 1) if wait is None else wait
                if on_wait:
                    on_wait(item, wait, "throttled")
                sleep(wait)
                continue
            if status in _TRANSIENT and attempts < max_attempts:
                sleep(min(2.0 ** (attempts - 1), max_retry_after))
                continue
            result = PushResult(item, "failed", _describe_failure(status, response, wait), status, attempts)
            break
        with cache.write() as cur:
            _record(cur, result)
        report.results.append(result)
        if on_result:
            on_result(result)
    return report


def _record(cur: duckdb.DuckDBPyConnection, result: PushResult) -> None:
    ids = list(result.item.edit_ids)
    if result.status == "pushed":
        cur.execute(
            "UPDATE tag_edits SET push_status = 'pushed', push_error = NULL, pushed_at = ? "
            "WHERE edit_id IN (SELECT unnest(?::INTEGER[]))",
            [clock.now(), ids],
        )
    else:
        cur.execute(
            "UPDATE tag_edits SET push_status = 'failed', push_error = ? "
            "WHERE edit_id IN (SELECT unnest(?::INTEGER[]))",
            [result.error, ids],
        )


def _describe_failure(status: int, response: Any, retry_after: float | None) -> str:
    detail = _arm_error(response)
    if status == 403:
        return f"no permission to write tags on this resource (403 {detail})"
    if status == 404:
        return f"resource not found: deleted or moved? (404 {detail})"
    if status == 429:
        later = f" in {retry_after:.0f} s" if retry_after else " later"
        return f"throttled by Azure (429); retry{later}"
    return f"HTTP {status} {detail}".strip()


def _arm_error(response: Any) -> str:
    """`Code: message` from an ARM error body, else the start of the body."""
    try:
        error = json.loads(response.text() or "{}").get("error", {})
    except (ValueError, AttributeError):
        return (response.text() or "")[:200].strip()
    if not isinstance(error, dict):
        return ""
    text = f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    return " ".join(text.split())


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait from Retry-After (seconds or an HTTP date) or the millisecond variants."""
    for name, scale in (("retry-after-ms", 1000.0), ("x-ms-retry-after-ms", 1000.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) / scale)
            except ValueError:
                pass
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
