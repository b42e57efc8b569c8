"""Ties decide nothing by chance: equal groups at a top-N cut are listed by key, the same in every run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from finops_tui.basis.dimensions import dimension
from finops_tui.basis.periods import Period
from finops_tui.report.overview import breakdown
from finops_tui.store import open_cache
from finops_tui.store.sources import Window, begin_window, finish_window

START = dt.date(2026, 11, 1)
DAYS = 20


def _equal_groups(path: Path, groups: int) -> Path:
    """`groups` resource groups that cost exactly the same every day, inserted in a scrambled order."""
    with open_cache(path) as cache, cache.write() as cur:
        sid = begin_window(cur, Window("focus-file", "ties", "focus", START, START + dt.timedelta(days=DAYS)))
        cur.execute(
            """
            INSERT INTO charges (ChargePeriodStart, ChargePeriodEnd, x_ChargeDate, ResourceId, ResourceName,
                ServiceName, SubAccountId, x_ResourceGroupName, BillingCurrency, EffectiveCost, BilledCost,
                ChargeCategory, source_id)
            SELECT d::TIMESTAMP, (d + 1)::TIMESTAMP, d, '/subscriptions/s/resourcegroups/rg-' || g || '/vm', 'vm',
                   'Virtual Machines', 's', 'rg-' || lpad(g::VARCHAR, 2, '0'), 'USD', 10, 10, 'Usage', $sid
            FROM (SELECT (i * 7) % $groups AS g FROM range($groups) t(i)),
                 (SELECT ($start + i::INTEGER) AS d FROM range($days) u(i))
            """,
            {"groups": groups, "start": START, "days": DAYS, "sid": sid},
        )
        finish_window(cur, sid)
    return path


def test_equal_groups_at_the_cut_are_listed_by_key(tmp_path: Path) -> None:
    path = _equal_groups(tmp_path / "ties.duckdb", groups=40)
    period = Period(START, START + dt.timedelta(days=DAYS), "mtd", START + dt.timedelta(days=DAYS - 1))
    with open_cache(path, read_only=True) as cache, cache.cursor() as cur:
        cur.execute("SET threads = 4")  # the cut is taken in parallel: the order of ties varied
        listed = {tuple(row.key for row in breakdown(cur, dimension("resource-group"), period, "effective", limit=5))
                  for _ in range(20)}
    assert listed == {("rg-00", "rg-01", "rg-02", "rg-03", "rg-04")}
