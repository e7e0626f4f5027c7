"""Lightbox and compare: pictures as large as the terminal allows, over the grid.

The full-size original is scaled down in a thread to what the screen can
show before it reaches the image widget, so a 4K upscale does not travel to
the terminal at full size.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from imgen_tui.flows.rounds import Cell
from imgen_tui.store import ImageRecord
from imgen_tui.store.animation import read_animation
from imgen_tui.store.errors import CorruptImage
from imgen_tui.store.records import Verdict
from imgen_tui.ui.graphics import image_widget
from imgen_tui.ui.widgets.halfcell_picture import HalfcellPicture
from imgen_tui.ui.widgets.playback import Playback, load_frames
from imgen_tui.ui.widgets.sixel_picture import SixelPicture
from imgen_tui.ui.widgets.thumbs import load_picture

log = logging.getLogger(__name__)

LIGHTBOX_MAX_SIDE = 1024
VERDICT_BADGES = {"picked": ("✔ picked", "bold green"), "rejected": ("✘ rejected", "bold red")}


async def read_prompt(sidecar: Path) -> str:
    """The prompt from the image's sidecar, read in a thread; empty if it is unreadable."""

    def read() -> str:
        try:
            return str(json.loads(sidecar.read_text(encoding="utf-8")).get("prompt") or "")
        except (OSError, ValueError):
            return ""

    return await asyncio.to_thread(read)


def describe(image: ImageRecord, prompt: str = "", seed: int | None = None) -> Text:
    """`seed` is the cell's: an upscale's graph has none, its image has its source's."""
    text = Text()
    if prompt:
        text.append(prompt + "\n", style="bold")
    seed = seed if seed is not None else image.seed
    text.append(
        f"seed {'-' if seed is None else seed}   {image.width}x{image.height}   "
        f"node {image.node_id}",
        style="dim",
    )
    if image.seconds is not None:
        text.append(f"   {image.seconds:.1f} s", style="dim")
    text.append(f"\n{image.path}", style="dim italic")
    return text


Judge = Callable[[Cell, Verdict], Awaitable[None]]


class LightboxScreen(ModalScreen[Cell | None]):
    """One picture large; step through the round and judge it here. Closing gives the cell shown."""

    BINDINGS = [
        Binding("escape,q,enter", "close", "Close", id="lightbox.close"),
        Binding("left,h", "step(-1)", "Previous", id="lightbox.previous"),
        Binding("right,l", "step(1)", "Next", id="lightbox.next"),
        Binding("space,p", "judge('picked')", "Pick", id="lightbox.pick"),
        Binding("x", "judge('rejected')", "Reject", id="lightbox.reject"),
        Binding("u", "judge('none')", "Clear", show=False, id="lightbox.clear"),
        Binding("s", "play_pause", "Play/pause", id="lightbox.play"),
        Binding("full_stop", "frame(1)", "Next frame", show=False, id="lightbox.frame_next"),
        Binding("comma", "frame(-1)", "Previous frame", show=False, id="lightbox.frame_previous"),
    ]
    HELP = (
        "The picture as large as the terminal allows. **←/→** step through the "
        "finished images of the round, **space** picks, **x** rejects, **u** clears; "
        "closing puts the grid's cursor on the image shown. A video plays at its fps, "
        "looping: **s** pauses and plays, **,**/**.** step a frame."
    )

    def __init__(
        self, cells: list[Cell], index: int, renderer: str, judge: Judge | None = None
    ) -> None:
        super().__init__()
        self.cells, self.index, self.renderer, self.judge = cells, index, renderer, judge
        self._prompt = ""
        self.playback: Playback | None = None

    def compose(self) -> ComposeResult:
        # Kept, not queried: a load that ends as the app closes finds them detached
        # (updating one then is a no-op), where a query would fail the app.
        self._large = image_widget(self.renderer)(None, id="large")
        self._about = Static("", id="about")
        with Vertical(id="lightbox"):
            yield self._large
            yield self._about
        yield Footer()

    def on_mount(self) -> None:
        self._show()

    def action_step(self, delta: int) -> None:
        self.index = (self.index + delta) % len(self.cells)
        self._show()

    def action_close(self) -> None:
        self.dismiss(self.cells[self.index])

    async def action_judge(self, verdict: Verdict) -> None:
        cell = self.cells[self.index]
        if self.judge is not None:
            await self.judge(cell, verdict)
        image = cell.image
        if image is not None:
            self._describe(image, self._prompt)

    def _show(self) -> None:
        image = self.cells[self.index].image
        assert image is not None
        self._stop_playback()
        self._describe(image, "")
        self.run_worker(self._load(image), exclusive=True)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The playback keys exist only while a video is open (the footer never offers them
        for a still)."""
        if action in ("play_pause", "frame"):
            return self.playback is not None
        return True

    def action_play_pause(self) -> None:
        if self.playback is None:
            self.notify("This is a still; only videos play.")
            return
        self.playback.playing = not self.playback.playing

    def action_frame(self, delta: int) -> None:
        if self.playback is not None:
            self.playback.playing = False
            self._show_frame(self.playback.step(delta))

    def _stop_playback(self) -> None:
        if self.playback is not None and self.playback.timer is not None:
            self.playback.timer.stop()
        if self.playback is not None:
            self.playback = None
            self.refresh_bindings()

    def _tick(self) -> None:
        playback = self.playback
        if playback is None or not playback.playing:
            return
        if not frame_on_screen(self._large, playback.frames[playback.index]):
            return  # the terminal is behind (an encode or upload still running): hold this frame
        self._show_frame(playback.step(1))

    def _show_frame(self, picture: Any) -> None:
        self._large.image = picture  # type: ignore[attr-defined]

    def _describe(self, image: ImageRecord, prompt: str) -> None:
        self._prompt = prompt
        cell = self.cells[self.index]
        position = Text(f"{self.index + 1}/{len(self.cells)}   ", style="bold")
        if cell.verdict in VERDICT_BADGES:
            label, style = VERDICT_BADGES[cell.verdict]
            position.append(f"{label}   ", style=style)
        self._about.update(position + describe(image, prompt, cell.seed))

    async def _load(self, image: ImageRecord) -> None:
        try:
            await self._open(image)
        except (OSError, ValueError, CorruptImage) as error:  # truncated, emptied, not a picture
            log.warning("could not open %s", image.path, exc_info=True)
            self.notify(unreadable(image.path, error), severity="error", timeout=10)

    async def _open(self, image: ImageRecord) -> None:
        animation = await asyncio.to_thread(read_animation, image.sidecar_path)
        if animation is not None:  # frames decoded once, in a thread, then only switched
            frames = await load_frames(image.path, LIGHTBOX_MAX_SIDE)
            self.playback = Playback(frames, animation.fps)
            large = self._large
            if isinstance(large, SixelPicture):
                large.prepare(frames)  # encoded ahead, one after another, first one first
            self._show_frame(frames[0])
            self.playback.timer = self.set_interval(animation.frame_seconds, self._tick)
            self.refresh_bindings()
            self._describe(image, await read_prompt(image.sidecar_path))
            return
        picture = await load_picture(image.path, LIGHTBOX_MAX_SIDE)
        self._large.image = picture  # type: ignore[attr-defined]
        self._describe(image, await read_prompt(image.sidecar_path))


def unreadable(path: Path, error: Exception) -> str:
    """One sentence for a picture or video the lightbox cannot open, naming the file."""
    why = str(error).rstrip(".") or type(error).__name__
    return (
        f"{path.name} cannot be shown ({why}); the file may be truncated or was changed "
        f"on disk: make it again, or open {path.parent} to check."
    )


def frame_on_screen(widget: Any, frame: Any) -> bool:
    """Whether `frame` has reached the terminal: Sixel says so, TGP once its upload is shown.

    Advancing before that would cancel the frame's encoding (each widget keeps
    one exclusive encoder), and a slow link would then show no frame at all.
    """
    if isinstance(widget, SixelPicture):
        return widget.delivered
    if isinstance(widget, HalfcellPicture):
        return widget.image is frame and widget.ready
    return getattr(widget, "image", None) is frame


class CompareScreen(ModalScreen[None]):
    """Two picks side by side; `f` flips which is A and which is B."""

    HELP = (
        "**Compare.** The two images marked A and B on the grid (**a**), or else the "
        "first two picks, side by side. **f** or **space** swaps the sides."
    )

    BINDINGS = [
        Binding("escape,q", "dismiss", "Close", id="compare.close"),
        Binding("f,space", "flip", "Flip A/B", id="compare.flip"),
    ]

    def __init__(self, first: ImageRecord, second: ImageRecord, renderer: str) -> None:
        super().__init__()
        self.pair = [first, second]
        self.renderer = renderer

    def compose(self) -> ComposeResult:
        with Horizontal(id="compare"):
            for side in ("a", "b"):
                with Vertical(classes="side"):
                    yield image_widget(self.renderer)(None, id=f"side-{side}")
                    yield Static("", id=f"about-{side}")
        yield Footer()

    def on_mount(self) -> None:
        self._show()

    def action_flip(self) -> None:
        self.pair.reverse()
        self._show()

    def _show(self) -> None:
        for side, image in zip(("a", "b"), self.pair, strict=True):
            label = Text(f"{side.upper()}  ", style="bold") + describe(image)
            self.query_one(f"#about-{side}", Static).update(label)
            self.run_worker(self._load(side, image), group=side, exclusive=True)

    async def _load(self, side: str, image: ImageRecord) -> None:
        picture = await load_picture(image.path, LIGHTBOX_MAX_SIDE)
        self.query_one(f"#side-{side}").image = picture  # type: ignore[attr-defined]
