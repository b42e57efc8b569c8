"""Shared cost pools: each method against hand-computed figures, the cent rule, order and overlap, previews."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from finops_tui.allocation.rules import Rule
from finops_tui.allocation.shared import (
    Pool,
    apply_pools,
    compute_splits,
    parse_pools,
    preview_pool,
    split_to_cents,
)
from finops_tui.errors import ConfigError, UserError
from finops_tui.store import Cache
from tests.allocation_data import Charge, load

D = Decimal
DAY = dt.date(2026, 11, 10)
HUB = "/subscriptions/sub-a/resourceGroups/rg-hub/providers/Microsoft.Network/loadBalancers/lb-hub"
PAY = "/subscriptions/sub-a/resourceGroups/rg-pay/providers/Microsoft.Compute/virtualMachines/vm-pay"
SEARCH = "/subscriptions/sub-a/resourceGroups/rg-search/providers/Microsoft.Compute/virtualMachines/vm-search"
UNTAGGED = "/subscriptions/sub-a/resourceGroups/rg-misc/providers/Microsoft.Compute/virtualMachines/vm-misc"


def _base(extra: list[Charge] | None = None) -> list[Charge]:
    return [
        Charge(DAY, PAY, D("30"), tags={"team": "payments"}, billed=D("20")),
        Charge(DAY, SEARCH, D("10"), tags={"team": "search"}, billed=D("20")),
        Charge(DAY, HUB, D("10.00"), tags={"team": "platform"}, service="Load Balancer"),
        Charge(DAY, UNTAGGED, D("4"), service="Storage"),
        *(extra or []),
    ]


def _pool(method: str = "proportional", index: int = 1, **kwargs: object) -> Pool:
    match = kwargs.pop("match", Rule(set_tags={}, resource_group="rg-hub"))
    assert isinstance(match, Rule)
    return Pool(name=f"pool {index}", to="team", method=method, match=match, index=index, **kwargs)  # type: ignore[arg-type]


def _shares(cache: Cache, metric: str = "effective") -> dict[tuple[int, str, str | None], Decimal]:
    column = "effective" if metric == "effective" else "billed"
    with cache.cursor() as cur:
        rows = cur.execute(
            f"SELECT pool_index, currency, recipient, sum({column}) FROM shared_splits GROUP BY 1, 2, 3"
        ).fetchall()
    return {(int(p), c, r): v for p, c, r, v in rows}


def test_split_to_cents_largest_remainder() -> None:
    assert split_to_cents(D("100.00"), {"a": D(1), "b": D(1), "c": D(1)}) == {
        "a": D("33.34"), "b": D("33.33"), "c": D("33.33")}
    # The sub-cent rest of the amount goes to the next largest remainder: the parts still sum exactly.
    assert split_to_cents(D("10.005"), {"a": D(1), "b": D(1)}) == {"a": D("5.005"), "b": D("5.00")}
    assert split_to_cents(D("-10.00"), {"a": D(1), "b": D(2)}) == {"a": D("-3.33"), "b": D("-6.67")}
    assert split_to_cents(D("5"), {"a": D(0), "b": D(-1)}) == {}
    shares = split_to_cents(D("123.456789012345"), {str(i): D(i) for i in range(1, 8)})
    assert sum(shares.values()) == D("123.456789012345")
    assert sum(1 for v in shares.values() if v != v.quantize(D("0.01"))) <= 1


@pytest.mark.parametrize(
    ("method", "extra", "expected"),
    [
        ("proportional", {}, {"payments": D("7.50"), "search": D("2.50")}),  # 30 : 10 of direct cost
        ("even", {}, {"payments": D("5.00"), "search": D("5.00")}),
        ("fixed", {"weights": (("payments", D(1)), ("search", D(3)))}, {"payments": D("2.50"), "search": D("7.50")}),
        ("metric", {"metric_values": (("2026-11", "payments", D(1)), ("2026-11", "search", D(4)))},
         {"payments": D("2.00"), "search": D("8.00")}),
    ],
)
def test_each_method_by_hand(
    tmp_path: Path, method: str, extra: dict[str, object], expected: dict[str, Decimal]
) -> None:
    cache = load(tmp_path / "c.duckdb", _base())
    apply_pools(cache, [_pool(method, **extra)])
    shares = _shares(cache)
    assert {r: v for (_, _, r), v in shares.items()} == expected
    with cache.cursor() as cur:
        marked = cur.execute("SELECT ResourceId FROM charges WHERE x_SharedPool = 1").fetchall()
    assert marked == [(HUB.lower(),)]  # the hub's own team (platform) no longer has it as direct cost


def test_billed_split_on_its_own_basis(tmp_path: Path) -> None:
    cache = load(tmp_path / "c.duckdb", _base())
    apply_pools(cache, [_pool("proportional")])
    billed = _shares(cache, "billed")
    # BilledCost: payments 20, search 20 direct, so the hub's 10.00 billed splits evenly.
    assert {r: v for (_, _, r), v in billed.items()} == {"payments": D("5.00"), "search": D("5.00")}


def test_no_share_in_a_currency_without_direct_cost_unless_fixed(tmp_path: Path) -> None:
    eur_hub = "/subscriptions/sub-a/resourceGroups/rg-hub/providers/Microsoft.Network/publicIPAddresses/pip-hub"
    eur_pay = "/subscriptions/sub-a/resourceGroups/rg-pay/providers/Microsoft.Compute/disks/disk-pay"
    charges = _base([
        Charge(DAY, eur_hub, D("9.00"), currency="EUR", service="Virtual Network"),
        Charge(DAY, eur_pay, D("1.00"), currency="EUR", tags={"team": "payments"}),
    ])
    cache = load(tmp_path / "c.duckdb", charges)
    apply_pools(cache, [_pool("even")])
    assert _shares(cache)[(1, "EUR", "payments")] == D("9.00")
    assert (1, "EUR", "search") not in _shares(cache)
    apply_pools(cache, [_pool("fixed", weights=(("payments", D(1)), ("search", D(2))))])
    assert _shares(cache)[(1, "EUR", "search")] == D("6.00")


def test_pool_order_and_overlap(tmp_path: Path) -> None:
    cache = load(tmp_path / "c.duckdb", _base())
    everything_hub = _pool("even", index=1)
    load_balancers = _pool("even", index=2, match=Rule(set_tags={}, service="Load Balancer"))
    untagged = _pool("even", index=3, match=Rule(set_tags={}), unallocated=True)
    apply_pools(cache, [everything_hub, load_balancers, untagged])
    with cache.cursor() as cur:
        marks = dict(cur.execute("SELECT ResourceId, x_SharedPool FROM charges").fetchall())
    assert marks[HUB.lower()] == 1  # the first pool took it; the second matches nothing left
    assert marks[UNTAGGED.lower()] == 3
    assert marks[PAY.lower()] is None
    totals = {p: sum(v for (i, _, _), v in _shares(cache).items() if i == p) for p in (1, 2, 3)}
    assert totals == {1: D("10.00"), 2: D(0), 3: D("4")}


def test_provider_split_rows_only_with_allocated(tmp_path: Path) -> None:
    split_row = Charge(DAY, HUB, D("6"), service="Load Balancer",
                       extra={"AllocatedResourceId": PAY.lower(), "AllocatedResourceName": "vm-pay"})
    cache = load(tmp_path / "c.duckdb", _base([split_row]))
    apply_pools(cache, [_pool("even")])
    assert sum(_shares(cache).values()) == D("10.00")
    apply_pools(cache, [_pool("even", allocated=True)])
    assert sum(_shares(cache).values()) == D("16.00")


def test_preview_equals_what_is_saved(tmp_path: Path) -> None:
    cache = load(tmp_path / "c.duckdb", _base())
    first = _pool("even", index=1, match=Rule(set_tags={}, resource_group="rg-misc"))
    candidate = _pool("proportional", index=0)
    with cache.cursor() as cur:
        preview = preview_pool(cur, candidate, [first], DAY, DAY + dt.timedelta(days=1))
    apply_pools(cache, [first, _pool("proportional", index=2)])
    saved = {r: v for (i, _, r), v in _shares(cache).items() if i == 2}
    cost, shares = preview.currencies["USD"]
    assert cost == D("10.00")
    assert {s.recipient: s.amount for s in shares} == saved


def test_no_recipient_with_cost_is_one_line_and_leaves_the_cache(tmp_path: Path) -> None:
    cache = load(tmp_path / "c.duckdb", _base())
    apply_pools(cache, [_pool("even")])
    before = _shares(cache)
    with pytest.raises(UserError, match=r"pool 1 \(pool 1\): recipients: none of nobody"):
        apply_pools(cache, [_pool("even", recipients=("nobody",))])
    assert _shares(cache) == before


def test_splits_sum_to_the_pool_every_day(tmp_path: Path) -> None:
    days = [DAY + dt.timedelta(days=i) for i in range(5)]
    charges = [c for d in days for c in (
        Charge(d, PAY, D("3.333333"), tags={"team": "payments"}),
        Charge(d, SEARCH, D("7.1"), tags={"team": "search"}),
        Charge(d, HUB, D("1.234567") * (days.index(d) + 1)),
    )]
    cache = load(tmp_path / "c.duckdb", charges)
    result = apply_pools(cache, [_pool("proportional")])
    with cache.cursor() as cur:
        per_day = cur.execute(
            "SELECT day, sum(effective) FROM shared_splits GROUP BY 1 ORDER BY 1").fetchall()
        sources = cur.execute(
            "SELECT x_ChargeDate, sum(EffectiveCost) FROM charges WHERE x_SharedPool = 1 GROUP BY 1 ORDER BY 1"
        ).fetchall()
        again = compute_splits(cur, [_pool("proportional")])
    assert per_day == sources
    assert again.rows == result.rows


def test_bad_pools_name_pool_and_field(tmp_path: Path) -> None:
    path = tmp_path / "shared.toml"
    bad = [
        ({"pool": [{"name": "hub", "match": {"resource_group": "rg-hub"}, "colour": "red"}]},
         "pool 1 (hub): colour: unknown field"),
        ({"pool": [{"name": "hub", "method": "fixed", "match": {"resource_group": "x"}, "weights": {"a": "40"}}]},
         'pool 1 (hub): weights.a: expected a number'),
        ({"pool": [{"name": "hub", "method": "sideways", "match": {"resource_group": "x"}}]},
         "pool 1 (hub): method: expected one of even"),
        ({"pool": [{"name": "a", "match": {"resource_group": "x"}}, {"name": "b", "match": {"region": 3}}]},
         "pool 2 (b): match.region: expected a glob string"),
        ({"pool": [{"name": "a", "match": {"charge_category": "Rent"}}]}, "pool 1 (a): match.charge_category"),
        ({"pool": [{"name": "a", "match": {}}]}, "pool 1 (a): match: give the cost to share"),
    ]
    for data, message in bad:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            parse_pools(data, path)


def test_metric_file_errors_name_file_row_and_field(tmp_path: Path) -> None:
    path = tmp_path / "shared.toml"
    pool = {"name": "api", "method": "metric", "match": {"resource_group": "x"}, "metric_file": "requests.csv"}
    cases = [
        ("period,recipient,value\n2026-11,payments,12\n2026-13,search,3\n", "row 3: period: expected YYYY-MM"),
        ("period,recipient,value\n2026-11,payments,lots\n", "row 2: value: expected a number"),
        ("period,recipient,value\n2026-11,payments,-1\n", "row 2: value: expected a number"),
        ("month,team,value\n", "row 1: header: expected period,recipient,value"),
        ("period,recipient,value\n2026-11,payments\n", "row 2: expected 3 fields"),
    ]
    for text, message in cases:
        (tmp_path / "requests.csv").write_text(text)
        with pytest.raises(ConfigError) as error:
            parse_pools({"pool": [pool]}, path)
        assert "pool 1 (api): metric_file" in str(error.value)
        assert str(tmp_path / "requests.csv") in str(error.value)
        assert message in str(error.value)
    (tmp_path / "requests.csv").write_text("period,recipient,value\n2026-11,payments,1\n2026-11,search,4\n")
    [parsed] = parse_pools({"pool": [pool]}, path)
    assert parsed.metric_values == (("2026-11", "payments", D(1)), ("2026-11", "search", D(4)))


def test_a_tag_edit_re_splits_the_pools_exactly_as_from_scratch(tmp_path: Path) -> None:
    """A tag edit re-splits every pool from the summary table (when no pool's rows depend on tags): the shares it
    stores equal the split computed from `charges` rows, and the summary stays equal to `charges`."""
    from finops_tui.allocation.effective import TagPolicy
    from finops_tui.allocation.journal import apply_tags
    from finops_tui.store import summaries

    cache = load(tmp_path / "c.duckdb", _base([Charge(DAY + dt.timedelta(days=1), UNTAGGED, D("7.25"),
                                                      service="Storage")]))
    pools = (_pool("proportional"), _pool("even", index=2, match=Rule(set_tags={}, resource_group="rg-misc")))
    policy = TagPolicy(pools=pools)
    apply_pools(cache, pools)
    apply_tags(cache, policy, [PAY], "team", "search")  # payments' direct cost moves to search
    with cache.cursor() as cur:
        stored = sorted(cur.execute(
            "SELECT pool_index, day, currency, recipient, effective, billed FROM shared_splits"
        ).fetchall(), key=str)
        # The same figures from the rows themselves: a marker expression the summary path does not take.
        fresh = compute_splits(cur, list(pools), marker="(r.x_SharedPool)")
        assert summaries.differences(cur) == []
    expected = sorted(((r.pool_index, r.day, r.currency, r.recipient, r.effective, r.billed) for r in fresh.rows),
                      key=str)
    assert stored == expected
    assert {r[3] for r in stored if r[0] == 1} == {"search"}  # payments has no direct cost left
    with cache.cursor() as cur:
        assert summaries.whole_key(cur) == "team"  # what the re-split read


def test_a_new_window_marks_its_pool_rows_and_keeps_the_old_marks(tmp_path: Path) -> None:
    """With the same pools (none reading tags), a later window's rows are marked as they come and the marks of
    the rows already there stay: the markers equal the pools evaluated afresh on every row."""
    from finops_tui.allocation.effective import TagPolicy, refresh_derived
    from finops_tui.allocation.shared import marker_sql, resolve_pools
    from finops_tui.store.sources import Window, begin_window, finish_window

    cache = load(tmp_path / "c.duckdb", _base())
    pools = (_pool("proportional"), _pool("even", index=2, match=Rule(set_tags={}, resource_group="rg-misc")))
    apply_pools(cache, pools)
    later = DAY + dt.timedelta(days=3)
    with cache.write() as cur:
        sid = begin_window(cur, Window("focus-file", "later", "focus", later, later + dt.timedelta(days=1)))
        cur.executemany(
            "INSERT INTO charges (ChargePeriodStart, ChargePeriodEnd, x_ChargeDate, ResourceId, x_ResourceGroupName, "
            "ServiceName, BillingCurrency, EffectiveCost, BilledCost, ChargeCategory, source_id) "
            "VALUES (?, ?, ?, ?, ?, ?, 'USD', ?, ?, 'Usage', ?)",
            [[later, later + dt.timedelta(days=1), later, rid.lower(), rg, service, cost, cost, sid]
             for rid, rg, service, cost in ((HUB, "rg-hub", "Load Balancer", D("6")),
                                            (UNTAGGED, "rg-misc", "Storage", D("2")),
                                            (PAY, "rg-pay", "Virtual Machines", D("12")))],
        )
        finish_window(cur, sid)
        refresh_derived(cur, TagPolicy(pools=pools))
    with cache.cursor() as cur:
        params: list[object] = []
        marker = marker_sql(resolve_pools(cur, pools), params)
        cur.execute("CREATE OR REPLACE TEMP VIEW _rule_view AS "  # what the pools' tag conditions read
                    "SELECT ResourceId, tag_key, tag_value FROM resource_tags")
        wrong = cur.execute(
            f"SELECT count(*) FROM charges r WHERE x_SharedPool IS DISTINCT FROM {marker}", params
        ).fetchone()
        marked = cur.execute("SELECT x_ChargeDate, x_SharedPool FROM charges WHERE x_SharedPool IS NOT NULL "
                             "ORDER BY 1, 2").fetchall()
    assert wrong == (0,)
    assert marked == [(DAY, 1), (DAY, 2), (later, 1), (later, 2)]
    assert _shares(cache)[(1, "USD", "payments")] + _shares(cache)[(1, "USD", "search")] == D("16.00")
