"""The crafted FOCUS 1.3 file with provider splits (tests/fixtures/focus-1.3), its ids, and its cache; and a small
demo whose rows the bench turns into provider splits."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bench.bench_splits import make_split_rows
from finops_tui.allocation.effective import TagPolicy
from finops_tui.ingest.demo import build_demo
from finops_tui.ingest.importer import import_paths
from finops_tui.store import open_cache

SPLIT_DEMO_END = dt.date(2026, 11, 26)

SPLITS = Path(__file__).parent / "fixtures" / "focus-1.3" / "splits.csv"
SUB = "0a0a0a0a-1111-4111-8111-111111111111"
HOST_NAME = "aks-nodepool1-vmss"
HOST = (f"/subscriptions/{SUB}/resourcegroups/mc_rg-aks_aks-prod_westeurope/providers/microsoft.compute/"
        f"virtualmachinescalesets/{HOST_NAME}")
CLUSTER = f"/subscriptions/{SUB}/resourcegroups/rg-aks/providers/microsoft.containerservice/managedclusters/aks-prod"
SEARCH_API = f"{CLUSTER}/namespaces/search/workloads/search-api"
NIGHTLY_ETL = f"{CLUSTER}/namespaces/batch/workloads/nightly-etl"


def imported_splits(folder: Path) -> Path:
    """A cache in `folder` holding the splits file, imported with the default tag policy."""
    path = folder / "cache.duckdb"
    with open_cache(path) as cache:
        import_paths(cache, TagPolicy(), [SPLITS])
    return path


def split_demo(path: Path) -> Path:
    """A two-month demo cache at `path` (ending SPLIT_DEMO_END) with a fifth of its resources' rows made provider
    splits, as bench/bench_splits.py makes them at scale."""
    build_demo(path, TagPolicy(), end=SPLIT_DEMO_END, months=2)
    with open_cache(path) as cache, cache.write() as cur:
        make_split_rows(cur)
    return path
