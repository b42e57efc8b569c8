"""Resource screen: one resource's daily cost, cost by meter and charge category, every tag and its origin."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import duckdb
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Header, Static

from finops_tui.allocation import assign
from finops_tui.allocation.effective import load_tag_policy
from finops_tui.allocation.rules import load_rules
from finops_tui.basis.money import change_percent, money
from finops_tui.basis.periods import Period
from finops_tui.report.resource import ResourceDetail, resource_detail
from finops_tui.report.tags import tag_values
from finops_tui.store.sources import Freshness
from finops_tui.ui.commands import PaletteCommand
from finops_tui.ui.formatting import truncate
from finops_tui.ui.messages import TagsApplied, TagsChanged
from finops_tui.ui.screens.cost_view import CostViewScreen, resolve_view
from finops_tui.ui.widgets.context_bar import ContextBar
from finops_tui.ui.widgets.daily_chart import DailyChart
from finops_tui.ui.widgets.key_footer import KeyFooter
from finops_tui.ui.widgets.status_bar import StatusBar

ORIGIN_TEXT = {"provider": "provider tag", "rule": "allocation rule", "manual": "manual edit"}


@dataclass(frozen=True)
class DetailRequest:
    serial: int
    resource_id: str
    period: str
    metric: str
    currency: str | None
    team_key: str


@dataclass
class DetailLoaded(Message):
    request: DetailRequest
    period: Period
    freshness: Freshness
    currencies: list[str]
    currency: str
    detail: ResourceDetail
    values: list[str]  # the team key's existing values (autocomplete for `t`)


class CostLines(DataTable[str | Text]):
    """A small two-column table (label, cost) with Vim keys."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", id="list.down", show=False, tooltip="Next row"),
        Binding("k", "cursor_up", "Up", id="list.up", show=False, tooltip="Previous row"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._measured_height = 0

    def on_idle(self) -> None:
        # DataTable measures its new rows while idle. The layout its new height asks for is then left pending until
        # another message reaches the table, and a table sized by its rows (height: auto) that was laid out empty
        # (the splits table, just shown) kept a height of 0 on a still screen. A message of its own settles it.
        if self.virtual_size.height != self._measured_height:
            self._measured_height = self.virtual_size.height
            self.call_later(self.refresh, layout=True)


class ResourceDetailScreen(CostViewScreen):
    """Pushed over the tree (or the queue): `esc` goes back; `t` tags this resource."""

    VIEW_TITLE = "Resource"
    # The chart that on_mount focuses: Textual would first focus the scrolling container of every table, and
    # moving focus off it again restyles them all (a third of the screen's first paint).
    AUTO_FOCUS = "#chart"
    QUERY_GROUP = "resource-detail"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="view.back", tooltip="Back to where you came from"),
        Binding("t", "tag", "Tag", id="view.tag", tooltip="Set a tag on this resource (a manual edit)"),
        Binding("x", "explain", "Explain", id="view.explain",
                tooltip="Why this resource's cost changed, bucket by bucket"),
        Binding("ctrl+s", "export", "Export", id="view.export",
                tooltip="Save the daily cost, meters and charge categories as CSV in the exports folder"),
    ]

    DEFAULT_CSS = """
    ResourceDetailScreen #notice { height: auto; padding: 0 1; display: none; }
    ResourceDetailScreen #breadcrumbs {
        height: 1; padding: 0 1; background: $boost; text-wrap: nowrap; text-overflow: ellipsis;
    }
    ResourceDetailScreen #content { height: 1fr; padding: 0 1; }
    ResourceDetailScreen #identity { height: auto; margin-top: 1; }
    ResourceDetailScreen #figures { height: auto; margin-top: 1; }
    ResourceDetailScreen DailyChart { height: 10; margin-top: 1; }
    ResourceDetailScreen.-narrow DailyChart { height: 7; }
    ResourceDetailScreen #lines { height: auto; }
    ResourceDetailScreen DataTable {
        height: auto;
        max-height: 14;
        border: round $panel-lighten-2;
        border-title-color: $text;
        border-title-style: bold;
        background: $surface;
    }
    ResourceDetailScreen DataTable:focus { border: round $primary; }
    ResourceDetailScreen #lines DataTable { width: 1fr; overflow-x: hidden; }
    ResourceDetailScreen.-narrow #lines { layout: vertical; }
    ResourceDetailScreen.-narrow #identity, ResourceDetailScreen.-narrow #figures { margin-top: 0; }
    """
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-medium"), (140, "-wide")]  # noqa: RUF012 (Textual's type)

    def __init__(self, resource_id: str, *, trail: Sequence[tuple[str, str]] = (), root: str = "Allocation",
                 jumped_to: bool = False) -> None:
        """`resource_id` "": a screen made ahead, for `retarget` to point at a resource before it is shown."""
        super().__init__()
        self.resource_id = resource_id.lower()
        self.trail = list(trail)
        self.root = root
        self.jumped_to = jumped_to  # opened straight from another view (a finding): esc returns there
        self.detail: ResourceDetail | None = None
        self.values: list[str] = []
        self._serial = 0

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        yield ContextBar(self.app.current_mode)
        yield Static("", id="notice")
        yield Static("", id="breadcrumbs")
        with VerticalScroll(id="content"):
            yield Static("", id="identity")
            yield Static("", id="figures")
            yield DailyChart(id="chart")
            with Horizontal(id="lines"):
                yield CostLines(id="meters", cursor_type="row", zebra_stripes=True)
                yield CostLines(id="categories", cursor_type="row", zebra_stripes=True)
            splits = CostLines(id="splits", cursor_type="row", zebra_stripes=True)
            splits.display = False  # shown on a host a provider split cost from
            yield splits
            yield CostLines(id="tags", cursor_type="row", zebra_stripes=True)
        yield StatusBar()
        yield KeyFooter()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#meters", DataTable).border_title = "By meter / SKU"
        self.query_one("#categories", DataTable).border_title = "By charge category"
        self.query_one("#tags", DataTable).border_title = "Tags (effective) and where each comes from"
        self.query_one("#splits", DataTable).border_title = "Split by the provider to (FOCUS allocated resources)"
        self._show_breadcrumbs()
        self.show_status()
        self.query_one(DailyChart).focus()
        if self.resource_id:
            self.request_view()
        else:
            self._warm_up(self.finops.view_state.period, self.finops.view_state.metric)

    def retarget(self, resource_id: str, *, trail: Sequence[tuple[str, str]] = (), root: str = "Allocation",
                 jumped_to: bool = False) -> None:
        """Show another resource (this screen is not on show): the skeleton at once, its figures when queried."""
        self.resource_id = resource_id.lower()
        self.trail = list(trail)
        self.root = root
        self.jumped_to = jumped_to
        self.detail = None
        self.values = []
        self.period = self.freshness = None
        self._stopped_while_hidden = False
        self._tags_version_seen = self.finops.tags_version  # queried now: no reload on top when shown
        self.query_one(ContextBar).set_view(self.app.current_mode)
        self.query_one("#identity", Static).update("")
        self.query_one("#figures", Static).update("")
        self.query_one(DailyChart).show_series([], "")
        for table in self.query(CostLines):
            table.clear(columns=True)
        self.query_one("#splits", DataTable).display = False
        self.query_one("#content", VerticalScroll).scroll_home(animate=False, immediate=True)
        self._show_breadcrumbs()
        self.show_status()
        self.query_one(DailyChart).focus()
        self.request_view()

    def on_resize(self) -> None:
        if self.detail is not None:
            self._show_all()

    # ----------------------------------------------------------------------------------------------

    def request_view(self) -> None:
        state = self.finops.view_state
        self._serial += 1
        request = DetailRequest(self._serial, self.resource_id, state.period, state.metric, state.currency,
                                self.finops.config.team_key)
        self.begin_query(request)
        self._load(request)

    @work(thread=True, exclusive=True, group="resource-detail", exit_on_error=False, name="resource query")
    def _load(self, request: DetailRequest) -> None:
        def query(cur: duckdb.DuckDBPyConnection) -> DetailLoaded:
            period, fresh, codes, currency = resolve_view(cur, request.period, request.metric, request.currency)
            detail = resource_detail(cur, request.resource_id, period, request.metric, currency, rules=load_rules())
            return DetailLoaded(request, period, fresh, codes, currency, detail, tag_values(cur, request.team_key))

        self.run_query(query)

    @work(thread=True, exclusive=True, group="resource-detail", exit_on_error=False, name="resource warm-up")
    def _warm_up(self, period_spec: str, metric: str) -> None:
        """Made ahead: read one resource's detail and drop it. The columns only this screen reads are then in
        DuckDB's memory, so the first resource the user opens is read as fast as the next ones (a first read
        from disk took 2-3 times as long). Any request of the user's cancels it (the same worker group)."""
        def query(cur: duckdb.DuckDBPyConnection) -> None:
            row = cur.execute("SELECT ResourceId FROM resources ORDER BY ResourceId LIMIT 1").fetchone()
            if row is not None:
                period, _fresh, _codes, currency = resolve_view(cur, period_spec, metric, None)
                resource_detail(cur, row[0], period, metric, currency, rules=())

        with suppress(Exception):  # a failed warm-up costs nothing: the user's own request reports any problem
            self.query_gate.run(self.finops.cache, query)

    def loading_target(self) -> Widget:
        return self.query_one("#content")

    @on(DetailLoaded)
    def _loaded(self, message: DetailLoaded) -> None:
        if message.request.serial != self._serial:
            return
        self.end_query(self.query_one(DailyChart))
        self.take_answer(message)
        self.detail, self.values = message.detail, message.values
        self._show_all()

    # ----------------------------------------------------------------------------------------------
    # rendering

    def _show_all(self) -> None:
        detail = self.detail
        assert detail is not None and self.period is not None
        self.show_context()
        self._show_breadcrumbs()
        self._show_identity(detail)
        self._show_figures(detail)
        start = self.period.start
        series = [(start + dt.timedelta(days=i), value) for i, value in enumerate(detail.daily)]
        self.query_one(DailyChart).show_series(series, self.currency or "")
        self._show_lines("#meters", "Meter / SKU", [(line.label, line.cost) for line in detail.by_meter])
        self._show_lines("#categories", "Charge category",
                         [(line.label, line.cost) for line in detail.by_charge_category])
        self._show_splits(detail)
        self._show_tags(detail)
        self.show_status()

    def _show_breadcrumbs(self) -> None:
        name = self.detail.name if self.detail and self.detail.name else self.resource_id.rsplit("/", 1)[-1]
        parts = [Content.styled(self.root, "$text-muted")]
        for level, label in self.trail:
            parts.append(Content.assemble(Content.styled(f"{level} ", "$text-muted"), Content.styled(label, "bold")))
        parts.append(Content.assemble(Content.styled("resource ", "$text-muted"), Content.styled(name, "bold")))
        # Keep the end of the path when it does not fit: the resource itself matters most.
        room = max(20, self.size.width - 2)
        while len(parts) > 2 and sum(len(part.plain) + 3 for part in parts) > room:
            parts = [Content.styled("…", "$text-muted"), *parts[2:]]
        self.query_one("#breadcrumbs", Static).update(Content.styled(" › ", "$text-muted").join(parts))

    def _show_identity(self, detail: ResourceDetail) -> None:
        def field(label: str, value: str | None) -> Content:
            return Content.assemble(Content.styled(f"{label} ", "$text-muted"), value or "—")

        # The name reads better; the id is in the full resource id below.
        subscription = detail.subscription_name or detail.subscription_id
        seen = f"{detail.first_seen} .. {detail.last_seen}" if detail.first_seen else None
        gap = Content("   ")
        rows = [
            Content.assemble(Content.styled(detail.name or detail.resource_id, "bold $text-accent"), "   ",
                             Content.styled(detail.resource_type or "", "$text-muted")),
            Content.assemble(field("resource group", detail.resource_group), gap, field("subscription", subscription)),
            Content.assemble(field("region", detail.region), gap, field("service", detail.service), gap,
                             field("seen", seen)),
            Content.styled(detail.arm_id, "$text-muted"),  # the full id: it reads as one without a label
        ]
        if detail.split_from:
            rows.insert(1, self._host_line(detail))
        self.query_one("#identity", Static).update(Content("\n").join(rows))

    def _show_figures(self, detail: ResourceDetail) -> None:
        change = detail.cost - detail.previous_cost
        style = "$text-error" if change > 0 else "$text-success" if change < 0 else "$text"
        assert self.period is not None
        self.query_one("#figures", Static).update(Content.assemble(
            Content.styled("Cost ", "$text-muted"), Content.styled(money(detail.cost, self.currency), "bold"),
            Content.styled(f"   vs {money(detail.previous_cost)} in the previous period ", "$text-muted"),
            Content.styled(f"{money(change, signed=True)} ({change_percent(detail.cost, detail.previous_cost)})",
                           f"bold {style}"),
        ))

    @staticmethod
    def _host_line(detail: ResourceDetail) -> Content:
        """`on aks-nodepool1-vmss (+1 more)  split by the provider (even)`: where an allocated resource's cost came
        from."""
        main = detail.split_from[0]
        more = f" (+{len(detail.split_from) - 1} more)" if len(detail.split_from) > 1 else ""
        methods = sorted({m for share in detail.split_from for m in share.methods})
        return Content.assemble(
            Content.styled("on ", "$text-muted"), Content.styled(main.host_name or main.host_id, "bold"), more,
            Content.styled("   split by the provider", "$text-muted"),
            f" ({', '.join(methods)})" if methods else "",
        )

    def _show_splits(self, detail: ResourceDetail) -> None:
        """A host's consumers, with their share of what was split from it (the host's own cost is above)."""
        table = self.query_one("#splits", DataTable)
        table.display = bool(detail.split_to)
        if detail.split_to:
            lines = [
                (f"{share.name or share.consumer_id}" + (f" ({', '.join(share.methods)})" if share.methods else ""),
                 share.cost)
                for share in detail.split_to
            ]
            self._show_lines("#splits", "Allocated resource (method)", lines)

    def _show_lines(self, selector: str, title: str, lines: list[tuple[str, Decimal]]) -> None:
        table = self.query_one(selector, DataTable)
        table.clear(columns=True)
        # Figures first, the label last: meter names run long, and the figures must stay in view.
        table.add_column(Text(f"Cost ({self.currency})", justify="right"))
        table.add_column(Text("Share", justify="right"))
        table.add_column(Text(title))  # Text: a str label is parsed as markup (and loads rich's emoji table)
        total = sum((cost for _, cost in lines), Decimal(0))
        cost_width = max([len(f"Cost ({self.currency})"), *(len(money(cost)) for _, cost in lines)])
        # What is left of the table's width for the label (borders, cell padding, the two figures); the
        # two tables sit side by side from 100 columns, one above the other below.
        # Before its first layout the screen has no size yet; it will fill the app's.
        width = self.size.width or self.app.size.width
        table_width = width - 4 if self.narrow else (width - 4) // 2
        room = max(16, table_width - cost_width - 16)
        for label, cost in lines:
            share = f"{cost / total * 100:.1f}%" if total else "—"
            table.add_row(Text(money(cost), justify="right"), Text(share, justify="right"),
                          Text(truncate(label, room)))  # Text: a meter name is data, never markup
        if not lines:
            table.add_row("", "", Text("no cost in this period", style="dim italic"))

    def _show_tags(self, detail: ResourceDetail) -> None:
        table = self.query_one("#tags", DataTable)
        table.clear(columns=True)
        table.add_columns(Text("Key"), Text("Value"), Text("Origin"), Text("Detail"))
        for tag in detail.tags:
            origin_style = {"manual": "bold yellow", "rule": "cyan"}.get(tag.origin, "")
            if tag.origin == "provider":
                why = f"as “{tag.raw_key}” on the resource" if tag.raw_key and tag.raw_key != tag.key else \
                    "on the resource in Azure"
            elif tag.origin == "rule":
                why = f"rule: {tag.rule}" if tag.rule else "an allocation rule"
            else:
                why = "set here; P on the tagging screen pushes it to Azure"
            origin = Text(ORIGIN_TEXT.get(tag.origin, tag.origin), style=origin_style)
            table.add_row(Text(tag.key, style="bold"), Text(tag.value), origin, Text(why, style="dim"))
        if not detail.tags:
            table.add_row(Text("no tags", style="dim italic"), "", "", Text("press t to set one", style="dim"))

    # ----------------------------------------------------------------------------------------------
    # actions

    def action_back(self) -> None:
        self.app.pop_screen()
        if self.jumped_to:
            self.finops.go_back()

    def action_explain(self) -> None:
        name = self.detail.name if self.detail and self.detail.name else self.resource_id.rsplit("/", 1)[-1]
        self.finops.open_explain([("resource", self.resource_id, name)], root=self.root)

    def action_tag(self) -> None:
        from finops_tui.ui.dialogs.tag_dialog import TagChoice, TagDialog

        detail = self.detail
        if detail is None:
            return
        key = self.finops.config.team_key
        current = next((tag.value for tag in detail.tags if tag.key == key), "")

        def chosen(choice: TagChoice | None) -> None:
            if choice is not None:
                self._write_tag(choice.key, choice.value)

        self.app.push_screen(TagDialog(key=key, resources=1, cost=money(detail.cost, self.currency),
                                       values=self.values, value=current), chosen)

    @work(thread=True, group="tag-edit", exit_on_error=False, name="tag edit")
    def _write_tag(self, key: str, value: str) -> None:
        policy = load_tag_policy(self.finops.config)
        self.post_message(TagsApplied(assign.assign_tags(self.finops.cache, policy, {value: [self.resource_id]}, key)))

    @on(TagsApplied)
    def _tags_applied(self, message: TagsApplied) -> None:
        self.notify(message.describe(), title="Tagged", timeout=6)
        if message.edit.batches:
            self.app.post_message(TagsChanged(message.edit.key, message.edit.resources))
            self.request_view()

    def can_export(self) -> bool:
        return self.detail is not None and self.period is not None

    def export_csv(self, folder: Path) -> Path:
        detail, period = self.detail, self.period
        assert detail is not None and period is not None and self.shown_state is not None
        name = (detail.name or detail.resource_id.rsplit("/", 1)[-1]).replace("/", "-")
        path = folder / f"finops-resource-{name}-{period.start}..{period.end}-{self.shown_state[1]}-{self.currency}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["resource_id", "section", "label", "currency", "cost"])
            for offset, value in enumerate(detail.daily):
                day = period.start + dt.timedelta(days=offset)
                writer.writerow([detail.arm_id, "day", day.isoformat(), self.currency, format(value, "f")])
            for line in detail.by_meter:
                writer.writerow([detail.arm_id, "meter", line.label, self.currency, format(line.cost, "f")])
            for line in detail.by_charge_category:
                writer.writerow([detail.arm_id, "charge category", line.label, self.currency, format(line.cost, "f")])
            for share in detail.split_to:
                writer.writerow([detail.arm_id, "split to", share.consumer_id, self.currency, format(share.cost, "f")])
        return path

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield PaletteCommand("Tag this resource…", "Set a tag (a manual edit, t)", self.action_tag)
        yield from self.view_palette_commands()
        yield PaletteCommand("Export resource to CSV", "Daily cost, meters and charge categories", self.action_export)
        yield PaletteCommand("Back", "Return to the tree (esc)", self.action_back)
