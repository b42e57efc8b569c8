"""Benchmark: `finops-tui sync` of a 50,000-resource subscription from the fake ARM server (tests/fake_arm.py).

Scenarios (the cache handed in by bench/run.py is ignored: the sync builds its own in a scratch directory):
- initial sync, Query API, 13 months × both metrics: client-side ingest rows/s (wall time minus the fake
  server's own time building its answers), API calls against windows × metrics + extra pages;
- refresh with nothing new: only the open month's windows are fetched again;
- initial sync of the open month through Cost Details reports (EA CSV), for comparison.

`python bench/bench_sync.py [--resources N] [--months M]`; bench/run.py calls `run(cache)`. Sizes also come
from FINOPS_BENCH_SYNC_RESOURCES / FINOPS_BENCH_SYNC_MONTHS. Figures are computed once per process and reused
(run.py calls every scenario once per demo cache size; this one does not depend on it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from finops_tui import clock  # noqa: E402
from finops_tui.allocation.effective import TagPolicy  # noqa: E402
from finops_tui.store.cache import open_cache  # noqa: E402
from finops_tui.sync import SyncOptions, SyncProgress, run_sync  # noqa: E402
from tests.fake_arm import FakeArm, FakeCredential  # noqa: E402

TODAY = dt.date(2026, 11, 26)  # bench/run.py's fixed end date: October closed on Nov 6, November is open
SCOPE = "/subscriptions/00000000-0000-0000-0000-0000000000b1"
PAGE_ROWS = 5000

_memo: dict[tuple[int, int], list[dict[str, Any]]] = {}


class _Phases:
    """Splits a sync's wall time by its progress reports: writing windows, and the derived-table refresh."""

    def __init__(self) -> None:
        self.load = 0.0
        self.derived_from: float | None = None
        self._writing: float | None = None

    def __call__(self, p: SyncProgress) -> None:
        now = time.perf_counter()
        if p.state == "writing":
            self._writing = now
        elif p.state == "written" and self._writing is not None:
            self.load += now - self._writing
            self._writing = None
        elif p.state == "updating resources and tags":
            self.derived_from = now


def _sync(fake: FakeArm, cache: Any, months: int, api_path: str) -> tuple[Any, dict[str, float]]:
    phases = _Phases()
    server_before, server_cpu_before = fake.server_seconds, fake.server_cpu_seconds
    cpu_before = _process_cpu()
    options = SyncOptions(
        scopes=[SCOPE],
        months=months,
        api_path=api_path,
        arm_endpoint=fake.base_url,
        credential=FakeCredential(),
        tag_keys=["team"],  # one tag key rides in the cost query itself; each more costs a query per month
        extras=False,
        polling_interval=0,
    )
    started = time.perf_counter()
    result = run_sync(cache, options, TagPolicy(), progress=phases)
    ended = time.perf_counter()
    wall = ended - started
    server = fake.server_seconds - server_before
    # CPU seconds of the app alone (the process's, minus the fake's threads): steadier than wall time when
    # other jobs share the cores.
    client_cpu = _process_cpu() - cpu_before - (fake.server_cpu_seconds - server_cpu_before)
    derived = ended - phases.derived_from if phases.derived_from else 0.0
    client = wall - server
    return result, {
        "wall_s": wall,
        "server_s": server,
        "client_s": client,
        "load_s": phases.load,
        "derived_s": derived,
        "download_s": client - phases.load - derived,
        "client_cpu_s": client_cpu,
    }


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _scenario(name: str, rows: int, times: dict[str, float], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "rows": rows,
        "app_ms": _ms(times["client_s"]),
        "raw_ms": None,
        "ratio": None,
        "rows_per_s": round(rows / times["client_s"]) if times["client_s"] > 0 else None,
        "rows_per_cpu_s": round(rows / times["client_cpu_s"]) if times["client_cpu_s"] > 0 else None,
        **{key.replace("_s", "_ms"): _ms(value) for key, value in times.items() if key != "client_s"},
        **extra,
    }


def measure(resources: int, months: int, *, note: Callable[[str], None] = lambda s: None) -> list[dict[str, Any]]:
    clock.pin(TODAY)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp, FakeArm(today=TODAY) as fake:
            fake.record_requests = False
            estate = fake.add_scope(SCOPE, resources, cost_details="ea")
            cache_path = Path(tmp) / "sync.duckdb"
            results = []
            with open_cache(cache_path) as cache:
                note(f"sync: initial {months}-month sync of {resources:,} resources (Query API)…")
                result, times = _sync(fake, cache, months, "query")
                if result.failures:
                    raise RuntimeError(f"sync failed: {result.failures[0]}")
                windows = result.windows_done
                month_starts = sorted({start for start in _month_starts(months)})
                expected_pages = sum(
                    math.ceil(fake.rows(SCOPE, metric, month) / PAGE_ROWS)
                    for month in month_starts
                    for metric in ("actual", "amortized")
                )
                open_month = month_starts[-1]
                with cache.cursor() as cur:
                    billed, effective = cur.execute(
                        "SELECT sum(BilledCost), sum(EffectiveCost) FROM charges WHERE x_ChargeDate >= ?", [open_month]
                    ).fetchone()
                exact = billed == fake.total(SCOPE, "actual", open_month) and effective == fake.total(
                    SCOPE, "amortized", open_month
                )
                results.append(
                    _scenario(
                        f"sync initial {months} months, {resources:,} resources (query)",
                        result.rows,
                        times,
                        windows=windows,
                        api_calls=result.api_calls,
                        api_calls_target=expected_pages,  # windows × metrics + extra pages
                        open_month_totals_exact=exact,
                        cache_mb=round(cache_path.stat().st_size / 2**20),
                    )
                )
                note("sync: refresh with nothing new…")
                refresh, refresh_times = _sync(fake, cache, months, "query")
                results.append(
                    _scenario(
                        "sync refresh, nothing new (re-pulls the open month only)",
                        refresh.rows,
                        refresh_times,
                        windows=refresh.windows_done,
                        windows_skipped=refresh.windows_skipped,
                        api_calls=refresh.api_calls,
                        api_calls_target=sum(
                            math.ceil(fake.rows(SCOPE, m, open_month) / PAGE_ROWS) for m in ("actual", "amortized")
                        ),
                    )
                )
            with open_cache(Path(tmp) / "cost-details.duckdb") as cache:
                note("sync: open month through Cost Details reports…")
                report, report_times = _sync(fake, cache, 1, "cost-details")
                results.append(
                    _scenario(
                        f"sync 1 month, {resources:,} resources (cost details, EA CSV)",
                        report.rows,
                        report_times,
                        windows=report.windows_done,
                        api_calls=report.api_calls,
                    )
                )
            del estate
            return results
    finally:
        clock.pin(None)


def _month_starts(months: int) -> list[dt.date]:
    from finops_tui.sync.windows import add_months

    current = TODAY.replace(day=1)
    return [add_months(current, -back) for back in range(months)]


def run(cache: Path) -> list[dict[str, Any]]:
    """bench/run.py entry point; `cache` is not used (the sync fills its own)."""
    resources = int(os.environ.get("FINOPS_BENCH_SYNC_RESOURCES", "50000"))
    months = int(os.environ.get("FINOPS_BENCH_SYNC_MONTHS", "13"))
    key = (resources, months)
    if key not in _memo:
        _memo[key] = measure(resources, months, note=lambda s: print(s, file=sys.stderr, flush=True))
    return [dict(r) for r in _memo[key]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resources", type=int, default=50_000)
    parser.add_argument("--months", type=int, default=13)
    args = parser.parse_args()
    for row in measure(args.resources, args.months, note=lambda s: print(s, file=sys.stderr, flush=True)):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
