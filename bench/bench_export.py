"""Benchmark: `export focus` to Parquet against a raw DuckDB COPY of charges; an MCP allocation call against the
same report function in process."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from finops_tui.commands.mcp_server import build_server
from finops_tui.commands.report import allocation_report
from finops_tui.config import Config
from finops_tui.report.focus_export import write_focus
from finops_tui.store import open_cache

REPEATS = 5
BY = "tag:team,subscription,resource-group"


def _p50(fn: Callable[[], Any], repeats: int = REPEATS) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def run(cache: Path) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with open_cache(cache, read_only=True) as store, tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        with store.cursor() as cur:
            count = cur.execute("SELECT count(*) FROM charges").fetchone()
            rows = int(count[0]) if count else 0

            def export() -> None:
                write_focus(cur, out / "focus.parquet", "1.2", None, file_format="parquet")

            def raw() -> None:
                cur.execute(f"COPY charges TO '{out / 'raw.parquet'}' (FORMAT parquet, COMPRESSION zstd)")

            app_ms, raw_ms = _p50(export, 2), _p50(raw, 2)
            results.append({"name": "export focus 1.2 parquet (all rows)", "rows": rows, "app_ms": round(app_ms, 1),
                            "raw_ms": round(raw_ms, 1), "ratio": round(app_ms / raw_ms, 2),
                            "throughput_vs_raw": round(raw_ms / app_ms, 2)})

            def export_shared() -> None:
                write_focus(cur, out / "shared.parquet", "1.3", None, file_format="parquet", shared=True)

            # FOCUS 1.3 with the demo's shared cost pools as split rows (one per pool row and recipient)
            shared_ms = _p50(export_shared, 2)
            results.append({"name": "export focus 1.3 parquet with shared pools", "rows": rows,
                            "app_ms": round(shared_ms, 1), "raw_ms": round(raw_ms, 1),
                            "ratio": round(shared_ms / raw_ms, 2), "vs_12": round(shared_ms / app_ms, 2)})

        config = Config()
        server = build_server(store, config)
        args = argparse.Namespace(view="allocation", format="json", period="last-month", metric="effective", by=BY,
                                  depth=None, currency=None, top=None, shared=False)
        loop = asyncio.new_event_loop()
        try:
            mcp_ms = _p50(lambda: loop.run_until_complete(
                server.call_tool("allocation", {"by": BY, "period": "last-month"})))
        finally:
            loop.close()
        report_ms = _p50(lambda: allocation_report(store, args, config))
        results.append({"name": f"mcp allocation by {BY} (last month)", "rows": rows, "app_ms": round(mcp_ms, 1),
                        "raw_ms": round(report_ms, 1), "ratio": round(mcp_ms / report_ms, 2)})
    return results


if __name__ == "__main__":
    import sys

    for result in run(Path(sys.argv[1])):
        print(result)
