"""The large-estate syncs' fast paths: the hub's CSV is read typed (no text cast after the read); the export sync
rebuilds resources and tags once after its last run, not after each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from finops_tui.allocation.effective import TagPolicy, refresh_derived
from finops_tui.ingest.importer import import_in_transaction
from finops_tui.store import summaries
from finops_tui.store.cache import open_cache
from finops_tui.sync.hub import GRAIN, HubOptions, sync_hub
from finops_tui.sync.spool import PREFIX
from tests.azurite import LocalFolder, upload_run, write_focus_part
from tests.fake_arm import FakeCredential
from tests.fake_kusto import FakeKusto
from tests.test_sync_hub import FEB, MAR, cached, served

TODAY = dt.date(2025, 3, 15)
pytestmark = pytest.mark.today(TODAY)


@pytest.fixture
def hub() -> Iterator[FakeKusto]:
    with FakeKusto() as fake:
        yield fake


def pull(fake: FakeKusto, cache_path: Path, **overrides: Any) -> Any:
    options = HubOptions(f"{fake.url}/Hub", credential=FakeCredential(), sleep=lambda _s: None,
                         work_dir=cache_path.parent, **overrides)
    with open_cache(cache_path) as cache:
        return sync_hub(cache, options, TagPolicy())


def test_typed_reading_keeps_empty_text_as_null_and_sums_exact(hub: FakeKusto, tmp_path: Path) -> None:
    hub.rows_per_month = 700
    hub.awkward_text = True

    result = pull(hub, tmp_path / "c.duckdb", months=1, chunk_rows=300)

    assert (result.windows_done, result.failures) == (1, [])
    assert not list(tmp_path.glob(PREFIX + "*"))  # the spool folder is gone

    text = [c for c, _, kind in GRAIN if kind == "key" and c not in ("x_ChargeDate", "BillingPeriodStart",
                                                                       "BillingPeriodEnd", "Tags")]
    with open_cache(tmp_path / "c.duckdb") as cache, cache.cursor() as cur:
        empty = cur.execute(f"SELECT count(*) FROM charges WHERE {' OR '.join(f'{c} = {chr(39) * 2}' for c in text)}")
        assert empty.fetchone() == (0,)
        assert cur.execute("SELECT count(*) FROM charges WHERE ChargeClass IS NULL AND SkuPriceId IS NULL"
                           ).fetchone() == (700,)
        exact = cur.execute("SELECT sum(BilledCost), sum(ListCost) FROM charges").fetchone()
        period = cur.execute("SELECT min(BillingPeriodStart), max(ChargePeriodEnd) FROM charges").fetchone()
    rows = hub.month_rows(MAR, dt.date(2025, 4, 1))
    assert exact == (sum(_dec(r["BilledCost"]) for r in rows), sum(_dec(r["ListCost"]) for r in rows))
    assert period == (dt.datetime(2025, 3, 1), dt.datetime(2025, 4, 1))
    assert cached(tmp_path / "c.duckdb") == served(hub, [MAR])


def _dec(text: str) -> Decimal:
    return Decimal(text).quantize(Decimal("0.000000000001"))


def test_an_import_without_derive_settles_the_summary_and_leaves_resources_to_the_caller(tmp_path: Path) -> None:
    part = tmp_path / "part.parquet"
    write_focus_part(part, FEB, 300)
    run = upload_run(LocalFolder(tmp_path / "runs"), "costs", "focus", FEB, [part], [300], run_id="run-1")

    with open_cache(tmp_path / "c.duckdb") as cache:
        with cache.write() as cur:
            [window] = import_in_transaction(cur, TagPolicy(), [tmp_path / "runs" / run.folder], derive=False)
        with cache.cursor() as cur:
            assert window.rows == 300
            assert cur.execute("SELECT count(*) FROM resources").fetchone() == (0,)
            assert summaries.differences(cur) == []  # the summary holds the new days already
        with cache.write() as cur:
            refresh_derived(cur, TagPolicy())
        with cache.cursor() as cur:
            assert cur.execute("SELECT count(*) FROM resources").fetchone() == cur.execute(
                "SELECT count(DISTINCT ResourceId) FROM charges").fetchone()
            assert summaries.differences(cur) == []
