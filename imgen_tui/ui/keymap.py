"""Remapped keys from the user's keys.yaml: `binding id: keys`, e.g. `funnel.pick: space,y`."""

from __future__ import annotations

from pathlib import Path

import yaml


def load_keymap(path: Path | None) -> tuple[dict[str, str], str | None]:
    """(binding id -> keys, a problem to show or None); a bad file changes nothing."""
    if path is None or not path.is_file():
        return {}, None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        return {}, f"{path}: could not be read ({error}); keys are the defaults"
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        return {}, f"{path}: must map binding ids to keys, e.g. 'funnel.pick: space,y'"
    return dict(data), None
