"""User settings from config.toml (read with tomllib; written back by the UI for theme and hierarchies)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finops_tui import paths
from finops_tui.errors import UserError

DEFAULT_HIERARCHY = ["tag:team", "subscription", "resource-group", "resource"]


@dataclass
class Config:
    team_key: str = "team"
    theme: str = "textual-dark"
    keymap: dict[str, str] = field(default_factory=dict)
    tag_aliases: dict[str, str] = field(default_factory=dict)  # raw key -> canonical key
    fold_key_case: bool = True
    hierarchies: dict[str, list[str]] = field(default_factory=lambda: {"default": list(DEFAULT_HIERARCHY)})
    scopes: list[str] = field(default_factory=list)
    arm_endpoint: str | None = None
    sync_months: int = 3
    sync_max_age_hours: float = 12.0
    tag_keys: list[str] = field(default_factory=lambda: ["team", "env", "costcenter"])
    raw: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def load_config(path: Path | None = None) -> Config:
    """Read config.toml; a missing file gives the defaults, a broken one a clear error."""
    path = path or paths.config_path()
    cfg = Config(path=path)
    if not path.exists():
        return cfg
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML ({exc}); fix or delete the file") from None
    cfg.raw = data
    cfg.team_key = str(data.get("team_key", cfg.team_key))
    cfg.theme = str(data.get("theme", cfg.theme))
    cfg.keymap = {str(k): str(v) for k, v in data.get("keys", {}).items()}
    tags = data.get("tags", {})
    cfg.tag_aliases = {str(k): str(v) for k, v in tags.get("aliases", {}).items()}
    cfg.fold_key_case = bool(tags.get("fold_case", True))
    cfg.tag_keys = [str(k) for k in tags.get("keys", cfg.tag_keys)]
    for name, levels in data.get("hierarchies", {}).items():
        cfg.hierarchies[str(name)] = [str(level) for level in levels]
    sync = data.get("sync", {})
    cfg.scopes = [str(s) for s in sync.get("scopes", [])]
    cfg.arm_endpoint = sync.get("arm_endpoint")
    cfg.sync_months = int(sync.get("months", cfg.sync_months))
    cfg.sync_max_age_hours = float(sync.get("max_age_hours", cfg.sync_max_age_hours))
    return cfg


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def save_setting(section: str | None, key: str, value: Any, path: Path | None = None) -> None:
    """Set one key in config.toml, keeping the rest of the file's settings."""
    path = path or paths.config_path()
    data: dict[str, Any] = {}
    if path.exists():
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    target = data if section is None else data.setdefault(section, {})
    target[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_dump(data), encoding="utf-8")


def _dump(data: dict[str, Any]) -> str:
    top = [f"{_quote_key(k)} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    out = "\n".join(top) + ("\n" if top else "")
    for name, table in data.items():
        if isinstance(table, dict):
            out += _dump_table(name, table)
    return out


def _dump_table(prefix: str, table: dict[str, Any]) -> str:
    lines = [f"\n[{prefix}]"]
    nested = ""
    for k, v in table.items():
        if isinstance(v, dict):
            nested += _dump_table(f"{prefix}.{_quote_key(k)}", v)
        else:
            lines.append(f"{_quote_key(k)} = {_toml_value(v)}")
    return "\n".join(lines) + "\n" + nested


def _quote_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else _toml_value(key)
