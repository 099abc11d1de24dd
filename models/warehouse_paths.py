"""Where the live warehouse and its read copy are, found without pydantic.

`hiveops sql "select 1"` has a 0.3 s budget and importing pydantic-settings alone costs ~0.25 s,
so the read path resolves the few keys it needs (the same file, the same HIVEOPS_* variables, the
same relative-path rule as `models.settings.load_settings`; a test holds the two equal). Anything
it cannot read plainly is left to `load_settings`, which explains the problem.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CONFIG_NAME = "hiveops.toml"
DEFAULT_WAREHOUSE = Path("hiveops.duckdb")
DEFAULT_LOCK_TIMEOUT_S = 60.0


def default_read_copy_path(warehouse_path: Path) -> Path:
    """`hiveops.duckdb` -> `hiveops.read.duckdb`, beside it (same file system: rename is atomic)."""
    return warehouse_path.with_name(f"{warehouse_path.stem}.read{warehouse_path.suffix}")


@dataclass(frozen=True)
class WarehousePaths:
    live: Path
    read_copy: Path
    lock_timeout_s: float
    publish_every_s: float = 0.0
    publish_max_age_s: float = 1_800.0


class NeedsFullSettings(ValueError):
    """The quick reader met something only the full settings loader can explain."""


def resolve_config_path(path: str | Path | None) -> Path:
    """--config, else $HIVEOPS_CONFIG, else ./hiveops.toml."""
    if path is not None:
        return Path(path)
    env = os.environ.get("HIVEOPS_CONFIG")
    return Path(env) if env else Path(DEFAULT_CONFIG_NAME)


def quick_paths(config: str | Path | None) -> WarehousePaths:
    """The warehouse's paths from the config and environment, or NeedsFullSettings."""
    config_path = resolve_config_path(config)
    if not config_path.exists():
        raise NeedsFullSettings(f"no config file {config_path}")
    try:
        data = tomllib.loads(config_path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise NeedsFullSettings(str(exc)) from exc
    section = data.get("warehouse", {})
    if not isinstance(section, dict):
        raise NeedsFullSettings("[warehouse] is not a table")
    live = os.environ.get("HIVEOPS_WAREHOUSE_PATH", data.get("warehouse_path", DEFAULT_WAREHOUSE))
    copy = os.environ.get("HIVEOPS_WAREHOUSE__READ_COPY_PATH", section.get("read_copy_path"))
    timeout = os.environ.get(
        "HIVEOPS_WAREHOUSE__LOCK_TIMEOUT_S", section.get("lock_timeout_s", DEFAULT_LOCK_TIMEOUT_S)
    )
    every = os.environ.get("HIVEOPS_WAREHOUSE__PUBLISH_EVERY_S", section.get("publish_every_s", 0))
    max_age = os.environ.get(
        "HIVEOPS_WAREHOUSE__PUBLISH_MAX_AGE_S", section.get("publish_max_age_s", 1_800)
    )
    if not isinstance(live, str | Path) or not isinstance(copy, str | Path | None):
        raise NeedsFullSettings("warehouse paths are not strings")
    try:
        timeout_s, every_s, max_age_s = float(timeout), float(every), float(max_age)
    except (TypeError, ValueError) as exc:
        raise NeedsFullSettings(f"{timeout!r}, {every!r}, {max_age!r}: not numbers") from exc
    base = config_path.resolve().parent
    live_path = absolute(Path(live), base)
    copy_path = absolute(Path(copy), base) if copy else default_read_copy_path(live_path)
    return WarehousePaths(live_path, copy_path, timeout_s, every_s, max_age_s)


def absolute(path: Path, base: Path) -> Path:
    return path if path.is_absolute() else base / path
