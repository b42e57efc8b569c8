"""Tag edits as the explorer makes them: several values in one go, undo and redo, a new rule applied at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from finops_tui.allocation import journal
from finops_tui.allocation.effective import TagPolicy, reapply_rules
from finops_tui.allocation.rules import Rule, save_rule
from finops_tui.store import Cache

# The journal's writes go through Cache.write(), which serialises them; rules.toml has no such guard, and two
# rules saved at once would each read the file before the other wrote it.
_rules_lock = threading.Lock()


@dataclass(frozen=True)
class TagsAssigned:
    """Tag edits journalled, and the effective tags of those resources updated (all cached history)."""

    key: str
    values: list[str]
    batches: list[int]  # one per value that changed something
    resources: int


def assign_tags(cache: Cache, policy: TagPolicy, assignments: dict[str, list[str]], key: str) -> TagsAssigned:
    """Apply `value -> resource ids` for `key` in the journal, one batch per value."""
    batches: list[int] = []
    changed = 0
    for value, ids in assignments.items():
        batch = journal.apply_tags(cache, policy, ids, key, value)
        if batch is not None:
            batches.append(batch)
            # The journal skips resources that already carry the value; the queue only lists
            # resources without one, so every id here is an edit.
            changed += len(set(ids))
    return TagsAssigned(journal.normalise_key(key), list(assignments), batches, changed)


def revert(cache: Cache, policy: TagPolicy, verb: str) -> journal.TagBatch | None:
    """`undo` or `redo` the last batch; None when there is nothing to revert."""
    action = journal.undo if verb == "undo" else journal.redo
    return action(cache, policy)


def add_rule(cache: Cache, rule: Rule, policy_as_saved: Callable[[], TagPolicy]) -> Rule:
    """Append `rule` to rules.toml, then derive every resource's tags again with `policy_as_saved()` (the
    caller loads the policy: this layer never reads rules.toml)."""
    with _rules_lock:
        saved = save_rule(rule)
        reapply_rules(cache, policy_as_saved())
    return saved
