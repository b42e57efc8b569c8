"""User settings: one typed Config validated where config.toml is read; writes keep the user's comments."""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import tomlkit
import tomlkit.exceptions

from finops_tui import paths
from finops_tui.basis.dimensions import dimension
from finops_tui.errors import ConfigError, UserError

DEFAULT_HIERARCHY = ["tag:team", "subscription", "resource-group", "resource"]
DEFAULT_TAG_KEYS = ["team", "env", "costcenter"]
CREDENTIAL_MODES = ("auto", "device-code", "managed-identity", "cli")
MAX_SYNC_MONTHS = 13  # Cost Details keeps 13 months of history; the Query API allows more, but a year is plenty

T = TypeVar("T")


@dataclass
class Config:
    team_key: str = "team"
    theme: str = "textual-dark"
    keymap: dict[str, str] = field(default_factory=dict)  # binding id -> keys
    tag_aliases: dict[str, str] = field(default_factory=dict)  # raw key -> canonical key
    fold_key_case: bool = True
    tag_keys: list[str] = field(default_factory=lambda: list(DEFAULT_TAG_KEYS))
    hierarchies: dict[str, list[str]] = field(default_factory=lambda: {"default": list(DEFAULT_HIERARCHY)})
    scopes: list[str] = field(default_factory=list)
    arm_endpoint: str | None = None
    sync_months: int = 3
    sync_max_age_hours: float = 12.0
    credential: str = "auto"  # one of CREDENTIAL_MODES
    query_max_groupings: int | None = None
    exports: list[str] = field(default_factory=list)  # Cost Management exports in Azure Storage (blob/abfss URLs)
    hub: str | None = None  # a FinOps hub's Data Explorer cluster[/database]
    hub_filters: list[str] = field(default_factory=list)  # subscription=ID, tag:KEY=VALUE, management-group=NAME
    path: Path | None = field(default=None, compare=False)


def load_config(path: Path | None = None) -> Config:
    """Read config.toml: a missing file gives the defaults; an unreadable file or a value of the wrong
    type raises ConfigError with one line naming the file, the key and the expected type."""
    path = path or paths.config_path()
    data = read_toml(path)
    config = Config(path=path)
    if data is not None:
        _apply(config, _Table(path, data, None))
    return config


def load_config_or_defaults(path: Path | None = None) -> tuple[Config, str | None]:
    """For the explorer, which starts anyway: the settings, or the defaults and the line saying why."""
    try:
        return load_config(path), None
    except ConfigError as exc:
        return Config(path=path or paths.config_path()), str(exc)


def read_toml(path: Path) -> dict[str, Any] | None:
    """A TOML settings file as a dict; None when it does not exist; ConfigError when it cannot be read."""
    text = read_text_file(path)
    if text is None:
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix or delete the file") from None


def save_setting(section: str | None, key: str, value: Any, path: Path | None = None) -> None:
    """Set one key in config.toml, keeping every other line, comment and the layout as the user wrote them."""
    path = path or paths.config_path()
    text = read_text_file(path) or ""
    try:
        document = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix or delete the file (nothing was saved)") from None
    if section is None:
        document[key] = value
    else:
        table = document.get(section)
        if table is None:
            table = tomlkit.table()
            document[section] = table
        elif not isinstance(table, dict):
            raise ConfigError(f"{path}: {section}: expected a table, so {key} cannot be saved; fix the file")
        table[key] = value
    write_atomically(path, tomlkit.dumps(document))


def read_text_file(path: Path) -> str | None:
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a TOML file; move it away")
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; fix or delete the file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc}); check its permissions") from None


def write_atomically(path: Path, text: str) -> None:
    """Write beside the file, then rename over it: a crash never leaves half a config."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else None
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _apply(config: Config, top: _Table) -> None:
    config.team_key = top.string("team_key", config.team_key)
    config.theme = top.string("theme", config.theme)
    config.keymap = top.string_table("keys", config.keymap, "a table of binding id = \"keys\"")

    tags = top.table("tags")
    config.tag_aliases = tags.string_table("aliases", config.tag_aliases, "a table of strings (raw key = canonical)")
    config.fold_key_case = tags.boolean("fold_case", config.fold_key_case)
    config.tag_keys = tags.strings("keys", config.tag_keys)

    hierarchies = top.table("hierarchies", expected="a table of name = [levels]")
    for name in hierarchies.key_names():
        config.hierarchies[name] = hierarchies.get(name, _hierarchy_levels, "a list of levels such as tag:team")

    sync = top.table("sync")
    config.scopes = sync.strings("scopes", config.scopes)
    endpoint = sync.string("arm_endpoint", "")
    config.arm_endpoint = endpoint or None
    config.sync_months = sync.get("months", _months, "a number of months", config.sync_months)
    config.sync_max_age_hours = sync.get("max_age_hours", _hours, "a number of hours (0 or more)",
                                         config.sync_max_age_hours)
    config.credential = sync.get("credential", _credential, f"one of {', '.join(CREDENTIAL_MODES)}",
                                 config.credential)
    config.query_max_groupings = sync.get("query_max_groupings", _positive_int, "a positive integer",
                                          config.query_max_groupings)
    # Their URLs are checked in full where a sync starts (finops_tui.sync.exports / hub), naming this key.
    config.exports = sync.strings("exports", config.exports)
    hub = sync.string("hub", "")
    config.hub = hub or None
    config.hub_filters = sync.strings("hub_filters", config.hub_filters)


class _Invalid(Exception):
    """A value has the wrong type or range; `detail` (optional) says more than the expected type."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail


def _months(value: Any) -> int:
    if _is_int(value) and 1 <= value <= MAX_SYNC_MONTHS:
        return int(value)
    raise _Invalid(f"expected an integer from 1 to {MAX_SYNC_MONTHS}, got {_shown(value)}")


def _hours(value: Any) -> float:
    if (_is_int(value) or isinstance(value, float)) and value >= 0:
        return float(value)
    raise _Invalid()


def _credential(value: Any) -> str:
    if value in CREDENTIAL_MODES:
        return str(value)
    raise _Invalid()


def _positive_int(value: Any) -> int:
    if _is_int(value) and value >= 1:
        return int(value)
    raise _Invalid()


def _hierarchy_levels(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Invalid()
    if not value:
        raise _Invalid("expected at least one level, e.g. [\"tag:team\", \"subscription\"]")
    for level in value:
        try:
            dimension(level)
        except UserError as exc:
            raise _Invalid(str(exc)) from None
    return list(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # TOML's true is not 1


def _shown(value: Any) -> str:
    """A value as the user wrote it, short: `"abc"`, `[1]`, `true`, `a table`."""
    if isinstance(value, dict):
        return "a table"
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "…"


class _Table:
    """One TOML table of config.toml, read key by key with the expected type."""

    def __init__(self, path: Path, data: dict[str, Any], section: str | None) -> None:
        self.path = path
        self.data = data
        self.section = section

    def key_names(self) -> list[str]:
        return list(self.data)

    def name(self, key: str) -> str:
        return f"[{self.section}] {key}" if self.section else key

    def error(self, key: str, expected: str, value: Any, detail: str | None = None) -> ConfigError:
        what = detail or f"expected {expected}, got {_shown(value)}"
        return ConfigError(f"{self.path}: {self.name(key)}: {what}; fix or remove the key")

    def get(self, key: str, convert: Callable[[Any], T], expected: str, default: T | None = None) -> T:
        if key not in self.data:
            return default  # type: ignore[return-value]  # callers pass a default of the right type
        value = self.data[key]
        try:
            return convert(value)
        except _Invalid as exc:
            raise self.error(key, expected, value, exc.detail) from None

    def table(self, key: str, expected: str = "a table") -> _Table:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, expected, value)
        return self.child(key, value)

    def child(self, key: str, value: dict[str, Any]) -> _Table:
        return _Table(self.path, value, key if self.section is None else f"{self.section}.{key}")

    def string(self, key: str, default: str) -> str:
        def convert(value: Any) -> str:
            if isinstance(value, str) and value.strip():
                return value
            raise _Invalid()

        return self.get(key, convert, "a non-empty string", default)

    def boolean(self, key: str, default: bool) -> bool:
        def convert(value: Any) -> bool:
            if isinstance(value, bool):
                return value
            raise _Invalid()

        return self.get(key, convert, "true or false (without quotes)", default)

    def strings(self, key: str, default: list[str]) -> list[str]:
        def convert(value: Any) -> list[str]:
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return list(value)
            raise _Invalid()

        return self.get(key, convert, 'a list of strings, e.g. ["a", "b"]', default)

    def string_table(self, key: str, default: dict[str, str], expected: str) -> dict[str, str]:
        if key not in self.data:
            return default
        value = self.data[key]
        if not isinstance(value, dict):
            raise self.error(key, expected, value)
        inner = self.child(key, value)
        return {name: inner.string(name, "") for name in value}
