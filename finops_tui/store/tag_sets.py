"""Provider tag sets: the distinct tag texts charge rows name (`charges.x_TagSet`), each parsed once to its MAP."""

from __future__ import annotations

import duckdb

# A row's provider tags are either its tag set (x_TagSet, the JSON object text it came with: a key of `tag_sets`)
# or, from writers that keep a MAP on the row (the demo, the API sync, caches written before version 8), its Tags.
# Writing the text costs about what a plain text column does: a MAP on each of a million rows cost 0.4 s (Parquet)
# to 1.1 s (CSV) of CPU more, and the text needs no second read of the file, which an integer id would.
TAG_SET_COLUMN = "x_TagSet"


def tags_from_json(json_text: str) -> str:
    """SQL: a JSON object (text) to MAP(VARCHAR, VARCHAR); NULL when it is not one.

    The fast path is a plain cast; objects with a repeated key fail it, so they take the slow path,
    which keeps the first value of each key.
    """
    as_json = f"TRY_CAST({json_text} AS JSON)"
    return (
        f"CASE WHEN {json_text} IS NULL THEN NULL ELSE coalesce("
        f"TRY_CAST({as_json} AS MAP(VARCHAR, VARCHAR)), "
        f"CASE WHEN json_type({as_json}) = 'OBJECT' THEN map_from_entries(list_transform("
        f"list_distinct(json_keys({as_json})), lambda k: {{'key': k, 'value': json_extract_string({as_json}, "
        f"'$.\"' || replace(k, '\"', '\\\"') || '\"')}})) END) END"
    )


def row_tags_sql(charges: str = "c", tag_sets: str = "ts") -> str:
    """SQL: the provider tags of the charge row `charges`, with `tag_sets` joined by `join_sql`."""
    return f"coalesce({tag_sets}.Tags, {charges}.Tags)"


def join_sql(charges: str = "c", tag_sets: str = "ts") -> str:
    """SQL: the LEFT JOIN that gives each charge row `charges` its tag set as `tag_sets`."""
    return f"LEFT JOIN tag_sets {tag_sets} ON {tag_sets}.{TAG_SET_COLUMN} = {charges}.{TAG_SET_COLUMN}"


def has_tags_sql(charges: str = "c") -> str:
    """SQL: whether the charge row `charges` has provider tags (a tag set names parsed tags only)."""
    return f"({charges}.{TAG_SET_COLUMN} IS NOT NULL OR {charges}.Tags IS NOT NULL)"


def add_tag_sets(cur: duckdb.DuckDBPyConnection, rows_sql: str) -> None:
    """Register the tag sets that the charge rows matching `rows_sql` (a condition on `charges`) name and
    `tag_sets` lacks: a text already there keeps its row, so a re-import or a later window reuses it."""
    cur.execute(
        f"""
        INSERT INTO tag_sets
        SELECT t, {tags_from_json('t')} FROM (
            SELECT DISTINCT {TAG_SET_COLUMN} AS t FROM charges WHERE {TAG_SET_COLUMN} IS NOT NULL AND ({rows_sql})
        ) AS named
        WHERE t NOT IN (SELECT {TAG_SET_COLUMN} FROM tag_sets)
        """
    )


def missing_tag_sets(cur: duckdb.DuckDBPyConnection, *, limit: int = 20) -> list[str]:
    """For `doctor`: one line per tag set that charge rows name but `tag_sets` lacks (their tags would read as
    none), and one when a tag set's MAP is not its text's."""
    problems = []
    rows = cur.execute(
        f"""
        SELECT c.{TAG_SET_COLUMN}, count(*) FROM charges c
        WHERE c.{TAG_SET_COLUMN} IS NOT NULL AND c.{TAG_SET_COLUMN} NOT IN (SELECT {TAG_SET_COLUMN} FROM tag_sets)
        GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {int(limit)}
        """
    ).fetchall()
    for text, count in rows:
        problems.append(f"tag_sets lacks the tag set {text[:80]!r} that {count:,} charge rows name; "
                        "import their files again")
    stale = cur.execute(
        f"SELECT count(*) FROM tag_sets WHERE Tags IS DISTINCT FROM {tags_from_json(TAG_SET_COLUMN)}"
    ).fetchone()
    if stale and stale[0]:
        problems.append(f"{stale[0]:,} tag sets in tag_sets hold other tags than their text says")
    return problems
