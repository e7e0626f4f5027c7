"""`imgen-tui bench ui`: what the operator feels and what crosses the SSH link.

The app runs on the demo farm with a driver that keeps everything a terminal
would receive (Textual's output and textual-image's TGP uploads, which go
straight to stdout), timestamped. Keys are pressed through Textual's Pilot
while 20 drafts stream progress and previews.

- key → repaint: from just before the key is sent to the first terminal
  write after the grid's cursor moved (that write carries the new border).
- node finished → thumbnail painted: from the node's `execution_success`
  (its timestamp in the simulated node's history) to the terminal write that
  carries the cell's picture; in between the image is fetched, checked,
  stored, thumbnailed, loaded and (Sixel) encoded.
- bytes: everything written while a stored 20-image session is reopened and
  painted, and per cursor move once the grid is idle.
- Sixel encoders side by side (`measure_encoders`): time per 384 px picture,
  bytes, how long the event loop's thread waited on the GIL meanwhile, and
  whether xterm draws the result right (read back with the strict decoder
  that reads Sixel as xterm 379 does).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from PIL import Image as PILImage
from textual.drivers.headless_driver import HeadlessDriver
from textual.pilot import Pilot
from textual.widgets import Input, OptionList

from imgen_tui.bench.child_farm import farm_in_child_process
from imgen_tui.scheduler.events import JobAssigned
from imgen_tui.ui.app import ImgenApp, make_app
from imgen_tui.ui.graphics import Graphics
from imgen_tui.ui.screens.funnel import FunnelScreen
from imgen_tui.ui.screens.home import HomeScreen
from imgen_tui.ui.widgets.grid import ThumbCell, ThumbGrid
from imgen_tui.ui.widgets.sixel_picture import SixelPicture
from imgen_tui.ui.widgets.tgp_picture import TGPPicture

SIZE = (160, 48)
KEY_PRESSES = 60
RENDERERS: tuple[Graphics, ...] = ("tgp", "sixel")


@dataclass
class Tap:
    """Bytes a terminal would receive, and hooks run on every write."""

    total: int = 0
    keep: bool = False  # also keep the text written (tests parse it)
    written: list[str] = field(default_factory=list)
    on_write: list[Callable[[float], None]] = field(default_factory=list)

    def record(self, data: str) -> None:
        self.total += len(data.encode())
        if self.keep:
            self.written.append(data)
        now = time.perf_counter()
        for hook in list(self.on_write):
            hook(now)


class CountingStdout:
    """Stands in for sys.__stdout__, where textual-image writes TGP uploads."""

    def __init__(self, tap: Tap, real: TextIO | None = None) -> None:
        self.tap, self.real = tap, real

    def write(self, data: str) -> int:
        self.tap.record(data)
        return len(data)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        assert self.real is not None
        return self.real.fileno()


def tap_driver(tap: Tap) -> type[HeadlessDriver]:
    """A driver class that renders as for a terminal and hands every write to `tap`."""

    class TapDriver(HeadlessDriver):
        @property
        def is_headless(self) -> bool:
            return False  # so Textual renders and writes, as to a real terminal

        def write(self, data: str) -> None:
            tap.record(data)

    return TapDriver


@dataclass
class UiFigures:
    renderer: str
    key_latencies: list[float] = field(default_factory=list)
    paint_latencies: list[float] = field(default_factory=list)
    first_paint_bytes: int = 0
    move_bytes: list[int] = field(default_factory=list)


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(share * 100) - 1]


def _on_terminal(widget: Any) -> bool:
    """The picture last given to the widget has been written to the terminal."""
    return isinstance(widget, SixelPicture | TGPPicture) and widget.delivered


async def _until(pilot: Pilot[object], check: Callable[[], bool], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not get there in time")
        await pilot.pause(0.02)


async def _drafts_while_pressing(
    pilot: Pilot[object], tap: Tap, figures: UiFigures, farm: Farm
) -> None:
    app = pilot.app
    assert isinstance(app, ImgenApp) and app.engine.scheduler is not None
    prompts: dict[str, tuple[str, str]] = {}  # job id → (node id, prompt id)
    painted: dict[str, float] = {}  # job id → wall clock when its picture was written

    async def watch_jobs() -> None:
        assert app.engine.scheduler is not None
        async for event in app.engine.scheduler.subscribe():
            if isinstance(event, JobAssigned):
                prompts[event.job.job_id] = (event.node_id, event.prompt_id)

    watcher = app.run_worker(watch_jobs(), exclusive=False)
    await _until(pilot, lambda: isinstance(app.screen, HomeScreen))
    await pilot.press("f")
    await _until(pilot, lambda: isinstance(app.screen, FunnelScreen))
    screen = app.screen
    assert isinstance(screen, FunnelScreen)
    slots = [(cell, cell.query_one(".picture")) for cell in screen.query(ThumbCell)]

    def check_painted(now: float) -> None:
        """On every write: which finished cells' pictures have now reached the terminal."""
        for slot, picture in slots:
            cell = slot.cell
            if cell is None or cell.job_id in painted or cell.image is None:
                continue
            if slot.thumb_shown == cell.image.thumb_path and _on_terminal(picture):
                painted[cell.job_id] = time.time()

    tap.on_write.append(check_painted)
    screen.query_one("#prompt", Input).value = "a red fox in the snow, bench"
    await pilot.press("enter")
    await _until(pilot, lambda: screen.funnel is not None and screen.funnel.current is not None)
    grid = screen.query_one(ThumbGrid)
    await _until(pilot, lambda: grid.has_focus)  # the screen gives it focus, as for a user
    for press in range(KEY_PRESSES):
        direction = "left" if press % 8 >= 4 else "right"
        expected = grid.cursor + (1 if direction == "right" else -1)
        sent_at = time.perf_counter()
        seen: list[float] = []

        def repainted(now: float, expected: int = expected, seen: list[float] = seen) -> None:
            if not seen and grid.cursor == expected:
                seen.append(now)

        tap.on_write.append(repainted)
        await pilot.press(direction)
        await _until(pilot, lambda seen=seen: bool(seen), seconds=5)  # type: ignore[misc]
        tap.on_write.remove(repainted)
        figures.key_latencies.append(seen[0] - sent_at)
        await pilot.pause(0.1)
    assert screen.funnel is not None and screen.funnel.current is not None
    current = screen.funnel.current
    await _until(pilot, lambda: all(cell.state == "done" for cell in current.cells))
    await _until(pilot, lambda: len(painted) >= len(current.cells), seconds=30)
    tap.on_write.remove(check_painted)
    watcher.cancel()
    for job_id, painted_at in painted.items():
        if job_id in prompts:
            finished = await farm.finished_at(*prompts[job_id])
            if finished is not None:
                figures.paint_latencies.append(painted_at - finished)
    await pilot.press("q")
    await _until(pilot, lambda: isinstance(app.screen, HomeScreen))


async def _reopen_and_move(pilot: Pilot[object], tap: Tap, figures: UiFigures) -> None:
    app = pilot.app
    await _until(pilot, lambda: isinstance(app.screen, HomeScreen))
    sessions = app.screen.query_one("#sessions", OptionList)
    await _until(pilot, lambda: sessions.option_count >= 1 and sessions.highlighted == 0)
    await pilot.pause(0.5)
    before = tap.total
    await pilot.press("tab", "enter")
    await _until(pilot, lambda: isinstance(app.screen, FunnelScreen))
    screen = app.screen
    assert isinstance(screen, FunnelScreen)
    await _until(pilot, lambda: screen.funnel is not None and screen.funnel.current is not None)
    pictures = [cell.query_one(".picture") for cell in screen.query(ThumbCell)]
    await _until(pilot, lambda: all(_on_terminal(picture) for picture in pictures))
    await pilot.pause(1.0)  # let the last frame out
    figures.first_paint_bytes = tap.total - before
    grid = screen.query_one(ThumbGrid)
    await _until(pilot, lambda: grid.has_focus)
    await pilot.pause(0.5)
    for press in range(16):
        before = tap.total
        await pilot.press("left" if press % 8 >= 4 else "right")
        await pilot.pause(0.3)
        figures.move_bytes.append(tap.total - before)


class Farm(Protocol):
    async def finished_at(self, node_id: str, prompt_id: str) -> float | None: ...


class InProcessFarm:
    """The demo farm the app starts in its own process (`imgen-tui --demo`)."""

    def __init__(self, app: ImgenApp) -> None:
        self.app = app

    async def finished_at(self, node_id: str, prompt_id: str) -> float | None:
        assert self.app.engine.sim_farm is not None
        return self.app.engine.sim_farm.node(node_id).finished_at(prompt_id)


async def measure(
    renderer: Graphics, data_dir: Path, demo_speed: float, *, farm_in_process: bool = False
) -> UiFigures:
    """Both scenarios for one renderer, in one app run on a fresh demo farm.

    The farm runs in a child process, as a real farm is other machines (see
    `imgen_tui.bench.child_farm`); `farm_in_process` is `imgen-tui --demo`'s way.
    """
    if farm_in_process:
        app = make_app(None, demo=True, data_dir=data_dir, graphics=renderer, demo_speed=demo_speed)
        return await _measure_app(app, renderer, InProcessFarm(app))
    async with farm_in_child_process(speed=demo_speed) as child:
        app = make_app(child.config, data_dir=data_dir, graphics=renderer)
        return await _measure_app(app, renderer, child)


async def _measure_app(app: ImgenApp, renderer: str, farm: Farm) -> UiFigures:
    figures = UiFigures(renderer)
    tap = Tap()
    app.driver_class = tap_driver(tap)

    async def scenario(pilot: Pilot[object]) -> None:
        try:
            await _drafts_while_pressing(pilot, tap, figures, farm)
            await _reopen_and_move(pilot, tap, figures)
        finally:
            app.exit(0)

    real_stdout = sys.__stdout__
    sys.__stdout__ = CountingStdout(tap, real_stdout)  # type: ignore[misc,assignment]
    try:
        await app.run_async(headless=False, size=SIZE, auto_pilot=scenario)
    finally:
        sys.__stdout__ = real_stdout  # type: ignore[misc]
    return figures


@dataclass
class EncoderFigures:
    name: str
    milliseconds: float  # median per picture
    sixel_bytes: int
    loop_stall: float  # the longest a 1 ms timer on the main thread waited while it encoded
    streaked_rows: float  # rows xterm draws otherwise than a lenient decoder (ImageMagick's)
    mean_error: float  # per channel, xterm's reading against the picture
    blurred_error: float  # the same after a 2 px blur: dither noise averages out, bands stay


def _sample_pictures() -> list[tuple[str, PILImage.Image]]:
    """A demo draft, a photograph and a smooth sky, as 384 px pictures cut to whole bands."""
    import textual_image

    from imgen_tui.sim.images import render_picture

    draft = render_picture("a red fox in the snow", 7, 512, 512)
    with PILImage.open(Path(textual_image.__file__).parent / "gracehopper.jpg") as photo:
        portrait = photo.convert("RGB")
    ramp = PILImage.linear_gradient("L").resize((384, 384))
    sky = PILImage.merge(
        "RGB", [ramp.point(lambda v: 40 + v // 4), ramp.point(lambda v: 70 + v // 3),
                ramp.point(lambda v: 140 + v // 3)],
    )  # fmt: skip
    pictures = []
    for name, picture in (("demo draft", draft), ("photo", portrait), ("sky gradient", sky)):
        picture.thumbnail((384, 384))
        pictures.append((name, picture.crop((0, 0, picture.width, picture.height // 6 * 6))))
    return pictures


def _imagemagick(picture: PILImage.Image) -> str:
    import io
    import subprocess

    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    done = subprocess.run(
        ["convert", "png:-", "sixel:-"], input=buffer.getvalue(), capture_output=True, check=True
    )
    return done.stdout.decode("ascii")


def _imagemagick_writes_sixel() -> bool:
    """Whether this ImageMagick has its Sixel coder: many builds lack it, and `convert` fails."""
    import subprocess

    listed = subprocess.run(["convert", "-list", "format"], capture_output=True, text=True)
    return listed.returncode == 0 and any(
        line.split()[:1] == ["SIXEL*"] or line.split()[:1] == ["SIXEL"]
        for line in listed.stdout.splitlines()
    )


def sixel_encoders() -> list[tuple[str, Callable[[PILImage.Image], str]]]:
    import shutil

    from textual_image._sixel import image_to_sixels

    from imgen_tui.ui.sixel_candidates import chafa_available, chafa_sixel
    from imgen_tui.ui.sixel_encoder import bands_sixel, textual_image_sixel

    encoders: list[tuple[str, Callable[[PILImage.Image], str]]] = [
        ("textual-image 0.12 image_to_sixels", image_to_sixels),
        ("textual-image + select after define (fallback)", _without_numpy(textual_image_sixel)),
        ("Pillow octree + numpy bands (the app's)", bands_sixel),
        ("the same, octree palette undithered", _undithered_bands),
    ]
    if chafa_available():
        encoders.append(("libchafa via chafa.py, error-diffusion dither", chafa_sixel))
    if shutil.which("convert") and _imagemagick_writes_sixel():
        encoders.append(("ImageMagick convert (reference, not a dependency)", _imagemagick))
    return encoders


def _undithered_bands(picture: PILImage.Image) -> str:
    """The band writer on Pillow's octree output as it comes: why the app dithers stills."""
    from imgen_tui.ui.sixel_encoder import bands_sixel

    return bands_sixel(picture, dither=False)


def _without_numpy(
    encode: Callable[[PILImage.Image], str],
) -> Callable[[PILImage.Image], str]:
    """The encoder as it runs when it is the fallback: textual-image without its numpy path."""
    from textual_image import _sixel

    def pure_python(picture: PILImage.Image) -> str:
        had = _sixel._HAS_NUMPY
        _sixel._HAS_NUMPY = False
        try:
            return encode(picture)
        finally:
            _sixel._HAS_NUMPY = had

    return pure_python


def _loop_stall(encode: Callable[[PILImage.Image], str], picture: PILImage.Image) -> float:
    import threading

    done = threading.Event()

    def work() -> None:
        for _ in range(3):
            encode(picture)
        done.set()

    worker = threading.Thread(target=work)
    worst, last = 0.0, time.perf_counter()
    worker.start()
    while not done.is_set():
        time.sleep(0.001)
        now = time.perf_counter()
        worst, last = max(worst, now - last), now
    worker.join()
    return worst


def measure_encoders(repeats: int = 5) -> list[tuple[str, EncoderFigures]]:
    """Each encoder on each sample: speed, size, GIL held, and what xterm would draw."""
    from PIL import ImageChops, ImageFilter, ImageStat

    from imgen_tui.ui.sixel_decoder import decode

    results = []
    for sample, picture in _sample_pictures():
        for name, encode in sixel_encoders():
            encode(picture)
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                data = encode(picture)
                times.append(time.perf_counter() - started)
            shown = decode(data).picture.crop((0, 0, picture.width, picture.height))
            meant = decode(data, lenient=True).picture.crop((0, 0, picture.width, picture.height))
            differs = (
                ImageChops.difference(shown, meant).convert("L").point(lambda v: 255 if v else 0)
            )
            rows = differs.resize((1, differs.height), PILImage.Resampling.BOX).point(
                lambda v: 255 if v else 0
            )
            diff = ImageChops.difference(shown, picture)
            blur = ImageFilter.GaussianBlur(2)
            blurred = ImageChops.difference(shown.filter(blur), picture.filter(blur))
            figures = EncoderFigures(
                name,
                statistics.median(times) * 1000,
                len(data.encode()),
                _loop_stall(encode, picture),
                ImageStat.Stat(rows).mean[0] / 255,
                sum(ImageStat.Stat(diff).mean) / 3,
                sum(ImageStat.Stat(blurred).mean) / 3,
            )
            results.append((sample, figures))
    return results
