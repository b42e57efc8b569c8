"""Azure's limits on tags, checked before a tag is journaled, saved in a rule or pushed.

From Microsoft's documentation ("Use tags to organize your Azure resources", Limitations; the Tags API
reference): a tag name holds at most 512 characters and a value at most 256; names cannot contain
`<`, `>`, `%`, `&`, `\\`, `?` or `/`; names starting with `microsoft`, `azure` or `windows` are reserved
for Azure; a resource carries at most 50 tags. ARM refuses a whole Merge when one tag breaks a rule,
which would also block that resource's valid tags, so nothing that breaks one is ever sent.
"""

from __future__ import annotations

from finops_tui.errors import UserError
from finops_tui.textsafe import control_character

MAX_KEY_LENGTH = 512
MAX_VALUE_LENGTH = 256
MAX_TAGS_PER_RESOURCE = 50
FORBIDDEN_KEY_CHARACTERS = "<>%&\\?/"
RESERVED_KEY_PREFIXES = ("microsoft", "azure", "windows")


class TagLimitError(UserError):
    """A tag Azure would refuse; the message names the key and the rule it breaks."""


def _shown(text: str, limit: int = 40) -> str:
    """A key or value for a message: quoted, control characters escaped, long ones cut."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def key_problem(key: str) -> str | None:
    """Why Azure would refuse `key` as a tag name (one phrase), or None."""
    if not key.strip():
        return "the key is empty"
    control = control_character(key)
    if control is not None:
        return f"the key holds the control character {control!r} (a line break or terminal code)"
    if len(key) > MAX_KEY_LENGTH:
        return f"the key is {len(key):,} characters long; Azure allows at most {MAX_KEY_LENGTH}"
    forbidden = sorted({c for c in key if c in FORBIDDEN_KEY_CHARACTERS})
    if forbidden:
        return f"the key holds {' '.join(forbidden)}; Azure tag names cannot contain any of < > % & \\ ? /"
    prefix = next((p for p in RESERVED_KEY_PREFIXES if key.strip().lower().startswith(p)), None)
    if prefix is not None:
        return f"keys starting with {prefix!r} are reserved for Azure's own tags ({', '.join(RESERVED_KEY_PREFIXES)})"
    return None


def value_problem(value: str) -> str | None:
    """Why Azure would refuse `value` as a tag value (one phrase), or None."""
    control = control_character(value)
    if control is not None:
        return f"the value holds the control character {control!r} (a line break or terminal code)"
    if len(value) > MAX_VALUE_LENGTH:
        return f"the value is {len(value):,} characters long; Azure allows at most {MAX_VALUE_LENGTH}"
    return None


def tag_problem(key: str, value: str | None) -> str | None:
    """The first rule `key`=`value` breaks, or None (a removal, value None, only checks the key)."""
    return key_problem(key) or (value_problem(value) if value is not None else None)


def check_tag(key: str, value: str | None) -> None:
    """Raise TagLimitError naming the key when Azure would refuse the tag."""
    problem = tag_problem(key, value)
    if problem is not None:
        raise TagLimitError(f"tag {_shown(key)}: {problem}")


def count_problem(count: int) -> str | None:
    """Why a resource cannot carry `count` tags, or None."""
    if count > MAX_TAGS_PER_RESOURCE:
        return f"it would carry {count} tags; Azure allows at most {MAX_TAGS_PER_RESOURCE} per resource"
    return None
