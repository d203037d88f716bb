"""Where the history store lives: `[collector] store` in network.toml, else the user's data directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["default_store_path", "store_path"]


def default_store_path() -> Path:
    """`$XDG_DATA_HOME/bibnet-ops/bibnet.db` (XDG_DATA_HOME defaults to ~/.local/share)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "bibnet-ops" / "bibnet.db"


def store_path(settings: dict[str, Any] | None = None, config_dir: str | Path | None = None) -> Path:
    """The store configured in `settings["collector"]["store"]` (relative to the config dir), else the default."""
    configured = ((settings or {}).get("collector") or {}).get("store")
    if not configured:
        return default_store_path()
    path = Path(str(configured)).expanduser()
    if not path.is_absolute() and config_dir is not None:
        path = Path(config_dir) / path
    return path
