"""The thumbnails this process has just written, kept decoded for their first paint.

A finished draft's thumbnail is made on the thread pool and written on the
database's thread; its grid cell then used to read the file back and decode
it in yet another thread hop, and each hop waits for a busy event loop to come
round. Kept here, decoded from the very bytes written to the file (so the
pixels are the file's), the cell shows it at once. A few pages' worth are kept,
oldest dropped first; anything else is read from disk as before. Only a
process that paints thumbnails asks for this (`FRESH.keep()`, the TUI): the
batch CLI neither decodes them nor holds them.

A painter may also hand in its own work on each one (`prepare_with`): the
Sixel grid encodes the picture at its cell's size right there, in the thread
that decoded it, so the cell has nothing left to do but write it.
"""

from __future__ import annotations

import io
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from PIL import Image

KEPT = 40  # two pages of drafts; 384² RGB is about 0.44 MB each

log = logging.getLogger(__name__)

#: a painter's own work on a fresh thumbnail (and the id of the job that made it),
#: run in the thread that decoded it
Prepare = Callable[[Image.Image, str], None]


def decode_jpeg(data: bytes) -> Image.Image:
    """The thumbnail's pixels exactly as a later read of its file gives them."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.convert("RGB")


class FreshThumbnails:
    """A bounded, thread-safe map from a thumbnail's path to its decoded picture."""

    def __init__(self, kept: int = 0) -> None:
        self._kept = kept
        self._pictures: OrderedDict[Path, Image.Image] = OrderedDict()
        self._lock = threading.Lock()
        self._prepare: Prepare | None = None

    @property
    def wanted(self) -> bool:
        """Whether anything is kept: the store decodes thumbnails only for a painter."""
        return self._kept > 0

    def keep(self, kept: int = KEPT) -> None:
        """Keep this many from now on (0: none, as a process that never paints them)."""
        with self._lock:
            self._kept = kept
            while len(self._pictures) > kept:
                self._pictures.popitem(last=False)

    def prepare_with(self, prepare: Prepare | None) -> None:
        """Run `prepare` on every thumbnail decoded from now on (None: no more)."""
        self._prepare = prepare

    def decoded(self, data: bytes, job_id: str | None) -> Image.Image:
        """A fresh thumbnail's picture, and the painter's work on it done in this thread.

        That work is the painter's gain, never the store's risk: if it fails,
        it is logged and the picture is stored and shown all the same.
        """
        picture = decode_jpeg(data)
        prepare = self._prepare
        if prepare is not None and job_id is not None:
            try:
                prepare(picture, job_id)
            except Exception:
                log.exception("preparing a fresh thumbnail failed; it is painted as usual")
        return picture

    def remember(self, path: Path, picture: Image.Image) -> None:
        with self._lock:
            self._pictures[path] = picture
            self._pictures.move_to_end(path)
            while len(self._pictures) > self._kept:
                self._pictures.popitem(last=False)

    def forget(self, path: Path) -> None:
        with self._lock:
            self._pictures.pop(path, None)

    def get(self, path: Path) -> Image.Image | None:
        """The picture if it is still kept (callers must not change it: it is shared)."""
        with self._lock:
            picture = self._pictures.get(path)
            if picture is not None:
                self._pictures.move_to_end(path)
            return picture


FRESH = FreshThumbnails()
