"""The sync's spool folders for raw pages: private, named after their process, swept once that process is gone.

A sync killed with SIGKILL cannot delete its folder; the next sync (of any cache) removes folders whose
process no longer runs. Folders of a sync running in another process, and other users' folders, stay.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PREFIX = "finops-sync-"
_WITH_PID = re.compile(rf"^{re.escape(PREFIX)}(?P<pid>\d+)-")
UNNAMED_STALE_AFTER = 24 * 3600.0  # seconds; folders of versions that did not name their process


@contextmanager
def spool_folder(parent: Path | None) -> Iterator[Path]:
    """A new folder (mode 0700) under `parent` (default: the system temp dir), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}{os.getpid()}-", dir=parent) as folder:
        yield Path(folder)


def remove_stale_spools(parent: Path | None) -> list[Path]:
    """Delete this user's spool folders left by syncs that were killed; returns what was removed."""
    root = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    removed: list[Path] = []
    try:
        candidates = list(root.glob(PREFIX + "*"))
    except OSError:
        return removed
    for folder in candidates:
        if _is_stale(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _is_stale(folder: Path) -> bool:
    try:
        info = folder.lstat()
    except OSError:
        return False
    if not folder.is_dir() or folder.is_symlink():
        return False
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return False  # another user's (a shared temp dir): not ours to judge
    match = _WITH_PID.match(folder.name)
    if match is None or os.name == "nt":
        return time.time() - info.st_mtime > UNNAMED_STALE_AFTER
    pid = int(match["pid"])
    return pid != os.getpid() and not _running(pid)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 only checks; never used on Windows, where it would terminate
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists under another user (EPERM), or we cannot tell: keep the folder
    return True
