"""A tag edit on a provider split's host re-marks the split rows an `allocated = true` pool matches by host tags."""

from __future__ import annotations

from pathlib import Path

from finops_tui.allocation.effective import TagPolicy
from finops_tui.allocation.journal import apply_tags, undo
from finops_tui.allocation.rules import Rule
from finops_tui.allocation.shared import Pool, apply_pools
from finops_tui.store import Cache, open_cache, summaries
from tests.splits_data import HOST, imported_splits

POOL = Pool("shared-nodes", "team", "even", Rule(set_tags={}, tags={"shared": "yes"}), allocated=True, index=1)


def _state(cache: Cache) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with cache.cursor() as cur:
        marks = cur.execute(
            "SELECT x_SharedPool, count(*), sum(EffectiveCost) FROM charges GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        splits = cur.execute("SELECT * FROM shared_splits ORDER BY ALL").fetchall()
        assert summaries.differences(cur) == []
    return marks, splits


def test_a_host_tag_edit_moves_its_consumers_rows_as_a_full_refresh_would(tmp_path: Path) -> None:
    policy = TagPolicy(pools=(POOL,))
    with open_cache(imported_splits(tmp_path)) as cache:
        apply_pools(cache, [POOL])
        before = _state(cache)
        assert all(mark is None for mark, *_ in before[0])  # no host says shared = yes yet

        apply_tags(cache, policy, [HOST], "shared", "yes", push=False)
        after_edit = _state(cache)
        apply_pools(cache, [POOL])  # every row evaluated afresh
        assert _state(cache) == after_edit
        assert any(mark == 1 for mark, *_ in after_edit[0])  # the host's split rows went to the pool

        undo(cache, policy)
        assert _state(cache) == before
