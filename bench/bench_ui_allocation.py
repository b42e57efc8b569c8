"""Benchmark: the allocation and tagging screens driven headless through Pilot: expand, switch, tag 1,000.

`run(cache)` returns the harness's dicts (name, rows, app_ms, raw_ms, ratio). Times are the screens' own
measurements, taken by `TimedAllocation`, a subclass of the shipped screen registered for the run
(`expand_ms`: the key's handler → the children painted; `root_ms`: the request → the top level painted),
so Pilot's bookkeeping between key presses is not counted. `raw` is the same read model called directly on
a cursor, cold (no Textual, no prefetch).

"As shipped" means the user reads between steps: the screen's prefetch (the expansions under the cursor
and on screen, the other saved hierarchies' top levels) finishes before the next key. "Cold" switches
the prefetch and the result cache off, so each step runs its query while the user waits.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TODAY = dt.date(2026, 11, 27)  # the demo caches end 2026-11-26: their data is fresh on this day
SIZE = (120, 40)
PER_LEVEL = 6  # expansions measured per level of the default hierarchy
TAGGED = 1000
DEFAULT = ["tag:team", "subscription", "resource-group", "resource"]
BY_SERVICE = ["service", "resource-group", "resource"]
COLD_HIERARCHY = ["region", "subscription", "resource"]
TARGETS = {1_000_000: {"expand": 50.0, "switch": 400.0, "tag": 1000.0},
           10_000_000: {"expand": 150.0, "switch": 400.0, "tag": 1000.0}}

Result = dict[str, Any]


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] if len(samples) >= 2 else samples[0]


def _result(name: str, rows: int, app_ms: float, raw_ms: float | None, **extra: Any) -> Result:
    return {"name": name, "rows": rows, "app_ms": round(app_ms, 1), "raw_ms": round(raw_ms, 1) if raw_ms else None,
            "ratio": round(app_ms / raw_ms, 2) if raw_ms else None, **extra}


async def _idle(pilot: Any) -> None:
    """The user reads: every worker (queries, prefetch) finishes and the screen repaints."""
    from textual.worker import WorkerCancelled

    app = pilot.app
    await pilot.pause()
    while running := [w for w in app.workers if not w.is_finished and not w.is_cancelled]:
        with suppress(WorkerCancelled):
            await app.workers.wait_for_complete(running)
        await asyncio.sleep(0)
    await pilot.pause()


async def _until(pilot: Any, done: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.perf_counter() + timeout
    while not done():
        if time.perf_counter() > deadline:
            raise TimeoutError("the screen did not repaint in time")
        await pilot.pause(0.001)


def _grew(samples: list[float], count: int) -> bool:
    return len(samples) > count


async def _expansions(pilot: Any, screen: Any, *, settle_between: bool) -> list[tuple[int, str, float]]:
    """Expand PER_LEVEL nodes at each level, drilling into the largest allocated one: (level, path, ms)."""
    tree = screen.tree_view
    samples: list[tuple[int, str, float]] = []
    parent: tuple[Any, ...] = ()
    for level in range(len(screen.shown_hierarchy) - 1):
        branches = [b for b in tree.level_branches(parent) if b.expandable][:PER_LEVEL]
        for branch in branches:
            tree.reveal(branch.path, expand=False)  # the cursor lands on it (j/k in real use)
            if settle_between:
                await _idle(pilot)
            else:
                await pilot.pause()
            measured = len(screen.expand_ms)
            await pilot.press("l")
            await _until(pilot, partial(_grew, screen.expand_ms, measured))
            label = " > ".join(step.label for step in branch.trail)
            samples.append((level, label, screen.expand_ms[-1]))
            await pilot.press("h")  # fold it again: the next one is expanded from the same screen
        chosen = next((b for b in branches if not b.node.is_unallocated), None)
        if chosen is None:
            break
        tree.reveal(chosen.path)  # stays open: the next level's nodes are its children
        await _idle(pilot)
        parent = chosen.path
    return samples


async def _drive(cache_path: Path) -> dict[str, Any]:
    from finops_tui.config import Config
    from finops_tui.store import open_cache
    from finops_tui.ui import app as app_module
    from finops_tui.ui.app import FinopsApp
    from finops_tui.ui.launch import close_when_idle
    from finops_tui.ui.messages import TagsApplied
    from finops_tui.ui.screens.allocation import AllocationScreen
    from finops_tui.ui.screens.tagging import TaggingScreen

    class TimedTagging(TaggingScreen):
        """The tagging view, timing each edit from the dialog's answer to the journalled message."""

        def __init__(self) -> None:
            super().__init__()
            self.edit_ms: list[float] = []
            self._edit_started = 0.0

        def _apply(self, assignments: dict[str, list[str]], key: str, items: Any) -> None:
            self._edit_started = time.monotonic()
            super()._apply(assignments, key, items)

        def on_tags_applied(self, message: TagsApplied) -> None:
            self.edit_ms.append((time.monotonic() - self._edit_started) * 1000)

    class TimedAllocation(AllocationScreen):
        """The allocation tree, timing each top level (request → painted) and expansion (key → children painted)."""

        def __init__(self) -> None:
            super().__init__()
            self.root_ms: list[float] = []
            self.expand_ms: list[float] = []
            self.root_painted_at = 0.0  # time.monotonic() of the last painted top level
            self._tree_requested_at = 0.0

        def request_tree(self, *, keep_state: bool) -> None:
            self._tree_requested_at = time.monotonic()
            super().request_tree(keep_state=keep_state)

        def _show_tree(self, loaded: Any) -> None:
            super()._show_tree(loaded)
            self.app.call_after_refresh(self._root_painted, self._tree_requested_at)

        def _root_painted(self, started: float) -> None:
            self.root_painted_at = time.monotonic()
            self.root_ms.append((self.root_painted_at - started) * 1000)

        def _apply_children(self, branch: Any, nodes: Any) -> None:
            started = branch.loading_since  # time.monotonic() of the key press that asked for them
            super()._apply_children(branch, nodes)
            if started is not None:
                self.app.call_after_refresh(lambda: self.expand_ms.append((time.monotonic() - started) * 1000))

    figures: dict[str, Any] = {}
    shipped = dict(app_module.VIEW_SCREENS)
    app_module.VIEW_SCREENS.update(allocation=TimedAllocation, tagging=TimedTagging)
    cache = open_cache(cache_path)
    try:
        config = Config(hierarchies={"default": DEFAULT, "by-service": BY_SERVICE})
        app = FinopsApp(cache, config=config)
        async with app.run_test(size=SIZE) as pilot:
            await _idle(pilot)
            await pilot.press("2")
            await _idle(pilot)
            screen = app.screen
            assert isinstance(screen, TimedAllocation)
            figures["first_root_ms"] = screen.root_ms[-1]
            figures["expand_shipped"] = await _expansions(pilot, screen, settle_between=True)

            # Switch hierarchy, as shipped: `v` cycles to the saved one, whose top level was prefetched.
            switches = []
            for _ in range(4):
                await _idle(pilot)
                measured = len(screen.root_ms)
                await pilot.press("v")
                await _until(pilot, partial(_grew, screen.root_ms, measured))
                switches.append(screen.root_ms[-1])
            figures["switch_shipped"] = switches

            # Cold: no prefetch, no memory of earlier answers.
            screen.prefetch = False
            screen._results.clear()
            cold_switches = []
            for hierarchy in (COLD_HIERARCHY, BY_SERVICE, DEFAULT):
                await _idle(pilot)
                screen._results.clear()
                measured = len(screen.root_ms)
                screen.set_hierarchy(hierarchy, None)  # what the hierarchy dialog's Apply calls
                await _until(pilot, partial(_grew, screen.root_ms, measured))
                cold_switches.append(screen.root_ms[-1])
            figures["switch_cold"] = cold_switches
            await _idle(pilot)
            screen._results.clear()
            figures["expand_cold"] = await _expansions(pilot, screen, settle_between=True)
            screen.prefetch = True

            # Tag 1,000 marked resources, then look at the tree again.
            await pilot.press("4")
            await _idle(pilot)
            tagging = app.screen
            assert isinstance(tagging, TimedTagging) and tagging.queue is not None
            table = tagging.table
            ids = [item.resource_id for item in table.listed_items()[:TAGGED]]
            # Marking 1,000 rows through Pilot would time Pilot; the user marks groups with `a` instead.
            table.marked = set(ids)
            table._marks_changed()
            await pilot.press("t")
            await pilot.pause()
            await pilot.press("ctrl+u", *"bench-team")
            version = app.tags_version
            tree_paints = len(screen.root_ms)
            await pilot.press("enter")
            await _until(pilot, lambda: app.tags_version > version)
            # The user presses 2 as the "Tagged" notice shows. Pilot returns from `enter` only once the
            # queue's reload has finished too, so the key is timed from when it is sent, and the wait
            # in between is left out.
            sent = time.monotonic()  # the clock the screens stamp their paints with
            await pilot.press("2")
            await _until(pilot, lambda: len(screen.root_ms) > tree_paints)
            figures["tagged"] = len(ids)
            figures["tag_apply_ms"] = tagging.edit_ms[-1]
            figures["tag_tree_ms"] = (screen.root_painted_at - sent) * 1000
            figures["tag_total_ms"] = figures["tag_apply_ms"] + figures["tag_tree_ms"]
            unallocated = next((b for b in screen.tree_view.level_branches(()) if b.node.is_unallocated), None)
            figures["unallocated_after"] = str(unallocated.cost) if unallocated else None
    finally:
        app_module.VIEW_SCREENS.update(shipped)
        close_when_idle(cache)
    return figures


def _raw(cache_path: Path) -> dict[str, Any]:
    """The read models alone, cold, for the same steps: expansions, hierarchy roots, tag + top level."""
    from finops_tui.allocation.effective import TagPolicy
    from finops_tui.allocation.journal import apply_tags, undo
    from finops_tui.basis.metrics import currencies
    from finops_tui.basis.periods import resolve_period
    from finops_tui.report.tree import children
    from finops_tui.store import open_cache
    from finops_tui.ui.screens.allocation_data import CHILDREN_LIMIT

    out: dict[str, Any] = {}
    with open_cache(cache_path) as store:
        with store.cursor() as cur:
            row = cur.execute("SELECT count(*) FROM charges").fetchone()
            out["rows"] = int(row[0]) if row else 0
            period, _ = resolve_period(cur, "mtd")
            currency = (currencies(cur, period) or ["USD"])[0]

            def timed(fn: Callable[[], Any]) -> float:
                start = time.perf_counter()
                fn()
                return (time.perf_counter() - start) * 1000

            expand: list[float] = []
            path: list[tuple[str, str | None]] = []
            for _level in range(len(DEFAULT) - 1):
                nodes = children(cur, DEFAULT, path, period, "effective", currency, limit=CHILDREN_LIMIT)
                expandable = [n for n in nodes if not n.is_other][:PER_LEVEL]
                for node in expandable:
                    expand.append(timed(partial(children, cur, DEFAULT, [*path, node.step], period, "effective",
                                                currency, limit=CHILDREN_LIMIT)))
                chosen = next((n for n in expandable if not n.is_unallocated), None)
                if chosen is None:
                    break
                path.append(chosen.step)
            out["expand"] = expand
            out["switch"] = [timed(partial(children, cur, h, [], period, "effective", currency,
                                           limit=CHILDREN_LIMIT))
                             for h in (COLD_HIERARCHY, BY_SERVICE, DEFAULT)]
            untagged = [r[0] for r in cur.execute(
                "SELECT ResourceId FROM resources WHERE ResourceId NOT IN "
                "(SELECT ResourceId FROM resource_tags WHERE tag_key = 'team') ORDER BY ResourceId LIMIT ?",
                [TAGGED],
            ).fetchall()]
        start = time.perf_counter()
        apply_tags(store, TagPolicy(), untagged, "team", "raw-bench")
        with store.cursor() as cur:
            children(cur, DEFAULT, [], period, "effective", currency, limit=CHILDREN_LIMIT)
        out["tag"] = (time.perf_counter() - start) * 1000
        undo(store, TagPolicy())
    return out


def run(cache: Path) -> list[Result]:
    from finops_tui import clock

    # Tagging writes to the cache and the hierarchy dialog to config: work on copies, in a scratch home.
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "bench.duckdb"
        shutil.copyfile(cache, copy)
        saved_env = {k: os.environ.get(k) for k in ("FINOPS_TUI_CONFIG_DIR", "FINOPS_TUI_DATA_DIR")}
        os.environ["FINOPS_TUI_CONFIG_DIR"] = str(Path(scratch) / "config")
        os.environ["FINOPS_TUI_DATA_DIR"] = str(Path(scratch) / "data")
        clock.pin(TODAY)
        load_before = os.getloadavg()[0]
        try:
            raw = _raw(copy)
            app = asyncio.run(_drive(copy))
        finally:
            clock.pin(None)
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        load = f"{load_before:.1f}-{os.getloadavg()[0]:.1f}"
    return _results(raw, app, load)


def _results(raw: dict[str, Any], app: dict[str, Any], load: str) -> list[Result]:
    rows = raw["rows"]
    size = min(TARGETS, key=lambda n: abs(n - rows))
    targets = TARGETS[size]
    results: list[Result] = []
    raw_expand = _p95(raw["expand"])
    for kind in ("shipped", "cold"):
        samples = app[f"expand_{kind}"]
        times = [ms for _, _, ms in samples]
        by_level = {level: round(max(ms for lv, _, ms in samples if lv == level), 1)
                    for level in sorted({lv for lv, _, _ in samples})}
        results.append(_result(
            f"tree: expand a node, key → painted, p95 ({kind}{', prefetched' if kind == 'shipped' else ''})", rows,
            _p95(times), raw_expand, samples=len(times), p50_ms=round(statistics.median(times), 1),
            max_by_level=by_level, target_ms=targets["expand"], load=load,
        ))
    raw_switch = max(raw["switch"])
    results.append(_result("tree: switch hierarchy with v (shipped, top level prefetched), max", rows,
                           max(app["switch_shipped"]), raw_switch, samples=app["switch_shipped"],
                           target_ms=targets["switch"], load=load))
    results.append(_result("tree: switch to a new hierarchy (cold query), max", rows, max(app["switch_cold"]),
                           raw_switch, samples=[round(ms, 1) for ms in app["switch_cold"]],
                           target_ms=targets["switch"], load=load))
    results.append(_result(
        f"tag {app['tagged']:,} marked resources (enter) + tree repainted (key 2)", rows, app["tag_total_ms"],
        raw["tag"], apply_ms=round(app["tag_apply_ms"], 1), key_2_to_tree_ms=round(app["tag_tree_ms"], 1),
        target_ms=targets["tag"], load=load,
    ))
    return results


if __name__ == "__main__":
    for result in run(Path(sys.argv[1])):
        print(result)
