"""Where lamina keeps data on disk: $LAMINA_DATA, else $XDG_CACHE_HOME/lamina, else ~/.cache/lamina."""

from __future__ import annotations

import os
from pathlib import Path


def user_folder() -> Path | None:
    """The folder named by $LAMINA_DATA (with ~ expanded), or None when it is unset or empty."""
    value = os.environ.get("LAMINA_DATA", "")
    return Path(value).expanduser() if value else None


def cache_folder() -> Path:
    """$XDG_CACHE_HOME/lamina, else ~/.cache/lamina (a relative $XDG_CACHE_HOME is ignored, as the XDG spec
    says)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "lamina"


def data_home() -> Path:
    """Where downloads go: $LAMINA_DATA if set, else the user cache folder."""
    return user_folder() or cache_folder()
