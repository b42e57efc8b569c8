"""Azure resource ids: the cache keeps them lower-cased; people and ARM prefer the provider's casing."""

from __future__ import annotations

# Fixed path segments of an ARM id, in the casing the portal and the REST API print.
_FIXED_SEGMENTS = {"subscriptions": "subscriptions", "resourcegroups": "resourceGroups", "providers": "providers"}


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
