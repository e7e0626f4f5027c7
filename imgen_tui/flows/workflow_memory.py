"""Last-used form values per workflow, kept in one small JSON file under the user data dir.

The browser's form opens with what was run last time: each parameter's value
(keyed `NODE.INPUT`) and the variation settings. A value that no longer fits
(a model removed from the nodes, a bound changed) is dropped on reading, so a
stale file never posts something the node would refuse. Reading and writing
are plain functions: callers run them in a thread.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imgen_tui.locations import user_data_dir
from imgen_tui.store.files import write_json_atomic

log = logging.getLogger(__name__)
SETTINGS_KEY = "_variations"


def values_file() -> Path:
    return user_data_dir() / "workflow_values.json"


def _read_all(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        log.warning("the remembered workflow values in %s are unreadable: %s", path, error)
        return {}
    return data if isinstance(data, dict) else {}


def remembered(path: Path, key: str) -> dict[str, Any]:
    """What was last run with workflow `key`: `NODE.INPUT` -> value, and `_variations`."""
    entry = _read_all(path).get(key)
    return dict(entry) if isinstance(entry, dict) else {}


def remember(path: Path, key: str, values: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
    """Keep these values for workflow `key` (the other workflows' entries are left alone)."""
    data = _read_all(path)
    data[key] = {**values, SETTINGS_KEY: dict(settings)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, data)
    except OSError as error:
        log.warning("could not remember the workflow values in %s: %s", path, error)
