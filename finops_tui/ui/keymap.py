"""Key remapping from config.toml [keys]: one id per action on every screen, old ids accepted, clashes refused."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode
from textual.keys import key_to_character
from textual.widgets import Button, DataTable, Input, Select

from finops_tui.ui.dialogs.help import HelpDialog, HelpTable
from finops_tui.ui.dialogs.hierarchy import HierarchyDialog
from finops_tui.ui.dialogs.period import CustomPeriodDialog, PeriodDialog, VimOptionList
from finops_tui.ui.dialogs.pool_dialog import PoolDialog
from finops_tui.ui.dialogs.pool_list import PoolListDialog
from finops_tui.ui.dialogs.push_preview import PushPreviewDialog
from finops_tui.ui.dialogs.rec_note import RecFieldDialog
from finops_tui.ui.dialogs.tag_dialog import RuleDialog, RulesDialog, TagDialog, TagKeyDialog
from finops_tui.ui.screens.allocation import AllocationScreen
from finops_tui.ui.screens.explain import ContributorTable, ExplainScreen
from finops_tui.ui.screens.overview import OverviewScreen
from finops_tui.ui.screens.recommendations import RecommendationsScreen
from finops_tui.ui.screens.resource_detail import CostLines, ResourceDetailScreen
from finops_tui.ui.screens.tagging import TaggingScreen
from finops_tui.ui.screens.welcome import WelcomeScreen
from finops_tui.ui.widgets.alloc_queue import QueueTable
from finops_tui.ui.widgets.alloc_tree import AllocTree
from finops_tui.ui.widgets.cost_table import CostTable
from finops_tui.ui.widgets.daily_chart import DailyChart
from finops_tui.ui.widgets.rec_detail import RecDetail
from finops_tui.ui.widgets.rec_list import RecList
from finops_tui.ui.widgets.waterfall import Waterfall

# Ids renamed when every screen's copy of an action got one id: configs written for the old ones keep
# working (the README's example used to be "overview.metric").
RENAMED_IDS: dict[str, str] = {
    **{f"overview.{name}": f"view.{name}" for name in ("period", "metric", "currency", "filter", "export")},
    "recommendations.metric": "view.metric",
    "recommendations.currency": "view.currency",
    **{f"{screen}.filter": "view.filter" for screen in ("allocation", "tagging", "recommendations")},
    **{f"{screen}.export": "view.export" for screen in ("allocation", "tagging", "resource")},
    **{old: "view.back" for old in ("overview.clear_filter", "recommendations.clear_filter", "allocation.back",
                                    "tagging.back", "resource.back")},
    **{f"{screen}.tag": "view.tag" for screen in ("allocation", "tagging", "resource")},
    **{f"{prefix}.{move}": f"list.{move}"
       for prefix in ("table", "allocation", "tagging", "rec_list")
       for move in ("down", "up", "top", "bottom", "page_down", "page_up")},
    "resource.lines.down": "list.down",
    "resource.lines.up": "list.up",
    "rec_detail.down": "list.down",
    "rec_detail.up": "list.up",
    **{old: "list.open" for old in ("table.open", "allocation.drill", "tagging.open", "rec_list.open")},
    **{f"{dialog}.cancel": "dialog.cancel"
       for dialog in ("period", "custom_period", "hierarchy", "tag_dialog", "rule_dialog", "tag_key_dialog",
                      "rec_dialog", "push")},
    "help.close": "dialog.close",
    "rules_dialog.close": "dialog.close",
}

Chain = tuple[type[DOMNode], ...]  # the classes whose bindings are active together: focused widget, screen, app


@dataclass(frozen=True)
class KeymapResult:
    """The keymap to give Textual, and one line per entry of [keys] that was not applied."""

    keymap: dict[str, str]
    problems: list[str]


def binding_chains(app: type[DOMNode]) -> list[Chain]:
    """Every combination of a focusable widget, its screen and the app whose keys are live at the same time.

    Dialogs are modal: the app's keys are not live under them.
    """
    screens: list[tuple[type[DOMNode], tuple[type[DOMNode], ...]]] = [
        (OverviewScreen, (CostTable, DailyChart)),
        (AllocationScreen, (AllocTree,)),
        (ResourceDetailScreen, (DailyChart, CostLines)),
        (ExplainScreen, (Waterfall, ContributorTable)),
        (RecommendationsScreen, (RecList, RecDetail)),
        (TaggingScreen, (QueueTable,)),
        (WelcomeScreen, (Button,)),
    ]
    dialogs: list[tuple[type[DOMNode], tuple[type[DOMNode], ...]]] = [
        (HelpDialog, (HelpTable,)),
        (PeriodDialog, (VimOptionList,)),
        (CustomPeriodDialog, (Button,)),
        (HierarchyDialog, (VimOptionList, Button)),
        (TagDialog, (Button,)),
        (RuleDialog, (Button,)),
        (RulesDialog, (DataTable,)),
        (TagKeyDialog, (VimOptionList,)),
        (PushPreviewDialog, (DataTable, Button)),
        (RecFieldDialog, (Button,)),
        (PoolDialog, (Input, Select, Button)),
        (PoolListDialog, (DataTable,)),
    ]
    chains: list[Chain] = []
    for screen, widgets in screens:
        chains += [(widget, screen, app) for widget in widgets] + [(screen, app)]
    for dialog, widgets in dialogs:
        chains += [(widget, dialog) for widget in widgets] + [(dialog,)]
    return chains


def _bindings(node_class: type[DOMNode]) -> list[Binding]:
    """The class's bindings with its bases' (as Textual merges them), one per key."""
    return [binding for bindings in node_class._merge_bindings().key_to_bindings.values() for binding in bindings]


def _name(binding: Binding) -> str:
    what = binding.description or binding.action
    return f"{what} ({binding.id})" if binding.id else what


def resolve_keymap(entries: Mapping[str, str], chains: Iterable[Chain]) -> KeymapResult:
    """The [keys] entries under today's ids, without those that name no binding or would take a key that
    another binding on the same screen keeps (that binding would silently lose its key)."""
    chain_list = list(chains)
    known = {binding.id for chain in chain_list for cls in chain for binding in _bindings(cls) if binding.id}
    problems: list[str] = []
    keymap: dict[str, str] = {}
    for entry, keys in entries.items():
        binding_id = RENAMED_IDS.get(entry, entry)
        if binding_id not in known:
            problems.append(f'config.toml [keys]: no key has the id "{entry}" (? lists the ids of each screen).')
        else:
            keymap[binding_id] = App._normalize_keymap({binding_id: keys})[binding_id]
    written = {RENAMED_IDS.get(entry, entry): entry for entry in entries}
    while clash := _first_clash(keymap, chain_list):
        binding_id, key, taken_from = clash
        problems.append(f'config.toml [keys]: "{written[binding_id]}" = "{entries[written[binding_id]]}" is ignored: '
                        f"{key_to_character(key) or key} is already {_name(taken_from)}; pick another key, or "
                        "remap that one too.")
        del keymap[binding_id]
    return KeymapResult(keymap, problems)


def _first_clash(keymap: Mapping[str, str], chains: list[Chain]) -> tuple[str, str, Binding] | None:
    """A remapped binding whose new key another binding of the same chain still has after the remap."""
    for chain in chains:
        final: dict[str, list[Binding]] = {}
        for cls in chain:
            for binding in _bindings(cls):
                keys = keymap[binding.id].split(",") if binding.id and binding.id in keymap else [binding.key]
                for key in keys:
                    final.setdefault(key.strip(), []).append(binding)
        for key, bindings in final.items():
            remapped = [b for b in bindings if b.id in keymap]
            for mine in remapped:
                # Another action on that key; the same action under another binding (Textual's own ctrl+q
                # quit) is no clash.
                other = next((b for b in bindings if b.id != mine.id and b.action != mine.action), None)
                if other is not None:
                    return mine.id or "", key, other
    return None
