"""Regenerate the README screenshots (SVG and PNG) of every screen from the demo estate into screenshots/."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

TODAY = dt.date(2026, 11, 26)
DEMO_END = TODAY - dt.timedelta(days=1)
ROOT = Path(__file__).resolve().parent.parent

Steps = Callable[[Pilot[Any]], Awaitable[None]]


@dataclass(frozen=True)
class Shot:
    name: str
    size: tuple[int, int]
    steps: Steps | None = None
    empty_cache: bool = False


async def settle(pilot: Pilot[Any]) -> None:
    """Every worker done (a prefetch the steps cancelled counts as done), then the repaint."""
    from textual.worker import WorkerCancelled

    await pilot.pause()
    app = pilot.app
    while running := [w for w in app.workers if not w.is_finished and not w.is_cancelled]:
        with suppress(WorkerCancelled):
            await app.workers.wait_for_complete(running)
        await asyncio.sleep(0)
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()


async def chart_cursor(pilot: Pilot[Any]) -> None:
    from finops_tui.ui.widgets.daily_chart import DailyChart

    pilot.app.screen.query_one(DailyChart).focus()
    await pilot.press(*["h"] * 6)


async def last_month_billed(pilot: Pilot[Any]) -> None:
    await pilot.press("m", "p", "down", "enter")
    await settle(pilot)


async def ninety_days(pilot: Pilot[Any]) -> None:
    await pilot.press("p", "down", "down", "down", "enter")
    await settle(pilot)


async def period_dialog(pilot: Pilot[Any]) -> None:
    await pilot.press("p")


async def custom_period(pilot: Pilot[Any]) -> None:
    await pilot.press("p", "end", "enter")


async def help_dialog(pilot: Pilot[Any]) -> None:
    await pilot.press("question_mark")


async def command_palette(pilot: Pilot[Any]) -> None:
    await pilot.press("colon", *"period")
    await pilot.pause(0.6)


async def filtered(pilot: Pilot[Any]) -> None:
    await pilot.press("slash", *"sql")


async def recommendations(pilot: Pilot[object]) -> None:
    """The recommendations view showing a run stored 3 minutes before the pictures' clock (not re-run, so the
    status line does not depend on when the script runs)."""
    from finops_tui.recommend import Context, store_results
    from finops_tui.recommend.engine import generate
    from finops_tui.ui import app as app_module
    from finops_tui.ui.app import FinopsApp
    from finops_tui.ui.screens.recommendations import RecommendationsScreen

    class StoredRecommendations(RecommendationsScreen):
        """The stored run, "3 min ago": no new run on open."""

        def __init__(self) -> None:
            super().__init__(refresh_on_open=False)

    app = pilot.app
    assert isinstance(app, FinopsApp)
    with app.cache.cursor() as cur:
        ctx = Context.from_cache(cur)
        assert ctx is not None
        found, _timings = generate(cur, ctx)
    store_results(app.cache, found, ctx, run_at=app.now() - dt.timedelta(minutes=3))
    app_module.VIEW_SCREENS["recommendations"] = StoredRecommendations
    try:
        await pilot.press("3")
        await settle(pilot)
    finally:
        app_module.VIEW_SCREENS["recommendations"] = RecommendationsScreen


async def recommendations_spikes(pilot: Pilot[object]) -> None:
    await recommendations(pilot)
    await pilot.press("f", "f")  # kinds cycle in their report order: unallocated spend, then cost spikes


async def recommendations_snooze(pilot: Pilot[object]) -> None:
    await recommendations(pilot)
    await pilot.press("z")


async def allocation_drilled(pilot: Pilot[Any]) -> None:
    """The allocation tree two levels down: team › subscription › resource group under the cursor."""
    await pilot.press("2", "j")  # the first row of the demo is its (unallocated) spend: the largest team is next
    await settle(pilot)
    for _ in range(2):
        await pilot.press("enter")
        await settle(pilot)


async def resource_detail(pilot: Pilot[Any]) -> None:
    await allocation_drilled(pilot)
    await pilot.press("enter", "enter")  # into the group's costliest resource, then its detail


async def tagging(pilot: Pilot[Any]) -> None:
    await pilot.press("4")
    await settle(pilot)
    await pilot.press("slash", *"payments", "enter", "a")  # filtered to the payments groups, the first one marked


async def push_preview(pilot: Pilot[Any]) -> None:
    """Tag the marked group, then show the push preview (it writes to the demo cache: keep these shots last).

    `P` refuses to push the demo estate (its ids are not from a sync), so the preview is opened directly
    on the merges the tagging journalled, as it looks for a synced estate.
    """
    from finops_tui.allocation.push import preview
    from finops_tui.ui.app import FinopsApp
    from finops_tui.ui.dialogs.push_preview import PushPreviewDialog

    await tagging(pilot)
    await pilot.press("t")
    await settle(pilot)
    await pilot.press("ctrl+u", *"payments", "enter")
    await settle(pilot)
    app = pilot.app
    assert isinstance(app, FinopsApp)
    with app.cache.cursor() as cur:
        items = preview(cur)
    await app.push_screen(PushPreviewDialog(items, cache=app.cache, endpoint=None, credential_mode="cli"))


async def commitments(pilot: Pilot[Any]) -> None:
    await pilot.press("5")
    await settle(pilot)


async def explain_top_service(pilot: Pilot[Any]) -> None:
    """`x` on the overview's top service: why it changed against the previous period."""
    await pilot.press("x")
    await settle(pilot)


async def hierarchy_dialog(pilot: Pilot[Any]) -> None:
    await pilot.press("2")
    await settle(pilot)
    await pilot.press("H")


SHOTS = [
    Shot("overview", (120, 36)),
    Shot("overview-80x24", (80, 24)),
    Shot("overview-160x48", (160, 48)),
    Shot("overview-chart-cursor", (120, 36), chart_cursor),
    Shot("overview-last-month-billed", (120, 36), last_month_billed),
    Shot("overview-90-days-80x24", (80, 24), ninety_days),
    Shot("overview-filter", (120, 36), filtered),
    Shot("period-dialog", (120, 36), period_dialog),
    Shot("custom-period-dialog", (120, 36), custom_period),
    Shot("help", (120, 36), help_dialog),
    Shot("help-80x24", (80, 24), help_dialog),
    Shot("command-palette", (120, 36), command_palette),
    Shot("welcome", (100, 32), empty_cache=True),
    Shot("recommendations", (120, 36), recommendations),
    Shot("recommendations-80x24", (80, 24), recommendations),
    Shot("recommendations-160x48", (160, 48), recommendations),
    Shot("recommendations-spikes", (120, 36), recommendations_spikes),
    Shot("recommendations-snooze", (120, 36), recommendations_snooze),
    Shot("allocation", (120, 36), allocation_drilled),
    Shot("allocation-80x24", (80, 24), allocation_drilled),
    Shot("allocation-160x48", (160, 48), allocation_drilled),
    Shot("resource-detail", (120, 36), resource_detail),
    Shot("resource-detail-80x24", (80, 24), resource_detail),
    Shot("tagging", (120, 36), tagging),
    Shot("tagging-80x24", (80, 24), tagging),
    Shot("commitments", (120, 36), commitments),
    Shot("commitments-80x24", (80, 24), commitments),
    Shot("commitments-160x48", (160, 48), commitments),
    Shot("explain", (120, 36), explain_top_service),
    Shot("explain-80x24", (80, 24), explain_top_service),
    Shot("explain-160x48", (160, 48), explain_top_service),
    Shot("hierarchy-dialog", (120, 36), hierarchy_dialog),
    Shot("push-preview", (120, 36), push_preview),
    Shot("push-preview-80x24", (80, 24), push_preview),
]


def build_demo(data_dir: Path) -> Path:
    from finops_tui.allocation.effective import TagPolicy
    from finops_tui.ingest.demo import DemoParams, build_demo, existing_summary

    path = data_dir / "demo.duckdb"
    if existing_summary(path, DemoParams(end=DEMO_END, months=13, rows=None, seed=42)) is None:
        print(f"building the demo estate into {path} …", file=sys.stderr)
        build_demo(path, TagPolicy(), end=DEMO_END)
    return path


def loaded_at(path: Path) -> dt.datetime:
    from finops_tui.store import open_cache
    from finops_tui.store.sources import freshness

    with open_cache(path) as cache, cache.cursor() as cur:
        return freshness(cur).last_loaded_at or dt.datetime.combine(TODAY, dt.time(8))


async def take(shot: Shot, cache_path: Path, out: Path, now: dt.datetime) -> Path:
    from finops_tui.config import Config
    from finops_tui.store import open_cache
    from finops_tui.ui.app import FinopsApp

    with open_cache(cache_path) as cache:
        app = FinopsApp(cache, config=Config(), now=lambda: now, demo_end=DEMO_END)
        async with app.run_test(size=shot.size) as pilot:
            await settle(pilot)
            if shot.steps is not None:
                await shot.steps(pilot)
                await settle(pilot)
            return Path(app.save_screenshot(f"{shot.name}.svg", path=str(out)))


def to_png(svg: Path) -> Path | None:
    try:
        import cairosvg
    except ImportError:
        return None
    from svg_grid import on_grid  # beside this script: keeps right-aligned columns aligned in the PNG

    png = svg.with_suffix(".png")
    cairosvg.svg2png(bytestring=on_grid(svg.read_text(encoding="utf-8")).encode(), write_to=str(png), scale=2)
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog="PNG needs CairoSVG and Debian's fonts-firacode (the font the SVGs name). The clock and the "
               "demo's end date are pinned, so the pictures only change when the screens do.",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots", help="folder (default: screenshots/)")
    parser.add_argument("--only", nargs="*", default=None, help="names of the shots to take")
    args = parser.parse_args(argv)

    # A home of its own: the status bar then shows the default demo path, the same on every machine.
    home = Path(tempfile.mkdtemp(prefix="finops-screens-"))
    data_dir = home / ".local" / "share" / "finops-tui"
    data_dir.mkdir(parents=True)
    os.environ.update(HOME=str(home), FINOPS_TUI_DATA_DIR=str(data_dir),
                      FINOPS_TUI_CONFIG_DIR=str(home / ".config" / "finops-tui"),
                      FINOPS_TUI_TODAY=TODAY.isoformat())
    os.environ.pop("NO_COLOR", None)
    from finops_tui import clock

    clock.pin(TODAY)
    demo = build_demo(data_dir)
    now = loaded_at(demo) + dt.timedelta(minutes=2)
    empty = data_dir / "cache.duckdb"
    from finops_tui.store import open_cache

    open_cache(empty).close()

    args.out.mkdir(parents=True, exist_ok=True)
    for shot in SHOTS:
        if args.only and shot.name not in args.only:
            continue
        svg = asyncio.run(take(shot, empty if shot.empty_cache else demo, args.out, now))
        png = to_png(svg)
        print(f"{svg.relative_to(ROOT) if svg.is_relative_to(ROOT) else svg}" + (f"  {png.name}" if png else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
