"""Test-wide guards: no network beyond loopback, no user config or data, no Azure credentials; a pinnable today;
snapshots with steady text cursors."""

from __future__ import annotations

import inspect
import ipaddress
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from finops_tui import clock

FIXTURES = Path(__file__).parent / "fixtures"

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_loopback(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = str(address[0])
    else:  # AF_UNIX paths and the like never leave the machine
        return True
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_loopback(address):
        raise AssertionError(f"test tried to reach {address!r}: only loopback addresses are allowed")
    return _real_connect(self, address)  # type: ignore[arg-type]


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _is_loopback(address):
        raise AssertionError(f"test tried to reach {address!r}: only loopback addresses are allowed")
    return _real_connect_ex(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("FINOPS_TUI_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("FINOPS_TUI_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("FINOPS_TUI_EXPORTS_DIR", str(home / "exports"))  # never the user's documents folder
    for name in list(os.environ):
        if name.startswith(("AZURE_", "MSI_", "IDENTITY_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    yield


@pytest.fixture(autouse=True)
def _pinned_today(request: pytest.FixtureRequest) -> Iterator[None]:
    """Today as a `today` mark names it (a module's `pytestmark` or one test's); unpinned afterwards either way,
    so a test that pins by hand cannot leak its day into the next."""
    mark = request.node.get_closest_marker("today")
    clock.pin(mark.args[0] if mark is not None else None)
    yield
    clock.pin(None)


@pytest.fixture
def snap_compare(snap_compare: Callable[..., bool]) -> Callable[..., bool]:
    """pytest-textual-snapshot's `snap_compare`, with the text cursor of every input shown and not blinking when
    the screenshot is taken: a blinking cursor is hidden half of each second, so a snapshot taken more than half a
    second after the input got focus (a debounced preview, a loaded machine) differed from the stored one."""

    def compare(app: Any, *args: Any,
                run_before: Callable[[Pilot[Any]], Awaitable[None] | None] | None = None, **kwargs: Any) -> bool:
        async def then_steady_cursors(pilot: Pilot[Any]) -> None:
            if run_before is not None:
                result = run_before(pilot)
                if inspect.isawaitable(result):
                    await result
            for screen in pilot.app.screen_stack:
                for text_input in screen.query(Input):
                    text_input.cursor_blink = False  # Textual shows the cursor when its blink stops

        return snap_compare(app, *args, run_before=then_steady_cursors, **kwargs)

    return compare
