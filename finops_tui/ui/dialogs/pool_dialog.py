"""`$` in the allocation tree: make a node's cost a shared cost pool, with a live preview of each recipient's share.

The dialog validates its fields exactly as shared.toml is read (`allocation.shared.parse_pool`), previews the
split in a worker with the engine's `preview_pool` (the same functions the write uses, so the preview is what
saving gives, to the cent), and returns the Pool; the screen saves it with `change_pools` in a worker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from typing import Any, ClassVar

import duckdb
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, HorizontalGroup
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Button, Input, Label, Select, Static

from finops_tui.allocation.effective import load_tag_policy
from finops_tui.allocation.shared import (
    DEMO_SHARED_FILE,
    METHOD_TITLES,
    METHODS,
    Pool,
    PoolPreview,
    apply_pools,
    parse_pool,
    preview_pool,
    resolve_pools,
    shared_path,
)
from finops_tui.basis.dimensions import UNALLOCATED
from finops_tui.basis.money import money
from finops_tui.config import Config, write_atomically
from finops_tui.errors import UserError
from finops_tui.store import Cache
from finops_tui.ui.dialogs.dialog_box import DialogBox, dialog_css
from finops_tui.ui.queries import QueryGate

PREVIEW_DELAY = 0.25  # seconds of no typing before the preview is computed again
# Tree levels a pool can match on, and the shared.toml match field each becomes.
MATCH_FIELD_OF_LEVEL = {
    "subscription": "subscription", "resource-group": "resource_group", "service": "service", "region": "region",
    "resource-type": "resource_type", "resource": "resource_name",
}


def glob_literal(value: str) -> str:
    """`value` as a glob matching only itself: shared.toml's match fields are globs (`*`, `?`, `[…]`)."""
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in value)


@dataclass(frozen=True)
class PoolSeed:
    """What a tree node's pool matches: the node's path as match conditions, and a name to start from."""

    name: str
    subject: str  # the node as people read it: `resource group rg-network-hub › team (unallocated)`
    match: dict[str, Any] = field(default_factory=dict)  # a shared.toml `match` table
    to: str | None = None  # the key an "(unallocated)" step names; None: the team key


def seed_from_trail(trail: Sequence[tuple[str, str | None, str]]) -> PoolSeed:
    """The pool matching the cost of the node at the end of `trail` ((dimension, key, label) root first).

    Every step is a condition (a resource group under a team matches that group's rows with that team);
    a step no match field expresses is a ValueError with the message for the user.
    """
    if not trail:
        raise ValueError("Move the cursor to a node first.")
    match: dict[str, Any] = {}
    tags: dict[str, str] = {}
    to: str | None = None
    for dim, key, label in trail:
        level = dim[4:] if dim.startswith("tag:") else dim.replace("-", " ")
        if dim.startswith("tag:"):
            if key is None:
                if to is not None and to != dim[4:]:
                    raise ValueError("A pool matches the cost without a value of one key only.")
                to = dim[4:]
                match["unallocated"] = True
            else:
                tags[dim[4:]] = glob_literal(key)
        elif dim == "charge-category" and key is not None:
            match["charge_category"] = glob_literal(key)
        elif dim in MATCH_FIELD_OF_LEVEL:
            if key is None:
                raise ValueError(f"A pool cannot match cost without a {level}: press $ on a node that has one.")
            value = label if dim == "resource" else key
            match[MATCH_FIELD_OF_LEVEL[dim]] = glob_literal(value)
        else:
            raise ValueError(f"A pool cannot match by {level}: press $ on a subscription, resource group, service, "
                             "region, resource type, resource, charge category or tag node.")
    if tags:
        match["tags"] = tags
    subject = " › ".join(
        f"{dim[4:] if dim.startswith('tag:') else dim.replace('-', ' ')} {label}" for dim, _, label in trail
    )
    last = trail[-1][2]
    name = f"{trail[-1][0][4:]} {UNALLOCATED}" if trail[-1][1] is None else last
    return PoolSeed(name=name, subject=subject, match=match, to=to)


def parse_weights(text: str) -> dict[str, Any]:
    """`payments=40, search=60` → {"payments": 40, "search": 60}; a value that is not a number stays text, so the
    pool's own validation names it (`weights.search: expected a number`)."""
    weights: dict[str, Any] = {}
    for part in text.replace(";", ",").split(","):
        if not part.strip():
            continue
        key, sep, raw = part.partition("=") if "=" in part else part.partition(":")
        if not sep or not key.strip():
            raise ValueError(f"weights: write recipient=weight, e.g. payments=40, search=60 (got {part.strip()!r})")
        raw = raw.strip()
        value: Any = raw
        for kind in (int, float):
            try:
                value = kind(raw)
                break
            except ValueError:
                continue
        weights[key.strip()] = value
    return weights


def pool_table(seed: PoolSeed, *, name: str, method: str, to: str, recipients: str, weights: str,
               metric_file: str) -> dict[str, Any]:
    """The dialog's fields as a shared.toml `[[pool]]` table (validated by `parse_pool`, as the file would be)."""
    table: dict[str, Any] = {"name": name, "to": to, "method": method, "match": dict(seed.match)}
    listed = [r.strip() for r in recipients.split(",") if r.strip()]
    if listed:
        table["recipients"] = listed
    if method == "fixed":
        table["weights"] = parse_weights(weights)
    if method == "metric":
        table["metric_file"] = metric_file
    return table


# --- changing shared.toml and applying it ------------------------------------------------------------------


def adopt_demo_pools(cache: Cache) -> bool:
    """Before the first edit on the demo estate: write the demo pools (with their comments) as the user's own
    shared.toml, so a new pool is added to them rather than replacing them. True when it wrote the file."""
    path = shared_path()
    if path.exists():
        return False
    with cache.cursor() as cur:
        demo = resolve_pools(cur, None)
    if not demo:
        return False
    write_atomically(path, resources.files("finops_tui").joinpath("data", DEMO_SHARED_FILE).read_text("utf-8"))
    return True


def change_pools(cache: Cache, config: Config, edit: Callable[[], object]) -> tuple[Pool, ...]:
    """Edit shared.toml (`edit`: save, move or delete a pool), then apply every pool to the cache in one write.

    For a worker thread. When anything fails (the edit, or a pool nobody can take), shared.toml is put back as
    it was and the cache is untouched (`apply_pools` writes in one transaction).
    """
    path = shared_path()
    before = path.read_text(encoding="utf-8") if path.exists() else None
    try:
        adopt_demo_pools(cache)
        edit()
        pools = load_tag_policy(config).pools
        apply_pools(cache, pools)
    except BaseException:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            write_atomically(path, before)
        raise
    return pools or ()


# --- the dialog --------------------------------------------------------------------------------------------


@dataclass
class PreviewReady(Message):
    """A worker computed the preview of the pool the fields describe (or why they describe none)."""

    serial: int
    pool: Pool | None
    preview: PoolPreview | None
    problem: str | None


class PoolDialog(ModalScreen[Pool | None]):
    """Name, method, recipients (weights, metric file) of a new pool; the preview shows each recipient's share
    of the period in view in money before anything is saved. Returns the Pool to save, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel", tooltip="Close without saving a pool"),
        Binding("ctrl+s", "save", "Save", id="pool.save", tooltip="Save the pool to shared.toml and apply it"),
    ]

    DEFAULT_CSS = dialog_css("PoolDialog", 92) + """
    PoolDialog .subject { color: $text-muted; width: 100%; height: auto; }
    PoolDialog .fields-row { height: auto; margin-top: 1; }
    PoolDialog .fields-row > Label.field { width: auto; color: $text-muted; padding: 0 1 0 0; }
    PoolDialog .fields-row > Label.field.-second { padding: 0 1; }
    PoolDialog .fields-row > Input, PoolDialog .fields-row > Select { width: 1fr; }
    PoolDialog Select > SelectCurrent { dock: none; margin-top: 0; align-horizontal: left; }  /* a Horizontal */
    PoolDialog .method-only { display: none; }
    PoolDialog .method-only.-shown { display: block; }
    PoolDialog #preview { height: auto; width: 100%; margin-top: 1; padding: 0 1; background: $boost; }
    PoolDialog #error { color: $text-error; height: auto; width: 100%; }
    PoolDialog .hint { color: $text-muted; height: auto; width: 100%; }
    """

    def __init__(self, seed: PoolSeed, *, cache: Cache, config: Config, start: dt.date, end: dt.date,
                 period_text: str, metric: str, currency: str | None) -> None:
        super().__init__()
        self.seed = seed
        self._cache = cache
        self._config = config
        self._start, self._end = start, end
        self._period_text = period_text
        self._metric = metric
        self._currency = currency
        self._gate = QueryGate()
        self._timer: Timer | None = None
        self._serial = 0
        self.previewed: PreviewReady | None = None  # the preview on screen, for the fields as they are now

    def compose(self) -> ComposeResult:
        with DialogBox() as box:
            box.border_title = "New shared cost pool"
            yield Label(f"Share the cost of {self.seed.subject}", classes="subject", markup=False)
            with HorizontalGroup(classes="fields-row"):
                yield Label("Name", classes="field")
                yield Input(self.seed.name, id="name", compact=True)
                yield Label("Method", classes="field -second")
                yield Select([(m, m) for m in METHODS], value="proportional", allow_blank=False,
                             id="method", compact=True)
            with HorizontalGroup(classes="fields-row"):
                yield Label("Split to", classes="field")
                yield Input(self.seed.to or self._config.team_key.lower(), id="to", compact=True)
                yield Label("Recipients", classes="field -second")
                yield Input("", placeholder="all with direct cost, or: payments, search", id="recipients",
                            compact=True)
            with HorizontalGroup(classes="fields-row method-only fixed"):
                yield Label("Weights", classes="field")
                yield Input("", placeholder="e.g. payments=40, search=60", id="weights", compact=True)
            with HorizontalGroup(classes="fields-row method-only metric"):
                yield Label("Metric file", classes="field")
                yield Input("", placeholder="a CSV period,recipient,value beside shared.toml", id="metric-file",
                            compact=True)
            yield Static("computing the preview…", id="preview")
            yield Label("", id="error", markup=False)
            yield Label("Saved to shared.toml (config folder) after the other pools, comments kept, then applied to "
                        "the cache. ctrl+s saves · esc cancels", classes="hint", markup=False)
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Save pool", variant="primary", id="save", disabled=True)

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()
        self._show_method_fields()
        self._schedule(now=True)

    # fields --------------------------------------------------------------------------------------------

    def fields(self) -> dict[str, Any]:
        """The pool table the fields describe (may raise ValueError with a message for the user)."""
        method = self.query_one("#method", Select).value
        return pool_table(
            self.seed, name=self.query_one("#name", Input).value, method=str(method),
            to=self.query_one("#to", Input).value, recipients=self.query_one("#recipients", Input).value,
            weights=self.query_one("#weights", Input).value, metric_file=self.query_one("#metric-file", Input).value,
        )

    def _show_method_fields(self) -> None:
        method = str(self.query_one("#method", Select).value)
        for widget in self.query(".method-only"):
            widget.set_class(widget.has_class(method), "-shown")

    @on(Select.Changed, "#method")
    def _method_changed(self) -> None:
        self._show_method_fields()
        self._schedule()

    @on(Input.Changed)
    def _field_changed(self) -> None:
        self._schedule()

    def _schedule(self, *, now: bool = False) -> None:
        """Preview again once the typing stops; until then Save waits (it saves only what was previewed)."""
        self._serial += 1
        self.previewed = None
        self.query_one("#save", Button).disabled = True
        if self._timer is not None:
            self._timer.stop()
        if now:
            self._start_preview()
        else:
            self._timer = self.set_timer(PREVIEW_DELAY, self._start_preview)

    def _start_preview(self) -> None:
        try:
            table = self.fields()
        except ValueError as exc:
            self._show(PreviewReady(self._serial, None, None, str(exc)))
            return
        self._preview(self._serial, table)

    @work(thread=True, exclusive=True, group="pool-preview", exit_on_error=False, name="pool preview")
    def _preview(self, serial: int, table: dict[str, Any]) -> None:
        try:
            existing = load_tag_policy(self._config).pools
            pool = parse_pool(shared_path(), (len(existing) if existing else 0) + 1, table,
                              team_key=self._config.team_key)
        except UserError as exc:
            self.post_message(PreviewReady(serial, None, None, _field_problem(str(exc))))
            return

        def compute(cur: duckdb.DuckDBPyConnection) -> PreviewReady:
            before = resolve_pools(cur, existing)
            same = next((p for p in before if p.name.lower() == pool.name.lower()), None)
            if same is not None:
                return PreviewReady(serial, None, None,
                                    f"Pool {same.index} is named {same.name} already: give this one its own name.")
            return PreviewReady(serial, pool, preview_pool(cur, pool, existing, self._start, self._end, self._metric),
                                None)

        answer = self._gate.run(self._cache, compute)
        if answer is not None:
            self.post_message(answer)

    @on(PreviewReady)
    def _preview_ready(self, message: PreviewReady) -> None:
        if message.serial == self._serial:
            self._show(message)

    def _show(self, ready: PreviewReady) -> None:
        self.query_one("#error", Label).update(ready.problem or "")
        self.query_one("#preview", Static).update(self._preview_text(ready.preview) if ready.preview else
                                                  Content.styled("no preview until the fields are right",
                                                                 "$text-muted"))
        has_cost = ready.preview is not None and bool(ready.preview.currencies)
        if ready.preview is not None and not has_cost:
            self.query_one("#error", Label).update(
                f"This pool matches no cost in {self._period_text}: nothing to split there (it can still be saved).")
        self.previewed = ready if ready.pool is not None else None
        self.query_one("#save", Button).disabled = self.previewed is None

    def _preview_text(self, preview: PoolPreview) -> Content:
        """Each currency's pool cost and every recipient's share, the view's currency first."""
        lines: list[Content] = [Content.assemble(
            Content.styled(f"Preview, {self._period_text} ({preview.metric}): ", "bold"),
            Content.styled(METHOD_TITLES[preview.pool.method], "$text-muted"))]
        order = sorted(preview.currencies, key=lambda code: (code != self._currency, code))
        for code in order:
            cost, shares = preview.currencies[code]
            lines.append(Content.assemble(Content.styled(f"{code}  pool ", "$text-muted"),
                                          Content.styled(money(cost, code), "bold"),
                                          Content.styled(f"  → {len([s for s in shares if s.recipient])} "
                                                         "recipients", "$text-muted")))
            for share in shares[:12]:
                part = f"{share.amount / cost * 100:5.1f}%" if cost else "    —"
                who = share.recipient if share.recipient is not None else f"{UNALLOCATED} (no recipient that day)"
                lines.append(Content.assemble(
                    Content(f"  {who[:40]:<40} "), Content.styled(f"{money(share.amount):>14}", "bold"),
                    Content.styled(f"  {part}", "$text-muted")))
            if len(shares) > 12:
                rest = sum((s.amount for s in shares[12:]), Decimal(0))
                lines.append(Content.styled(f"  {len(shares) - 12} more{'':<33} {money(rest):>14}", "$text-muted"))
        return Content("\n").join(lines)

    # answers -------------------------------------------------------------------------------------------

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        if self.previewed is None or self.previewed.pool is None:
            self.notify("Wait for the preview: a pool is saved only as previewed.", timeout=3)
            return
        self.dismiss(self.previewed.pool)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self._gate.interrupt_cancelled()
        self.dismiss(None)


def _field_problem(text: str) -> str:
    """`…/shared.toml: pool 4 (x): weights: …` → `weights: …` (the dialog's fields are the pool)."""
    line = text.strip().splitlines()[0] if text.strip() else "not a valid pool"
    marker = "): "
    return line.split(marker, 1)[1] if marker in line else line
