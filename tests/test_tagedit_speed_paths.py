"""Tag edits at scale: one scan of `charges` for the resources whose summarised value moved, none for an edit the
summary and the pools do not read, and every derived table still equal to the same tables derived afresh."""

from __future__ import annotations

import datetime as dt
import math
import re
import tempfile
from collections.abc import Iterator, Sequence
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finops_tui.allocation.effective import TagPolicy, rebuild_resource_tags
from finops_tui.allocation.journal import apply_tags, redo, undo
from finops_tui.allocation.rules import Rule
from finops_tui.allocation.shared import (
    Pool,
    compute_splits,
    marker_sql,
    resolve_pools,
    split_tag_keys,
    split_to_cents,
)
from finops_tui.store import Cache, summaries
from tests.allocation_data import Charge, load

D = Decimal
START = dt.date(2026, 11, 1)


def _vm(n: int, rg: str = "rg-app") -> str:
    return f"/subscriptions/sub-{n % 2}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/vm{n}"


HUB = "/subscriptions/sub-0/resourceGroups/rg-hub/providers/Microsoft.Network/loadBalancers/lb"
RESOURCES = [_vm(n) for n in range(6)]
HUB_POOL = Pool("hub", "team", "proportional", Rule(set_tags={}, resource_group="rg-hub"), index=1)
SUPPORT_POOL = Pool("support", "team", "fixed", Rule(set_tags={}, service="Support"),
                    weights=(("payments", D(1)), ("search", D(3))), index=2)
EVEN_POOL = Pool("storage", "team", "even", Rule(set_tags={}, service="Storage"), index=3)
# Pools whose split reads other keys: a basis on `env`, recipients by `owner`, rows chosen by a tag.
BASIS_POOL = Pool("hub by prod", "team", "proportional", Rule(set_tags={}, resource_group="rg-hub"),
                  basis=Rule(set_tags={}, tags={"env": "prod"}), index=1)
OWNER_POOL = Pool("storage by owner", "owner", "even", Rule(set_tags={}, service="Storage"), index=2)
TAGGED_POOL = Pool("tagged shared", "team", "proportional", Rule(set_tags={}, tags={"shared": "yes"}), index=1)
UNTAGGED_POOL = Pool("untagged", "team", "even", Rule(set_tags={}), unallocated=True, index=3)
POOL_SETS: dict[str, tuple[Pool, ...]] = {
    "none": (),
    "tag-free": (HUB_POOL, SUPPORT_POOL, EVEN_POOL),
    "other keys": (BASIS_POOL, OWNER_POOL),
    "reading tags": (TAGGED_POOL, SUPPORT_POOL, UNTAGGED_POOL),
}


def _charges() -> list[Charge]:
    out: list[Charge] = []
    for day in range(4):
        when = START + dt.timedelta(days=day)
        for n, resource in enumerate(RESOURCES):
            team = ("payments", "search", None)[n % 3]
            tags = {"env": "prod" if n % 2 else "dev", "owner": f"o{n % 2}"} | ({"team": team} if team else {})
            out.append(Charge(when, resource, D("10.000000000001") * (n + 1) + day, tags=tags,
                              billed=D("3.5") * (n + 1), service="Storage" if n == 5 else "Virtual Machines"))
        out.append(Charge(when, HUB, D("12.34"), tags={"team": "platform", "shared": "yes"},
                          service="Load Balancer"))
    out += [
        Charge(START, None, D("99.99"), service="Support", category="Purchase"),
        Charge(START + dt.timedelta(days=1), RESOURCES[0], D("-4.5"), tags={"team": "payments"}, category="Credit"),
        Charge(START + dt.timedelta(days=2), RESOURCES[1], D("7"), currency="EUR", tags={"team": "search"}),
    ]
    return out


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    store = load(tmp_path / "c.duckdb", _charges())
    yield store
    store.close()


class RecordingCursor:
    """A write cursor that keeps the text of every statement run on it."""

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self.cur = cur
        self.statements: list[str] = []

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        self.statements.append(" ".join(str(sql).split()))
        return self.cur.execute(sql, *args, **kwargs)

    def executemany(self, sql: str, *args: Any, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        self.statements.append(" ".join(str(sql).split()))
        return self.cur.executemany(sql, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cur, name)

    def reading(self, table: str) -> list[str]:
        """Statements that read the table's rows (its row count is metadata, not a scan)."""
        return [s for s in self.statements if re.search(rf"(?<!count\(\*\) )\b(FROM|JOIN|UPDATE) {table}\b", s)]

    def writing(self, table: str) -> list[str]:
        return [s for s in self.statements if re.search(rf"\b(INSERT INTO|DELETE FROM|UPDATE) {table}\b", s)]


def _edit(cache: Cache, policy: TagPolicy, ids: Sequence[str], key: str, value: str | None) -> RecordingCursor:
    """Journal an edit as apply_tags does, then rebuild the resources' tags on a recording cursor."""
    with cache.write() as cur:
        recording = RecordingCursor(cur)
        cur.execute(
            "INSERT INTO tag_edits (ResourceId, tag_key, old_value, new_value, origin, created_at, batch_id, "
            "push_status) SELECT unnest(?::VARCHAR[]), ?, NULL, ?, 'manual', now(), 999, 'local'",
            [[i.lower() for i in ids], key, value],
        )
        rebuild_resource_tags(cast(duckdb.DuckDBPyConnection, recording), policy,
                              resource_ids=[i.lower() for i in ids])
    return recording


def _with_pools(cache: Cache, pools: tuple[Pool, ...]) -> TagPolicy:
    policy = TagPolicy(pools=pools)
    with cache.write() as cur:
        rebuild_resource_tags(cur, policy)
    return policy


def assert_derived_equal_afresh(cache: Cache, pools: Sequence[Pool]) -> None:
    """The summary equals `charges`; every row's pool marker equals the pools evaluated afresh; the stored shares
    equal a split computed from the rows (a marker expression that never reads the summary)."""
    with cache.cursor() as cur:
        assert summaries.differences(cur) == []
        applied = resolve_pools(cur, pools)
        params: list[Any] = []
        marker = marker_sql(applied, params)
        cur.execute("CREATE OR REPLACE TEMP VIEW _rule_view AS "  # what the pools' tag conditions read
                    "SELECT ResourceId, tag_key, tag_value FROM resource_tags")
        wrong = cur.execute(f"SELECT count(*) FROM charges r WHERE x_SharedPool IS DISTINCT FROM {marker}",
                            params).fetchone()
        assert wrong == (0,)
        stored = sorted(cur.execute(
            "SELECT pool_index, day, currency, recipient, effective, billed FROM shared_splits").fetchall(), key=str)
        fresh = compute_splits(cur, list(applied), marker="(r.x_SharedPool)")
        cur.execute("DROP VIEW _rule_view")
    assert stored == sorted(((r.pool_index, r.day, r.currency, r.recipient, r.effective, r.billed)
                             for r in fresh.rows), key=str)


def test_a_team_edit_scans_charges_once_and_stays_equal(cache: Cache) -> None:
    policy = _with_pools(cache, POOL_SETS["tag-free"])
    recording = _edit(cache, policy, RESOURCES[:4], "team", "checkout")
    assert len(recording.reading("charges")) == 1, recording.reading("charges")
    assert recording.writing("shared_splits")  # the split reads team's direct cost: re-split
    assert_derived_equal_afresh(cache, POOL_SETS["tag-free"])
    with cache.cursor() as cur:
        moved = cur.execute("SELECT sum(row_count) FROM daily_summary WHERE tag_value = 'checkout'").fetchone()
    assert moved == (4 * 4 + 2,)  # 4 resources x 4 days, vm0's credit, vm1's EUR row


def test_an_edit_that_leaves_the_summarised_value_reads_no_charges(cache: Cache) -> None:
    policy = _with_pools(cache, POOL_SETS["tag-free"])
    recording = _edit(cache, policy, RESOURCES[:3], "cost-center", "cc-1")
    assert recording.reading("charges") == []
    assert recording.writing(summaries.SUMMARY_FACTS) == [] and recording.writing("shared_splits") == []
    assert_derived_equal_afresh(cache, POOL_SETS["tag-free"])


def test_setting_the_value_a_resource_already_has_moves_nothing(cache: Cache) -> None:
    policy = _with_pools(cache, POOL_SETS["tag-free"])
    with cache.cursor() as cur:
        before = cur.execute("SELECT * FROM daily_summary ORDER BY ALL").fetchall()
    recording = _edit(cache, policy, [RESOURCES[0]], "team", "payments")  # provider value made manual
    assert recording.reading("charges") == [] and recording.writing(summaries.SUMMARY_FACTS) == []
    with cache.cursor() as cur:
        assert cur.execute("SELECT * FROM daily_summary ORDER BY ALL").fetchall() == before


@pytest.mark.parametrize("key", ["env", "owner"])
def test_keys_a_pool_reads_re_split_it(cache: Cache, key: str) -> None:
    policy = _with_pools(cache, POOL_SETS["other keys"])
    recording = _edit(cache, policy, RESOURCES[:2], key, "prod" if key == "env" else "o9")
    assert recording.writing("shared_splits")
    assert recording.reading("charges")  # the basis and a `to` other than the summary's key need the rows
    assert recording.writing(summaries.SUMMARY_FACTS) == []  # the team value did not move
    assert_derived_equal_afresh(cache, POOL_SETS["other keys"])


def test_a_key_that_chooses_pool_rows_moves_them_between_pools(cache: Cache) -> None:
    policy = _with_pools(cache, POOL_SETS["reading tags"])
    _edit(cache, policy, [HUB], "shared", "no")  # the hub's rows leave the pool: direct cost of platform
    assert_derived_equal_afresh(cache, POOL_SETS["reading tags"])
    with cache.cursor() as cur:
        assert cur.execute("SELECT count(*) FROM charges WHERE x_SharedPool = 1").fetchone() == (0,)
    _edit(cache, policy, RESOURCES[2:3], "team", "payments")  # leaves the `untagged` pool
    assert_derived_equal_afresh(cache, POOL_SETS["reading tags"])


def test_split_tag_keys_name_every_key_a_split_reads() -> None:
    assert split_tag_keys(POOL_SETS["tag-free"]) == {"team"}
    assert split_tag_keys(POOL_SETS["other keys"]) == {"team", "env", "owner"}
    assert split_tag_keys(POOL_SETS["reading tags"]) == {"team", "shared"}
    assert split_tag_keys(()) == set()


def test_twelve_places_credits_and_a_second_currency_move_exactly(cache: Cache) -> None:
    policy = _with_pools(cache, POOL_SETS["tag-free"])
    apply_tags(cache, policy, RESOURCES[:2], "team", "checkout", push=False)
    with cache.cursor() as cur:
        rows = dict(cur.execute(
            "SELECT BillingCurrency, sum(EffectiveCost) FROM daily_summary WHERE tag_value = 'checkout' GROUP BY 1"
        ).fetchall())
        direct = dict(cur.execute(
            "SELECT BillingCurrency, sum(EffectiveCost) FROM charges WHERE x_ResourceKey IN (SELECT resource_key "
            "FROM resource_keys WHERE ResourceId IN (?, ?)) GROUP BY 1", [r.lower() for r in RESOURCES[:2]]
        ).fetchall())
    assert rows == direct and rows["EUR"] == D("7") and rows["USD"].as_tuple().exponent == -12
    assert_derived_equal_afresh(cache, POOL_SETS["tag-free"])


def _largest_remainder(amount: Decimal, weights: dict[str, Decimal]) -> dict[str, Fraction]:
    """The cent rule in exact fractions: each quota floored to the cent, the cents left to the largest remainders
    (ties by key), the sub-cent rest to the next one."""
    positive = {k: Fraction(w) for k, w in weights.items() if w > 0}
    if not positive or not amount:
        return {k: Fraction(0) for k in positive}
    total = sum(positive.values())
    quotas = {k: Fraction(amount) * w / total for k, w in positive.items()}
    shares = {k: Fraction(math.floor(q * 100), 100) for k, q in quotas.items()}
    order = sorted(positive, key=lambda k: (-(quotas[k] - shares[k]), k))
    rest = Fraction(amount) - sum(shares.values())
    whole = math.floor(rest * 100)
    for key in order[:whole]:
        shares[key] += Fraction(1, 100)
    if rest - Fraction(whole, 100):
        shares[order[whole % len(order)]] += rest - Fraction(whole, 100)
    return shares


money = st.decimals(min_value=Decimal("-1e25"), max_value=Decimal("1e25"), places=12, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(money, st.dictionaries(st.sampled_from("abcdefgh"), st.one_of(
    money, st.integers(0, 5).map(Decimal), st.decimals(min_value=0, max_value=100, places=20, allow_nan=False)),
    max_size=6))
def test_split_to_cents_is_the_cent_rule_in_exact_fractions(amount: Decimal, weights: dict[str, Decimal]) -> None:
    shares = split_to_cents(amount, weights)
    assert {k: Fraction(v) for k, v in shares.items()} == _largest_remainder(amount, weights)
    if shares and amount:
        assert sum(Fraction(v) for v in shares.values()) == Fraction(amount)
        assert sum(1 for v in shares.values() if v != v.quantize(Decimal("0.01"))) <= 1


# --- the property: random edits of read and unread keys, undo and redo, over each kind of pool set ----------

edit = st.one_of(
    st.tuples(st.just("tag"), st.lists(st.integers(0, len(RESOURCES)), min_size=1, max_size=4, unique=True),
              st.sampled_from(("team", "env", "owner", "shared", "other")),
              st.sampled_from(("payments", "search", "prod", "yes", "o1", None))),
    st.tuples(st.just("undo"), st.just([]), st.just(""), st.just(None)),
    st.tuples(st.just("redo"), st.just([]), st.just(""), st.just(None)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(POOL_SETS)), st.lists(edit, min_size=1, max_size=6))
def test_random_edits_keep_every_derived_table_equal_afresh(
    pool_set: str, edits: list[tuple[str, list[int], str, str | None]]
) -> None:
    pools = POOL_SETS[pool_set]
    with tempfile.TemporaryDirectory() as folder:
        cache = load(Path(folder) / "c.duckdb", _charges())
        try:
            policy = _with_pools(cache, pools)
            everything = [*RESOURCES, HUB]
            for kind, picked, key, value in edits:
                if kind == "tag":
                    apply_tags(cache, policy, [everything[i] for i in picked], key, value, push=False)
                elif kind == "undo":
                    undo(cache, policy)
                else:
                    redo(cache, policy)
                assert_derived_equal_afresh(cache, pools)
        finally:
            cache.close()
