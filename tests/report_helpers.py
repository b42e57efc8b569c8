"""A small, varied cost cache built with SQL for read-model tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from finops_tui import cli
from finops_tui.allocation.effective import TagPolicy, refresh_derived
from finops_tui.store import open_cache
from finops_tui.store.sources import Window, begin_window, finish_window


def build_small_cache(path: Path, *, end: dt.date = dt.date(2026, 11, 26), days: int = 120) -> Path:
    """~60 resources over `days` days ending `end`, USD and EUR, partly tagged (team/Team/TEAM keys)."""
    start = end - dt.timedelta(days=days - 1)
    with open_cache(path) as cache, cache.write() as cur:
        sid = begin_window(cur, Window("focus-file", "test-account", "focus", start, end + dt.timedelta(days=1)))
        cur.execute(
            """
            INSERT INTO charges (ChargePeriodStart, ChargePeriodEnd, x_ChargeDate, ResourceId, ResourceName,
                ServiceName, ServiceCategory, SubAccountId, SubAccountName, x_ResourceGroupName, RegionId,
                RegionName, BillingCurrency, EffectiveCost, BilledCost, ChargeCategory, Tags, source_id)
            SELECT d::TIMESTAMP, (d + 1)::TIMESTAMP, d,
                   '/subscriptions/s' || (r % 3) || '/resourcegroups/rg-' || (r % 7)
                       || '/providers/microsoft.compute/virtualmachines/vm' || r,
                   'vm' || r, ['Virtual Machines', 'Storage', 'Azure SQL Database', 'Key Vault'][1 + r % 4],
                   ['Compute', 'Storage', 'Databases', 'Security'][1 + r % 4],
                   's' || (r % 3), ['Prod', 'Dev', 'Shared'][1 + r % 3], 'rg-' || (r % 7), 'eastus', 'East US',
                   CASE WHEN r % 10 = 0 THEN 'EUR' ELSE 'USD' END,
                   ((1 + r % 9) * (1 + (hash(r, d) % 1000) / 1000.0) + CASE WHEN d > $end - 10 AND r % 7 = 3
                        THEN 25 ELSE 0 END)::DECIMAL(38, 12) / 3,
                   ((1 + r % 9) * (1 + (hash(r, d) % 1000) / 1000.0))::DECIMAL(38, 12) / 3,
                   'Usage',
                   CASE r % 4 WHEN 0 THEN MAP {'team': 'payments', 'env': 'prod'}
                              WHEN 1 THEN MAP {'Team': 'search'}
                              WHEN 2 THEN MAP {'TEAM': 'payments'}
                              ELSE MAP {'env': 'dev'} END,
                   $sid
            FROM range(60) t(r), (SELECT ($start + i::INTEGER) AS d FROM range($days) u(i))
            """,
            {"end": end, "start": start, "days": days, "sid": sid},
        )
        finish_window(cur, sid)
        refresh_derived(cur, TagPolicy())
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`finops-tui ARGV` in process: its exit code, stdout and stderr (never a traceback)."""
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err
