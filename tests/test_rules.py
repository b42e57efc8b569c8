"""Allocation rules: rules.toml round trip, matching, precedence manual > provider > rule, spend per rule."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from finops_tui import paths
from finops_tui.allocation.effective import TagPolicy, reapply_rules
from finops_tui.allocation.journal import apply_tags
from finops_tui.allocation.rules import (
    Rule,
    load_rules,
    rule_allocations,
    rule_to_toml,
    rules_path,
    save_rule,
)
from finops_tui.basis.dimensions import UNALLOCATED
from finops_tui.basis.periods import parse_period
from finops_tui.errors import UserError
from finops_tui.report.resource import effective_tags
from finops_tui.report.tree import children
from finops_tui.store import Cache
from tests.allocation_data import END, TODAY, Charge, load, rid

DAY = END - dt.timedelta(days=1)
PAY_1 = rid("s1", "rg-payments-prod", "api")
PAY_2 = rid("s1", "rg-payments-dev", "worker")
SEARCH = rid("s1", "rg-search", "index")
TAGGED = rid("s2", "rg-payments-prod", "db")  # provider says team=data
SHARED = rid("s2", "rg-shared", "kv")


pytestmark = pytest.mark.today(TODAY)


def _charges() -> list[Charge]:
    return [
        Charge(DAY, PAY_1, Decimal("100.00"), rg="rg-payments-prod"),
        Charge(DAY, PAY_2, Decimal("10.00"), rg="rg-payments-dev", tags={"costcenter": "cc-42"}),
        Charge(DAY, SEARCH, Decimal("7.00"), rg="rg-search", service="Azure Cognitive Search"),
        Charge(DAY, TAGGED, Decimal("50.00"), rg="rg-payments-prod", tags={"Team": "data"}),
        Charge(DAY, SHARED, Decimal("3.00"), rg="rg-shared", resource_type="Key vault"),
        Charge(DAY, None, Decimal("1.00")),
    ]


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    with load(tmp_path / "c.duckdb", _charges()) as opened:
        yield opened


def _policy() -> TagPolicy:
    """The rules in rules.toml now, as the command line and the app load them."""
    return TagPolicy(rules=tuple(load_rules()))


def _team(cache: Cache) -> dict[str, str]:
    with cache.cursor() as cur:
        rows = cur.execute("SELECT ResourceId, tag_value || ' (' || origin || ')' FROM resource_tags "
                           "WHERE tag_key = 'team'").fetchall()
    return dict(rows)


def test_rules_live_in_the_configured_dir_not_the_users(tmp_path: Path) -> None:
    assert rules_path().parent == paths.config_dir()
    assert not str(paths.config_dir()).startswith(str(Path.home() / ".config"))
    assert load_rules() == []  # conftest points FINOPS_TUI_CONFIG_DIR at an empty temporary dir


def test_save_and_load_round_trip_keeps_the_file_text() -> None:
    rules_path().parent.mkdir(parents=True, exist_ok=True)
    rules_path().write_text("# my rules\n", encoding="utf-8")
    first = save_rule(Rule({"team": "payments"}, name="payments groups", resource_group="rg-payments-*"))
    second = save_rule(Rule({"Team": "search", "env": "prod"}, service="*search*", tags={"cost center": "cc-\"1\""}))
    assert (first.index, second.index) == (1, 2)
    assert rules_path().read_text(encoding="utf-8").startswith("# my rules\n")
    loaded = load_rules()
    assert loaded == [first, second]
    assert loaded[1].set_tags == {"team": "search", "env": "prod"}  # keys are canonical lower case
    assert loaded[1].tags == {"cost center": 'cc-"1"'}
    assert loaded[0].label == "payments groups"
    assert loaded[1].describe() == 'service=*search* and tag cost center=cc-"1" → team=search, env=prod'
    assert "[[rule]]" in rule_to_toml(loaded[0])


def test_save_keeps_comments_and_layout_of_existing_rules() -> None:
    text = (
        "# Platform rules: reviewed by the FinOps guild\n\n"
        "[[rule]]\n"
        "name = 'payments'   # the payments groups\n"
        "resource_group = 'rg-payments-*'\n"
        "set = { team = 'payments' }\n"
    )
    rules_path().parent.mkdir(parents=True, exist_ok=True)
    rules_path().write_text(text, encoding="utf-8")
    saved = save_rule(Rule({"team": "search"}, name='odd "name"\tand tab', service="*search*"))
    written = rules_path().read_text(encoding="utf-8")
    assert written.startswith(text)  # the user's lines, comments and quoting stay as written
    assert saved.index == 2 and saved.name == 'odd "name"\tand tab'
    assert [r.label for r in load_rules()] == ["payments", 'odd "name"\tand tab']


def test_save_refuses_a_broken_file_and_leaves_it_alone() -> None:
    rules_path().parent.mkdir(parents=True, exist_ok=True)
    rules_path().write_text("[[rule]\nbroken", encoding="utf-8")
    with pytest.raises(UserError):
        save_rule(Rule({"team": "search"}, service="*search*"))
    assert rules_path().read_text(encoding="utf-8") == "[[rule]\nbroken"


@pytest.mark.parametrize(("text", "message"), [
    ("[[rule]]\nresource_group = 'x'\n", "give the tags to set"),
    ("[[rule]]\nresourcegroup = 'x'\nset = { team = 'a' }\n", "unknown field 'resourcegroup'"),
    ("[[rule]]\nset = { team = '' }\n", "must not be empty"),
    ("rule = 3\n", "array of tables"),
    ("[[rule]\n", "not valid TOML"),
])
def test_broken_rules_give_one_clear_line(text: str, message: str) -> None:
    rules_path().parent.mkdir(parents=True, exist_ok=True)
    rules_path().write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        load_rules()


def test_precedence_manual_then_provider_then_rule(cache: Cache) -> None:
    save_rule(Rule({"team": "payments"}, resource_group="RG-PAYMENTS-*"))
    reapply_rules(cache, _policy())
    assert _team(cache) == {
        PAY_1: "payments (rule)", PAY_2: "payments (rule)",
        TAGGED: "data (provider)",  # the rule matches its group but never overrides a provider tag
    }
    apply_tags(cache, _policy(), [PAY_1, TAGGED], "team", "checkout")
    assert _team(cache)[PAY_1] == "checkout (manual)" and _team(cache)[TAGGED] == "checkout (manual)"
    # A full rebuild (as after an import) gives the same answer: edits and rules live beside the facts.
    reapply_rules(cache, _policy())
    assert _team(cache) == {PAY_1: "checkout (manual)", PAY_2: "payments (rule)", TAGGED: "checkout (manual)"}


def test_first_matching_rule_wins_and_rules_see_other_tags(cache: Cache) -> None:
    save_rule(Rule({"team": "billing"}, tags={"costcenter": "cc-4*"}))
    save_rule(Rule({"team": "payments"}, resource_group="rg-payments-*"))
    save_rule(Rule({"team": "search"}, service="*search*"))
    save_rule(Rule({"team": "platform"}, resource_type="microsoft.compute/*", subscription="Subscription S2"))
    save_rule(Rule({"team": "never"}, resource_name="kv"))
    reapply_rules(cache, _policy())
    assert _team(cache) == {
        PAY_2: "billing (rule)", PAY_1: "payments (rule)", SEARCH: "search (rule)", TAGGED: "data (provider)",
        SHARED: "platform (rule)",  # rule 4 matched first (subscription by name, ARM type from the id)
    }
    with cache.cursor() as cur:
        tags = effective_tags(cur, PAY_2, rules=load_rules())
    assert [(t.key, t.value, t.origin, t.rule) for t in tags] == [
        ("costcenter", "cc-42", "provider", None), ("team", "billing", "rule", "tag costcenter=cc-4* → team=billing"),
    ]


def test_a_removed_tag_is_not_refilled_by_a_rule(cache: Cache) -> None:
    save_rule(Rule({"team": "payments"}, resource_group="rg-payments-*"))
    reapply_rules(cache, _policy())
    apply_tags(cache, _policy(), [PAY_1], "team", None)
    assert PAY_1 not in _team(cache)


def test_rule_allocations_and_the_tree(cache: Cache) -> None:
    save_rule(Rule({"team": "payments", "env": "prod"}, name="payments", resource_group="rg-payments-*"))
    save_rule(Rule({"team": "unused"}, resource_group="rg-nothing"))
    period = parse_period("30d", today=TODAY, data_end=END)
    reapply_rules(cache, _policy())
    with cache.cursor() as cur:
        spend = rule_allocations(cur, period, rules=load_rules())
        nodes = {n.label: n.cost for n in children(cur, ["tag:team"], [], period)}
    # The rule fills team on two resources and env on three (the provider already says team=data on one).
    assert [(a.rule.label, a.resources, a.cost, a.cost_by_key) for a in spend] == [
        ("payments", 3, Decimal("160.00"), {"team": Decimal("110.00"), "env": Decimal("160.00")}),
        ("resource_group=rg-nothing → team=unused", 0, Decimal(0), {}),
    ]
    assert nodes == {"payments": Decimal("110.00"), "data": Decimal("50.00"), UNALLOCATED: Decimal("11.00")}


def test_imports_apply_rules_too(tmp_path: Path) -> None:
    save_rule(Rule({"team": "search"}, service="*search*"))
    with load(tmp_path / "c.duckdb", _charges()) as fresh:
        assert _team(fresh)[SEARCH] == "search (rule)"
