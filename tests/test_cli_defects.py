"""Command-line defects of issue 10: terminal escapes from data (5), private files and stale spools (7),
global options after an action (14), no empty cache files and "no data yet" (15)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from finops_tui import clock, paths
from finops_tui.allocation.effective import TagPolicy, refresh_derived
from finops_tui.cli import build_parser
from finops_tui.commands.render import render_rows, to_json
from finops_tui.store import open_cache
from finops_tui.textsafe import printable, spreadsheet_safe
from tests.fake_arm import SUB, FakeArm, install_fake_az
from tests.report_helpers import build_small_cache, run_cli

FOCUS_SAMPLE = Path(__file__).parent / "fixtures" / "focus-sample" / "focus_sample.csv"
EVIL = "Key\x1b]52;c;ZXZpbA==\x07Vault\x1b[31m red\r\nnext\x9b2J\u202eevil\tend"
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")  # all but the line break


@pytest.fixture
def evil_cache(tmp_path: Path) -> Path:
    """A small cache whose Key Vault service and one resource name carry terminal escapes."""
    path = build_small_cache(tmp_path / "evil.duckdb")
    with open_cache(path) as cache, cache.write() as cur:
        cur.execute("UPDATE charges SET ServiceName = ? WHERE ServiceName = 'Key Vault'", [EVIL])
        cur.execute("UPDATE charges SET ResourceName = ? WHERE ResourceName = 'vm3'", [EVIL])
        refresh_derived(cur, TagPolicy())
    return path


@pytest.fixture
def usd_only_cache(tmp_path: Path) -> Path:
    path = build_small_cache(tmp_path / "usd.duckdb")
    with open_cache(path) as cache, cache.write() as cur:
        cur.execute("UPDATE charges SET BillingCurrency = 'USD'")
        refresh_derived(cur, TagPolicy())
    return path


@pytest.fixture
def pinned_today() -> Iterator[None]:
    clock.pin(dt.date(2026, 11, 27))
    yield
    clock.pin(None)


# 5: terminal escapes ---------------------------------------------------------------------------------------------


def test_printable_shows_control_characters_instead_of_obeying_them() -> None:
    assert printable("a\x1b[31mb\x07c\r\nd\x9be\u202ef\tg") == "a\\x1b[31mb\\x07c\\r\\nd\\x9be\\u202ef\\tg"
    assert printable("Überweisung · 東京 👩‍💻") == "Überweisung · 東京 👩‍💻"  # text stays text


@pytest.mark.parametrize("fmt", ["table", "md"])
def test_rendered_rows_hold_no_control_characters(fmt: str) -> None:
    text = render_rows(["name", "cost"], [[EVIL, 1]], fmt, title=EVIL)
    assert not CONTROL.search(text)
    assert len(text.splitlines()) == 5  # the newline in the cell did not split the row
    assert "\\x1b]52;c;ZXZpbA==\\x07" in text


@pytest.mark.parametrize("view", ["overview", "allocation", "recommendations"])
@pytest.mark.parametrize("fmt", ["table", "md"])
def test_reports_print_escapes_from_data_as_text(
    evil_cache: Path, pinned_today: None, capsys: pytest.CaptureFixture[str], view: str, fmt: str
) -> None:
    by = ["--by", "service"] if view != "recommendations" else []
    code, out, _ = run_cli(capsys, "report", view, "--cache", str(evil_cache), "--period", "all", "--format", fmt, *by)
    assert code == 0
    assert not CONTROL.search(out)
    if view != "recommendations":
        assert "Key\\x1b]52;c;ZXZpbA==\\x07Vault" in out


def test_json_keeps_the_data_and_escapes_every_control_character(evil_cache: Path, pinned_today: None,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "report", "overview", "--cache", str(evil_cache), "--period", "all",
                           "--format", "json", "--by", "service")
    assert code == 0
    assert not CONTROL.search(out)
    names = {row["name"] for row in json.loads(out)["breakdowns"]["service"]}
    assert EVIL in names
    assert to_json({"s": "\x85\u2028\x7f"}) == '{\n  "s": "\\u0085\\u2028\\u007f"\n}'


def test_csv_keeps_the_data_but_no_formula_runs(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [["=HYPERLINK(\"http://x\")", "-12.50"], ["@SUM(A1)", "+3.1%"], ["+cmd|' /C calc'!A0", "-"],
            ["-2+3", "—"], [EVIL, "plain"]]
    text = render_rows(["name", "value"], [*rows, ["credit", dt.date(2026, 1, 1)]], "csv")
    read = list(csv.reader(io.StringIO(text)))
    assert read[1:6] == [
        ["'=HYPERLINK(\"http://x\")", "-12.50"], ["'@SUM(A1)", "+3.1%"], ["'+cmd|' /C calc'!A0", "-"],
        ["'-2+3", "—"], [EVIL, "plain"],
    ]
    assert spreadsheet_safe("-1,234.00") == "-1,234.00"


def test_tags_list_prints_resource_names_as_text(evil_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "tags", "set", "--resource-group", "rg-3", "--subscription", "s0", "team=x",
                       "--cache", str(evil_cache))
    assert code == 0, err
    code, out, _ = run_cli(capsys, "tags", "list", "--cache", str(evil_cache))
    assert code == 0
    assert "Key\\x1b]52;c;ZXZpbA==\\x07Vault" in out
    assert not CONTROL.search(out)


def test_error_lines_print_escapes_as_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "x\x1b]52;c;eA==\x07.csv"
    code, _, err = run_cli(capsys, "import", "--cache", str(tmp_path / "c.duckdb"), str(missing))
    assert code == 1
    assert err.count("\n") == 1 and not CONTROL.search(err)
    assert "x\\x1b]52;c;eA==\\x07.csv" in err


def test_import_summaries_print_file_names_as_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = tmp_path / "focus\x1b[2J\r.csv"
    name.write_text("".join(FOCUS_SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)[:30]), encoding="utf-8")
    code, out, err = run_cli(capsys, "import", "--cache", str(tmp_path / "c.duckdb"), str(name))
    assert code == 0, err
    assert "focus\\x1b[2J\\r.csv" in out
    assert not CONTROL.search(out + err)


# 7: private files, stale spools ----------------------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_cache_and_the_data_directory_are_private(open_umask: None) -> None:
    with open_cache(paths.default_cache_path()):
        pass
    assert mode(paths.data_dir()) == 0o700
    assert mode(paths.default_cache_path()) == 0o600


def test_an_existing_data_directory_is_tightened(open_umask: None) -> None:
    paths.data_dir().mkdir(parents=True, mode=0o755)
    os.chmod(paths.data_dir(), 0o755)
    with open_cache(paths.default_cache_path()):
        pass
    assert mode(paths.data_dir()) == 0o700


def test_an_import_writes_private_files_whatever_the_umask(open_umask: None, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    sample = tmp_path / "focus.csv"
    sample.write_text("".join(FOCUS_SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)[:30]),
                      encoding="utf-8")
    code, _, err = run_cli(capsys, "import", str(sample))
    assert code == 0, err
    assert mode(paths.data_dir()) == 0o700
    assert mode(paths.default_cache_path()) == 0o600
    assert os.umask(0o022) == 0o022, "the command restored the umask"
    with paths.private_umask():
        (tmp_path / "wal-like").write_text("x")
    assert mode(tmp_path / "wal-like") == 0o600


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_spool_folders_of_a_killed_sync_are_removed_at_the_next_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tempfile

    spool_root = tmp_path / "tmp"
    spool_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool_root))
    killed = spool_root / f"finops-sync-{dead_pid()}-abcd1234"
    running = spool_root / f"finops-sync-{os.getppid()}-efgh5678"  # a live process: another sync
    old_unnamed = spool_root / "finops-sync-k2j4h5g6"  # an older version's name, two days old
    new_unnamed = spool_root / "finops-sync-z9y8x7w6"
    for folder in (killed, running, old_unnamed, new_unnamed):
        (folder / "001-actual").mkdir(parents=True)
        (folder / "001-actual" / "page-1.json").write_text("{}")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old_unnamed, (two_days_ago, two_days_ago))
    unrelated = spool_root / "something-else"
    unrelated.mkdir()

    install_fake_az(tmp_path / "bin", monkeypatch)
    clock.pin(dt.date(2025, 3, 15))
    try:
        with FakeArm(today=dt.date(2025, 3, 15)) as arm:
            arm.add_scope(SUB, 3, cost_details=None)
            code, _, err = run_cli(capsys, "sync", "-q", "--cache", str(tmp_path / "c.duckdb"), "--arm-endpoint",
                               arm.base_url, "--scope", SUB, "--months", "1")
    finally:
        clock.pin(None)
    assert code == 0, err
    assert not killed.exists() and not old_unnamed.exists()
    assert running.exists() and new_unnamed.exists() and unrelated.exists()
    assert sorted(p.name for p in spool_root.iterdir()) == sorted(
        [running.name, new_unnamed.name, unrelated.name]
    ), "the sync's own spool folders are gone too"


# 14: global options anywhere -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--cache", "X", "report", "overview"],
        ["report", "overview", "--cache", "X"],
        ["--cache", "X", "tags", "list"],
        ["tags", "list", "--cache", "X"],
        ["tags", "--cache", "X", "list"],
        ["tags", "set", "--resource-group", "rg", "team=a", "--cache", "X"],
        ["tags", "set", "--cache", "X", "--resource", "/subscriptions/s/x", "team=a"],
        ["tags", "undo", "--cache", "X"],
        ["tags", "redo", "--cache", "X"],
        ["tags", "push", "--apply", "--cache", "X"],
        ["tags", "export", "--format", "az", "--cache", "X"],
        ["import", "a.csv", "--cache", "X"],
        ["--cache", "X", "import", "a.csv"],
        ["sync", "--scope", "/subscriptions/s", "--cache", "X"],
        ["demo", "--no-open", "--cache", "X"],
        ["--cache", "X", "demo"],
        ["--cache", "X"],
    ],
)
def test_the_cache_option_is_accepted_before_and_after_any_action(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).cache == Path("X")


def test_tags_list_with_the_cache_after_the_action_reads_that_cache(
    usd_only_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "tags", "list", "--cache", str(usd_only_cache))
    assert code == 0, err
    assert out == "the tag edit journal is empty\n"
    assert not paths.default_cache_path().exists()


# 15: no empty cache files; "no data yet" --------------------------------------------------------------------------


def test_a_failed_import_leaves_no_cache_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_cost = tmp_path / "notes.csv"
    not_cost.write_text("a,b\n1,2\n", encoding="utf-8")
    cache = tmp_path / "c.duckdb"
    code, _, err = run_cli(capsys, "import", "--cache", str(cache), str(not_cost))
    assert code == 1, err
    assert not cache.exists() and not Path(f"{cache}.wal").exists()


def test_a_failed_import_keeps_an_existing_empty_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "c.duckdb"
    open_cache(cache).close()
    not_cost = tmp_path / "notes.csv"
    not_cost.write_text("a,b\n1,2\n", encoding="utf-8")
    code, _, _ = run_cli(capsys, "import", "--cache", str(cache), str(not_cost))
    assert code == 1
    assert cache.exists(), "only a file this command created is removed"


def test_a_failed_sync_leaves_no_cache_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    install_fake_az(tmp_path / "bin", monkeypatch, signed_in=False)
    cache = tmp_path / "c.duckdb"
    with FakeArm(today=dt.date(2025, 3, 15)) as arm:
        arm.add_scope(SUB, 3)
        code, _, _ = run_cli(capsys, "sync", "--cache", str(cache), "--arm-endpoint", arm.base_url, "--scope", SUB)
    assert code == 3
    assert not cache.exists()


@pytest.mark.parametrize("view", ["overview", "allocation", "recommendations"])
def test_report_on_a_missing_cache_says_no_data_yet(view: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "none.duckdb"
    code, out, err = run_cli(capsys, "report", view, "--cache", str(cache))
    assert code == 1 and out == ""
    assert err.startswith(f"finops-tui: no data yet: {cache} does not exist;") and err.count("\n") == 1
    assert not cache.exists()


@pytest.mark.parametrize("view", ["overview", "allocation", "recommendations"])
def test_report_on_an_empty_cache_says_no_data_yet(view: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "empty.duckdb"
    open_cache(cache).close()
    code, out, err = run_cli(capsys, "report", view, "--cache", str(cache), "--format", "json")
    assert code == 1 and out == ""
    assert err.startswith(f"finops-tui: no data yet: {cache} holds no cost;") and err.count("\n") == 1


@pytest.mark.parametrize("view", ["overview", "allocation", "recommendations"])
def test_a_currency_the_cache_does_not_hold_is_one_line(view: str, usd_only_cache: Path, pinned_today: None,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "report", view, "--cache", str(usd_only_cache), "--currency", "EUR")
    assert code == 1 and out == ""
    assert err == "finops-tui: --currency EUR: the cache holds no cost in EUR, only in USD\n"
    code, out, _ = run_cli(capsys, "report", view, "--cache", str(usd_only_cache), "--currency", "usd",
                           "--period", "all")
    assert code == 0 and "USD" in out


def test_a_refused_tags_command_creates_no_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "c.duckdb"
    run_cli(capsys, "tags", "list", "--cache", str(cache))
    assert not cache.exists()
    with pytest.raises(duckdb.IOException):
        duckdb.connect(str(cache), read_only=True)
