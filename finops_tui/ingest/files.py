"""Looking at a cost file before loading it: format, compression, header, size; and the DuckDB reader for it."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import re
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import duckdb

from finops_tui.errors import UserError
from finops_tui.ingest.mapping import NULL_SPELLINGS, quote_ident, quote_literal, sql_list

_HEAD_BYTES = 1 << 20  # enough for a header and a few hundred rows, to sniff and estimate
# DuckDB's CSV reader drops a line longer than its buffer (32 MB) without a word, even with a rejects table
# (2.0.1); a line that long spans at least one whole aligned block of this size, which then has no newline.
_LONG_LINE_BLOCK = 16 << 20
_NEWLINE_PROBE = 64 << 10
_GLOB_CHARACTERS = re.compile(r"([*?\[])")
_FINGERPRINT_BYTES = 1 << 20
_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = "\ufeff"
_scratch_database: dict[int, duckdb.DuckDBPyConnection] = {}  # process id -> its in-memory database
_scratch_lock = threading.Lock()


@contextmanager
def _scratch() -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor on an in-memory database kept for reading files' metadata: making a database costs 15-50 ms (an
    import made three or four), a cursor on one next to nothing. A forked child makes its own (the parent's
    database threads are not in it)."""
    with _scratch_lock:
        database = _scratch_database.get(os.getpid())
        if database is None:
            _scratch_database.clear()
            database = _scratch_database[os.getpid()] = duckdb.connect()
        cur = database.cursor()
    try:
        yield cur
    finally:
        cur.close()
NULL_TEXTS = "(" + ", ".join(quote_literal(v) for v in ("", *NULL_SPELLINGS)) + ")"


@dataclass(frozen=True)
class SourceFile:
    """One file to load, as inspected: never holds rows, only its shape."""

    path: Path
    format: str  # csv | parquet
    compression: str  # none | gzip
    columns: tuple[str, ...]  # as the file spells them (BOM stripped, duplicates renamed)
    types: dict[str, str]  # DuckDB type per column (VARCHAR for every CSV column)
    size: int
    fingerprint: str
    delimiter: str = ","
    estimated_rows: int | None = None
    first_row: dict[str, str] = field(default_factory=dict)  # first data row of a CSV, for version hints
    twins: dict[str, tuple[str, ...]] = field(default_factory=dict)  # lower-cased name -> its spellings, when 2+
    head_has_rows: bool = False  # a CSV's first MB holds something after the header line

    @property
    def name(self) -> str:
        return self.path.name

    def column(self, *candidates: str) -> str | None:
        """The file's spelling of the first candidate present, matching names case-insensitively.

        A candidate the header spells twice (`BilledCost` and `billedcost`) is refused: which one holds
        the cost cannot be told, and picking one would import the other's values silently.
        """
        by_lower = {c.lower(): c for c in self.columns}
        for candidate in candidates:
            spellings = self.twins.get(candidate.lower())
            if spellings:
                raise UserError(
                    f"{self.name}: the header has the column {candidate} twice ({', '.join(spellings)}); "
                    "which one to import cannot be told: remove or rename one of them and import the file again"
                )
            found = by_lower.get(candidate.lower())
            if found is not None:
                return found
        return None

    def has(self, *candidates: str) -> bool:
        return self.column(*candidates) is not None

    def ref(self, column: str, alias: str = "src") -> str:
        """SQL for a source column, as it is (for text copied into a text column)."""
        return f"{alias}.{quote_ident(column)}"

    def parse_ref(self, column: str, alias: str = "src") -> str:
        """SQL for a source column as a mapping reads it: Parquet text gets the NULL handling the CSV reader
        applies, so that `NULL` and empty texts are no value (rather than an unparsable one, or a text that a
        fallback such as coalesce would keep), in the columns that can hold one."""
        ref = self.ref(column, alias)
        if column in self.null_text_columns:
            return f"(CASE WHEN length({ref}) <= 4 AND {ref} IN {NULL_TEXTS} THEN NULL ELSE {ref} END)"
        return ref

    @cached_property
    def null_text_columns(self) -> frozenset[str]:
        """Text columns of a Parquet file that hold a NULL literal or an empty text somewhere.

        Only those get the test row by row (which would also expand their dictionary encoding). The file's
        statistics rule out most columns (no row group's min..max range can hold such a text); two cheap
        passes over the others: the shortest value of each, then the distinct values of the few whose
        shortest value could be one (at most 4 characters).
        """
        texts = [c for c in self.columns if self.types.get(c, "").upper() == "VARCHAR"]
        if not self.needs_null_cleanup or not texts:
            return frozenset()
        reader = self.reader_sql()
        with _scratch() as con:
            return self._null_text_columns(con, texts, reader)

    def _null_text_columns(self, con: duckdb.DuckDBPyConnection, texts: list[str], reader: str) -> frozenset[str]:
        """null_text_columns' passes over the text columns `texts`, on `con`."""
        try:
            ruled_out = _ruled_out_by_statistics(con, self.path)
            texts = [c for c in texts if c not in ruled_out]
            if not texts:
                return frozenset()
            lengths = con.execute(f"SELECT {', '.join(f'min(length({quote_ident(c)}))' for c in texts)} FROM {reader}")
            shortest = lengths.fetchone() or [None] * len(texts)
            suspects = [c for c, length in zip(texts, shortest, strict=True) if length is not None and length <= 4]
            if not suspects:
                return frozenset()
            holding = con.execute(
                " UNION ALL ".join(
                    f"SELECT {quote_literal(c)}, bool_or(v IN {NULL_TEXTS}) "
                    f"FROM (SELECT DISTINCT {quote_ident(c)} AS v FROM {reader})"
                    for c in suspects
                )
            ).fetchall()
        except duckdb.Error as exc:
            reason = str(exc).splitlines()[0]
            raise UserError(f"{self.name}: a damaged Parquet file ({reason}); copy the file again") from None
        return frozenset(str(column) for column, holds in holding if holds)

    @property
    def columnar(self) -> bool:
        """Reading one column again is cheap (Parquet), unlike CSV where it means parsing every line."""
        return self.format == "parquet"

    @property
    def needs_null_cleanup(self) -> bool:
        """CSV reading already turns empty fields and NULL into nulls; other formats need it done."""
        return self.format != "csv"

    def reader_sql(self, *, rejects_table: str | None = None, row_numbers: bool = False) -> str:
        """The DuckDB table function reading this file; `_row` is the 1-based data row when asked for."""
        path = duckdb_path(self.path)
        if self.format == "parquet":
            if row_numbers:
                return (
                    f"(SELECT file_row_number + 1 AS _row, * EXCLUDE (file_row_number) "
                    f"FROM read_parquet({path}, file_row_number = true))"
                )
            return f"read_parquet({path})"
        columns = "{" + ", ".join(f"{quote_literal(c)}: 'VARCHAR'" for c in self.columns) + "}"
        options = [
            "header = true",
            "auto_detect = false",
            f"columns = {columns}",
            f"delim = {quote_literal(self.delimiter)}",
            "quote = '\"'",
            "escape = '\"'",
            f"nullstr = {sql_list(['', *NULL_SPELLINGS])}",
            "strict_mode = true",
            "null_padding = false",
            f"compression = {quote_literal(self.compression)}",
            "ignore_errors = true",
        ]
        if rejects_table:
            # Rows with the wrong number of fields (a file cut mid-row, a stray quote) land here with
            # their line number instead of failing the whole statement.
            options += [
                "store_rejects = true",
                f"rejects_table = {quote_literal(rejects_table)}",
                f"rejects_scan = {quote_literal(rejects_table + '_scans')}",
            ]
        reader = f"read_csv({path}, {', '.join(options)})"
        if row_numbers:
            return f"(SELECT row_number() OVER () AS _row, * FROM {reader})"
        return reader


def _ruled_out_by_statistics(con: duckdb.DuckDBPyConnection, path: Path) -> set[str]:
    """Columns of a Parquet file that cannot hold an empty text or a NULL spelling: in every row group, the
    column's min..max range (byte order, as Parquet keeps text statistics) holds none of them, or the column
    holds only nulls. A row group without statistics rules nothing out; a truncated bound only widens the range.
    """
    spellings = ("", *NULL_SPELLINGS)
    possible: dict[str, bool] = {}
    chunks = con.execute(
        "SELECT path_in_schema, stats_min_value, stats_max_value, stats_null_count, num_values "
        f"FROM parquet_metadata({duckdb_path(path)})"
    ).fetchall()
    for column, low, high, nulls, values in chunks:
        name = str(column)
        if low is None or high is None:
            holds = not (nulls is not None and values is not None and nulls == values)
        else:
            holds = any(str(low) <= text <= str(high) for text in spellings)
        possible[name] = possible.get(name, False) or holds
    return {name for name, holds in possible.items() if not holds}


def duckdb_path(path: Path) -> str:
    """`path` as a DuckDB string literal naming exactly that file.

    DuckDB's readers take a glob: `x[1].csv` would read `x1.csv`, `*.csv` every file beside it. Each glob
    character is escaped as a one-character class (`[[]`, `[*]`, `[?]`), and the path is made absolute so
    that nothing in it reads as a URL scheme or a home directory.
    """
    return quote_literal(_GLOB_CHARACTERS.sub(r"[\1]", str(path.absolute())))


def inspect(path: Path) -> SourceFile:
    """Format, header and size of `path`, or a UserError saying why it cannot be a cost file."""
    if not path.exists():
        raise UserError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise UserError(f"{path}: a directory without manifest.json; pass the files, or the export folder that has one")
    size = path.stat().st_size
    if size == 0:
        raise UserError(f"{path.name}: empty file, not a cost file; export the cost data again")
    with path.open("rb") as handle:
        magic = handle.read(4)
    fingerprint = _fingerprint(path, size)
    if magic == _PARQUET_MAGIC:
        return _inspect_parquet(path, size, fingerprint)
    compression = "gzip" if magic[:2] == _GZIP_MAGIC else "none"
    return _inspect_csv(path, size, fingerprint, compression)


def _fingerprint(path: Path, size: int) -> str:
    """A cheap identity for a file: its size, first and last MB (hashing gigabytes would cost seconds)."""
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(_FINGERPRINT_BYTES))
        if size > _FINGERPRINT_BYTES:
            handle.seek(max(size - _FINGERPRINT_BYTES, _FINGERPRINT_BYTES))
            digest.update(handle.read(_FINGERPRINT_BYTES))
    return "head-tail-sha256:" + digest.hexdigest()


def _inspect_parquet(path: Path, size: int, fingerprint: str) -> SourceFile:
    literal = duckdb_path(path)
    with _scratch() as con:
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM read_parquet({literal})").fetchall()
            row = con.execute(f"SELECT sum(num_rows) FROM parquet_file_metadata({literal})").fetchone()
            schema = con.execute(f"SELECT name, num_children FROM parquet_schema({literal})").fetchall()
        except duckdb.Error as exc:
            reason = str(exc).splitlines()[0]
            raise UserError(
                f"{path.name}: not a readable Parquet file ({reason}); the file is probably truncated, copy it again"
            ) from None
    columns = tuple(str(name) for name, *_ in described)
    types = {str(name): str(kind) for name, kind, *_ in described}
    rows = int(row[0]) if row and row[0] is not None else None
    # DuckDB renames a repeated column (`billedcost_1`); the file's own names show the repeat.
    twins = _twins(_top_level_names(schema))
    return SourceFile(path, "parquet", "none", columns, types, size, fingerprint, estimated_rows=rows, twins=twins)


def _top_level_names(schema: list[tuple[object, object]]) -> list[str]:
    """The top-level column names of a Parquet schema listed depth-first (root first, as parquet_schema gives it)."""
    names: list[str] = []
    pending = [int(str(schema[0][1] or 0))] if schema else []  # children still to read at each depth
    for name, children in schema[1:]:
        while pending and pending[-1] == 0:
            pending.pop()
        if not pending:
            break
        if len(pending) == 1:
            names.append(str(name))
        pending[-1] -= 1
        if children:
            pending.append(int(str(children)))
    return names


def _inspect_csv(path: Path, size: int, fingerprint: str, compression: str) -> SourceFile:
    head, ratio = _read_head(path, compression)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UserError(f"{path.name}: UTF-16 text; save the file as UTF-8 CSV and import it again")
    if b"\x00" in head[:4096]:
        raise UserError(f"{path.name}: a binary file, not a CSV or Parquet cost file; check the path")
    text = head.decode("utf-8", errors="replace")
    if text.startswith(_UTF8_BOM):
        text = text[1:]
    if len(head) >= _HEAD_BYTES and "\n" not in text and "\r" not in text:
        raise UserError(
            f"{path.name}: the first line is longer than 1 MB, not the header of a cost file (a header is a few KB); "
            "check that the file is a CSV cost export"
        )
    first_line = text.split("\n", 1)[0]
    delimiter = _sniff_delimiter(first_line)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise UserError(f"{path.name}: no header line, not a cost file; export the cost data again") from None
    columns = _unique_names(header)
    twins = _twins([name.strip() for name in header])
    first_row: dict[str, str] = {}
    try:
        values = next(reader)
        first_row = dict(zip(columns, values, strict=False))
    except (StopIteration, csv.Error):
        pass
    # Rows per byte from the head, scaled to the whole (uncompressed) file: enough for an ETA.
    data_lines = text.count("\n") - 1
    estimated: int | None = None
    if len(head) < _HEAD_BYTES:
        estimated = max(data_lines + (0 if text.endswith("\n") else 1), 0) if first_row else 0
    elif data_lines > 0:
        estimated = int(size * ratio / (len(head) / data_lines))
    if compression == "none":
        _refuse_long_lines(path, size)
    types = dict.fromkeys(columns, "VARCHAR")
    after_header = re.split(r"\r\n|\n|\r", text, maxsplit=1)[1:]
    return SourceFile(
        path, "csv", compression, columns, types, size, fingerprint, delimiter, estimated, first_row, twins,
        head_has_rows=bool(after_header and after_header[0].strip()),
    )


def lone_carriage_return_row(source: SourceFile) -> int | None:
    """The data row holding a carriage return outside quotes in a file whose lines end in LF, if any.

    Only called once DuckDB has refused the file, to say where: reads it once, line by line, keeping
    track of quotes so that a CR inside a quoted field (valid CSV) is not taken for one.
    """
    opener = gzip.open if source.compression == "gzip" else open
    row, inside_quotes = 0, False  # row 0 is the header
    try:
        with opener(source.path, "rb") as handle:
            for line in handle:
                body = line.removesuffix(b"\n").removesuffix(b"\r")
                start = 0
                while (cr := body.find(b"\r", start)) >= 0:
                    if not (inside_quotes ^ (body.count(b'"', 0, cr) % 2 == 1)):
                        return max(row, 1)
                    start = cr + 1
                if body.count(b'"') % 2:
                    inside_quotes = not inside_quotes
                if not inside_quotes:
                    row += 1
    except (OSError, EOFError, zlib.error):
        return None  # the file ends early: the caller says the CSV does not parse
    return None


def _refuse_long_lines(path: Path, size: int) -> None:
    """Refuse a plain CSV holding a line too long for DuckDB to read (it would drop that row silently).

    Cheap: one short read at the start of each 16 MB block, looking for a newline; only a block
    with none is read further. A gzip file cannot be probed without inflating it all; its
    one-huge-line case is caught after loading, when it yields no rows at all.
    """
    with path.open("rb") as handle:
        for start in range(0, size, _LONG_LINE_BLOCK):
            handle.seek(start)
            scanned = 0
            while scanned < _LONG_LINE_BLOCK:
                chunk = handle.read(min(_NEWLINE_PROBE, _LONG_LINE_BLOCK - scanned))
                if not chunk or b"\n" in chunk:
                    break
                scanned += len(chunk)
            else:
                raise UserError(
                    f"{path.name}: a line longer than 16 MB near byte {start:,}, not a row of a cost export "
                    "(DuckDB would skip it without a word); check that the file is a complete CSV cost export"
                )


def _read_head(path: Path, compression: str) -> tuple[bytes, float]:
    """The first MB of (decompressed) text, and the uncompressed/compressed size ratio."""
    if compression == "none":
        with path.open("rb") as handle:
            return handle.read(_HEAD_BYTES), 1.0
    try:
        with gzip.open(path, "rb") as handle:
            head = handle.read(_HEAD_BYTES)
        with path.open("rb") as raw:
            compressed = raw.read(_HEAD_BYTES // 8)
        inflater = zlib.decompressobj(wbits=31)
        sample = inflater.decompress(compressed)
    except (OSError, EOFError, zlib.error):
        raise UserError(f"{path.name}: a damaged or truncated gzip file; download or copy it again") from None
    return head, max(len(sample) / max(len(compressed), 1), 1.0)


def _sniff_delimiter(header_line: str) -> str:
    try:
        return csv.Sniffer().sniff(header_line, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _twins(names: list[str]) -> dict[str, tuple[str, ...]]:
    """Names that appear more than once, matched case-insensitively: lower-cased name -> every spelling."""
    spellings: dict[str, list[str]] = {}
    for name in names:
        spellings.setdefault(name.lower(), []).append(name)
    return {lower: tuple(found) for lower, found in spellings.items() if len(found) > 1 and lower}


def _unique_names(header: list[str]) -> tuple[str, ...]:
    """Header names made usable: trimmed, blanks named by position, case-insensitive duplicates numbered."""
    seen: set[str] = set()
    names: list[str] = []
    for index, raw in enumerate(header, start=1):
        name = raw.strip() or f"column{index}"
        candidate, n = name, 2
        while candidate.lower() in seen:
            candidate, n = f"{name}_{n}", n + 1
        seen.add(candidate.lower())
        names.append(candidate)
    return tuple(names)
