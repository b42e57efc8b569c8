"""shared.toml: saving, reordering and deleting pools keeps the user's comments; the demo pools; the policy."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from finops_tui import paths
from finops_tui.allocation.effective import load_tag_policy
from finops_tui.allocation.rules import Rule
from finops_tui.allocation.shared import (
    Pool,
    delete_pool,
    demo_pools,
    load_pools,
    move_pool,
    pool_table,
    save_pool,
)
from finops_tui.config import Config
from finops_tui.errors import ConfigError

USER_FILE = """\
# Our shared costs (reviewed monthly with finance)

[[pool]]
name = "hub network"   # both hubs
match = { resource_group = "rg-network-hub*" }

# Support is split by agreement
[[pool]]
name = "support"
method = "fixed"
match = { service = "Azure Support", charge_category = "Purchase" }
weights = { payments = 40, search = 60 }
"""


def _new_pool() -> Pool:
    return Pool(name="log analytics", to="team", method="even",
                match=Rule(set_tags={}, resource_group="rg-monitoring", service="Log*"),
                recipients=("payments", "search"))


def test_save_appends_and_keeps_comments(tmp_path: Path) -> None:
    path = tmp_path / "shared.toml"
    path.write_text(USER_FILE)
    pools = save_pool(_new_pool(), path)
    text = path.read_text()
    assert text.startswith(USER_FILE)  # every line the user wrote, comments included, unchanged
    assert [p.name for p in pools] == ["hub network", "support", "log analytics"]
    assert pools[2].recipients == ("payments", "search") and pools[2].method == "even"
    assert load_pools(path) == pools


def test_move_and_delete_keep_comments(tmp_path: Path) -> None:
    path = tmp_path / "shared.toml"
    path.write_text(USER_FILE)
    pools = move_pool(2, 1, path)
    assert [p.name for p in pools] == ["support", "hub network"]
    text = path.read_text()
    assert "# both hubs" in text and "# Support is split by agreement" in text
    assert "# Our shared costs (reviewed monthly with finance)" in text
    pools = delete_pool(2, path)
    assert [p.name for p in pools] == ["support"]
    assert "# Our shared costs (reviewed monthly with finance)" in path.read_text()
    assert pools[0].weights == (("payments", Decimal(40)), ("search", Decimal(60)))


def test_a_broken_file_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    path = tmp_path / "shared.toml"
    path.write_text('[[pool]]\nname = "x"\nmatch = { colour = "red" }\n')
    with pytest.raises(ConfigError, match=r"pool 1 \(x\): match.colour: unknown match field"):
        save_pool(_new_pool(), path)
    assert path.read_text() == '[[pool]]\nname = "x"\nmatch = { colour = "red" }\n'


def test_pool_table_round_trips(tmp_path: Path) -> None:
    import tomlkit

    pool = Pool(name='quote " and \\ back', to="costcenter", method="fixed",
                match=Rule(set_tags={}, subscription="prod-*", tags={"env": "prod"}), charge_category="Usage",
                unallocated=True, allocated=True, weights=(("a", Decimal("1.5")), ("b", Decimal(2))), index=1)
    document = tomlkit.document()
    aot = tomlkit.aot()
    aot.append(pool_table(pool))
    document["pool"] = aot
    path = tmp_path / "shared.toml"
    path.write_text(tomlkit.dumps(document))
    assert load_pools(path) == (pool,)


def test_policy_reads_shared_toml_and_demo_pools_ship() -> None:
    assert load_tag_policy(Config()).pools is None  # no shared.toml: the demo estate uses its own pools
    path = paths.config_dir() / "shared.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(USER_FILE)
    policy = load_tag_policy(Config(team_key="owner"))
    assert policy.pools is not None and [p.to for p in policy.pools] == ["owner", "owner"]
    assert [(p.name, p.method) for p in demo_pools()] == [
        ("hub network", "proportional"), ("log analytics", "even"), ("support", "fixed")]
