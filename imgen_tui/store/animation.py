"""Animated outputs (WEBP, GIF, APNG, MP4, WebM): checked, counted and thumbnailed frame by frame.

A video is kept like a still: the file byte for byte, one thumbnail (its first
frame, so every grid shows it unchanged) and a sidecar. On top of that each
frame gets a small thumbnail of its own, written once, so the timeline and
playback never decode the video again. Pillow reads the animated picture
formats; MP4 and WebM go through PyAV (FFmpeg). Everything here blocks and
runs in worker threads.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL import Image

from imgen_tui.store.errors import CorruptImage
from imgen_tui.store.files import MAX_PIXELS, CheckedImage, check_and_thumbnail, inspect_image

#: a node that claims more frames than this is refused rather than decoded
MAX_FRAMES = 2000
FRAME_THUMBNAIL_SIDE = 256
VIDEO_EXTENSIONS = {"MP4": ".mp4", "WEBM": ".webm", "GIF": ".gif", "PNG": ".png", "WEBP": ".webp"}


@dataclass(frozen=True)
class CheckedAnimation(CheckedImage):
    """A checked animated output: its first frame's thumbnail plus one per frame."""

    frames: int = 0
    fps: float = 0.0
    frame_thumbnails: tuple[bytes, ...] = ()

    @property
    def extension(self) -> str:
        return VIDEO_EXTENSIONS[self.format]


@dataclass(frozen=True)
class Animation:
    """What a stored animated output's sidecar says: enough to play it without decoding it."""

    frames: int
    fps: float
    format: str
    frame_paths: tuple[Path, ...]

    @property
    def frame_seconds(self) -> float:
        return 1.0 / self.fps if self.fps > 0 else 0.125


def video_container(start: bytes) -> str | None:
    """ "MP4" or "WEBM" from a file's first bytes; None for anything Pillow may read."""
    if len(start) >= 8 and start[4:8] == b"ftyp":
        return "MP4"
    if start[:4] == b"\x1a\x45\xdf\xa3":
        return "WEBM"
    return None


def check_output(data: bytes, side: int, *, fps_hint: float | None = None) -> CheckedImage:
    """A still as `check_and_thumbnail` makes it, or a `CheckedAnimation` for several frames.

    `fps_hint` is the rate the graph asked for (VHS `frame_rate`, core `fps`):
    GIF stores delays in hundredths of a second, so 8 fps reads back as 7.7.
    """
    container = video_container(data[:16])
    if container is not None:
        return _check_video(data, container, side, fps_hint)
    frames = _pillow_frame_count(data)
    if frames <= 1:
        return check_and_thumbnail(data, side)
    return _check_pillow_animation(data, side, fps_hint)


def _pillow_frame_count(data: bytes) -> int:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return int(getattr(image, "n_frames", 1))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return 1  # check_and_thumbnail says what is wrong with it


def _check_pillow_animation(data: bytes, side: int, fps_hint: float | None) -> CheckedAnimation:
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt, width, height = str(image.format), image.width, image.height
            if fmt not in ("WEBP", "GIF", "PNG"):
                raise CorruptImage(f"it is an animated {fmt} file, not WebP, GIF or APNG")
            count = int(getattr(image, "n_frames", 1))
            _check_size(width, height, count)
            durations: list[float] = []
            thumbs = _Thumbnails(side)
            for index in range(count):
                image.seek(index)
                durations.append(float(image.info.get("duration") or 0))
                thumbs.add(image.convert("RGB"))
    except CorruptImage:
        raise
    except Image.DecompressionBombError as error:
        raise CorruptImage(f"it is over the {MAX_PIXELS:,}-pixel safety limit ({error})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise CorruptImage(f"it is not a readable animation ({error})") from None
    mean = sum(durations) / len(durations) if durations else 0.0
    fps = fps_hint or (round(1000.0 / mean, 3) if mean > 0 else 8.0)
    return thumbs.checked(fmt, width, height, fps)


def _check_video(
    data: bytes, container: str, side: int, fps_hint: float | None
) -> CheckedAnimation:
    import av  # FFmpeg bindings: a second or two to import, so only when a video arrives

    try:
        with av.open(io.BytesIO(data), mode="r") as video:
            stream = video.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            _check_size(width, height, stream.frames)
            rate = stream.average_rate or stream.base_rate or Fraction(8)
            thumbs = _Thumbnails(side)
            for frame in video.decode(stream):
                thumbs.add(_picture(frame))
                if thumbs.count > MAX_FRAMES:
                    raise CorruptImage(f"it has over {MAX_FRAMES} frames")
    except CorruptImage:
        raise
    except (av.FFmpegError, IndexError, ValueError, OSError) as error:
        raise CorruptImage(f"it is not a readable {container} video ({error})") from None
    if not thumbs.count:
        raise CorruptImage(f"it is a {container} video without frames")
    return thumbs.checked(container, width, height, fps_hint or float(rate))


def _check_size(width: int, height: int, count: int) -> None:
    if width * height > MAX_PIXELS:
        raise CorruptImage(f"it is {width}x{height}, over the {MAX_PIXELS:,}-pixel safety limit")
    if count > MAX_FRAMES:
        raise CorruptImage(f"it has {count} frames, over the {MAX_FRAMES}-frame limit")


class _Thumbnails:
    """Frame thumbnails made as frames are decoded, so a long video is never whole in memory."""

    def __init__(self, side: int) -> None:
        self.side = side
        self.first = b""
        self.frames: list[bytes] = []

    @property
    def count(self) -> int:
        return len(self.frames)

    def add(self, frame: Image.Image) -> None:
        if not self.frames:
            self.first = _jpeg(frame, self.side)
        self.frames.append(_jpeg(frame, min(self.side, FRAME_THUMBNAIL_SIDE)))

    def checked(self, fmt: str, width: int, height: int, fps: float) -> CheckedAnimation:
        return CheckedAnimation(
            format=fmt,
            width=width,
            height=height,
            thumbnail=self.first,
            frames=self.count,
            fps=float(fps),
            frame_thumbnails=tuple(self.frames),
        )


def _jpeg(frame: Image.Image, side: int) -> bytes:
    small = frame.copy() if max(frame.size) > side else frame
    small.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def inspect_output(path: Path) -> tuple[str, int, int]:
    """Format, width and height from a downloaded file's header: stills, animations, videos."""
    with open(path, "rb") as handle:
        container = video_container(handle.read(16))
    if container is None:
        return inspect_image(path)
    import av

    try:
        with av.open(str(path), mode="r") as video:
            context = video.streams.video[0].codec_context
            return container, int(context.width), int(context.height)
    except (av.FFmpegError, IndexError, OSError) as error:
        raise CorruptImage(f"it is not a readable {container} video ({error})") from None


def frame_thumbnail_names(stem: str, count: int) -> list[str]:
    """Where frame thumbnails go, relative to the session folder's `thumbs/`."""
    return [f"{stem}-frames/{index + 1:04d}.jpg" for index in range(count)]


def animation_sidecar(checked: CheckedAnimation, names: list[str]) -> dict[str, Any]:
    return {
        "animated": True,
        "format": checked.format,
        "frames": checked.frames,
        "fps": checked.fps,
        "frame_thumbnails": [f"thumbs/{name}" for name in names],
    }


def read_animation(sidecar_path: Path) -> Animation | None:
    """The animation a stored output's sidecar describes, or None for a still."""
    try:
        document = json.loads(sidecar_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("animated") is not True:
        return None
    folder = sidecar_path.parent
    names = document.get("frame_thumbnails")
    return Animation(
        frames=int(document.get("frames") or 0),
        fps=float(document.get("fps") or 0.0),
        format=str(document.get("format") or ""),
        frame_paths=tuple(folder / str(name) for name in names) if isinstance(names, list) else (),
    )


def frames_of(path: Path) -> Iterator[Image.Image]:
    """Every frame of a stored animated picture or video, decoded one at a time (RGB)."""
    with open(path, "rb") as handle:
        container = video_container(handle.read(16))
    if container is not None:
        import av

        with av.open(str(path), mode="r") as video:
            for frame in video.decode(video.streams.video[0]):
                yield _picture(frame)
        return
    with Image.open(path) as image:
        for index in range(int(getattr(image, "n_frames", 1))):
            image.seek(index)
            yield image.convert("RGB")


def _picture(frame: Any) -> Image.Image:
    """One decoded video frame as a Pillow picture (PyAV's `to_image` is untyped)."""
    picture: Image.Image = frame.to_image()
    return picture.convert("RGB")
