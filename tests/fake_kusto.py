"""A loopback fake of a FinOps hub's Data Explorer cluster: the v2 REST query endpoint azure-kusto-data speaks.

POST /v2/rest/query with `{"db": ..., "csl": ..., "properties": ...}` answers a JSON array of frames:
DataSetHeader, DataTable (QueryProperties), one DataTable (PrimaryResult) per tabular statement of the query's
batch, DataTable (QueryCompletionInformation), DataSetCompletion, written progressively (chunked transfer) like a
cluster. It does not run KQL: it reads the month window's datetime bounds from the query, checks the query's shape,
and serves that month of its own rows summarised and packed the way the query asks (a chunk of rows as CSV
lines, gzipped, base64). A query that looks up its rows' `Variants` on attribute columns is a batch of two
statements, answered as Data Explorer answers a batch, with two PrimaryResult tables: the month's distinct
attribute combinations numbered from 1 (Chunk, RowCount, Attributes), then the rows carrying their number in
place of those columns (Chunk, RowCount, Rows); a query without it, one table of whole rows. Like Data Explorer,
it compresses the whole response (Content-Encoding: gzip) when the request accepts it, as azure-kusto-data's does.
An answer's bytes are rendered once per query and kept, so a benchmark can render them before its timer starts
(`prerender`) and measure the client alone. GET /v1/rest/auth/metadata answers 404, so the client takes the public
cloud's defaults and never leaves loopback for them. Scripted failures: throttling (429 with Retry-After), 5xx,
an error row part-way through a result (a partial failure), an error reported in DataSetCompletion, a chunk whose
gzip is cut short, an attributes table missing a variant, and one table of whole rows where the query asked for two.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import random
import re
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000b7"
OTHER_SUBSCRIPTION = "00000000-0000-0000-0000-0000000000c8"
_BOUNDS = re.compile(r"ChargePeriodStart >= datetime\((\d{4}-\d{2}-\d{2})\) and ChargePeriodStart < "
                     r"datetime\((\d{4}-\d{2}-\d{2})\)")
_CHUNK = re.compile(r"row_number\(\) - 1\) / (\d+)")
_PACKED = "gzip_compress_to_base64_string(strcat_array(Lines, '\\n'))"
_DATETIME_COLUMNS = ("x_ChargeDate", "BillingPeriodStart", "BillingPeriodEnd")
_SUBSCRIPTION_FILTER = re.compile(r"SubAccountId in~ \(([^)]*)\)")
_SUBSCRIPTION_LITERAL = re.compile(r"'(/subscriptions/[^']+)'")
_LOOKUP = re.compile(r"\| lookup kind=inner Variants on ([A-Za-z_, ]+)\n")


@dataclass
class Request:
    database: str
    query: str
    authorization: str | None
    properties: Any


@dataclass
class FakeKusto:
    """The cluster's data (rows per month, already at the cache's grain) and what it was asked."""

    rows_per_month: int = 200
    seed: int = 7
    requests: list[Request] = field(default_factory=list)
    throttle_next: int = 0  # answer this many queries with 429 first
    fail_next_status: int | None = None  # answer the next query with this status
    cut_month: dt.date | None = None  # a result cut short by an error row after the first chunk
    completion_error_month: dt.date | None = None  # rows served, then an error in DataSetCompletion
    bad_row_month: dt.date | None = None  # one row with a malformed resource id
    corrupt_month: dt.date | None = None  # its first chunk's gzip is cut in half (valid base64, a gzip header)
    lost_variant_month: dt.date | None = None  # its attributes table lacks its last variant
    whole_rows_month: dt.date | None = None  # answered with one table of whole rows, whatever the query asks
    awkward_text: bool = False  # resource names with quotes, commas and line breaks, tags with non-text values
    encodings: list[str] = field(default_factory=list)  # the Content-Encoding of each answer served with rows
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rendered: dict[tuple[Any, ...], list[bytes]] = field(default_factory=dict)

    # data -------------------------------------------------------------------------------------------------------
    def month_rows(self, start: dt.date, end: dt.date, subscription: str | None = None) -> list[dict[str, str]]:
        """The summarised rows of [start, end): costs as the text the cluster's tostring(real) gives."""
        rows = []
        days = (end - start).days
        rng = random.Random(f"{self.seed}-{start}")
        for i in range(self.rows_per_month):
            sub = f"/subscriptions/{SUBSCRIPTION}" if i % 3 else f"/subscriptions/{OTHER_SUBSCRIPTION}"
            billed = Decimal(rng.randrange(0, 10_000_000)) / Decimal(10_000)  # drawn first: a slice never changes a row
            if subscription is not None and sub.lower() != subscription.lower():
                continue
            day = start + dt.timedelta(days=i % days)
            rows.append({
                "x_ChargeDate": f"{day}T00:00:00.0000000Z",
                "BillingPeriodStart": f"{start}T00:00:00.0000000Z",
                "BillingPeriodEnd": f"{end}T00:00:00.0000000Z",
                "BillingAccountId": "/providers/Microsoft.Billing/billingAccounts/8611537",
                "BillingAccountName": "Contoso",
                "SubAccountId": sub,
                "SubAccountName": "prod" if i % 3 else "dev",
                "BillingCurrency": "EUR" if i % 11 == 0 else "USD",
                "ChargeCategory": "Usage",
                "ChargeClass": "",
                "ChargeFrequency": "Usage-Based",
                "PricingCategory": "Standard",
                "PricingUnit": "1 Hour",
                "ConsumedUnit": "Hours",
                "ServiceName": "Virtual Machines",
                "ServiceCategory": "Compute",
                "ProviderName": "Microsoft",
                "PublisherName": "Microsoft",
                "InvoiceIssuerName": "Microsoft",
                "ResourceId": (
                    f"{sub}/resourceGroups/rg-{i % 4}/providers/Microsoft.Compute/virtualMachines/VM-{i % 37}"
                    if not (self.bad_row_month == start and i == 5) else f"{sub}/resourceGroups/../x"
                ),
                "ResourceName": f'VM-{i % 37}, "big"\nline {i}' if self.awkward_text else f"VM-{i % 37}",
                "ResourceType": "Virtual machine",
                "RegionId": "westeurope",
                "RegionName": "West Europe",
                "CommitmentDiscountId": "",
                "CommitmentDiscountName": "",
                "CommitmentDiscountStatus": "",
                "CommitmentDiscountType": "",
                "CommitmentDiscountCategory": "",
                "SkuId": "DZH318Z0BQ4P",
                "SkuPriceId": "",
                "x_ResourceGroupName": f"rg-{i % 4}",
                "x_SkuMeterCategory": "Virtual Machines",
                "x_SkuMeterName": "D2s v5",
                "Tags": json.dumps({"team": f"team-{i % 5}", "env": "prod", **(
                    {"cost-center": 4711, "note": 'a "quoted", text'} if self.awkward_text else {})}),
                "BilledCost": str(billed),
                "EffectiveCost": str(billed * Decimal("0.9")),
                "ListCost": str(billed * Decimal("1.2")),
                "ContractedCost": str(billed),
                "PricingQuantity": "24",
                "ConsumedQuantity": "24",
            })
        return rows

    def totals(self, months: list[dt.date], subscription: str | None = None) -> dict[str, tuple[Decimal, Decimal]]:
        """What the fake serves for these months, per currency (sum BilledCost, sum EffectiveCost)."""
        sums: dict[str, list[Decimal]] = {}
        for start in months:
            end = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
            for row in self.month_rows(start, end, subscription):
                into = sums.setdefault(row["BillingCurrency"], [Decimal(0), Decimal(0)])
                into[0] += Decimal(row["BilledCost"])
                into[1] += Decimal(row["EffectiveCost"])
        return {c: (v[0], v[1]) for c, v in sums.items()}

    # server -----------------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeKusto:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._send(404, b'{"error": "not found"}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path != "/v2/rest/query":
                    self._send(404, b'{"error": "not found"}')
                    return
                request = Request(body.get("db"), body.get("csl", ""), self.headers.get("Authorization"),
                                  body.get("properties"))
                with fake._lock:
                    fake.requests.append(request)
                    throttled = fake.throttle_next > 0
                    if throttled:
                        fake.throttle_next -= 1
                    status, fake.fail_next_status = fake.fail_next_status, None
                if throttled:
                    self._send(429, b'{"error": {"code": "TooManyRequests", "message": "throttled"}}',
                               {"Retry-After": "7"})
                    return
                if status is not None:
                    self._send(status, b'{"error": {"code": "ServiceUnavailable", "message": "try later"}}')
                    return
                bounds = _BOUNDS.search(request.query)
                chunk = _CHUNK.search(request.query)
                shaped = "Costs()" in request.query and "summarize" in request.query and _PACKED in request.query
                if bounds is None or chunk is None or not shaped:
                    self._send(400, json.dumps({"error": {"code": "BadRequest", "message": "unexpected query",
                                                          "@message": "Semantic error"}}).encode())
                    return
                start, end = (dt.date.fromisoformat(bounds.group(i)) for i in (1, 2))
                lookup = _LOOKUP.search(request.query) if start != fake.whole_rows_month else None
                attributes = tuple(c.strip() for c in lookup.group(1).split(",")) if lookup else ()
                subscriptions = tuple(sorted({sub.lower() for clause in _SUBSCRIPTION_FILTER.findall(request.query)
                                              for sub in _SUBSCRIPTION_LITERAL.findall(clause)}))
                gzipped = "gzip" in (self.headers.get("Accept-Encoding") or "")
                with fake._lock:
                    fake.encodings.append("gzip" if gzipped else "identity")
                self._stream(fake.rendered(start, end, int(chunk.group(1)), subscriptions, gzipped=gzipped,
                                           attributes=attributes), gzipped)

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def _stream(self, pieces: list[bytes], gzipped: bool) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if gzipped:
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for data in pieces:
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def rendered(
        self, start: dt.date, end: dt.date, chunk_rows: int, subscriptions: tuple[str, ...] = (), *,
        gzipped: bool = False, attributes: tuple[str, ...] = (),
    ) -> list[bytes]:
        """The answer's bytes for one month window, rendered once (then served as kept); `gzipped`: as one gzip
        stream, flushed after each frame piece so the client can read rows as they arrive; `attributes`: the
        columns sent once per variant (a batch of two tables), none for one table of whole rows."""
        key = (start, end, chunk_rows, subscriptions, self.rows_per_month, self.seed, self.cut_month,
               self.completion_error_month, self.bad_row_month, self.corrupt_month, self.awkward_text, gzipped,
               attributes, self.lost_variant_month)
        with self._lock:
            kept = self._rendered.get(key)
        if kept is None:
            if gzipped:
                kept = _gzip_stream(self.rendered(start, end, chunk_rows, subscriptions, attributes=attributes))
            else:
                rows = [row for row in self.month_rows(start, end)
                        if not subscriptions or row["SubAccountId"].lower() in subscriptions]
                kept = [piece.encode() for piece in self._frames(start, rows, chunk_rows, attributes)]
            with self._lock:
                self._rendered[key] = kept
        return kept

    def prerender(self, months: list[dt.date], chunk_rows: int, shapes: tuple[tuple[str, ...], ...] = ((),)) -> None:
        """Render these months' answers now, as the client will ask for them (a benchmark does it before its timer
        starts), in each of `shapes` (the attribute columns of a two-table answer; () for whole rows)."""
        for attributes in shapes:
            for start in months:
                end = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
                self.rendered(start, end, chunk_rows, gzipped=True, attributes=attributes)
                with self._lock:  # the plain rendering is only a step towards the gzipped one
                    self._rendered.pop((start, end, chunk_rows, (), self.rows_per_month, self.seed, self.cut_month,
                                        self.completion_error_month, self.bad_row_month, self.corrupt_month,
                                        self.awkward_text, False, attributes, self.lost_variant_month), None)

    def _frames(self, start: dt.date, rows: list[dict[str, str]], chunk_rows: int,
                attributes: tuple[str, ...] = ()) -> Iterator[str]:
        """The v2 frames, each primary table's rows one chunk at a time (as the cluster streams them)."""
        yield "[" + json.dumps({"FrameType": "DataSetHeader", "IsProgressive": False, "Version": "v2.0",
                                "IsFragmented": False, "ErrorReportingPlacement": "EndOfTable"})
        yield "," + json.dumps({"FrameType": "DataTable", "TableId": 0, "TableKind": "QueryProperties",
                                "TableName": "@ExtendedProperties",
                                "Columns": [{"ColumnName": "TableId", "ColumnType": "int"},
                                            {"ColumnName": "Key", "ColumnType": "string"},
                                            {"ColumnName": "Value", "ColumnType": "dynamic"}],
                                "Rows": [[1, "Visualization", {"Visualization": None}]]})
        tables: list[tuple[str, list[str]]] = []
        if attributes:
            variants: dict[tuple[str, ...], int] = {}
            facts = [c for c, _, _ in _grain() if c not in attributes]
            lines = []
            for row in rows:
                variant = variants.setdefault(tuple(row[c] for c in attributes), len(variants) + 1)
                lines.append(_line(row, facts) + f",{variant}")
            described = [_line(dict(zip(attributes, values, strict=True)), list(attributes)) + f",{variant}"
                         for values, variant in variants.items()]
            tables.append(("Attributes", described[:-1] if self.lost_variant_month == start else described))
            tables.append(("Rows", lines))
        else:
            tables.append(("Rows", [_line(row, [c for c, _, _ in _grain()]) for row in rows]))
        for table_id, (packed_column, lines) in enumerate(tables, start=1):
            yield from self._table(start, table_id, packed_column, lines, chunk_rows)
        table_id = len(tables) + 1
        failed = self.completion_error_month == start
        yield "," + json.dumps({"FrameType": "DataTable", "TableId": table_id,
                                "TableKind": "QueryCompletionInformation",
                                "TableName": "QueryCompletionInformation",
                                "Columns": [{"ColumnName": "Timestamp", "ColumnType": "datetime"},
                                            {"ColumnName": "ClientRequestId", "ColumnType": "string"},
                                            {"ColumnName": "Level", "ColumnType": "int"},
                                            {"ColumnName": "Payload", "ColumnType": "string"}],
                                "Rows": [["2025-03-15T00:00:00Z", "crid", 2 if failed else 4,
                                          "partial result: a shard failed" if failed else "{}"]]})
        completion: dict[str, Any] = {"FrameType": "DataSetCompletion", "HasErrors": failed, "Cancelled": False}
        if failed:
            completion["OneApiErrors"] = [{"error": {"code": "ShardFailure", "message": "a shard failed"}}]
        yield "," + json.dumps(completion) + "]"

    def _table(self, start: dt.date, table_id: int, packed_column: str, lines: list[str],
               chunk_rows: int) -> Iterator[str]:
        """One PrimaryResult table of packed chunks; the month's scripted failures hit its table of rows."""
        columns = [{"ColumnName": "Chunk", "ColumnType": "long"}, {"ColumnName": "RowCount", "ColumnType": "long"},
                   {"ColumnName": packed_column, "ColumnType": "string"}]
        header = json.dumps({"FrameType": "DataTable", "TableId": table_id, "TableKind": "PrimaryResult",
                             "TableName": "PrimaryResult", "Columns": columns, "Rows": []})
        yield "," + header[: -len("[]}")] + "["
        rows_table = packed_column == "Rows"
        for index in range(0, len(lines), chunk_rows):
            part = lines[index:index + chunk_rows]
            if index > 0 and rows_table and self.cut_month == start:
                # A query that fails on the cluster part-way: an error object among the rows.
                yield "," + json.dumps({"OneApiErrors": [{"error": {
                    "code": "LimitsExceeded", "message": "Query execution has exceeded the allowed limits",
                    "@type": "Kusto.Data.Exceptions.KustoServicePartialQueryFailureLimitsExceededException",
                    "@message": "Query execution has exceeded the allowed limits (80DA0003)", "@permanent": True}}]})
                break
            prefix = "," if index else ""
            packed = _packed(part)
            if index == 0 and rows_table and self.corrupt_month == start:
                body = base64.b64decode(packed)
                packed = base64.b64encode(body[: len(body) // 2]).decode()
            yield prefix + json.dumps([index // chunk_rows, len(part), packed])
        yield "]}"


def _gzip_stream(pieces: list[bytes]) -> list[bytes]:
    """The pieces as one gzip stream (Content-Encoding: gzip), a sync flush after each so none waits for the next."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    out = [compressor.compress(piece) + compressor.flush(zlib.Z_SYNC_FLUSH) for piece in pieces]
    out.append(compressor.flush())
    return [piece for piece in out if piece]


def _grain() -> list[tuple[str, str, str]]:
    from finops_tui.sync.hub import GRAIN

    return GRAIN


def _line(row: dict[str, str], columns: list[str]) -> str:
    """A row's CSV line as the query packs it: dates and sums bare, text quoted with quotes doubled."""
    kinds = {column: kind for column, _, kind in _grain()}
    fields = []
    for column in columns:
        value = row[column]
        if column in _DATETIME_COLUMNS:
            fields.append(value[:19].replace("T", " ") if value else "")
        elif kinds[column] == "sum":
            fields.append(value)
        else:
            fields.append('"' + value.replace('"', '""') + '"')
    return ",".join(fields)


def _packed(lines: list[str]) -> str:
    """CSV lines as the query packs them: joined by newlines, gzipped, base64."""
    return base64.b64encode(gzip.compress("\n".join(lines).encode(), compresslevel=6)).decode()
