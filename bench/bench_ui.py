"""Benchmark: the real app driven headless through Pilot: cold start, metric/period repaint, peak RSS."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.date(2026, 11, 27)  # the demo caches end 2026-11-26: their data is fresh on this day
SIZE = (120, 40)
# Each step is one key press and the repaint it causes; together they browse every period and both metrics.
BROWSE = ["m", "m", "period:last-month", "m", "period:30d", "m", "period:90d", "m", "period:mtd", "m"]
REPEATS = 3  # passes over BROWSE for the percentile figures

Result = dict[str, Any]


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class _Signalling(list[float]):
    """The screen's repaint log, waking the benchmark when a repaint is recorded."""

    def __init__(self, items: list[float], event: asyncio.Event) -> None:
        super().__init__(items)
        self._event = event

    def append(self, value: float) -> None:
        super().append(value)
        self._event.set()


async def _drive(
    cache_path: Path, browse_passes: int, *, cached: bool = True, paired_raw: bool = False
) -> dict[str, Any]:
    """Open the app, wait for the first painted overview, then browse.

    Step times are the screen's own request → painted measurements (`TimedOverview.repaint_ms`, a subclass of
    the shipped screen registered for the run), so
    Pilot's bookkeeping between key presses is not counted. With `cached`, the app runs as shipped
    (result cache and prefetch) and the "user" waits for the prefetch to finish between steps;
    without, every step runs the read model. With `paired_raw`, each step is preceded by the same read
    model run directly (the app idle meanwhile), so app and raw figures share the machine's load.
    """
    from finops_tui.config import Config
    from finops_tui.store import open_cache
    from finops_tui.ui import app as app_module
    from finops_tui.ui.app import FinopsApp
    from finops_tui.ui.screens.overview import RESULT_CACHE_SIZE, OverviewScreen

    class TimedOverview(OverviewScreen):
        """The overview, timing each request to its painted result."""

        def __init__(self) -> None:
            super().__init__(prefetch=cached, result_cache_size=RESULT_CACHE_SIZE if cached else 0)
            self.repaint_ms: list[float] = []  # request → painted
            self.painted_at: float | None = None  # wall-clock time of the last painted result
            self._requested_at = 0.0

        def request_overview(self) -> None:
            self._requested_at = time.perf_counter()
            super().request_overview()

        def _show_overview(self, request: Any, result: Any) -> None:
            super()._show_overview(request, result)
            self.app.call_after_refresh(self._painted, self._requested_at)

        def _painted(self, requested_at: float) -> None:
            self.repaint_ms.append((time.perf_counter() - requested_at) * 1000)
            self.painted_at = time.time()

    shipped = app_module.VIEW_SCREENS["overview"]
    app_module.VIEW_SCREENS["overview"] = TimedOverview
    started, started_wall = time.perf_counter(), time.time()
    painted: dict[str, float] = {}
    from finops_tui.ui.launch import close_when_idle

    cache = open_cache(cache_path)
    try:
        app = FinopsApp(cache, config=Config())

        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            # The screen notes when its first result was painted (pilot.pause would also wait for the
            # prefetch that starts right after, which is not what the user waits for).
            while not (isinstance(screen, TimedOverview) and screen.painted_at is not None):
                await asyncio.sleep(0.002)
                screen = app.screen
            painted["first_wall"] = screen.painted_at
            painted["first"] = started + (screen.painted_at - started_wall)
            assert screen.overview is not None
            steps: list[tuple[str, float]] = []
            raw_steps: list[tuple[str, float]] = []
            for _ in range(browse_passes):
                for step in BROWSE:
                    await _wait_for_workers(app)  # the user reads; the prefetch (if any) finishes
                    await pilot.pause()
                    if paired_raw:
                        raw_steps.append((step, _raw_once(cache, screen, step)))
                    painted_event = asyncio.Event()
                    screen.repaint_ms = _Signalling(screen.repaint_ms, painted_event)
                    if step.startswith("period:"):
                        screen.set_period(step.split(":", 1)[1])  # what choosing in the period dialog calls
                    else:
                        # The real key path (bindings → action), without Pilot's waiting between keys,
                        # whose polling would compete with the query for the two cores.
                        app.simulate_key(step)
                    await painted_event.wait()
                    steps.append((step, screen.repaint_ms[-1]))
    finally:
        close_when_idle(cache)
        app_module.VIEW_SCREENS["overview"] = shipped
    return {"first_paint_ms": (painted["first"] - started) * 1000, "first_paint_wall": painted["first_wall"],
            "steps": steps, "raw_steps": raw_steps,
            "maxrss_mb": _peak_rss_mb()}


async def _wait_for_workers(app: Any) -> None:
    from textual.worker import WorkerCancelled

    while running := [w for w in app.workers if not w.is_finished and not w.is_cancelled]:
        with suppress(WorkerCancelled):
            await app.workers.wait_for_complete(running)
        await asyncio.sleep(0)


def _raw_once(cache: Any, screen: Any, step: str) -> float:
    """The read model alone for the request `step` is about to make, in ms."""
    from finops_tui.ui.screens.overview_data import load_overview

    state = screen.finops.view_state
    period, metric = state.period, state.metric
    if step.startswith("period:"):
        period = step.split(":", 1)[1]
    else:
        metric = "billed" if metric == "effective" else "effective"
    with cache.cursor() as cur:
        began = time.perf_counter()
        load_overview(cur, period, metric, screen.finops.config.team_key)
        return (time.perf_counter() - began) * 1000


def _peak_rss_mb() -> float:
    """This process's peak resident set: VmHWM, since ru_maxrss survives exec and would count the parent's."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(mode: str, cache_path: Path, spawned_at: float) -> None:
    """Runs in a fresh interpreter: prints one JSON line with the figures."""
    from finops_tui import clock

    clock.pin(TODAY)
    if mode == "app":
        figures = asyncio.run(_drive(cache_path, browse_passes=1))
        figures.pop("steps")
        figures["until_first_paint_ms"] = (figures.pop("first_paint_wall") - spawned_at) * 1000
    else:  # the headless read model: what the cold start would cost without Textual
        from finops_tui.config import load_config
        from finops_tui.store import open_cache
        from finops_tui.ui.screens.overview_data import load_overview

        with open_cache(cache_path) as cache, cache.cursor() as cur:
            load_overview(cur, "mtd", "effective", load_config().team_key)
        figures = {"maxrss_mb": _peak_rss_mb()}
    figures["until_ready_ms"] = (time.time() - spawned_at) * 1000
    print(json.dumps(figures, default=str))


def _spawn(mode: str, cache: Path) -> dict[str, Any]:
    env = dict(os.environ, FINOPS_TUI_TODAY=TODAY.isoformat(), PYTHONPATH=str(ROOT))
    env.pop("NO_COLOR", None)
    spawned_at = time.time()
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(cache), repr(spawned_at)],
        capture_output=True, text=True, env=env, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench_ui child ({mode}) failed: {done.stderr.strip().splitlines()[-1:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def _rows(cache: Path) -> int:
    from finops_tui.store import open_cache

    with open_cache(cache) as store, store.cursor() as cur:
        row = cur.execute("SELECT count(*) FROM charges").fetchone()
        return int(row[0]) if row else 0


def run(cache: Path) -> list[Result]:
    """The harness's dicts (name, rows, app_ms, raw_ms, ratio).

    `raw` is the same read model called directly on a cursor (no Textual), right before each app step,
    so the ratio is what the UI adds on top of the query under the same machine load. Cold start and
    peak RSS are measured in child processes: a fresh interpreter, as a user would start it.
    """
    from finops_tui import clock

    rows = _rows(cache)
    cold = _spawn("app", cache)  # also browses once as shipped: its peak RSS is the browsing figure
    raw_cold = _spawn("raw", cache)
    clock.pin(TODAY)
    try:
        uncached = asyncio.run(_drive(cache, browse_passes=REPEATS, cached=False, paired_raw=True))
        shipped = asyncio.run(_drive(cache, browse_passes=REPEATS, cached=True))
        raw = {kind: [ms for step, ms in uncached["raw_steps"] if step.startswith("period:") == (kind == "period")]
               for kind in ("metric", "period")}
    finally:
        clock.pin(None)
    results: list[Result] = [{
        "name": "ui: cold start, process start → first painted overview", "rows": rows,
        "app_ms": round(cold["until_first_paint_ms"], 1), "raw_ms": round(raw_cold["until_ready_ms"], 1),
        "ratio": round(cold["until_first_paint_ms"] / raw_cold["until_ready_ms"], 2), "target_ms": 1500,
    }]
    for label, figures in (("every step queries", uncached), ("as shipped: cache + prefetch", shipped)):
        for kind in ("metric", "period"):
            samples = [ms for step, ms in figures["steps"] if step.startswith("period:") == (kind == "period")]
            for name, q in (("p50", 0.5), ("p95", 0.95)):
                app_ms, raw_ms = _p(samples, q), _p(raw[kind], q)
                results.append({
                    "name": f"ui: {kind} change → repainted overview, {name} ({label})", "rows": rows,
                    "app_ms": round(app_ms, 1), "raw_ms": round(raw_ms, 1), "ratio": round(app_ms / raw_ms, 2),
                    "samples": len(samples),
                })
    results.append({
        "name": f"ui: peak RSS {cold['maxrss_mb']:.0f} MB (target < 600), start + browse (child process)",
        "rows": rows,
        "app_ms": None, "raw_ms": None, "ratio": None, "rss_mb": round(cold["maxrss_mb"], 1),
        "raw_rss_mb": round(raw_cold["maxrss_mb"], 1), "target_mb": 600,
    })
    return results


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], Path(sys.argv[3]), float(sys.argv[4]))
    else:
        for result in run(Path(sys.argv[1])):
            print(result)
