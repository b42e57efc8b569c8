"""`L` in the allocation tree: the shared cost pools in order with their cost in the period; reorder and delete."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label
from textual.worker import Worker, WorkerState

from finops_tui.allocation.effective import load_tag_policy
from finops_tui.allocation.shared import (
    METHOD_TITLES,
    Pool,
    apply_pools,
    delete_pool,
    move_pool,
    pools_are_current,
    resolve_pools,
    shared_path,
)
from finops_tui.basis.money import money
from finops_tui.basis.periods import Period
from finops_tui.config import Config
from finops_tui.report.shared_nodes import applied_pools, pool_costs, share_rows
from finops_tui.store import Cache
from finops_tui.ui.dialogs.dialog_box import DialogBox, dialog_css
from finops_tui.ui.dialogs.pool_dialog import change_pools
from finops_tui.ui.formatting import failure_line

DEMO_NOTE = ("demo pools (data/demo_shared.toml): a change writes your own shared.toml with them, comments kept")


@dataclass(frozen=True)
class PoolListing:
    """The pools in shared.toml's order and each one's cost in the period (in the view's currency)."""

    pools: tuple[Pool, ...]
    costs: dict[int, Decimal]
    demo: bool  # no shared.toml: the demo estate's built-in pools
    applied_now: bool  # shared.toml had changed since the cache applied it: applied on opening


def load_listing(cache: Cache, config: Config, period: Period, metric: str, currency: str) -> PoolListing:
    """For a worker: the pools, applied first when shared.toml changed since the cache last applied it."""
    pools = load_tag_policy(config).pools
    with cache.cursor() as cur:
        current = pools_are_current(cur, pools)
    if not current:
        apply_pools(cache, pools)
    with cache.cursor() as cur:
        resolved = resolve_pools(cur, pools)
        rows = share_rows(cur, applied_pools(cur), period, period.previous(), currency, metric, daily=False,
                          by="pool")
    return PoolListing(resolved, pool_costs(rows), demo=pools is None and bool(resolved), applied_now=not current)


@dataclass
class ListingLoaded(Message):
    listing: PoolListing
    cursor: int  # the row to put the cursor on (a moved pool follows the cursor)


class PoolListDialog(ModalScreen[bool]):
    """Pools in the order they apply (a row the first pool matches is not matched again). `[`/`]` (or shift+up/down)
    move the pool under the cursor, `d` deletes it after a confirmation. Returns True when the pools changed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="dialog.close", tooltip="Close the pool list (or keep a pool)"),
        Binding("left_square_bracket,shift+up", "move(-1)", "Move up", id="pools.move_up",
                tooltip="Apply this pool earlier"),
        Binding("right_square_bracket,shift+down", "move(1)", "Move down", id="pools.move_down",
                tooltip="Apply this pool later"),
        Binding("d,delete", "delete", "Delete", id="pools.delete", tooltip="Delete this pool (asks first)"),
        Binding("y", "confirm", "Yes", id="pools.confirm", show=False, tooltip="Confirm the deletion"),
    ]

    DEFAULT_CSS = dialog_css("PoolListDialog", 124) + """
    PoolListDialog DataTable { height: auto; max-height: 16; }
    PoolListDialog .hint { color: $text-muted; height: auto; width: 100%; margin-top: 1; }
    PoolListDialog #confirm { color: $text-warning; height: auto; width: 100%; }
    PoolListDialog #error { color: $text-error; height: auto; width: 100%; }
    """

    def __init__(self, *, cache: Cache, config: Config, period: Period, period_text: str, metric: str,
                 currency: str) -> None:
        super().__init__()
        self._cache = cache
        self._config = config
        self._period = period
        self._period_text = period_text
        self._metric = metric
        self._currency = currency
        self.listing: PoolListing | None = None
        self.changed = False
        self.confirming: int | None = None  # the pool (1-based) a `d` asked to delete
        self.busy = False

    def compose(self) -> ComposeResult:
        with DialogBox() as box:
            box.border_title = "Shared cost pools"
            table: DataTable[str | Text] = DataTable(cursor_type="row", zebra_stripes=True, id="pools")
            table.add_column("#", key="index")
            table.add_column("Pool", key="name")
            table.add_column("Method", key="method")
            table.add_column("Matches → key", key="match")
            table.add_column(f"Cost ({self._currency})", key="cost")
            yield table
            yield Label("", id="confirm", markup=False)
            yield Label("", id="error", markup=False)
            yield Label(f"Cost: {self._period_text}. Pools apply in order; a row an earlier pool matches is not "
                        f"matched again. [ ] or shift+↑↓ move · d deletes · esc closes. {shared_path()}",
                        classes="hint", id="hint", markup=False)

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self._load(0)

    @work(thread=True, exclusive=True, group="pool-list", exit_on_error=False, name="shared cost pools")
    def _load(self, cursor: int) -> None:
        self.post_message(ListingLoaded(load_listing(self._cache, self._config, self._period, self._metric,
                                                     self._currency), cursor))

    @on(ListingLoaded)
    def _loaded(self, message: ListingLoaded) -> None:
        self.busy = False
        listing = self.listing = message.listing
        self.changed = self.changed or listing.applied_now
        table = self.query_one(DataTable)
        table.clear()
        for pool in listing.pools:
            cost = listing.costs.get(pool.index)
            # Text cells: names and globs are data, which a DataTable would read as markup.
            table.add_row(Text(str(pool.index)), Text(pool.name), Text(METHOD_TITLES[pool.method]),
                          Text(pool.describe()),
                          Text(money(cost) if cost is not None else "—", justify="right"), key=str(pool.index))
        if listing.pools:
            table.move_cursor(row=min(message.cursor, len(listing.pools) - 1))
        hint = self.query_one("#hint", Label)
        notes = [DEMO_NOTE] if listing.demo else []
        if not listing.pools:
            notes.append("No pools yet: press $ on a node of the tree to make its cost a pool.")
        hint.update(" · ".join([*notes, f"Cost: {self._period_text}. Pools apply in order; a row an earlier pool "
                                        "matches is not matched again. [ ] or shift+↑↓ move · d deletes · esc closes",
                                str(shared_path())]))

    @property
    def cursor_index(self) -> int | None:
        """The 1-based pool under the cursor."""
        if self.listing is None or not self.listing.pools:
            return None
        row = self.query_one(DataTable).cursor_row
        return row + 1 if 0 <= row < len(self.listing.pools) else None

    def action_move(self, step: int) -> None:
        index = self.cursor_index
        if index is None or self.busy or self.listing is None:
            return
        target = index + step
        if not 1 <= target <= len(self.listing.pools):
            return
        self._clear_confirm()
        team_key = self._config.team_key
        self._change(lambda: move_pool(index, target, team_key=team_key), target - 1)

    def action_delete(self) -> None:
        index = self.cursor_index
        if index is None or self.busy or self.listing is None:
            return
        self.confirming = index
        name = self.listing.pools[index - 1].name
        self.query_one("#confirm", Label).update(f"Delete pool {index} ({name})? y deletes it · esc keeps it")

    def action_confirm(self) -> None:
        index = self.confirming
        if index is None or self.busy:
            return
        self._clear_confirm()
        team_key = self._config.team_key
        self._change(lambda: delete_pool(index, team_key=team_key), max(0, index - 2))

    def _clear_confirm(self) -> None:
        self.confirming = None
        self.query_one("#confirm", Label).update("")

    def _change(self, edit: Callable[[], object], cursor: int) -> None:
        self.busy = True
        self.query_one("#error", Label).update("")
        self._write(edit, cursor)

    @work(thread=True, exclusive=True, group="pool-list", exit_on_error=False, name="change shared cost pools")
    def _write(self, edit: Callable[[], object], cursor: int) -> None:
        change_pools(self._cache, self._config, edit)
        self.changed = True
        self.post_message(ListingLoaded(load_listing(self._cache, self._config, self._period, self._metric,
                                                     self._currency), cursor))

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.busy = False
            self.query_one("#error", Label).update(failure_line(event.worker.error))

    def action_close(self) -> None:
        if self.confirming is not None:
            self._clear_confirm()
            return
        self.dismiss(self.changed)
