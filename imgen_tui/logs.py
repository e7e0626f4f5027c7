"""Logging goes to a file: the terminal is for sentences, the log for tracebacks."""

from __future__ import annotations

import logging
from pathlib import Path

from imgen_tui.locations import log_file


def setup_logging(level: int = logging.INFO, path: Path | None = None) -> Path | None:
    """Send all logging to the log file; returns its path, or None if it cannot be written."""
    path = path or log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        handler, path = logging.NullHandler(), None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # A log file that cannot be written (disk full) must not spray tracebacks on stderr.
    logging.raiseExceptions = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return path
