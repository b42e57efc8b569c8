"""Azure resource ids: parsed and checked where they enter, and restored to the provider's casing for people."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from finops_tui.textsafe import control_character

# Fixed path segments of an ARM id, in the casing the portal and the REST API print.
_FIXED_SEGMENTS = {"subscriptions": "subscriptions", "resourcegroups": "resourceGroups", "providers": "providers"}

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Resource provider namespaces are `Company.Service` (Microsoft.Compute, Dynatrace.Observability).
_NAMESPACE = re.compile(r"[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)+")
_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
# Characters kept as they are in a request path; everything else in a segment is percent-encoded.
_PATH_SAFE = "-._~()!*:@,;+=$'"
EXPECTED_SHAPE = "/subscriptions/{guid}/resourceGroups/{group}/providers/{Namespace}/{type}/{name}[/{type}/{name}…]"
# For the import's bad-row message: what every provider's resource id must look like.
LOOSE_EXPECTED = "a resource id without '.', '..' or empty path segments and without control characters"


class InvalidResourceId(ValueError):
    """Text that is not the resource id it has to be; str() is the reason, for one line."""


@dataclass(frozen=True)
class ResourceId:
    """A full ARM resource id: subscription, resource group, provider namespace and type/name pairs."""

    subscription: str
    resource_group: str
    namespace: str
    types: tuple[str, ...]  # ("servers", "databases") for a child resource
    names: tuple[str, ...]  # one name per type

    @property
    def name(self) -> str:
        return self.names[-1]

    @property
    def resource_type(self) -> str:
        """`Microsoft.Sql/servers/databases`."""
        return "/".join((self.namespace, *self.types))

    def segments(self) -> list[str]:
        pairs = [part for pair in zip(self.types, self.names, strict=True) for part in pair]
        return ["subscriptions", self.subscription, "resourceGroups", self.resource_group, "providers",
                self.namespace, *pairs]

    def __str__(self) -> str:
        return "/" + "/".join(self.segments())

    def url_path(self) -> str:
        """The id as a request path: every segment percent-encoded on its own, so none can add or climb a level."""
        return "/" + "/".join(quote(segment, safe=_PATH_SAFE) for segment in self.segments())


# Marks and overrides that reorder how text is shown ("Trojan Source"): no resource id holds one.
def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def printable(text: str) -> str:
    """An id for a one-line message: quoted, with control characters escaped and long ids cut."""
    return repr(_clip(text))


def parse_resource_id(text: str) -> ResourceId:
    """The ARM resource id in `text`, or InvalidResourceId saying what is wrong with it.

    Strict, because a push writes to whatever the id names: only the documented shape, a GUID for the
    subscription, and no `.`, `..` or empty segments (a path like `…/vm/../../..` would climb to the
    subscription once a client or server normalises it). Extension resources (a second `/providers/`)
    are refused too: cost data does not carry them.
    """
    control = control_character(text, bidi=True)
    if control is not None:
        raise InvalidResourceId(f"it holds the control character {control!r}")
    if not text.startswith("/"):
        raise InvalidResourceId(f"it does not start with /subscriptions/ ({EXPECTED_SHAPE})")
    parts = text[1:].split("/")
    for index, part in enumerate(parts):
        if part in ("", ".", ".."):
            what = "an empty" if not part else f"a {part!r}"
            raise InvalidResourceId(f"it has {what} path segment (segment {index + 1})")
        if part != part.strip():
            raise InvalidResourceId(f"segment {index + 1} ({part!r}) starts or ends with a space")
    lowered = [p.lower() for p in parts]
    if len(parts) < 2 or lowered[0] != "subscriptions":
        raise InvalidResourceId(f"it does not start with /subscriptions/ ({EXPECTED_SHAPE})")
    if not _GUID.fullmatch(parts[1]):
        raise InvalidResourceId(f"the subscription {parts[1]!r} is not a GUID")
    if len(parts) < 4 or lowered[2] != "resourcegroups":
        raise InvalidResourceId(f"it names no resource group, so no resource ({EXPECTED_SHAPE})")
    if len(parts) < 6 or lowered[4] != "providers":
        raise InvalidResourceId(f"it names a resource group, not a resource ({EXPECTED_SHAPE})")
    if len(parts) < 7 or not _NAMESPACE.fullmatch(parts[5]):
        namespace = repr(parts[5]) if len(parts) > 5 else "nothing"
        raise InvalidResourceId(f"the provider namespace is {namespace}, not like Microsoft.Compute")
    tail = parts[6:]
    if not tail or len(tail) % 2:
        raise InvalidResourceId(f"the type and name segments after the namespace do not pair up ({EXPECTED_SHAPE})")
    types, names = tuple(tail[0::2]), tuple(tail[1::2])
    for kind in types:
        if kind.lower() == "providers":
            raise InvalidResourceId("it is an extension resource (a second /providers/): not supported")
        if not _TYPE.fullmatch(kind):
            raise InvalidResourceId(f"the resource type segment {kind!r} is not a type name")
    return ResourceId(parts[1], parts[3], parts[5], types, names)


def resource_id_problem(text: str) -> str | None:
    """Why `text` cannot be any provider's resource id, or None: the check where ids enter the cache.

    Looser than `parse_resource_id`, because files carry ids of every provider and charges of no single
    resource: AWS ARNs, GCP's `//service/...` names, `/providers/Microsoft.Capacity/reservationOrders/…`
    (Azure's own exports end some of those with a `/`). What no provider writes is refused: control
    characters, `.` or `..` segments, and empty segments inside the path. `invalid_resource_id_sql` is
    the same test in SQL.
    """
    control = control_character(text, bidi=True)
    if control is not None:
        return f"it holds the control character {control!r}"
    body = text[2:] if text.startswith("//") else text[1:] if text.startswith("/") else text
    body = body[:-1] if body.endswith("/") else body
    segments = body.split("/")
    if any(segment in (".", "..") for segment in segments):
        return "it has a '.' or '..' path segment"
    if "" in segments and text.startswith("/"):
        return "it has an empty path segment"
    return None


def invalid_resource_id_sql(expr: str) -> str:
    """SQL true when the id in `expr` fails `resource_id_problem` (NULL stays NULL: no id is fine).

    The control-character test costs ~0.6 s per million values: run it on distinct ids, not on rows.
    The other tests start with a cheap `strpos` so that ordinary ids never reach their expressions.
    """
    body = f"regexp_replace(regexp_replace({expr}, '^//?', ''), '/$', '')"
    control = (rf"regexp_matches({expr}, '[\x00-\x1f\x7f-\x9f\x{{2028}}\x{{2029}}\x{{061c}}\x{{200e}}\x{{200f}}"
               rf"\x{{202a}}-\x{{202e}}\x{{2066}}-\x{{2069}}]')")
    # A dot segment starts the body or follows a slash, so the id starts with `.` or holds `/.`.
    dots = rf"regexp_matches({body}, '(^|/)\.\.?(/|$)')"
    # An empty segment needs `//` in the id, or is the id `/` itself.
    empty = f"({body} = '' OR strpos({body}, '//') > 0 OR starts_with({body}, '/') OR ends_with({body}, '/'))"
    # CASE evaluates a branch only for the rows that reach it (OR and AND evaluate every operand).
    return (
        f"(CASE WHEN {expr} IS NULL THEN NULL "
        f"WHEN (strpos({expr}, '/.') > 0 OR starts_with({expr}, '.')) AND {dots} THEN true "
        f"WHEN starts_with({expr}, '/') AND ({expr} = '/' OR strpos({expr}, '//') > 0) AND {empty} THEN true "
        f"ELSE {control} END)"
    )


def arm_resource_id(resource_id: str, resource_group: str | None = None, name: str | None = None) -> str:
    """The id with `resourceGroups` and the group and resource names in their original casing.

    Charges lower-case ids because Azure varies their case between rows; ARM matches ids without regard
    to case, so this is for display and for requests that read naturally in logs. Provider namespaces
    keep the cache's casing: restoring `Microsoft.DocumentDB` would need a table for little gain.
    """
    parts = resource_id.split("/")
    out: list[str] = []
    previous = ""
    for index, part in enumerate(parts):
        lowered = part.lower()
        if lowered in _FIXED_SEGMENTS and index % 2 == 1:
            part = _FIXED_SEGMENTS[lowered]
        elif previous == "resourcegroups" and resource_group and lowered == resource_group.lower():
            part = resource_group
        elif index == len(parts) - 1 and name and lowered == name.lower():
            part = name
        out.append(part)
        previous = lowered
    return "/".join(out)
