"""Provider tags as tag sets (schema 8): each row names its tags' JSON text, `tag_sets` holds each text's MAP once."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from finops_tui import cli
from finops_tui.allocation.effective import TagPolicy, refresh_derived
from finops_tui.ingest.importer import import_paths
from finops_tui.store import SCHEMA_VERSION, open_cache
from finops_tui.store.schema import MIGRATIONS
from finops_tui.store.tag_sets import join_sql, row_tags_sql, tags_from_json
from tests.import_helpers import EA_ACTUAL, FOCUS_SAMPLE, query, run_import

ROW_TAGS = f"SELECT c.ResourceName, {row_tags_sql()} FROM charges c {join_sql()} ORDER BY ALL"
# Tags texts as exporters write them: plain, a repeated key (the slow parse keeps the first), escapes, unicode,
# nothing, empty, a NULL spelling, and one that does not parse (kept without tags, with a note).
TEXTS = ['{"team":"payments","env":"prod"}', '{"team": "payments", "env": "prod"}', '{"team":"a","team":"b"}',
         '{"note":"a \\"quoted\\" text","ünï":"çödé"}', None, "{}", "NULL", "not json",
         '{"team":"payments","env":"prod"}']


def tagged_sample(folder: Path, form: str) -> Path:
    """The first rows of the FOCUS sample, one a tags text, named row-0 ... in ResourceName."""
    table = pa_csv.read_csv(FOCUS_SAMPLE).slice(0, len(TEXTS))
    table = table.set_column(table.schema.get_field_index("Tags"), "Tags", pa.array(TEXTS, pa.string()))
    table = table.set_column(table.schema.get_field_index("ResourceName"), "ResourceName",
                             pa.array([f"row-{i}" for i in range(len(TEXTS))], pa.string()))
    path = folder / f"tagged.{form}"
    if form == "csv":
        pa_csv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    return path


def parsed_one_by_one(texts: list[str | None]) -> list[object]:
    """What each text parses to, as the importer parsed every row's tags before tag sets."""
    con = duckdb.connect()
    try:
        parse = f"SELECT {tags_from_json('t')} FROM (SELECT nullif(CAST(? AS VARCHAR), 'NULL') AS t)"
        return [con.execute(parse, [t]).fetchone()[0] for t in texts]  # type: ignore[index]
    finally:
        con.close()


@pytest.mark.parametrize("form", ["csv", "parquet"])
def test_each_row_has_the_tags_its_text_parses_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], form: str
) -> None:
    cache = tmp_path / "cache.duckdb"
    code, _, err = run_import(capsys, cache, tagged_sample(tmp_path, form))
    assert code == 0 and "1 rows kept without tags" in err and "not json" in err
    assert query(cache, "SELECT count(*) FROM charges WHERE Tags IS NOT NULL") == [(0,)]  # no MAP on a row
    assert query(cache, ROW_TAGS) == [(f"row-{i}", tags) for i, tags in enumerate(parsed_one_by_one(TEXTS))]
    # each text once in tag_sets, with the MAP it parses to; the rows of the text that does not parse name none
    assert query(cache, "SELECT x_TagSet FROM tag_sets ORDER BY 1") == sorted(
        (t,) for t in set(TEXTS) - {None, "NULL", "not json"})
    assert query(cache, f"SELECT count(*) FROM tag_sets WHERE Tags IS DISTINCT FROM {tags_from_json('x_TagSet')}"
                 ) == [(0,)]
    assert query(cache, "SELECT count(*) FROM charges WHERE x_TagSet NOT IN (SELECT x_TagSet FROM tag_sets)") == [(0,)]


def test_a_reimport_and_a_later_file_reuse_the_tag_sets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache.duckdb"
    run_import(capsys, cache, FOCUS_SAMPLE, skip=True)
    before = query(cache, "SELECT x_TagSet, Tags FROM tag_sets ORDER BY 1")
    rows = query(cache, ROW_TAGS)
    run_import(capsys, cache, FOCUS_SAMPLE, skip=True)  # replaces its billing periods
    assert query(cache, "SELECT x_TagSet, Tags FROM tag_sets ORDER BY 1") == before
    assert query(cache, ROW_TAGS) == rows
    run_import(capsys, cache, EA_ACTUAL)  # another file: only its new texts are added
    after = dict(query(cache, "SELECT x_TagSet, Tags FROM tag_sets"))
    assert set(dict(before)) < set(after) and all(after[text] == tags for text, tags in before)
    # Azure cost details tags come without their braces: the tag set is the braced object, as parsed
    assert query(cache, "SELECT count(*) FROM charges c JOIN sources s USING (source_id) "
                        "WHERE s.kind = 'azure-export' AND NOT starts_with(c.x_TagSet, '{')") == [(0,)]


def test_resources_and_the_focus_export_read_the_tag_sets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache.duckdb"
    run_import(capsys, cache, FOCUS_SAMPLE, skip=True)
    tagged = query(cache, "SELECT count(*) FROM resources WHERE Tags IS NOT NULL")[0][0]
    assert tagged > 10
    assert query(cache, "SELECT count(*) FROM resource_tags WHERE origin = 'provider'")[0][0] > tagged
    out = tmp_path / "focus.csv"
    capsys.readouterr()
    assert cli.main(["export", "focus", str(out), "--cache", str(cache), "--format", "csv", "--period", "all"]) == 0
    con = duckdb.connect()
    exported = con.execute(f"SELECT DISTINCT ResourceId, x_ProviderTags FROM read_csv('{out}', all_varchar = true) "
                           "WHERE x_ProviderTags IS NOT NULL").fetchall()
    con.close()
    expected = query(cache, f"SELECT DISTINCT c.ResourceId, {row_tags_sql()} FROM charges c {join_sql()} "
                            f"WHERE {row_tags_sql()} IS NOT NULL")
    assert len(exported) > 10
    assert sorted(((rid, json.loads(raw)) for rid, raw in exported), key=repr) == sorted(expected, key=repr)


def version_7_cache(path: Path) -> None:
    """A cache at schema 7 holding a row whose tags are a MAP on the row, as every cache before 8 does."""
    con = duckdb.connect(str(path))
    try:
        for version in range(7):
            MIGRATIONS[version](con)
            con.execute("INSERT INTO schema_version VALUES (?, now())", [version + 1])
        con.execute(
            "INSERT INTO charges (ChargePeriodStart, ChargePeriodEnd, x_ChargeDate, ResourceId, BillingCurrency, "
            "EffectiveCost, BilledCost, ChargeCategory, Tags, source_id) VALUES (TIMESTAMP '2026-10-01', "
            "TIMESTAMP '2026-10-02', DATE '2026-10-01', '/subscriptions/s/resourcegroups/g/providers/a.b/c/old', "
            "'USD', 1.25, 1.25, 'Usage', MAP {'team': 'payments'}, 1)"
        )
    finally:
        con.close()


def test_an_older_cache_migrates_in_place_and_keeps_its_row_tags(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "v7.duckdb"
    version_7_cache(path)
    with open_cache(path) as cache:
        assert cache.schema_version() == SCHEMA_VERSION >= 8
        with cache.write() as cur:
            refresh_derived(cur, TagPolicy())
        with cache.cursor() as cur:
            assert cur.execute(ROW_TAGS).fetchall() == [(None, {"team": "payments"})]
            assert cur.execute("SELECT Tags FROM resources").fetchall() == [({"team": "payments"},)]
        import_paths(cache, TagPolicy(), [FOCUS_SAMPLE], skip_bad_rows=True)  # new rows take tag sets beside it
        with cache.cursor() as cur:
            assert cur.execute("SELECT count(*) FROM charges WHERE Tags IS NOT NULL").fetchone() == (1,)
            assert cur.execute("SELECT count(*) FROM tag_sets").fetchone()[0] > 0
    capsys.readouterr()
    assert cli.main(["--cache", str(path), "doctor"]) == 0


def test_doctor_names_a_tag_set_the_rows_name_but_the_cache_lacks(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache.duckdb"
    run_import(capsys, cache, FOCUS_SAMPLE, skip=True)
    assert cli.main(["--cache", str(cache), "doctor"]) == 0
    con = duckdb.connect(str(cache))
    lost = con.execute("SELECT x_TagSet FROM tag_sets ORDER BY 1 LIMIT 1").fetchone()[0]  # type: ignore[index]
    con.execute("DELETE FROM tag_sets WHERE x_TagSet = ?", [lost])
    con.close()
    capsys.readouterr()
    assert cli.main(["--cache", str(cache), "doctor"]) == 1
    out = capsys.readouterr().out
    assert "tag_sets lacks the tag set" in out and "charge rows name" in out
