"""`finops-tui sync --export`: Cost Management export runs in Azurite (the real emulator, real azure-storage-blob)."""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from finops_tui.allocation.effective import TagPolicy
from finops_tui.cli import main
from finops_tui.errors import UserError
from finops_tui.ingest.importer import import_in_transaction
from finops_tui.store.cache import open_cache
from finops_tui.sync.exports import ExportOptions, ExportSyncResult, parse_export_url, sync_exports
from tests import azurite
from tests.azurite import Azurite, AzuriteUnavailable, upload_run, write_focus_part
from tests.import_helpers import EA_ACTUAL, EA_AMORTIZED, checksum, header_of, python_totals, read_rows, write_csv

pytestmark = pytest.mark.today(dt.date(2025, 3, 15))
CENT = Decimal("0.01")
MARCH = dt.date(2025, 3, 1)
FEBRUARY = dt.date(2025, 2, 1)


@pytest.fixture(scope="session")
def emulator() -> Iterator[Azurite]:
    try:
        with azurite.running_azurite() as running:
            yield running
    except AzuriteUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def container(emulator: Azurite) -> Any:
    name = f"exports-{uuid.uuid4().hex[:12]}"
    client = emulator.service().create_container(name)
    return client


def url_of(emulator: Azurite, container: Any, prefix: str = "costs", *, sas: bool = True) -> str:
    base = f"{emulator.account_url}/{container.container_name}/{prefix}"
    return f"{base}?{emulator.container_sas(container.container_name)}" if sas else base


def run(cache_path: Path, url: str, **overrides: Any) -> ExportSyncResult:
    with open_cache(cache_path) as cache:
        return sync_exports(cache, ExportOptions([url], importer=import_in_transaction, **overrides), TagPolicy())


def totals(cache_path: Path) -> dict[str, tuple[Decimal | None, Decimal | None]]:
    with open_cache(cache_path) as cache, cache.cursor() as cur:
        rows = cur.execute("SELECT BillingCurrency, sum(BilledCost), sum(EffectiveCost) FROM charges GROUP BY 1")
        return {str(c): (_cent(b), _cent(e)) for c, b, e in rows.fetchall()}


def _cent(value: Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(CENT)


def added(*parts: dict[str, tuple[Decimal, Decimal]]) -> dict[str, tuple[Decimal, Decimal]]:
    """Exact per-currency sums of several files' own totals."""
    summed: dict[str, list[Decimal]] = {}
    for part in parts:
        for currency, (billed, effective) in part.items():
            into = summed.setdefault(currency, [Decimal(0), Decimal(0)])
            into[0] += billed
            into[1] += effective
    return {c: (v[0], v[1]) for c, v in summed.items()}


def cents(exact: dict[str, tuple[Decimal, Decimal]]) -> dict[str, tuple[Decimal | None, Decimal | None]]:
    """Each exact total rounded to the cent, as `totals` reads the cache."""
    return {c: (b.quantize(CENT), e.quantize(CENT)) for c, (b, e) in exact.items()}


def focus_run(tmp_path: Path, container: Any, month: dt.date, *, fmt: str = "parquet", version: str = "1.0",
              rows: tuple[int, ...] = (300, 200), seed: int = 1, run_id: str | None = "run-1",
              submitted: str = "2025-03-02T05:00:00Z", **kwargs: Any) -> azurite.ExportRun:
    scratch = tmp_path / f"parts-{uuid.uuid4().hex[:8]}"
    scratch.mkdir()
    paths, sums, offset = [], [], 0
    for index, count in enumerate(rows):
        path = scratch / f"part{index}.{fmt}"
        sums.append(write_focus_part(path, month, count, version=version, fmt=fmt, seed=seed, offset=offset))
        paths.append(path)
        offset += count
    return upload_run(container, "costs", "focus-daily", month, paths, list(rows), run_id=run_id,
                      submitted=submitted, totals=added(*sums), **kwargs)


# the first sync, and the second that fetches nothing ---------------------------------------------------------------
def test_sync_fills_an_empty_cache_from_an_export_and_a_second_run_downloads_nothing(
    emulator: Azurite, container: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    february = focus_run(tmp_path, container, FEBRUARY, seed=3, submitted="2025-03-01T05:00:00Z")
    march = focus_run(tmp_path, container, MARCH, fmt="csv.gz", seed=5)
    cache_path = tmp_path / "cache.duckdb"
    url = url_of(emulator, container)

    code = main(["sync", "--cache", str(cache_path), "--export", url])

    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err and "sig=" not in err
    assert totals(cache_path) == cents(added(february.totals, march.totals))
    with open_cache(cache_path) as cache, cache.cursor() as cur:
        assert cur.execute("SELECT DISTINCT kind FROM sources").fetchall() == [("sync-export",)]
        assert cur.execute("SELECT count(*) FROM charges").fetchone() == (1000,)
        stored = cur.execute("SELECT source_key, run_id, status, rows, bytes > 0 FROM storage_runs ORDER BY 2")
        key = f"export:{azurite.ACCOUNT}/{container.container_name}/costs"
        assert stored.fetchall() == [(key, "run-1", "done", 500, True), (key, "run-1", "done", 500, True)]
        assert "sig" not in str(cur.execute("SELECT * FROM storage_runs").fetchall())
        assert "sig" not in str(cur.execute("SELECT * FROM sources").fetchall())
        assert "sig" not in str(cur.execute("SELECT * FROM sync_state").fetchall())

    before = checksum(cache_path)
    again = run(cache_path, url)
    assert (again.windows_done, again.windows_skipped, again.blobs_downloaded, again.bytes_downloaded) == (0, 2, 0, 0)
    assert again.api_calls == 1  # one listing
    assert checksum(cache_path) == before


def test_connection_string_auth_and_every_focus_version_and_format(
    emulator: Azurite, container: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    months = [dt.date(2024, 12, 1), dt.date(2025, 1, 1), FEBRUARY]
    runs = [
        focus_run(tmp_path, container, month, fmt=fmt, version=version, seed=i)
        for i, (month, fmt, version) in enumerate(zip(months, ("csv", "csv.gz", "parquet"),
                                                      ("1.0", "1.0r2", "1.2-preview"), strict=True))
    ]
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", emulator.connection_string)

    result = run(tmp_path / "c.duckdb", url_of(emulator, container, sas=False))

    assert (result.windows_done, result.failures) == (3, [])
    assert totals(tmp_path / "c.duckdb") == cents(added(*(r.totals for r in runs)))


def test_legacy_actual_and_amortized_exports(emulator: Azurite, container: Any, tmp_path: Path) -> None:
    parts = []
    for source, dataset in ((EA_ACTUAL, "ActualCost"), (EA_AMORTIZED, "AmortizedCost")):
        rows = read_rows(source)
        part = write_csv(tmp_path / f"{dataset}.csv", header_of(source), rows)
        gz = tmp_path / f"{dataset}.csv.gz"
        with part.open("rb") as src, gzip.open(gz, "wb") as dst:
            shutil.copyfileobj(src, dst)
        parts.append((gz, dataset, len(rows)))
    # The fixtures' own period (September 2023), as their manifests give it.
    for gz, dataset, count in parts:
        upload_run(container, "legacy", dataset.lower(), dt.date(2023, 9, 1), [gz], [count], dataset=dataset,
                   run_id="r1", scope="/providers/Microsoft.Billing/billingAccounts/8611537",
                   end=dt.date(2023, 9, 30))

    result = run(tmp_path / "c.duckdb", url_of(emulator, container, "legacy"))

    assert (result.windows_done, [f.error for f in result.failures]) == (2, [])
    actual = python_totals(EA_ACTUAL, currency="BillingCurrency", billed="Cost", effective=None)
    amortized = python_totals(EA_AMORTIZED, currency="BillingCurrency", billed=None, effective="Cost")
    with open_cache(tmp_path / "c.duckdb") as cache, cache.cursor() as cur:
        got = dict(cur.execute("SELECT metric, count(*) FROM sources GROUP BY 1").fetchall())
        assert got == {"actual": 1, "amortized": 1}
    cached = totals(tmp_path / "c.duckdb")
    assert cached["USD"] == (actual["USD"][0], amortized["USD"][1])


# changed, overwritten, superseded ----------------------------------------------------------------------------------
def test_a_newer_run_of_the_same_period_replaces_the_older_never_doubled(
    emulator: Azurite, container: Any, tmp_path: Path
) -> None:
    cache_path = tmp_path / "c.duckdb"
    url = url_of(emulator, container)
    focus_run(tmp_path, container, MARCH, seed=1, run_id="run-1", submitted="2025-03-02T05:00:00Z")
    assert run(cache_path, url).windows_done == 1
    newer = focus_run(tmp_path, container, MARCH, seed=9, rows=(400, 250), run_id="run-2",
                      submitted="2025-03-03T05:00:00Z")

    result = run(cache_path, url)

    assert (result.windows_done, result.windows_skipped) == (1, 1)
    assert totals(cache_path) == cents(newer.totals)
    with open_cache(cache_path) as cache, cache.cursor() as cur:
        assert cur.execute("SELECT count(*) FROM charges").fetchone() == (650,)
        states = cur.execute("SELECT run_id, status FROM storage_runs ORDER BY run_id").fetchall()
        assert states == [("run-1", "superseded"), ("run-2", "done")]


def test_an_older_run_found_later_never_replaces_a_newer_one(emulator: Azurite, container: Any, tmp_path: Path) -> None:
    newer = focus_run(tmp_path, container, MARCH, seed=9, run_id="run-2", submitted="2025-03-03T05:00:00Z")
    focus_run(tmp_path, container, MARCH, seed=1, run_id="run-1", submitted="2025-03-02T05:00:00Z")

    result = run(tmp_path / "c.duckdb", url_of(emulator, container))

    assert (result.windows_done, result.windows_skipped) == (1, 1)
    assert totals(tmp_path / "c.duckdb") == cents(newer.totals)


def test_an_overwritten_daily_run_is_fetched_again(emulator: Azurite, container: Any, tmp_path: Path) -> None:
    cache_path = tmp_path / "c.duckdb"
    url = url_of(emulator, container)
    focus_run(tmp_path, container, MARCH, seed=1, run_id=None, fmt="csv", submitted="2025-03-02T05:00:00Z")
    assert run(cache_path, url).windows_done == 1
    rewritten = focus_run(tmp_path, container, MARCH, seed=2, rows=(350, 10), run_id=None, fmt="csv",
                          submitted="2025-03-03T05:00:00Z")

    result = run(cache_path, url)

    assert (result.windows_done, result.failures) == (1, [])
    assert totals(cache_path) == cents(rewritten.totals)
    assert run(cache_path, url).blobs_downloaded == 0


# refused runs: one line, the cache as it was, retried next time ----------------------------------------------------
def test_an_incomplete_run_is_refused_then_imported_once_complete(
    emulator: Azurite, container: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache_path = tmp_path / "c.duckdb"
    with open_cache(cache_path):
        pass
    before = checksum(cache_path)
    url = url_of(emulator, container)
    complete = focus_run(tmp_path, container, MARCH, skip_parts=(1,))

    code = main(["sync", "-q", "--cache", str(cache_path), "--export", url])

    err = capsys.readouterr().err
    assert code == 3
    lines = [line for line in err.splitlines() if "incomplete" in line]
    assert len(lines) == 1 and "part_1_0002.parquet" in lines[0] and "retried next sync" in lines[0]
    assert "Traceback" not in err and "sig=" not in err
    with open_cache(cache_path) as cache, cache.cursor() as cur:
        assert cur.execute("SELECT count(*) FROM charges").fetchone() == (0,)
        assert cur.execute("SELECT status FROM storage_runs").fetchall() == [("failed",)]
    assert before != checksum(cache_path)  # only the run's failed state was recorded

    focus_run(tmp_path, container, MARCH)  # the export finishes writing
    result = run(cache_path, url)
    assert (result.windows_done, result.failures) == (1, [])
    assert totals(cache_path) == cents(complete.totals)


def test_row_counts_that_disagree_with_the_manifest_refuse_the_run(
    emulator: Azurite, container: Any, tmp_path: Path
) -> None:
    focus_run(tmp_path, container, MARCH, manifest_rows=[300, 201])

    result = run(tmp_path / "c.duckdb", url_of(emulator, container))

    assert result.windows_done == 0
    [failure] = result.failures
    assert "manifest.json says 201 rows, the file has 200" in failure.error
    assert totals(tmp_path / "c.duckdb") == {}


def test_a_corrupt_part_refuses_the_run_and_keeps_the_previous_one(
    emulator: Azurite, container: Any, tmp_path: Path
) -> None:
    cache_path = tmp_path / "c.duckdb"
    url = url_of(emulator, container)
    good = focus_run(tmp_path, container, MARCH, fmt="csv.gz", run_id=None)
    assert run(cache_path, url).windows_done == 1
    broken = tmp_path / "broken.csv.gz"
    data = (tmp_path / "broken-src.csv.gz")
    write_focus_part(data, MARCH, 500, fmt="csv.gz", seed=4)
    broken.write_bytes(data.read_bytes()[:-200])  # a truncated gzip stream
    upload_run(container, "costs", "focus-daily", MARCH, [broken], [500], submitted="2025-03-04T05:00:00Z")

    result = run(cache_path, url)

    [failure] = result.failures
    assert "gzip" in failure.error and "part_0_0001.csv.gz" in failure.error
    assert totals(cache_path) == cents(good.totals)


def test_a_refused_sas_is_one_line_without_the_token(
    emulator: Azurite, container: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    focus_run(tmp_path, container, MARCH)
    url = f"{emulator.account_url}/{container.container_name}/costs?sv=2021-08-06&sr=c&sp=rl&se=2030-01-01&sig=Zm9v"

    code = main(["sync", "-q", "--cache", str(tmp_path / "c.duckdb"), "--export", url])

    err = capsys.readouterr().err
    assert code == 3
    assert len(err.strip().splitlines()) == 1, err
    assert "SAS" in err and "Zm9v" not in err and "Traceback" not in err


# dry run, cancel, list-sources ---------------------------------------------------------------------------------------
def test_dry_run_lists_what_would_be_fetched_and_fetches_nothing(
    emulator: Azurite, container: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    focus_run(tmp_path, container, MARCH)
    cache_path = tmp_path / "c.duckdb"

    code = main(["sync", "--cache", str(cache_path), "--export", url_of(emulator, container), "--dry-run"])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert "costs/focus-daily/20250301-20250331/run-1: 2 part(s)" in out
    assert "sig=" not in out + err
    assert not cache_path.exists() or totals(cache_path) == {}


def test_cancel_stops_between_parts_and_keeps_finished_runs(emulator: Azurite, container: Any, tmp_path: Path) -> None:
    focus_run(tmp_path, container, FEBRUARY, submitted="2025-03-01T05:00:00Z")
    focus_run(tmp_path, container, MARCH)
    cancel = threading.Event()
    cache_path = tmp_path / "c.duckdb"

    def progress(p: Any) -> None:
        if p.state == "written":
            cancel.set()  # after the first run (March, the newest) is in

    with open_cache(cache_path) as cache:
        result = sync_exports(cache, ExportOptions([url_of(emulator, container)], importer=import_in_transaction,
                                                   parallel=1), TagPolicy(), progress=progress, cancel=cancel)

    assert result.cancelled and result.windows_done == 1
    with open_cache(cache_path) as cache, cache.cursor() as cur:
        months = cur.execute("SELECT DISTINCT CAST(date_trunc('month', x_ChargeDate) AS DATE) FROM charges")
        assert months.fetchall() == [(MARCH,)]
    assert run(cache_path, url_of(emulator, container)).windows_done == 1  # the rest, next time


def test_list_sources_names_each_source_and_its_last_run(
    emulator: Azurite, container: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    focus_run(tmp_path, container, MARCH)
    cache_path = tmp_path / "c.duckdb"
    url = url_of(emulator, container)
    assert main(["sync", "-q", "--cache", str(cache_path), "--export", url]) == 0
    capsys.readouterr()

    code = main(["sync", "--cache", str(cache_path), "--export", url, "--list-sources"])

    out, _ = capsys.readouterr()
    assert code == 0
    [line] = [line for line in out.splitlines() if "export" in line]
    assert container.container_name in line and "1 run" in line and "500 rows" in line and "sig=" not in line


# URLs ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "account", "container", "prefix", "account_url"),
    [
        ("https://acct01.blob.core.windows.net/exports/costs/daily?sv=1&sig=abc", "acct01", "exports", "costs/daily",
         "https://acct01.blob.core.windows.net"),
        ("https://acct01.dfs.core.windows.net/exports", "acct01", "exports", "", "https://acct01.blob.core.windows.net"),
        ("abfss://ingestion@hubstore.dfs.core.windows.net/Costs/2025/03", "hubstore", "ingestion", "Costs/2025/03",
         "https://hubstore.blob.core.windows.net"),
        ("http://127.0.0.1:10000/devstoreaccount1/exports/x/", "devstoreaccount1", "exports", "x",
         "http://127.0.0.1:10000/devstoreaccount1"),
    ],
)
def test_export_urls_are_parsed_and_the_sas_kept_apart(
    url: str, account: str, container: str, prefix: str, account_url: str
) -> None:
    location = parse_export_url(url)
    assert (location.account, location.container, location.prefix, location.account_url) == (
        account, container, prefix, account_url)
    assert "sig" not in location.key + location.shown + repr(location)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://acct01.blob.core.windows.net/exports", "plain http is accepted only for loopback"),
        ("https://example.com/exports", "not a storage account URL"),
        ("https://acct01.blob.core.windows.net/", "names no container"),
        ("https://acct01.blob.core.windows.net/Bad_Container", "not a container name"),
        ("https://acct01.blob.core.windows.net/exports/a/../b", "`.` or `..`"),
        ("https://acct01.blob.core.windows.net/exports?foo=bar", "not a SAS token"),
        ("s3://bucket/x", "expected https://"),
        ("https://acct01.blob.core.windows.net/exports/\x1b[2J", "control characters"),
    ],
)
def test_bad_export_urls_are_one_line(url: str, expected: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_export_url(url, origin="[sync] exports")
    message = str(caught.value)
    assert expected in message and message.startswith("[sync] exports") and "\n" not in message
    assert "\x1b" not in message


# a FinOps hub's ingestion container, read through the export path ----------------------------------------------------
HUB_SCOPE = f"/subscriptions/{azurite.SUBSCRIPTION}"
BILLING_SCOPE_PATH = "providers/Microsoft.Billing/billingAccounts/8611537"


def ingestion_folder(
    tmp_path: Path, container: Any, month: dt.date, *, ingestion_id: str, seed: int = 1,
    rows: tuple[int, ...] = (300, 200), **kwargs: Any,
) -> tuple[str, dict[str, tuple[Decimal, Decimal]]]:
    scratch = tmp_path / f"hub-{uuid.uuid4().hex[:8]}"
    scratch.mkdir()
    paths, sums, offset = [], [], 0
    for index, count in enumerate(rows):
        path = scratch / f"part_{index}_{index + 1:04d}.parquet"
        sums.append(write_focus_part(path, month, count, seed=seed, offset=offset))
        paths.append(path)
        offset += count
    folder = azurite.upload_ingestion(container, month, paths, ingestion_id=ingestion_id, **kwargs)
    return folder, added(*sums)


def test_the_hub_ingestion_container_fills_the_cache_and_a_second_run_downloads_nothing(
    emulator: Azurite, container: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, february = ingestion_folder(tmp_path, container, FEBRUARY, ingestion_id="20250301T0500", seed=3)
    _, march = ingestion_folder(tmp_path, container, MARCH, ingestion_id="20250314T0500", seed=5)
    _, billing = ingestion_folder(tmp_path, container, MARCH, ingestion_id="20250314T0600", seed=7, rows=(120,),
                                  scope_path=BILLING_SCOPE_PATH)
    # Other hub datasets hold no cost rows: price sheets and recommendations are not imported (and not failures).
    ingestion_folder(tmp_path, container, MARCH, ingestion_id="20250314T0500", dataset="Prices", rows=(10,))
    cache_path = tmp_path / "cache.duckdb"
    url = f"{emulator.account_url}/{container.container_name}?{emulator.container_sas(container.container_name)}"

    code = main(["sync", "--cache", str(cache_path), "--export", url])

    err = capsys.readouterr().err
    assert code == 0, err
    assert "manifest.json is not JSON" not in err and "Traceback" not in err
    assert totals(cache_path) == cents(added(february, march, billing))
    with open_cache(cache_path) as cache, cache.cursor() as cur:
        assert cur.execute("SELECT count(*) FROM charges").fetchone() == (1120,)
        windows = cur.execute("SELECT scope, period_start, row_count FROM sources ORDER BY 1, 2").fetchall()
        assert windows == [
            ("/" + BILLING_SCOPE_PATH.lower(), MARCH, 120),
            (HUB_SCOPE.lower(), FEBRUARY, 500), (HUB_SCOPE.lower(), MARCH, 500),
        ]
        runs = cur.execute("SELECT run_id, status, dataset FROM storage_runs ORDER BY 1").fetchall()
        assert runs == [("20250301T0500", "done", "FocusCost"), ("20250314T0500", "done", "FocusCost"),
                        ("20250314T0600", "done", "FocusCost")]

    before = checksum(cache_path)
    again = run(cache_path, url)
    assert (again.windows_done, again.windows_skipped, again.blobs_downloaded, again.failures) == (0, 3, 0, [])
    assert checksum(cache_path) == before


def test_a_new_ingestion_of_a_month_replaces_it_and_leftover_files_of_the_old_one_are_not_counted(
    emulator: Azurite, container: Any, tmp_path: Path
) -> None:
    cache_path = tmp_path / "c.duckdb"
    url = url_of(emulator, container, "ingestion")
    ingestion_folder(tmp_path, container, MARCH, ingestion_id="20250313T0500", seed=1, prefix="ingestion")
    assert run(cache_path, url).windows_done == 1
    # The hub writes the new ingestion's files, then the manifest again; the older files may linger a while.
    _, newer = ingestion_folder(tmp_path, container, MARCH, ingestion_id="20250314T0500", seed=9, rows=(250, 40),
                                prefix="ingestion")

    result = run(cache_path, url)

    assert (result.windows_done, result.failures) == (1, [])
    assert totals(cache_path) == cents(newer)
    with open_cache(cache_path) as cache, cache.cursor() as cur:
        assert cur.execute("SELECT count(*) FROM charges").fetchone() == (290,)
        assert cur.execute("SELECT run_id, status FROM storage_runs").fetchall() == [("20250314T0500", "done")]


def test_an_ingestion_folder_without_parquet_is_refused_with_one_line(
    emulator: Azurite, container: Any, tmp_path: Path
) -> None:
    container.upload_blob(f"Costs/2025/03/subscriptions/{azurite.SUBSCRIPTION}/manifest.json", b"")

    result = run(tmp_path / "c.duckdb", url_of(emulator, container, "Costs"))

    [failure] = result.failures
    assert "no Parquet part beside manifest.json" in failure.error and "retried next sync" in failure.error
    assert totals(tmp_path / "c.duckdb") == {}
