"""Where the cache, the demo cache and the config live (platformdirs)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "finops-tui"


def data_dir() -> Path:
    override = os.environ.get("FINOPS_TUI_DATA_DIR")
    return Path(override) if override else platformdirs.user_data_path(APP_NAME)


def config_dir() -> Path:
    override = os.environ.get("FINOPS_TUI_CONFIG_DIR")
    return Path(override) if override else platformdirs.user_config_path(APP_NAME)


def default_cache_path() -> Path:
    return data_dir() / "cache.duckdb"


def demo_cache_path() -> Path:
    return data_dir() / "demo.duckdb"


def config_path() -> Path:
    return config_dir() / "config.toml"
