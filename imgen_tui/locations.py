"""Where everything lives: bundled folders, user config, data, cache and logs.

One module answers "where does X live" so nothing else builds paths by hand.
The bundled folders (`workflows/`, `config/`, `themes/`) sit at the top of a
checkout and inside the package (`imgen_tui/_bundled/`) in a wheel; both are
looked up here the same way, so code never knows how it was installed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import platformdirs

APP_NAME = "imgen-tui"
CONFIG_ENV_VAR = "IMGEN_TUI_CONFIG"

BundledFolder = Literal["workflows", "config", "themes"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def bundled_dir(name: BundledFolder) -> Path:
    """The shipped copy of a top-level folder, from a wheel or a checkout."""
    for candidate in (_PACKAGE_DIR / "_bundled" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"the bundled folder '{name}' is missing from this installation; reinstall imgen-tui"
    )


def user_config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def user_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def user_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def user_state_dir() -> Path:
    """Small things the app remembers between runs (the chosen theme)."""
    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))


def user_log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def log_file() -> Path:
    return user_log_dir() / "imgen-tui.log"


def farm_config_candidates(explicit: Path | None = None) -> list[Path]:
    """Farm config files in the order they win: flag, environment, user dir, sample."""
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(explicit)
    env_value = os.environ.get(CONFIG_ENV_VAR)
    if env_value:
        candidates.append(Path(env_value).expanduser())
    candidates.append(user_config_dir() / "gpus.yaml")
    candidates.append(bundled_dir("config") / "gpus.yaml")
    return candidates


def workflow_folders() -> list[Path]:
    """Workflow template folders, later ones overriding earlier: shipped, then the user's."""
    return [bundled_dir("workflows"), user_config_dir() / "workflows"]
