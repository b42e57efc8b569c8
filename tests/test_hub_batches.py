"""`sync --hub` writes its months in batches: several spooled months loaded in one statement and one transaction,
each month still its own window (a bad month fails alone; a cancel leaves the uncommitted batch to the next sync)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from finops_tui.allocation.effective import TagPolicy
from finops_tui.store import summaries
from finops_tui.store.cache import open_cache
from finops_tui.sync.engine import SyncProgress
from finops_tui.sync.hub import HubOptions, sync_hub
from finops_tui.sync.spool import PREFIX
from tests.fake_arm import FakeCredential
from tests.fake_kusto import FakeKusto
from tests.test_sync_hub import CENT, FEB, JAN, MAR, cached, served

TODAY = dt.date(2025, 3, 15)
pytestmark = pytest.mark.today(TODAY)
ZERO = Decimal(0)


@pytest.fixture
def hub() -> Iterator[FakeKusto]:
    with FakeKusto(rows_per_month=300) as fake:
        yield fake


class Recorder:
    """The progress events, and a cancel pulled when the sync starts downloading a given month."""

    def __init__(self, spool_parent: Path, cancel_at: dt.date | None = None) -> None:
        self.events: list[SyncProgress] = []
        self.spooled: list[list[str]] = []  # the spool's files at each "writing"
        self.cancel = threading.Event()
        self.cancel_at = cancel_at
        self.spool_parent = spool_parent

    def __call__(self, p: SyncProgress) -> None:
        self.events.append(p)
        if p.state == "downloading" and p.window == self.cancel_at:
            self.cancel.set()
        if p.state == "writing":
            self.spooled.append(sorted(f.name for f in self.spool_parent.glob(f"{PREFIX}*/*")))

    def states(self, state: str) -> list[dt.date | None]:
        return [p.window for p in self.events if p.state == state]


def pull(fake: FakeKusto, cache_path: Path, recorder: Recorder | None = None, **overrides: Any) -> Any:
    recorder = recorder or Recorder(cache_path.parent)
    options = HubOptions(f"{fake.url}/Hub", credential=FakeCredential(), sleep=lambda _s: None,
                         work_dir=cache_path.parent, **overrides)
    with open_cache(cache_path) as cache:
        return sync_hub(cache, options, TagPolicy(), progress=recorder, cancel=recorder.cancel)


def window_states(cache_path: Path) -> dict[dt.date, str]:
    with open_cache(cache_path) as cache, cache.cursor() as cur:
        return dict(cur.execute("SELECT window_start, status FROM sync_state").fetchall())


def test_small_months_are_written_together_each_as_its_own_window(hub: FakeKusto, tmp_path: Path) -> None:
    recorder = Recorder(tmp_path)

    result = pull(hub, tmp_path / "c.duckdb", recorder, months=3)

    assert (result.windows_done, result.rows, result.failures) == (3, 900, [])
    assert recorder.states("writing") == [MAR]  # one batch: the three months in one statement
    assert recorder.states("written") == [MAR, FEB, JAN]
    # Spooled as the hub's gzip members, a tenth of the CSV's bytes on disk.
    assert recorder.spooled == [[f"2025-0{m}{part}.csv.gz" for m in (1, 2, 3) for part in (".attributes", "")]]
    assert not list(tmp_path.glob(PREFIX + "*"))
    assert cached(tmp_path / "c.duckdb") == served(hub, [JAN, FEB, MAR])
    assert window_states(tmp_path / "c.duckdb") == {MAR: "done", FEB: "done", JAN: "done"}
    with open_cache(tmp_path / "c.duckdb") as cache, cache.cursor() as cur:
        windows = cur.execute("SELECT period_start, row_count FROM sources ORDER BY 1").fetchall()
        assert windows == [(JAN, 300), (FEB, 300), (MAR, 300)]
        per_window = cur.execute(
            "SELECT s.period_start, count(*) FROM charges c JOIN sources s USING (source_id) "
            "WHERE c.x_ChargeDate < s.period_start OR c.x_ChargeDate >= s.period_end GROUP BY 1").fetchall()
        assert per_window == []  # every row under its own month's source
        assert summaries.differences(cur) == []


def test_a_batch_closes_once_it_holds_batch_rows(hub: FakeKusto, tmp_path: Path) -> None:
    recorder = Recorder(tmp_path)

    result = pull(hub, tmp_path / "c.duckdb", recorder, months=3, batch_rows=600)

    assert (result.windows_done, result.failures) == (3, [])
    assert recorder.states("writing") == [MAR, JAN]  # March and February together, then January
    assert cached(tmp_path / "c.duckdb") == served(hub, [JAN, FEB, MAR])


def test_a_month_served_badly_fails_alone_and_the_rest_of_its_batch_is_written(hub: FakeKusto, tmp_path: Path) -> None:
    cache_path = tmp_path / "c.duckdb"
    pull(hub, cache_path, months=3)
    first = hub.totals([FEB])
    with open_cache(cache_path) as cache, cache.write() as cur:
        cur.execute("UPDATE sync_state SET status = 'failed'")  # so that the next sync pulls all three again
    hub.seed = 8  # the hub's figures changed since
    hub.bad_row_month = FEB

    result = pull(hub, cache_path, months=3)

    [failure] = result.failures
    assert failure.window == FEB and "malformed resource id" in failure.error
    assert result.windows_done == 2
    assert window_states(cache_path) == {MAR: "done", FEB: "failed", JAN: "done"}
    # February keeps the rows of the first sync; January and March hold the new figures.
    second = hub.totals([JAN, MAR])
    expected = {c: tuple((first.get(c, (ZERO, ZERO))[i] + second.get(c, (ZERO, ZERO))[i]).quantize(CENT)
                         for i in (0, 1)) for c in set(first) | set(second)}
    assert cached(cache_path) == expected


def test_an_unreadable_chunk_fails_its_month_only(hub: FakeKusto, tmp_path: Path) -> None:
    hub.corrupt_month = FEB

    result = pull(hub, tmp_path / "c.duckdb", months=3)

    [failure] = result.failures
    assert failure.window == FEB and "the month is not written" in failure.error
    assert "\n" not in failure.error and len(failure.error) < 400
    assert window_states(tmp_path / "c.duckdb") == {MAR: "done", FEB: "failed", JAN: "done"}
    assert cached(tmp_path / "c.duckdb") == served(hub, [JAN, MAR])


def test_a_cancel_leaves_committed_batches_and_the_next_sync_fetches_the_rest(hub: FakeKusto, tmp_path: Path) -> None:
    cache_path = tmp_path / "c.duckdb"
    recorder = Recorder(tmp_path, cancel_at=JAN)  # March and February committed as one batch, January pending

    result = pull(hub, cache_path, recorder, months=3, batch_rows=600)

    assert result.cancelled and result.windows_done == 2
    assert window_states(cache_path) == {MAR: "done", FEB: "done"}
    assert cached(cache_path) == served(hub, [FEB, MAR])
    assert not list(tmp_path.glob(PREFIX + "*"))

    hub.requests.clear()
    again = pull(hub, cache_path, months=3, batch_rows=600)

    assert (again.windows_done, again.failures) == (2, [])  # January, and the open month
    assert sorted(r.query.split("datetime(")[1][:10] for r in hub.requests) == ["2025-01-01", "2025-03-01"]
    assert cached(cache_path) == served(hub, [JAN, FEB, MAR])


def test_a_cancel_inside_the_first_batch_writes_nothing(hub: FakeKusto, tmp_path: Path) -> None:
    cache_path = tmp_path / "c.duckdb"

    result = pull(hub, cache_path, Recorder(tmp_path, cancel_at=FEB), months=3)

    assert result.cancelled and result.windows_done == 0
    assert window_states(cache_path) == {}
    assert cached(cache_path) == {}


def test_the_fake_cluster_answers_gzip_when_asked_like_a_real_one(hub: FakeKusto, tmp_path: Path) -> None:
    result = pull(hub, tmp_path / "c.duckdb", months=1)

    assert (result.windows_done, result.failures) == (1, [])
    assert hub.encodings == ["gzip"]  # the client asks for it (Accept-Encoding), as Data Explorer serves it
    assert cached(tmp_path / "c.duckdb") == served(hub, [MAR])
