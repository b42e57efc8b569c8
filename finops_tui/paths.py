"""Where the cache, the demo cache and the config live (platformdirs), and keeping cost data private."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import platformdirs

APP_NAME = "finops-tui"
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


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


def exports_dir() -> Path:
    """Where the explorer saves `ctrl+s` exports: `finops-tui` in the user's documents folder.

    Never the current directory, which may be a git checkout the CSVs would end up committed to.
    """
    override = os.environ.get("FINOPS_TUI_EXPORTS_DIR")
    return Path(override) if override else platformdirs.user_documents_path() / APP_NAME


def ensure_private_parent(file: Path) -> None:
    """Create `file`'s folder readable by the owner only (missing parents get the usual mode).

    The data directory itself is tightened even when an older version created it with the umask's
    mode; any other existing folder (a --cache path elsewhere) is the user's business and left alone.
    """
    folder = file.parent
    created = not folder.exists()
    folder.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    if created:
        _chmod(folder, PRIVATE_DIR_MODE)  # mkdir's mode is masked by the umask
    elif folder.resolve() == data_dir().resolve():
        with suppress(PermissionError):  # a data dir shared on purpose by its owner stays as it is
            _chmod(folder, PRIVATE_DIR_MODE)


def make_private(file: Path) -> None:
    """Owner read/write only, whatever the umask (for a file this process has just created)."""
    _chmod(file, PRIVATE_FILE_MODE)


@contextmanager
def private_umask() -> Iterator[None]:
    """Files and folders created meanwhile (cache, its WAL, DuckDB's spill files, the sync spool) get no
    group or other permissions. The umask is process-wide: the command line sets it around one command."""
    previous = os.umask(0o077)
    os.umask(previous | 0o077)
    try:
        yield
    finally:
        os.umask(previous)


def _chmod(path: Path, mode: int) -> None:
    if os.name == "nt":  # Windows has no POSIX modes; the profile folder is already private
        return
    os.chmod(path, mode)
