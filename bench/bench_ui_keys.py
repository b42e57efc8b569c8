"""Benchmark: key → view content painted, for every view switch, the resource detail, help and the palette.

The real app runs headless as the command line starts it (views mounted ahead, result cache and prefetch on).
A key is posted to the app as the terminal driver posts it (not through `Pilot.press`, whose idle waits would
be counted), and "painted" is the first frame the app writes for the target screen once that screen's main
answer is on it (its `end_query`; the recommendations' stored run). A frame is rendered to terminal output as
a real terminal's would be, although the headless driver throws it away.
Beside each figure, the UI thread's CPU time over the same span (p50): the part of it that is the screens' own
work, which a loaded machine stretches but does not change (the queries run in worker threads).
The first visit of each view is reported apart from the later ones (p50 and p95 over `ROUNDS` passes), once
with the views mounted ahead (the user read the overview for a moment first) and once cold: the app as shipped,
each key pressed as soon as the view before it is painted, before the views are mounted ahead (until
2026-12-07 18:00 the cold run turned mounting ahead off instead, and the harness polled for frames every
millisecond on the UI thread; it now waits for them).
The tagging queue paints its rows first and its suggestions after (2026-12-07 21:00): "tagging painted" is the
rows' first frame, "tagging, suggestions painted" the first frame with the suggestions, and the next key waits
for the latter. `--cold-only` runs just the cold first switches (a quick look; about 10 s at 10M rows).
`run(cache)` returns the harness's dicts; there is no raw DuckDB equivalent (`raw_ms` is null): the point is
what the screens add on top of the few milliseconds their queries take (bench_reports, bench_allocation).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

TODAY = dt.date(2026, 11, 27)  # the bench demo caches end 2026-11-26: their data is fresh on this day
SIZE = (160, 48)
ROUNDS = 6  # passes over the view keys after the first visit
TARGET_SWITCH_P95_MS = 150  # on the default demo; the first switch < 300 ms; 10M rows < 250 ms
KEY_CHARS = {"question_mark": "?"}

Result = dict[str, Any]


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Frames:
    """When each screen was last given its main answer, and every frame the app wrote, by screen."""

    def __init__(self) -> None:
        self.answered: dict[int, float] = {}  # id(screen) → when its main answer was put on it
        # id(screen) → when its answer was complete (the tagging queue's suggestions come after its rows)
        self.completed: dict[int, float] = {}
        self.frames: list[tuple[float, float, int]] = []  # (when written, UI thread's CPU time, id(screen))
        # Set on each answer and frame: the harness waits on it instead of polling the UI thread's event loop
        # every millisecond (which cost that thread CPU and time of its own).
        self.news = asyncio.Event()

    def answer(self, screen: Any, when: float) -> None:
        self.answered[id(screen)] = when
        self.news.set()

    def complete(self, screen: Any, when: float) -> None:
        self.completed[id(screen)] = when
        self.news.set()

    def frame(self, screen: Any) -> None:
        self.frames.append((time.perf_counter(), time.thread_time(), id(screen)))
        self.news.set()

    def painted(self, screen: Any, since: float, *, complete: bool = False) -> tuple[float, float] | None:
        """The first frame of `screen` written after `since` and after its main answer (`complete`: its complete
        answer), if any yet: when, and the UI thread's CPU time then."""
        answers = self.completed if complete else self.answered
        after = max(since, answers.get(id(screen), float("inf")))
        first = None
        for when, cpu, shown in reversed(self.frames):
            if when < after:
                break
            if shown == id(screen):
                first = (when, cpu)
        return first


async def _drive(cache: Path, *, reads: bool, rounds: int) -> dict[str, Any]:
    """`reads`: the user reads each view until the app is idle and every view is mounted ahead before the next key;
    otherwise each key follows the previous view's first paint at once (cold)."""
    from textual import events
    from textual._compositor import CompositorUpdate
    from textual.app import App

    from finops_tui.config import Config
    from finops_tui.store import open_cache
    from finops_tui.ui.app import VIEW_SCREENS, FinopsApp
    from finops_tui.ui.launch import close_when_idle
    from finops_tui.ui.screens.cost_view import CostViewScreen
    from finops_tui.ui.screens.recommendations import RecommendationsScreen
    from finops_tui.ui.views import VIEWS

    seen = Frames()
    # Instrument our own screens (the moment each one's main answer is shown) and the frames written.
    shipped_end_query = CostViewScreen.end_query
    shipped_hide = RecommendationsScreen._hide_loading
    shipped_display = App._display
    from finops_tui.ui.widgets.alloc_queue import QueueTable

    shipped_show_queue = QueueTable.show_queue

    def end_query(self: Any, focus: Any = None) -> None:
        shipped_end_query(self, focus)
        seen.answer(self, time.perf_counter())

    def hide_loading(self: Any) -> None:
        shipped_hide(self)
        seen.answer(self, time.perf_counter())

    def display(self: Any, screen: Any, renderable: Any) -> None:
        shipped_display(self, screen, renderable)
        if renderable is None or self._batch_count:
            return
        if self.is_headless and isinstance(renderable, CompositorUpdate):
            renderable.render_segments(self.console)  # what a terminal's frame costs; headless skips it
        seen.frame(screen)

    def show_queue(self: Any, queue: Any, **options: Any) -> None:
        shipped_show_queue(self, queue, **options)
        if getattr(queue, "suggested", True):  # commits before 2026-12-07 21:00 had no second step
            seen.complete(self.screen, time.perf_counter())

    CostViewScreen.end_query = end_query  # type: ignore[method-assign]
    QueueTable.show_queue = show_queue  # type: ignore[method-assign]
    RecommendationsScreen._hide_loading = hide_loading  # type: ignore[method-assign]
    App._display = display  # type: ignore[method-assign]
    store = open_cache(cache, shared=True)
    first: dict[str, float] = {}
    again: dict[str, list[float]] = {view.mode: [] for view in VIEWS}
    extra: dict[str, list[float]] = {"help": [], "palette": [], "resource detail": []}
    cpu: dict[str, list[float]] = {}  # the UI thread's CPU time from key to painted (robust to a loaded machine)
    try:
        # Older commits (a baseline taken before views were mounted ahead) run as they shipped.
        supported = "mount_ahead" in inspect.signature(FinopsApp).parameters
        ahead: dict[str, Any] = {"mount_ahead": True} if supported else {}
        app = FinopsApp(store, config=Config(), **ahead)
        async with app.run_test(size=SIZE) as pilot:
            cpu_at_press = 0.0

            def press(key: str) -> float:
                nonlocal cpu_at_press
                event = events.Key(key, KEY_CHARS.get(key, key if len(key) == 1 else None))
                event.set_sender(app)
                cpu_at_press = time.thread_time()
                pressed = time.perf_counter()
                app.post_message(event)
                return pressed

            async def news() -> None:
                seen.news.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(seen.news.wait(), 0.05)

            async def painted(target: type[Any], since: float, bucket: str = "", *, complete: bool = False) -> float:
                while not isinstance(app.screen, target) or (
                        frame := seen.painted(app.screen, since, complete=complete)) is None:
                    await news()
                when, cpu_then = frame
                if bucket:
                    cpu.setdefault(bucket, []).append((cpu_then - cpu_at_press) * 1000)
                return (when - since) * 1000

            def made_ahead() -> bool:
                """Every view, and the resource detail screen (commits since 2026-12-07 18:40), made ahead."""
                if not getattr(app, "views_mounted_ahead", True):
                    return False
                if not hasattr(app, "_resource_screen"):
                    return True
                detail: Any = app._resource_screen
                return detail is not None and bool(detail.is_mounted)

            async def idle() -> None:
                """Until no worker runs (prefetches included) and, as shipped, everything is made ahead: the user
                reads a view for a moment before the next key."""
                while any(not worker.is_finished for worker in app.workers) or not made_ahead():
                    await pilot.pause(0.01)
                await pilot.pause(0.05)

            await painted(VIEW_SCREENS["overview"], 0.0)
            if reads:
                await idle()
            order = [view for view in VIEWS if view.mode != "overview"] + [VIEWS[0]]
            for view in order:
                since = press(view.key)
                first[view.mode] = await painted(VIEW_SCREENS[view.mode], since, f"first {view.mode}")
                if view.mode == "tagging":
                    # Its rows paint first, the suggestions after: the next key waits for them (as it did when
                    # they came together), so the next view's figure is comparable with earlier runs.
                    first["tagging, suggestions"] = await painted(VIEW_SCREENS[view.mode], since,
                                                                  "first tagging, suggestions", complete=True)
                if reads:
                    await idle()
            await idle()
            for _ in range(rounds):
                for view in order:
                    again[view.mode].append(await painted(VIEW_SCREENS[view.mode], press(view.key), "later switch"))
                    await pilot.pause(0.05)
                await idle()
            if not rounds:
                return {"first": first, "cpu": cpu}
            from textual.command import CommandPalette

            from finops_tui.ui.dialogs.help import HelpDialog
            from finops_tui.ui.screens.resource_detail import ResourceDetailScreen

            resource_id = store_resource(store)
            modals: list[tuple[type[Any], str, str]] = [(HelpDialog, "question_mark", "help"),
                                                        (CommandPalette, "ctrl+p", "palette")]
            for _ in range(rounds):
                for modal, key, bucket in modals:
                    since = press(key)
                    while not isinstance(app.screen, modal):
                        await news()
                    seen.answered[id(app.screen)] = 0.0  # a dialog has no query: its first frame is its content
                    extra[bucket].append(await painted(modal, since, bucket))
                    await pilot.press("escape")
                    await pilot.pause(0.05)
                cpu_at_press = time.thread_time()
                since = time.perf_counter()
                app.open_resource(resource_id)
                extra["resource detail"].append(await painted(ResourceDetailScreen, since, "resource detail"))
                await pilot.press("escape")
                await idle()
    finally:
        CostViewScreen.end_query = shipped_end_query  # type: ignore[method-assign]
        RecommendationsScreen._hide_loading = shipped_hide  # type: ignore[method-assign]
        App._display = shipped_display  # type: ignore[method-assign]
        QueueTable.show_queue = shipped_show_queue  # type: ignore[method-assign]
        close_when_idle(store)
    return {"first": first, "again": again, "extra": extra, "cpu": cpu}


def store_resource(store: Any) -> str:
    """The costliest resource of the cache (what a user opens first)."""
    with store.cursor() as cur:
        row = cur.execute(
            "SELECT ResourceId FROM charges WHERE ResourceId IS NOT NULL GROUP BY 1 ORDER BY sum(EffectiveCost) DESC "
            "LIMIT 1"
        ).fetchone()
    return str(row[0])


def _result(name: str, rows: int, samples: list[float], **extra: Any) -> Result:
    return {"name": name, "rows": rows, "app_ms": round(_p(samples, 0.95), 1), "raw_ms": None, "ratio": None,
            "p50_ms": round(_p(samples, 0.5), 1), "samples": len(samples), **extra}


def run(cache: Path, *, cold_only: bool = False) -> list[Result]:
    """Every figure; `cold_only`: only the cold first switches (a quick look at the cold path)."""
    import duckdb

    from finops_tui import clock

    con = duckdb.connect(str(cache), read_only=True)
    row = con.execute("SELECT count(*) FROM charges").fetchone()
    con.close()
    rows = int(row[0]) if row else 0
    clock.pin(TODAY)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            copy = Path(scratch) / "bench.duckdb"
            shutil.copyfile(cache, copy)  # the recommendations view stores its run in the cache
            shipped = None if cold_only else asyncio.run(_drive(copy, reads=True, rounds=ROUNDS))
            cold = asyncio.run(_drive(copy, reads=False, rounds=0))
    finally:
        clock.pin(None)
    def ui_cpu(figures: dict[str, Any], bucket: str) -> dict[str, float]:
        samples = figures["cpu"].get(bucket)
        return {"ui_cpu_ms": round(_p(samples, 0.5), 1)} if samples else {}

    results = [
        {"name": f"ui keys: first switch, cold → {mode} painted", "rows": rows, "app_ms": round(ms, 1),
         "raw_ms": None, "ratio": None, "target_ms": 300, **ui_cpu(cold, f"first {mode}")}
        for mode, ms in cold["first"].items()
    ]
    if shipped is None:
        return results
    results = [
        {"name": f"ui keys: first switch → {mode} painted", "rows": rows, "app_ms": round(ms, 1), "raw_ms": None,
         "ratio": None, "target_ms": 300, **ui_cpu(shipped, f"first {mode}")}
        for mode, ms in shipped["first"].items()
    ] + results
    everything: list[float] = []
    for mode, samples in shipped["again"].items():
        everything += samples
        results.append(_result(f"ui keys: switch → {mode} painted, p95", rows, samples))
    results.append(_result("ui keys: every later view switch, p95", rows, everything,
                           target_ms=TARGET_SWITCH_P95_MS, **ui_cpu(shipped, "later switch")))
    for name, samples in shipped["extra"].items():
        results.append(_result(f"ui keys: {name} painted, p95", rows, samples, **ui_cpu(shipped, name)))
    detail, detail_cpu = shipped["extra"]["resource detail"], shipped["cpu"].get("resource detail", [])
    if detail:  # the first resource opened (the p95 of a handful of samples is mostly this one)
        results.append({"name": "ui keys: first resource detail painted", "rows": rows, "app_ms": round(detail[0], 1),
                        "raw_ms": None, "ratio": None, "target_ms": 300,
                        **({"ui_cpu_ms": round(detail_cpu[0], 1)} if detail_cpu else {})})
    return results


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Key → view painted, headless (the app as the command line runs it).")
    parser.add_argument("cache", type=Path, help="a bench demo cache (copied first: never written)")
    parser.add_argument("--cold-only", action="store_true", help="only the cold first switches")
    args = parser.parse_args()
    for item in run(args.cache, cold_only=args.cold_only):
        p50 = f"  p50 {item['p50_ms']}" if "p50_ms" in item else ""
        cpu = f"  (UI thread CPU {item['ui_cpu_ms']} ms)" if "ui_cpu_ms" in item else ""
        print(f"{item['name']:60} {item['rows']:>10,} rows {item['app_ms']:>8.1f} ms{p50}{cpu}")
