"""config.toml is typed and validated where it is read; writes keep the user's comments and layout."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from finops_tui import paths
from finops_tui.cli import main
from finops_tui.config import DEFAULT_HIERARCHY, Config, ConfigError, load_config, load_config_or_defaults, save_setting
from finops_tui.ui.app import FinopsApp
from finops_tui.ui.screens.allocation import AllocationScreen
from tests.ui_fixtures import async_test, opened, settle, usd_cache_path

README_EXAMPLE = """\
team_key = "team"
theme = "nord"

[keys]
"overview.metric" = "M"        # every binding has an id; `?` shows them

[tags]
aliases = { owner_team = "team" }

[sync]
scopes = ["/subscriptions/00000000-0000-0000-0000-000000000000"]
months = 3
max_age_hours = 12             # the explorer syncs on launch when the last sync is older
"""


def write_config(text: str) -> Path:
    path = paths.config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_file_gives_the_defaults() -> None:
    config = load_config()
    assert config == Config(path=paths.config_path())
    assert config.hierarchies == {"default": DEFAULT_HIERARCHY}
    assert config.fold_key_case is True and config.sync_months == 3 and config.sync_max_age_hours == 12.0


def test_the_readme_example_loads() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    example = readme.split("Example `config.toml`:", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    write_config(example)
    config = load_config()
    assert config.hierarchies["default"] == DEFAULT_HIERARCHY and config.credential == "auto"
    assert config.theme == "nord"
    assert config.keymap == {"view.metric": "M"}
    assert config.tag_aliases == {"owner_team": "team"}
    assert config.scopes == ["/subscriptions/00000000-0000-0000-0000-000000000000"]
    assert config.sync_months == 3 and config.sync_max_age_hours == 12.0


def test_every_setting_reads_its_type() -> None:
    write_config(
        'team_key = "squad"\n'
        "[tags]\nfold_case = false\nkeys = [\"squad\", \"env\"]\n"
        '[hierarchies]\nby-service = ["service", "tag:squad"]\n'
        '[sync]\nmonths = 13\nmax_age_hours = 0.5\ncredential = "cli"\nquery_max_groupings = 4\n'
        'arm_endpoint = "https://management.usgovcloudapi.net"\n'
    )
    config = load_config()
    assert config.team_key == "squad"
    assert config.fold_key_case is False
    assert config.tag_keys == ["squad", "env"]
    assert config.hierarchies == {"default": DEFAULT_HIERARCHY, "by-service": ["service", "tag:squad"]}
    assert config.sync_months == 13 and config.sync_max_age_hours == 0.5
    assert config.credential == "cli" and config.query_max_groupings == 4
    assert config.arm_endpoint == "https://management.usgovcloudapi.net"


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ('[sync]\nmonths = "abc"\n', "[sync] months", "an integer from 1 to 13"),
        ("[sync]\nmonths = 0\n", "[sync] months", "an integer from 1 to 13"),
        ("[sync]\nmonths = 40\n", "[sync] months", "an integer from 1 to 13"),
        ("[sync]\nmonths = true\n", "[sync] months", "an integer from 1 to 13"),
        ('[sync]\nmax_age_hours = "soon"\n', "[sync] max_age_hours", "a number of hours"),
        ("[sync]\nmax_age_hours = -1\n", "[sync] max_age_hours", "a number of hours"),
        ('[sync]\nscopes = "/subscriptions/x"\n', "[sync] scopes", "a list of strings"),
        ('[sync]\ncredential = "password"\n', "[sync] credential", "one of"),
        ("[sync]\nquery_max_groupings = 0\n", "[sync] query_max_groupings", "a positive integer"),
        ('[tags]\nkeys = "x"\n', "[tags] keys", "a list of strings"),
        ("[tags]\naliases = [1]\n", "[tags] aliases", "a table of strings"),
        ('[tags]\nfold_case = "false"\n', "[tags] fold_case", "true or false"),
        ("hierarchies = 3\n", "hierarchies", "a table of name = [levels]"),
        ('[hierarchies]\ndefault = ["nonsense"]\n', "[hierarchies] default", "unknown dimension 'nonsense'"),
        ("[hierarchies]\ndefault = []\n", "[hierarchies] default", "at least one level"),
        ("team_key = 7\n", "team_key", "a non-empty string"),
        ('team_key = ""\n', "team_key", "a non-empty string"),
        ("keys = 3\n", "keys", "a table of binding id"),
        ('[keys]\n"overview.metric" = 5\n', "[keys] overview.metric", "a non-empty string"),
        ('sync = "x"\n', "sync", "a table"),
    ],
)
def test_a_wrong_type_is_one_line_naming_file_key_and_type(text: str, key: str, expected: str) -> None:
    path = write_config(text)
    with pytest.raises(ConfigError) as caught:
        load_config()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key}: ")
    assert expected in message


def test_a_directory_instead_of_the_file_is_one_line() -> None:
    paths.config_path().mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"config\.toml: is a directory, not a TOML file"):
        load_config()


def test_load_config_or_defaults_says_what_was_wrong() -> None:
    write_config('[tags]\nfold_case = "false"\n')
    config, problem = load_config_or_defaults()
    assert config == Config(path=paths.config_path())
    assert problem is not None and "[tags] fold_case" in problem


@pytest.mark.parametrize("argv", [["report", "overview"], ["tags", "list"], ["sync"], ["import", "x.csv"]])
def test_commands_exit_with_the_config_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    write_config('[sync]\nmonths = "abc"\n')
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [f"finops-tui: {paths.config_path()}: [sync] months: expected an integer from 1 to 13, "
                                'got "abc"; fix or remove the key']


def test_rules_toml_as_a_directory_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from finops_tui.allocation.rules import load_rules, rules_path

    rules_path().mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"rules\.toml: is a directory, not a TOML file"):
        load_rules()


def test_save_setting_keeps_comments_and_layout() -> None:
    path = write_config(README_EXAMPLE)
    save_setting(None, "theme", "gruvbox")
    save_setting("hierarchies", "by-service", ["service", "tag:team"])
    save_setting("sync", "months", 6)
    text = path.read_text(encoding="utf-8")
    assert '"overview.metric" = "M"        # every binding has an id; `?` shows them' in text
    assert "max_age_hours = 12             # the explorer syncs on launch when the last sync is older" in text
    assert 'theme = "gruvbox"' in text and "months = 6" in text
    assert text.index("[keys]") < text.index("[tags]") < text.index("[sync]")
    data = tomllib.loads(text)
    assert data["hierarchies"] == {"by-service": ["service", "tag:team"]}
    assert load_config().hierarchies["by-service"] == ["service", "tag:team"]


def test_save_setting_refuses_to_overwrite_a_broken_file() -> None:
    path = write_config("theme = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        save_setting(None, "theme", "nord")
    assert path.read_text(encoding="utf-8") == "theme = \n"


def test_save_setting_creates_the_file() -> None:
    save_setting("sync", "scopes", ["/subscriptions/x"])
    assert tomllib.loads(paths.config_path().read_text(encoding="utf-8")) == {"sync": {"scopes": ["/subscriptions/x"]}}


@async_test
async def test_the_explorer_starts_on_the_defaults_and_says_why() -> None:
    write_config('[hierarchies]\ndefault = ["nonsense"]\n')
    with opened(usd_cache_path()) as cache:
        app = FinopsApp(cache)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            assert app.config.hierarchies == {"default": DEFAULT_HIERARCHY}
            notes = [n.message for n in app._notifications]
            assert any(f"{paths.config_path()}: [hierarchies] default: unknown dimension 'nonsense'" in n
                       and n.endswith("Running on the default settings.") for n in notes), notes
            await pilot.press("2")  # the allocation view used to die on the unknown level
            await settle(pilot)
            assert isinstance(app.screen, AllocationScreen)
