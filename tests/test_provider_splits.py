"""Provider splits (FOCUS 1.3 Allocated* columns): a split row belongs to its allocated resource in every view."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finops_tui import cli
from finops_tui.allocation.effective import TagPolicy, reapply_rules
from finops_tui.allocation.push import preview
from finops_tui.allocation.queue import unallocated_queue
from finops_tui.allocation.rules import Rule, load_rules
from finops_tui.basis.dimensions import dimension
from finops_tui.basis.periods import Period
from finops_tui.ingest.importer import import_paths
from finops_tui.report.overview import overview
from finops_tui.report.resource import resource_detail
from finops_tui.report.tree import allocation_tree, children
from finops_tui.store import open_cache
from finops_tui.store.sources import PROVIDER_SPLIT_SQL, Window, begin_window, finish_window
from finops_tui.store.tag_sets import join_sql, row_tags_sql
from tests.allocation_data import fresh_copy
from tests.import_helpers import checksum, query, read_rows, run_import, write_csv
from tests.splits_data import CLUSTER, HOST, NIGHTLY_ETL, SEARCH_API, SPLITS, SUB, imported_splits

MAY = Period(dt.date(2026, 5, 1), dt.date(2026, 5, 4), "2026-05-01..2026-05-04", dt.date(2026, 5, 3))
D = Decimal
pytestmark = pytest.mark.today(dt.date(2026, 5, 20))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return imported_splits(tmp_path_factory.mktemp("splits"))


@pytest.fixture
def cache_path(template: Path, tmp_path: Path) -> Path:
    return fresh_copy(template, tmp_path)


def _tree(path: Path, hierarchy: list[str], depth: int | None = None) -> dict[str | None, Decimal]:
    with open_cache(path, read_only=True) as cache, cache.cursor() as cur:
        return {t.node.key: t.node.cost for t in allocation_tree(cur, hierarchy, MAY, depth=depth)}


def _sql(path: Path, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    return query(path, sql, params)


def _without_splits(target: Path) -> Path:
    """The same rows as a file whose provider never split them (the Allocated* columns empty)."""
    rows = read_rows(SPLITS)
    for row in rows:
        for column in ("AllocatedMethodId", "AllocatedMethodDetails", "AllocatedResourceId", "AllocatedResourceName",
                       "AllocatedTags"):
            row[column] = ""
    return write_csv(target, list(rows[0]), rows)


# --- import ------------------------------------------------------------------------------------------


def test_a_focus_13_file_keeps_its_allocation_columns(cache_path):
    rows = _sql(cache_path, """
        SELECT AllocatedResourceId, AllocatedResourceName, AllocatedMethodId, AllocatedTags, AllocatedMethodDetails,
               ServiceProviderName, HostProviderName, ProviderName, ResourceId
        FROM charges WHERE AllocatedResourceName = 'search-api' AND x_ChargeDate = '2026-05-02'
    """)
    [(rid, name, method, tags, details, service_provider, host_provider, provider, host)] = rows
    assert rid == SEARCH_API  # lower-cased like ResourceId
    assert (name, method) == ("search-api", "proportional")
    assert tags == {"cluster": "aks-prod", "namespace": "search", "workload": "search-api", "team": "search"}
    assert json.loads(str(details)) == {"Elements": [{"AllocatedRatio": 0.5, "x_Basis": "vCPUSeconds"}]}
    assert (service_provider, host_provider, provider) == ("Microsoft", "Microsoft", "Microsoft")
    assert host == HOST  # ResourceId keeps the shared host (FOCUS semantics)
    counts = "SELECT count(*) FILTER (WHERE AllocatedResourceId IS NOT NULL), count(*) FROM charges"
    assert _sql(cache_path, counts) == [(10, 15)]


def test_the_same_file_as_parquet_imports_the_same_rows(tmp_path, cache_path):
    parquet = tmp_path / "splits.parquet"
    pq.write_table(pa_csv.read_csv(SPLITS, convert_options=pa_csv.ConvertOptions(
        column_types={name: "string" for name in read_rows(SPLITS)[0]})), parquet)
    other = tmp_path / "parquet.duckdb"
    with open_cache(other) as cache:
        import_paths(cache, TagPolicy(), [parquet])
    columns = "AllocatedResourceId, AllocatedTags, AllocatedMethodId, EffectiveCost, ResourceId, x_ResourceKey"
    sql = f"SELECT {columns} FROM charges ORDER BY ALL"
    assert _sql(other, sql) == _sql(cache_path, sql)


def test_older_focus_files_get_the_provider_names_and_no_allocated_columns(tmp_path, capsys):
    from tests.import_helpers import FOCUS_SAMPLE

    cache = tmp_path / "cache.duckdb"
    assert run_import(capsys, cache, FOCUS_SAMPLE, skip=True)[0] == 0
    assert _sql(cache, """
        SELECT count(*) FILTER (WHERE ServiceProviderName IS DISTINCT FROM ProviderName),
               count(*) FILTER (WHERE HostProviderName IS DISTINCT FROM PublisherName),
               count(AllocatedResourceId) + count(AllocatedTags) + count(AllocatedMethodId), count(*)
        FROM charges
    """) == [(0, 0, 0, 949)]
    # Without splits every row's key is its own resource's, as before.
    assert _sql(cache, """
        SELECT count(*) FROM charges c JOIN resource_keys k ON k.resource_key = c.x_ResourceKey
        WHERE k.ResourceId <> c.ResourceId
    """) == [(0,)]


def test_a_bad_allocated_resource_id_refuses_the_import_naming_the_field(tmp_path, capsys):
    rows = read_rows(SPLITS)
    rows[4]["AllocatedResourceId"] = f"{CLUSTER}/namespaces/../workloads/x"
    bad = write_csv(tmp_path / "bad.csv", list(rows[0]), rows)
    cache = tmp_path / "cache.duckdb"
    before = checksum(cache)

    code, out, err = run_import(capsys, cache, bad)

    assert code == 1 and out == ""
    assert "row 5, AllocatedResourceId" in err and "Import refused" in err
    assert len(err.strip().splitlines()) == 1
    assert checksum(cache) == before


def test_unreadable_allocated_tags_keep_the_row_with_a_note(tmp_path, capsys):
    rows = read_rows(SPLITS)
    rows[0]["AllocatedTags"] = "{not json"
    noted = write_csv(tmp_path / "noted.csv", list(rows[0]), rows)
    cache = tmp_path / "cache.duckdb"

    code, _out, err = run_import(capsys, cache, noted)

    assert code == 0
    assert "AllocatedTags" in err
    assert _sql(cache, "SELECT count(*), sum(EffectiveCost) FROM charges") == [(15, D("162.55"))]


# --- semantics: the owning resource ------------------------------------------------------------------


def test_report_by_workload_gives_each_workload_the_sum_of_its_split_rows(tmp_path, template, capsys):
    capsys.readouterr()
    code = cli.main(["report", "allocation", "--cache", str(template), "--by", "tag:workload",
                     "--period", "2026-05-01..2026-05-04", "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0
    [currency] = json.loads(out)["currencies"]
    shown = {c["key"]: D(c["cost"]) for c in currency["children"]}
    expected = dict(_sql(template, """
        SELECT AllocatedTags['workload'], sum(EffectiveCost) FROM charges
        WHERE AllocatedTags['workload'] IS NOT NULL GROUP BY 1
    """))
    assert {k: shown[k] for k in expected} == expected
    assert expected == {"search-api": D("37.50"), "checkout-web": D("26.50"), "nightly-etl": D("16.00")}
    assert shown[None] == D("82.55")  # the databases, the VM, the node pool's unsplit rest and the tax
    assert D(currency["cost"]) == D("162.55")


def test_team_figures_follow_the_allocated_tags_never_the_hosts(template):
    assert _tree(template, ["tag:team"]) == {
        "payments": D("90.70"),  # checkout-web (Team, folded) 26.50 + db-orders 4.20 + the VM 60.00
        "search": D("40.30"),  # search-api 37.50 + db-search 2.80
        None: D("21.55"),  # nightly-etl 16.00 (no team tag) + the tax 5.55
        "platform": D("10.00"),  # the node pool keeps only what was not split
    }


def test_the_host_owner_loses_exactly_the_split_cost(tmp_path, template):
    unsplit = tmp_path / "unsplit.duckdb"
    with open_cache(unsplit) as cache:
        import_paths(cache, TagPolicy(), [_without_splits(tmp_path / "unsplit.csv")])
    before, after = _tree(unsplit, ["tag:team"]), _tree(template, ["tag:team"])
    split_from = dict(_sql(template, f"""
        SELECT {row_tags_sql()}['team'], sum(c.EffectiveCost) FROM charges c {join_sql()}
        WHERE c.AllocatedResourceId IS NOT NULL GROUP BY 1
    """))
    assert split_from == {"platform": D("80.00"), "dba": D("7.00")}
    assert before["platform"] - after["platform"] == split_from["platform"]
    assert before["dba"] == split_from["dba"] and "dba" not in after
    assert sum(before.values()) == sum(after.values()) == D("162.55")  # totals never change


def test_a_workload_without_a_team_is_unallocated_until_a_rule_maps_it(cache_path):
    rule = Rule(set_tags={"team": "data"}, tags={"workload": "nightly-*"}, index=1)
    with open_cache(cache_path) as cache:
        reapply_rules(cache, TagPolicy(rules=(rule,)))
    tree = _tree(cache_path, ["tag:team"])
    assert tree["data"] == D("16.00")
    assert tree[None] == D("5.55")
    # The host's tags never reach a workload, rules included: the node pool's cluster tag is its own.
    assert _sql(cache_path, "SELECT tag_value, origin FROM resource_tags WHERE ResourceId = ? AND tag_key = 'team'",
                [NIGHTLY_ETL]) == [("data", "rule")]


def test_rules_toml_can_match_allocated_resources_and_their_hosts(tmp_path, cache_path):
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(
        '[[rule]]\nallocated = true\nhost = "aks-nodepool*"\nset = { costcenter = "k8s" }\n'
        '[[rule]]\nallocated = false\nset = { costcenter = "direct" }\n'
    )
    rules = load_rules(rules_file)
    with open_cache(cache_path) as cache:
        reapply_rules(cache, TagPolicy(rules=tuple(rules)))
    tree = _tree(cache_path, ["tag:costcenter"])
    assert tree == {"k8s": D("80.00"), "direct": D("70.00"), None: D("12.55")}  # the databases: allocated, not on AKS
    assert "allocated=true" in rules[0].describe() and "host=aks-nodepool*" in rules[0].describe()


def test_hierarchies_over_hosts_workloads_and_tags_sum_to_their_parents(template):
    with open_cache(template, read_only=True) as cache, cache.cursor() as cur:
        hosts = {n.key: n for n in children(cur, ["host", "allocated-resource"], [], MAY)}
        assert {k: n.cost for k, n in hosts.items() if k} == {HOST: D("80.00"), _pool(): D("7.00")}
        assert hosts[HOST].label == "aks-nodepool1-vmss"
        workloads = children(cur, ["host", "allocated-resource"], [("host", HOST)], MAY)
        assert {n.label: n.cost for n in workloads} == {
            "search-api": D("37.50"), "checkout-web": D("26.50"), "nightly-etl": D("16.00")
        }
        namespaces = children(cur, ["tag:cluster", "tag:namespace"], [("tag:cluster", "aks-prod")], MAY)
        assert {n.key: n.cost for n in namespaces} == {
            "search": D("37.50"), "checkout": D("26.50"), "batch": D("16.00"), None: D("10.00")
        }
        # Drilling through a tag level keeps the split rows with their workload (the owning key).
        team_search = children(cur, ["tag:team", "resource"], [("tag:team", "search")], MAY)
        assert {n.label: n.cost for n in team_search} == {"search-api": D("37.50"), "db-search": D("2.80")}
        unallocated = children(cur, ["tag:team", "resource"], [("tag:team", None)], MAY)
        assert {n.label: n.cost for n in unallocated} == {"nightly-etl": D("16.00"), "(none)": D("5.55")}


def _pool() -> str:
    return f"/subscriptions/{SUB}/resourcegroups/rg-data/providers/microsoft.sql/servers/sql-shared/elasticpools/pool1"


def test_the_resource_dimension_groups_by_the_owning_resource(template):
    with open_cache(template, read_only=True) as cache, cache.cursor() as cur:
        rows = overview(cur, MAY, "effective", extra_breakdowns=("resource",)).breakdowns["resource"]
    by_label = {r.name: r.cost for r in rows}
    assert by_label["search-api"] == D("37.50")
    assert by_label["aks-nodepool1-vmss"] == D("10.00")
    assert by_label["vm-payments-01"] == D("60.00")
    assert dimension("allocated-resource").title and dimension("host").title


def test_the_resource_detail_of_a_host_lists_its_consumers_and_a_consumer_names_its_host(template):
    with open_cache(template, read_only=True) as cache, cache.cursor() as cur:
        host = resource_detail(cur, HOST, MAY, rules=[])
        consumer = resource_detail(cur, SEARCH_API, MAY, rules=[])
    assert host.cost == D("10.00")  # what the host kept
    assert [(s.name, s.cost, s.share) for s in host.split_to] == [
        ("search-api", D("37.50"), D("37.50") / D("80.00")),
        ("checkout-web", D("26.50"), D("26.50") / D("80.00")),
        ("nightly-etl", D("16.00"), D("16.00") / D("80.00")),
    ]
    assert host.split_total == D("80.00")
    assert consumer.cost == D("37.50")
    assert [(h.host_id, h.host_name, h.methods, h.cost) for h in consumer.split_from] == [
        (HOST, "aks-nodepool1-vmss", ("even", "fixed", "proportional"), D("37.50"))
    ]
    assert {t.key: (t.value, t.origin) for t in consumer.tags}["team"] == ("search", "provider")


def test_the_tagging_queue_lists_unallocated_workloads_and_push_keeps_their_tags_local(cache_path, capsys):
    with open_cache(cache_path, read_only=True) as cache, cache.cursor() as cur:
        queue = unallocated_queue(cur, "team", MAY)
    items = {i.resource_id: i for i in queue.items}
    assert items[NIGHTLY_ETL].cost == D("16.00")
    assert items[NIGHTLY_ETL].host_id == HOST
    assert queue.total == D("21.55")
    code = cli.main(["tags", "set", "--cache", str(cache_path), "--resource", NIGHTLY_ETL, "team=data"])
    assert code == 0
    with open_cache(cache_path, read_only=True) as cache, cache.cursor() as cur:
        [item] = preview(cur)
    assert item.resource_id == NIGHTLY_ETL
    assert item.not_pushable is not None and "local" in item.not_pushable
    assert _tree(cache_path, ["tag:team"])["data"] == D("16.00")


def test_shared_pools_can_tell_provider_split_rows(template):
    assert _sql(template, f"SELECT count(*) FROM charges c WHERE {PROVIDER_SPLIT_SQL}") == [(10,)]


# --- property: children sum to the parent with split rows present; totals never change --------------


_HOSTS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=2),  # team of the host
        st.lists(st.tuples(st.integers(0, 3), st.integers(1, 5000)), min_size=0, max_size=4),  # (team or none, cents)
        st.integers(0, 3000),  # what the host keeps
    ),
    min_size=1, max_size=5,
)


@given(hosts=_HOSTS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_children_sum_to_the_parent_with_split_rows(tmp_path_factory, hosts):
    path = tmp_path_factory.mktemp("prop") / "cache.duckdb"
    teams = ["alpha", "beta", "gamma", None]
    rows = []
    for h, (host_team, consumers, kept) in enumerate(hosts):
        host = f"/subscriptions/{SUB}/resourcegroups/rg/providers/microsoft.compute/virtualmachines/host{h}"
        host_tags = {"team": teams[host_team]}
        if kept:
            rows.append((host, None, D(kept) / 100, host_tags, None))
        for c, (team, cents) in enumerate(consumers):
            tags = {"team": teams[team]} if teams[team] else {"app": f"a{c}"}
            rows.append((host, f"{host}/workloads/w{c}", D(cents) / 100, host_tags, tags))
    if not rows:
        return
    with open_cache(path) as cache, cache.write() as cur:
        sid = begin_window(cur, Window("focus-file", "prop", "focus", MAY.start, MAY.end))
        cur.executemany(
            """
            INSERT INTO charges (ChargePeriodStart, x_ChargeDate, ResourceId, AllocatedResourceId, EffectiveCost,
                                 BilledCost, BillingCurrency, Tags, AllocatedTags, ChargeCategory, source_id)
            VALUES ('2026-05-02', '2026-05-02', ?, ?, ?, ?, 'USD', ?, ?, 'Usage', ?)
            """,
            [[host, alloc, cost, cost, tags, alloc_tags, sid] for host, alloc, cost, tags, alloc_tags in rows],
        )
        finish_window(cur, sid)
        from finops_tui.allocation.effective import refresh_derived

        refresh_derived(cur, TagPolicy())
    total = sum((r[2] for r in rows), D(0))
    with open_cache(path, read_only=True) as cache, cache.cursor() as cur:
        for hierarchy in (["tag:team", "resource"], ["host", "allocated-resource"], ["resource"]):
            top = children(cur, hierarchy, [], MAY)
            assert sum((n.cost for n in top), D(0)) == total
            for node in top:
                if len(hierarchy) > 1:
                    below = children(cur, hierarchy, [node.step], MAY)
                    assert sum((n.cost for n in below), D(0)) == node.cost
        by_team = {n.key: n.cost for n in children(cur, ["tag:team"], [], MAY)}
    expected: dict[str | None, Decimal] = {}
    for _host, alloc, cost, tags, alloc_tags in rows:
        team = (alloc_tags if alloc else tags).get("team")
        expected[team] = expected.get(team, D(0)) + cost
    assert by_team == expected


def test_migrated_caches_without_splits_keep_their_resource_keys(tmp_path):
    """A cache written before the allocation columns existed: keys stay those of ResourceId."""
    path = tmp_path / "cache.duckdb"
    with open_cache(path) as cache, cache.write() as cur:
        sid = begin_window(cur, Window("focus-file", "k", "focus", MAY.start, MAY.end))
        cur.execute(
            "INSERT INTO charges (ChargePeriodStart, x_ChargeDate, ResourceId, EffectiveCost, BillingCurrency, "
            "source_id) VALUES ('2026-05-01', '2026-05-01', 'r1', 1, 'USD', ?), "
            "('2026-05-01', '2026-05-01', 'r2', 2, 'USD', ?)",
            [sid, sid],
        )
        finish_window(cur, sid)
    con = duckdb.connect(str(path), read_only=True)
    try:
        assert con.execute(
            "SELECT c.ResourceId = k.ResourceId FROM charges c JOIN resource_keys k ON k.resource_key = c.x_ResourceKey"
        ).fetchall() == [(True,), (True,)]
    finally:
        con.close()


# --- the explorer's resource detail --------------------------------------------------------------------


def test_the_resource_detail_screen_shows_a_hosts_consumers_and_a_consumers_host(template):
    from finops_tui.ui.screens.resource_detail import ResourceDetailScreen
    from tests.ui_fixtures import async_test, make_app, opened, settle, wait_for_text

    @async_test
    async def scenario() -> None:
        with opened(template) as cache:
            app = make_app(cache)
            async with app.run_test(size=(160, 60)) as pilot:
                await settle(pilot)
                await app.push_screen(ResourceDetailScreen(HOST))
                text = await wait_for_text(pilot, "Split by the provider to", "search-api (even, fixed, proportional)",
                                           "46.9%")
                assert "Split by the provider to" in text
                assert "search-api (even, fixed, proportional)" in text and "46.9%" in text  # 37.50 of 80.00
                await app.push_screen(ResourceDetailScreen(SEARCH_API))
                text = await wait_for_text(pilot, "on aks-nodepool1-vmss",
                                           "split by the provider (even, fixed, proportional)")
                assert "on aks-nodepool1-vmss" in text and "split by the provider (even, fixed, proportional)" in text
                assert "Split by the provider to" not in text

    scenario()
