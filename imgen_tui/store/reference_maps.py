"""A reference's preprocessor map (a pose's skeleton) kept as an image of its own.

The map belongs to the reference, not to one job's picture: one file per
kind and reference image in the session folder (`references/`), named from
the reference's path so every job that preprocesses the same picture finds
the same file, a retry overwrites rather than duplicates, and the pin in the
intent document can point at it across reopening. It is not a row in the
images table: it is not a picture the operator judges, and rounds,
galleries and exports list only those.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from imgen_tui.store.files import check_and_thumbnail, write_atomic, write_json_atomic

FOLDER = "references"


def map_path(session_dir: Path, kind: str, reference: str) -> Path:
    """Where the map of `reference` (a local image path) for `kind` lives."""
    digest = hashlib.sha256(reference.encode("utf-8")).hexdigest()[:16]
    return session_dir / FOLDER / f"{kind}-map-{digest}.png"


def write_map(path: Path, data: bytes, about: dict[str, Any], thumbnail_side: int) -> Path:
    """Check the node's bytes decode (CorruptImage if not), then write map, thumbnail, sidecar."""
    checked = check_and_thumbnail(data, thumbnail_side)
    write_atomic(path, data)
    write_atomic(path.with_suffix(".thumb.jpg"), checked.thumbnail)
    write_json_atomic(
        path.with_suffix(".json"), {**about, "width": checked.width, "height": checked.height}
    )
    return path
