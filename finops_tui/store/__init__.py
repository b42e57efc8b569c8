"""The DuckDB cache: schema, migrations, the one connection, cursors and transactions."""

from finops_tui.store.cache import Cache, open_cache
from finops_tui.store.schema import CHARGE_COLUMNS, MONEY_TYPE, SCHEMA_VERSION

__all__ = ["CHARGE_COLUMNS", "MONEY_TYPE", "SCHEMA_VERSION", "Cache", "open_cache"]
