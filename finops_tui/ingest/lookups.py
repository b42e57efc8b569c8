"""Microsoft's open-data lookups (Services, Regions, PricingUnits) as temp tables for the mapping SQL."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import duckdb

from finops_tui.ingest.mapping import quote_literal

SERVICES_BY_PAIR = "_finops_services_by_pair"
SERVICES_BY_TYPE = "_finops_services_by_type"
REGIONS = "_finops_regions"
PRICING_UNITS = "_finops_pricing_units"


def data_path(name: str) -> Path:
    return Path(str(files("finops_tui") / "data" / name))


def _read(name: str) -> str:
    return f"read_csv({quote_literal(str(data_path(name)))}, header = true, all_varchar = true)"


def create_lookups(cur: duckdb.DuckDBPyConnection) -> None:
    """(Re)create the lookup temp tables on this cursor; each key is lower-cased and unique."""
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {SERVICES_BY_PAIR} AS
        SELECT lower(coalesce(ConsumedService, '')) AS consumed_service, lower(ResourceType) AS resource_type,
               any_value(ServiceName) AS ServiceName, any_value(ServiceCategory) AS ServiceCategory,
               any_value(ServiceSubcategory) AS ServiceSubcategory
        FROM {_read("Services.csv")} WHERE ResourceType IS NOT NULL GROUP BY ALL
        """
    )
    # When the consumed service does not match, the row of the type's own namespace is the best guess.
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {SERVICES_BY_TYPE} AS
        SELECT resource_type,
               arg_min(ServiceName, preference) AS ServiceName,
               arg_min(ServiceCategory, preference) AS ServiceCategory,
               arg_min(ServiceSubcategory, preference) AS ServiceSubcategory
        FROM (SELECT *, (consumed_service <> split_part(resource_type, '/', 1), consumed_service) AS preference
              FROM {SERVICES_BY_PAIR})
        GROUP BY resource_type
        """
    )
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {REGIONS} AS
        SELECT lower(OriginalValue) AS original, any_value(RegionId) AS RegionId, any_value(RegionName) AS RegionName
        FROM {_read("Regions.csv")} WHERE OriginalValue IS NOT NULL GROUP BY ALL
        """
    )
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {PRICING_UNITS} AS
        SELECT lower(trim(UnitOfMeasure)) AS unit_of_measure,
               any_value(TRY_CAST(PricingBlockSize AS DOUBLE)) AS PricingBlockSize,
               any_value(DistinctUnits) AS DistinctUnits
        FROM {_read("PricingUnits.csv")} WHERE UnitOfMeasure IS NOT NULL GROUP BY ALL
        """
    )
