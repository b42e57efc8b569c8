"""The tag-edit journal: apply tags in batches, undo and redo them, list them; it lives in the cache file."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

import duckdb

from finops_tui import clock
from finops_tui.allocation.effective import TagPolicy, rebuild_resource_tags
from finops_tui.allocation.tag_limits import TagLimitError, check_tag, count_problem
from finops_tui.basis.arm_ids import printable
from finops_tui.errors import UserError
from finops_tui.store import Cache

# Edits still to send to Azure: never sent, or sent and refused (the reason is in push_error).
UNSENT_STATUSES = ("pending", "failed")


@dataclass(frozen=True, slots=True)
class TagEdit:
    """One journal row: a resource's key went from old_value (effective before) to new_value."""

    edit_id: int
    batch_id: int
    resource_id: str
    resource_name: str | None
    tag_key: str
    old_value: str | None
    new_value: str | None  # None removes the tag locally
    origin: str
    created_at: dt.datetime
    undone: bool
    push_status: str  # pending | pushed | failed | local
    push_error: str | None
    pushed_at: dt.datetime | None

    @property
    def status(self) -> str:
        """What a person wants to read: undone, or the push status."""
        return "undone" if self.undone else self.push_status


@dataclass(frozen=True, slots=True)
class TagBatch:
    """One apply (or undo/redo) of a key to a set of resources."""

    batch_id: int
    tag_key: str
    new_value: str | None
    resources: int
    created_at: dt.datetime


def normalise_key(key: str) -> str:
    """Effective tag keys are canonical lower case (as provider keys are folded)."""
    cleaned = key.strip().lower()
    if not cleaned:
        raise UserError("give a tag key, e.g. team=payments")
    return cleaned


def apply_tags(
    cache: Cache,
    policy: TagPolicy,
    resource_ids: Collection[str],
    key: str,
    value: str | None,
    origin: str = "manual",
    *,
    push: bool = True,
) -> int | None:
    """Set `key` = `value` on resources (None removes it locally); returns the batch id, None if nothing changed.

    The edits are journalled first, in the same transaction that updates the effective tags of just
    those resources, so the change applies retroactively to the whole cached history in milliseconds.
    Resources that already carry the value from a provider tag or an earlier edit are skipped.
    `push=False` keeps the edits local (never sent to Azure); removals are always local. `policy` (the
    user's tag settings and rules) rebuilds those resources' effective tags.
    """
    key = normalise_key(key)
    value = value.strip() if value is not None else None
    if value == "":
        raise UserError(f"{key}=: give a value, e.g. {key}=payments")
    if value is not None:  # a removal stays local: even a key Azure set itself may be removed here
        check_tag(key, value)
    ids = sorted({r.strip().lower() for r in resource_ids if r and r.strip()})
    if not ids:
        return None
    status = "pending" if push and value is not None else "local"
    with cache.write() as cur:
        unknown = cur.execute(
            "SELECT id FROM unnest(?::VARCHAR[]) u(id) WHERE id NOT IN (SELECT ResourceId FROM resources) LIMIT 1",
            [ids],
        ).fetchone()
        if unknown:
            raise UserError(f"{printable(unknown[0])}: no such resource in the cache")
        if status == "pending":
            _check_tag_count(cur, ids, key)
        row = cur.execute("SELECT coalesce(max(batch_id), 0) + 1 FROM tag_edits").fetchone()
        batch_id = int(row[0]) if row else 1
        inserted = cur.execute(
            """
            INSERT INTO tag_edits (ResourceId, tag_key, old_value, new_value, origin, created_at, batch_id, push_status)
            SELECT u.id, $key, rt.tag_value, $value, $origin, $now, $batch, $status
            FROM unnest($ids::VARCHAR[]) u(id)
            LEFT JOIN resource_tags rt ON rt.ResourceId = u.id AND rt.tag_key = $key
            -- skip resources already carrying the value for real (a rule's value is worth making real)
            WHERE NOT (coalesce(rt.origin IN ('provider', 'manual'), false)
                       AND rt.tag_value IS NOT DISTINCT FROM $value)
              AND NOT (rt.tag_value IS NULL AND $value IS NULL)
            ORDER BY u.id
            RETURNING ResourceId
            """,
            {"key": key, "value": value, "origin": origin, "now": clock.now(), "batch": batch_id,
             "status": status, "ids": ids},
        ).fetchall()
        if not inserted:
            return None
        rebuild_resource_tags(cur, policy, resource_ids=[r[0] for r in inserted])
    return batch_id


def _check_tag_count(cur: duckdb.DuckDBPyConnection, ids: list[str], key: str) -> None:
    """Refuse an edit that would give a resource more tags than Azure allows once pushed.

    Counted as Azure would see it after the push: the resource's own tags, the keys of its live edits
    that are to be sent or were sent, and `key`; keys differing only in case count once (ARM folds them).
    """
    row = cur.execute(
        """
        WITH keys AS (
            SELECT r.ResourceId, lower(unnest(map_keys(r.Tags))) AS k FROM resources r
            WHERE r.Tags IS NOT NULL AND r.ResourceId IN (SELECT unnest($ids::VARCHAR[]))
            UNION
            SELECT e.ResourceId, e.tag_key FROM tag_edits e
            WHERE e.ResourceId IN (SELECT unnest($ids::VARCHAR[])) AND e.edit_id IN (
                SELECT max(edit_id) FROM tag_edits WHERE NOT undone GROUP BY ResourceId, tag_key)
              AND e.new_value IS NOT NULL AND e.push_status <> 'local'
            UNION
            SELECT unnest($ids::VARCHAR[]), $key
        )
        SELECT ResourceId, count(*) AS n FROM keys GROUP BY 1 ORDER BY n DESC, 1 LIMIT 1
        """,
        {"ids": ids, "key": key},
    ).fetchone()
    problem = count_problem(int(row[1])) if row else None
    if row is not None and problem is not None:
        raise TagLimitError(f"{printable(row[0])}: {key} not set: {problem}")


def _batch(cur: duckdb.DuckDBPyConnection, batch_id: int) -> TagBatch:
    row = cur.execute(
        "SELECT any_value(tag_key), any_value(new_value), count(*), min(created_at) FROM tag_edits WHERE batch_id = ?",
        [batch_id],
    ).fetchone()
    assert row is not None
    return TagBatch(batch_id, row[0], row[1], int(row[2]), row[3])


def _set_undone(cur: duckdb.DuckDBPyConnection, policy: TagPolicy, batch_id: int, undone: bool) -> TagBatch:
    cur.execute("UPDATE tag_edits SET undone = ? WHERE batch_id = ?", [undone, batch_id])
    ids = [r[0] for r in cur.execute("SELECT DISTINCT ResourceId FROM tag_edits WHERE batch_id = ?",
                                     [batch_id]).fetchall()]
    rebuild_resource_tags(cur, policy, resource_ids=ids)
    return _batch(cur, batch_id)


def undo(cache: Cache, policy: TagPolicy) -> TagBatch | None:
    """Undo the last live batch (its resources get back what they had); None when there is nothing to undo.

    A batch already merged into Azure cannot be undone here: set the tag again instead, so the cache
    and Azure never silently disagree.
    """
    with cache.write() as cur:
        row = cur.execute(
            "SELECT max(batch_id) FROM tag_edits WHERE NOT undone"
        ).fetchone()
        if row is None or row[0] is None:
            return None
        batch_id = int(row[0])
        pushed = cur.execute(
            "SELECT count(*) FROM tag_edits WHERE batch_id = ? AND push_status = 'pushed'", [batch_id]
        ).fetchone()
        if pushed and pushed[0]:
            raise UserError(
                f"batch {batch_id} was already sent to Azure; set the tag again to change it "
                "(`finops-tui tags set ...`)"
            )
        return _set_undone(cur, policy, batch_id, True)


def redo(cache: Cache, policy: TagPolicy) -> TagBatch | None:
    """Redo the most recently undone batch, unless a new batch was applied since (as in an editor)."""
    with cache.write() as cur:
        row = cur.execute(
            """
            SELECT min(batch_id) FROM tag_edits
            WHERE undone AND batch_id > (SELECT coalesce(max(batch_id), 0) FROM tag_edits WHERE NOT undone)
            """
        ).fetchone()
        if row is None or row[0] is None:
            return None
        return _set_undone(cur, policy, int(row[0]), False)


_EDIT_COLUMNS = """
    e.edit_id, e.batch_id, e.ResourceId, r.ResourceName, e.tag_key, e.old_value, e.new_value, e.origin,
    e.created_at, e.undone, e.push_status, e.push_error, e.pushed_at
"""


def list_edits(
    cur: duckdb.DuckDBPyConnection, *, limit: int | None = None, include_undone: bool = True
) -> list[TagEdit]:
    """The journal, oldest first (the last `limit` edits when given)."""
    where = "" if include_undone else " WHERE NOT e.undone"
    limit_sql = f" ORDER BY e.edit_id DESC LIMIT {int(limit)}" if limit is not None else ""
    rows = cur.execute(
        f"SELECT * FROM (SELECT {_EDIT_COLUMNS} FROM tag_edits e "
        f"LEFT JOIN resources r ON r.ResourceId = e.ResourceId{where}{limit_sql}) ORDER BY edit_id"
    ).fetchall()
    return [TagEdit(*row) for row in rows]


def pending_edits(cur: duckdb.DuckDBPyConnection) -> list[TagEdit]:
    """Live edits still to send to Azure: the latest edit of each (resource, key), if unsent and a value."""
    rows = cur.execute(
        f"""
        WITH latest AS (
            SELECT max(edit_id) AS edit_id FROM tag_edits WHERE NOT undone GROUP BY ResourceId, tag_key
        )
        SELECT {_EDIT_COLUMNS} FROM tag_edits e JOIN latest USING (edit_id)
        LEFT JOIN resources r ON r.ResourceId = e.ResourceId
        WHERE e.push_status IN ('pending', 'failed') AND e.new_value IS NOT NULL
        ORDER BY e.ResourceId, e.tag_key
        """
    ).fetchall()
    return [TagEdit(*row) for row in rows]
