"""Bad input for `finops-tui import`: one clear line, exit 1, the cache unchanged; or --skip-bad-rows."""

from __future__ import annotations

import csv
import gzip
import shutil
from pathlib import Path

import duckdb

from tests.import_helpers import (
    EA_ACTUAL,
    EA_AMORTIZED,
    FOCUS_SAMPLE,
    checksum,
    query,
    read_rows,
    run_import,
    shifted_focus_rows,
)


def _seeded_cache(tmp_path: Path, capsys) -> tuple[Path, str]:
    cache = tmp_path / "cache.duckdb"
    assert run_import(capsys, cache, EA_AMORTIZED)[0] == 0
    return cache, checksum(cache)


def _refused(capsys, cache: Path, before: str, *paths: Path) -> str:
    code, out, err = run_import(capsys, cache, *paths)
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("finops-tui: ")
    assert checksum(cache) == before
    return err


def _ea_with(tmp_path: Path, name: str, old: str, new: str) -> Path:
    text = EA_ACTUAL.read_text(encoding="utf-8-sig")
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_csv_cut_mid_row(tmp_path, capsys):
    cache, before = _seeded_cache(tmp_path, capsys)
    data = FOCUS_SAMPLE.read_bytes()
    cut = tmp_path / "cut.csv"
    cut.write_bytes(data[: len(data) // 2])

    err = _refused(capsys, cache, before, cut)

    assert "cut.csv: row 507: the row has fewer fields than the header" in err
    assert "--skip-bad-rows" in err
    code, out, err = run_import(capsys, cache, cut, skip=True)
    assert code == 0 and "cut.csv: 506 rows" in out
    assert "skipped 1 bad rows" in err


def test_csv_cut_inside_a_quoted_field(tmp_path, capsys):
    cache, before = _seeded_cache(tmp_path, capsys)
    data = FOCUS_SAMPLE.read_bytes()
    cut = tmp_path / "cut_quote.csv"
    cut.write_bytes(data[: data.index(b'"{""application', len(data) // 2) + 10])
    err = _refused(capsys, cache, before, cut)
    assert "row 507: a quote opens but never closes" in err


def test_gzip_cut_short(tmp_path, capsys):
    cache, before = _seeded_cache(tmp_path, capsys)
    lines = FOCUS_SAMPLE.read_bytes().split(b"\n")
    good = [line for line in lines[1:] if line and b'"Microsoft"' not in line]
    # Large enough that the cut falls past the head the importer sniffs: DuckDB meets it mid-load.
    packed = gzip.compress(lines[0] + b"\n" + b"\n".join(good * 15) + b"\n")
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(packed[: int(len(packed) * 0.8)])

    err = _refused(capsys, cache, before, cut)
    assert "cut.csv.gz: the gzip data ends early or is damaged" in err

    # With --skip-bad-rows the other files are imported; the broken one is named and the exit code says so.
    code, out, err = run_import(capsys, cache, cut, EA_ACTUAL, skip=True)
    assert code == 1
    assert "EA_ActualCost_Small.csv: 11 rows" in out
    assert "cut.csv.gz" in err and "skipped" in err


def test_small_gzip_cut_in_its_head(tmp_path, capsys):
    cache, before = _seeded_cache(tmp_path, capsys)
    packed = gzip.compress(FOCUS_SAMPLE.read_bytes())
    cut = tmp_path / "head.csv.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    assert "head.csv.gz: a damaged or truncated gzip file" in _refused(capsys, cache, before, cut)


def test_parquet_with_a_bad_footer(tmp_path, capsys):
    cache, before = _seeded_cache(tmp_path, capsys)
    whole = tmp_path / "whole.parquet"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * FROM read_csv('{FOCUS_SAMPLE}')) TO '{whole}' (FORMAT parquet)")
    con.close()
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(whole.read_bytes()[:-64])
    err = _refused(capsys, cache, before, broken)
    assert "broken.parquet: not a readable Parquet file" in err and "copy it again" in err


def test_unknown_currency_code(tmp_path, capsys):
    cache, before = _seeded_cache(tmp_path, capsys)
    path = _ea_with(tmp_path, "ActualCost_xyz.csv", ",USD,", ",XYZ,")
    err = _refused(capsys, cache, before, path)
    assert "ActualCost_xyz.csv: row 1, BillingCurrency: expected an ISO 4217 currency code" in err
    assert "found 'XYZ'" in err


def test_unparsable_date(tmp_path, capsys):
    cache, before = _seeded_cache(tmp_path, capsys)
    path = _ea_with(tmp_path, "ActualCost_date.csv", "09/04/2023", "31/31/2023")
    err = _refused(capsys, cache, before, path)
    assert "row 2, Date: expected a date (MM/DD/YYYY or YYYY-MM-DD), found '31/31/2023'" in err


def test_unparsable_number(tmp_path, capsys):
    cache, before = _seeded_cache(tmp_path, capsys)
    path = _ea_with(tmp_path, "ActualCost_num.csv", ",0.00004,", ",4O.0,")
    err = _refused(capsys, cache, before, path)
    assert "row 2, Cost: expected a decimal number" in err and "found '4O.0'" in err
    code, out, err = run_import(capsys, cache, path, skip=True)
    assert code == 0 and "10 rows" in out and "row 2, Cost" in err


def test_not_a_cost_file(tmp_path, capsys):
    cache, before = _seeded_cache(tmp_path, capsys)
    path = tmp_path / "people.csv"
    path.write_text("name,age\nada,36\n")
    err = _refused(capsys, cache, before, path)
    assert "people.csv: not a cost file" in err


def test_empty_and_missing_files(tmp_path, capsys):
    cache, before = _seeded_cache(tmp_path, capsys)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert "empty.csv: empty file" in _refused(capsys, cache, before, empty)
    assert "no such file" in _refused(capsys, cache, before, tmp_path / "nope.csv")


def test_one_bad_file_refuses_the_whole_command(tmp_path, capsys):
    cache, before = _seeded_cache(tmp_path, capsys)
    err = _refused(capsys, cache, before, EA_ACTUAL, FOCUS_SAMPLE)
    assert f"row {shifted_focus_rows()[0]}, AvailabilityZone" in err


def test_files_replacing_each_other_in_one_command_are_refused(tmp_path, capsys):
    cache, before = _seeded_cache(tmp_path, capsys)
    half = tmp_path / "EA_ActualCost_part2.csv"
    rows = read_rows(EA_ACTUAL)
    header = list(rows[0])
    with half.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows[5:])
    err = _refused(capsys, cache, before, EA_ACTUAL, half)
    assert "cover the same scope" in err


def test_the_same_file_twice_is_imported_once(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    copy = tmp_path / "copy.csv"
    shutil.copy(EA_ACTUAL, copy)
    code, _, err = run_import(capsys, cache, EA_ACTUAL, copy)
    assert code == 0 and "same content" in err
    assert query(cache, "SELECT count(*) FROM charges") == [(11,)]


def test_unreadable_tags_are_kept_without_tags_and_noted(tmp_path, capsys):
    cache = tmp_path / "cache.duckdb"
    path = _ea_with(tmp_path, "ActualCost_tags.csv", '"""CostCenter"": ""SubACM""', '"not: json ""at all')
    code, out, err = run_import(capsys, cache, path)
    assert code == 0 and "11 rows" in out
    assert "rows kept without tags" in err
    assert query(cache, "SELECT count(*) FROM charges WHERE Tags IS NULL AND x_TagSet IS NULL")[0][0] >= 1
