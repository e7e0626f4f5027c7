"""The keyframe video builder (seed 000, flow 4) as a plain state machine.

A scene and keyframes on a timeline (frame positions, a length, a rate). Each
keyframe is refined as rounds of stills, judged like every other round; the
still the operator locks is how that moment looks. Then a motion preview (small,
few steps, on whatever animating node finishes first) and a full render (the
real size and steps, preferring premium, with interpolation where asked) of
the whole timeline, its descriptions travelling from keyframe to keyframe.

All rounds — stills and renders — live in one `RoundHistory`, so `RoundRunner`,
the round view and reopening a session work as for any flow; a round's `meta`
says which keyframe (or which render) it belongs to. Video graphs are built
for one node's `/object_info` (`graphs.video`) by whoever knows the farm.

The locked stills enter a render as `config/keyframes.yaml` says: the first
one as the IP-Adapter subject (`reference`), each one as the starting latent
of the frames nearest to it with a denoise below 1 (`latent`), or both.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image, UnidentifiedImageError

from imgen_tui.flows.keyframes_config import KeyframeConfig
from imgen_tui.flows.round_maker import RoundMaker
from imgen_tui.flows.round_store import rounds_state
from imgen_tui.flows.rounds import Cell, Recipe, Round, RoundHistory, RoundRecipe
from imgen_tui.graphs.graph import GraphError
from imgen_tui.graphs.reference_pin import PinnedReference
from imgen_tui.graphs.references import with_local_references
from imgen_tui.graphs.templates import WorkflowLibrary
from imgen_tui.graphs.video import (
    MAX_FRAMES,
    Keyframe,
    RenderSettings,
    Timeline,
    build_video_graph,
)
from imgen_tui.graphs.video_latents import keyframe_loads
from imgen_tui.scheduler.jobs import JobSpec, Priority, tier_rank
from imgen_tui.store.records import ImageRecord, RoundInfo

FLOW = "keyframes"
RenderKind = Literal["preview", "full"]
RENDER_LABELS: dict[str, str] = {"preview": "Motion preview", "full": "Full render"}
STILL_STAGE = "keyframe-"  # a still round's stage: this prefix and the keyframe's key
VIDEO_NEEDS = frozenset({"sd15", "animatediff", "video"})


class KeyframeError(ValueError):
    """Something the operator asked of the timeline that cannot be done, in one sentence."""


@dataclass
class KeyframeSlot:
    """One moment of the video: where it is, what it shows, and the still that settles it."""

    key: str
    frame: int
    description: str
    still: ImageRecord | None = None

    @property
    def locked(self) -> bool:
        return self.still is not None


@dataclass(frozen=True)
class RenderQuality:
    """What a preview and a full render cost: size, steps and where they would rather run."""

    width: int
    height: int
    steps: int
    min_tier: str
    interpolation: int = 1


PREVIEW = RenderQuality(width=256, height=256, steps=8, min_tier="draft")
FULL = RenderQuality(width=512, height=512, steps=20, min_tier="premium", interpolation=2)


@dataclass
class KeyframeFlow:
    library: WorkflowLibrary
    models: Mapping[str, str]
    scene: str = ""
    length: int = 16
    fps: float = 8.0
    stills_per_round: int = 4
    still_workflow: str = "sd15_txt2img"
    config: KeyframeConfig = field(default_factory=KeyframeConfig)
    rng: random.Random = field(default_factory=lambda: random.Random())
    keyframes: list[KeyframeSlot] = field(default_factory=list)
    selected: int = 0
    history: RoundHistory = field(default_factory=RoundHistory)
    _next_key: int = 1

    def __post_init__(self) -> None:
        self.maker = RoundMaker(
            self.library, self.models, config_name="the keyframe flow", rng=self.rng
        )
        self.maker.template(self.still_workflow)

    # -- the timeline ----------------------------------------------------------------------

    def add(self, description: str, frame: int | None = None) -> KeyframeSlot:
        """A keyframe at `frame`, or halfway into the longest stretch without one."""
        text = " ".join(description.split())
        if not text:
            raise KeyframeError("a keyframe needs a description: say what the moment shows")
        frame = self._free_frame() if frame is None else frame
        self._require_inside(frame)
        if any(slot.frame == frame for slot in self.keyframes):
            raise KeyframeError(f"frame {frame} already has a keyframe; choose another frame")
        slot = KeyframeSlot(f"k{self._next_key}", frame, text)
        self._next_key += 1
        self.keyframes.append(slot)
        self._sort()
        self.selected = self.keyframes.index(slot)
        return slot

    def remove(self, index: int) -> KeyframeSlot:
        slot = self.slot(index)
        self.keyframes.remove(slot)
        self.selected = max(0, min(self.selected, len(self.keyframes) - 1))
        return slot

    def move(self, index: int, frames: int) -> int:
        """Slide a keyframe along the timeline; it stops at the ends and at its neighbours."""
        slot = self.slot(index)
        taken = {other.frame for other in self.keyframes if other is not slot}
        target = min(self.length - 1, max(0, slot.frame + frames))
        step = 1 if target > slot.frame else -1
        while target in taken and target != slot.frame:
            target -= step
        slot.frame = target
        self._sort()
        self.selected = self.keyframes.index(slot)
        return target

    def reorder(self, index: int, direction: int) -> None:
        """Swap a moment with its neighbour: the frames stay where they are, the contents move."""
        slot = self.slot(index)
        other_index = index + (1 if direction > 0 else -1)
        if not 0 <= other_index < len(self.keyframes):
            return
        other = self.keyframes[other_index]
        slot.frame, other.frame = other.frame, slot.frame
        self._sort()
        self.selected = self.keyframes.index(slot)

    def set_length(self, length: int) -> None:
        if not 1 <= length <= MAX_FRAMES:
            raise KeyframeError(f"a timeline of {length} frames: make it 1 to {MAX_FRAMES}")
        outside = [slot for slot in self.keyframes if slot.frame >= length]
        if outside:
            raise KeyframeError(
                f"keyframe {outside[0].description[:30]!r} is at frame {outside[0].frame}; "
                f"move or remove it before shortening the timeline to {length} frames"
            )
        self.length = length

    def set_fps(self, fps: float) -> None:
        if not 1 <= fps <= 60:
            raise KeyframeError(f"{fps:g} fps: choose 1 to 60")
        self.fps = float(fps)

    def select(self, index: int) -> KeyframeSlot:
        slot = self.slot(index)
        self.selected = index
        return slot

    def timeline(self, *, images: bool = False) -> Timeline:
        """The timeline to render; with `images`, each locked still is its keyframe's image."""
        return Timeline(
            keyframes=tuple(
                Keyframe(
                    slot.frame,
                    self.prompt_for(slot),
                    Path(slot.still.path).name if images and slot.still else None,
                )
                for slot in self.keyframes
            ),
            length=self.length,
            fps=self.fps,
            negative=self.maker.default_negative(self._still_recipe(self.keyframes[0]))
            if self.keyframes
            else "",
        )

    # -- keyframe stills -----------------------------------------------------------------------

    def prompt_for(self, slot: KeyframeSlot) -> str:
        return f"{self.scene}, {slot.description}" if self.scene.strip() else slot.description

    def refine(self, index: int) -> list[JobSpec]:
        """A round of stills of one keyframe; locked seeds of its last round carry over."""
        slot = self.slot(index)
        self.selected = index
        recipe = self._still_recipe(slot)
        last = self.last_round(slot)
        carried = [cell.seed for cell in last.cells if cell.locked] if last else []
        new = Round(
            recipe,
            self.prompt_for(slot),
            self.maker.default_negative(recipe),
            meta={"keyframe": slot.key, "frame": slot.frame},
        )
        self.history.push(new)
        return self.maker.first(new, carried)

    def last_round(self, slot: KeyframeSlot) -> Round | None:
        found = [r for r in self.history.rounds if r.meta.get("keyframe") == slot.key]
        return found[-1] if found else None

    def lock(self, index: int, cell: Cell) -> KeyframeSlot:
        """This still is how the moment looks; the keyframe's thumbnail on the timeline."""
        if cell.image is None:
            raise KeyframeError("that still is not finished yet; lock it once it has arrived")
        return self.use_image(index, cell.image)

    def use_image(self, index: int, image: ImageRecord) -> KeyframeSlot:
        """Any stored picture as the keyframe's look: a still of its round, or a file brought in."""
        slot = self.slot(index)
        slot.still = image
        return slot

    def unlock(self, index: int) -> None:
        self.slot(index).still = None

    def stills_round(self) -> Round:
        """The round on screen, if it is one of stills (more-like-this, upscale, again need one)."""
        current = self.history.current
        if current is None or "render" in current.meta:
            raise KeyframeError("that works on a round of stills: refine a keyframe first")
        return current

    def more_like_this(self, cell: Cell, denoise: float) -> JobSpec:
        return self.maker.more_like_this(self.stills_round(), cell, denoise)

    def upscale(self, cell: Cell) -> JobSpec:
        return self.maker.upscale(self.stills_round(), cell)

    def again(self) -> list[JobSpec]:
        self.stills_round()
        return self.maker.again(self.history)

    def undo_again(self) -> Round | None:
        return self.history.undo_again()

    # -- motion ----------------------------------------------------------------------------------

    def render(
        self,
        kind: RenderKind,
        classes: Mapping[str, Any],
        *,
        node: str,
        checkpoint: str | None = None,
    ) -> tuple[Round, JobSpec]:
        """A preview or full render of the whole timeline, built for `node`'s classes.

        Any animating node with the same classes runs the graph as well; the
        job asks for AnimateDiff (and interpolation) and the tier it prefers.
        """
        if not self.keyframes:
            raise KeyframeError("the timeline is empty: add a keyframe first")
        quality = PREVIEW if kind == "preview" else FULL
        interpolation = quality.interpolation
        if interpolation > 1 and not _can_interpolate(classes):
            interpolation = 1  # a full render without it beats no render; the caption says so
        latents = self.config.as_latent and any(slot.locked for slot in self.keyframes)
        denoise = self.config.latent_denoise if latents else 1.0
        seed = self.rng.randint(0, 2**32 - 1)
        settings = RenderSettings(
            checkpoint=checkpoint or self.models.get("sd15", "v1-5-pruned-emaonly.safetensors"),
            width=quality.width,
            height=quality.height,
            steps=quality.steps,
            seed=seed,
            interpolation=interpolation,
            filename_prefix=f"imgen/{kind}",
            denoise=denoise,
        )
        try:
            graph = build_video_graph(self.timeline(images=latents), settings, classes, node=node)
        except GraphError as error:
            raise KeyframeError(str(error)) from None
        at_frame = {slot.frame: slot for slot in self.keyframes}
        stills = tuple(
            (load_id, str(at_frame[frame].still.path))  # type: ignore[union-attr]
            for load_id, frame in keyframe_loads(graph).items()
        )
        # The session's references (the subject from the first locked still, P / F / S pins)
        # steer the whole clip as they steer each still.
        graph, images, reference_needs = with_local_references(
            graph, "sd15", self.render_references()
        )
        needs = VIDEO_NEEDS | reference_needs | ({"interpolation"} if interpolation > 1 else set())
        recipe = self._render_recipe(kind)
        locked = [slot.key for slot in self.keyframes if slot.locked]
        spec = JobSpec.from_graph(
            graph,
            "sd15",
            needs=needs,
            reference_images=stills + images,
            min_tier=quality.min_tier,
            priority=Priority.INTERACTIVE,
            time_limit=900.0,
        )
        new = Round(
            recipe,
            self.timeline().keyframes[0].description,
            self.timeline().negative,
            cells=[Cell(job_id=spec.job_id, seed=seed)],
            meta={
                "render": kind,
                "interpolation": interpolation,
                "locked": locked,
                "start": "keyframes" if latents else "noise",
                "denoise": denoise,
            },
        )
        self.history.push(new)
        return new, spec

    def render_references(self) -> list[PinnedReference]:
        """The pins a render is made with: without the stills' subject unless it is wanted.

        With `keyframe_images: latent` the stills enter as latents only, so a
        subject pin of a locked still is left out of the renders (it still
        steers the other keyframes' stills); every other pin applies.
        """
        if self.config.as_reference:
            return list(self.maker.references)
        stills = {slot.still.id for slot in self.keyframes if slot.still}
        return [
            pin
            for pin in self.maker.references
            if not (pin.kind == "subject" and pin.image_id in stills)
        ]

    def check_images(self) -> None:
        """Every file a render would upload can be read (blocking: call it in a thread).

        A still deleted or damaged on disk would otherwise fail on the node,
        once per retry; here it is one sentence naming the keyframe and file.
        """
        if self.config.as_latent:
            for number, slot in enumerate(self.keyframes, start=1):
                if slot.still is not None and (problem := _unreadable(slot.still.path)):
                    raise KeyframeError(
                        f"keyframe {number} (frame {slot.frame}): its still {slot.still.path} "
                        f"cannot be read ({problem}); make and lock another still for it (n, L)"
                    )
        for pin in self.render_references():
            if problem := _unreadable(Path(pin.path)):
                raise KeyframeError(
                    f"the {pin.kind} reference {pin.path} cannot be read ({problem}); "
                    "drop it from its chip or pin another picture"
                )

    def renders(self) -> list[Round]:
        return [r for r in self.history.rounds if "render" in r.meta]

    def latest_video(self) -> ImageRecord | None:
        for each in reversed(self.renders()):
            if each.cells and each.cells[0].image is not None:
                return each.cells[0].image
        return None

    # -- saving ----------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The rounds document (stills and renders) and the timeline, for the session's state."""
        return {
            **rounds_state(self.history),
            "scene": self.scene,
            "length": self.length,
            "fps": self.fps,
            "selected": self.selected,
            "keyframes": [
                {
                    "key": slot.key,
                    "frame": slot.frame,
                    "description": slot.description,
                    "still": slot.still.id if slot.still else None,
                }
                for slot in self.keyframes
            ],
        }

    def restore(self, state: Mapping[str, Any], images: Mapping[str, ImageRecord]) -> None:
        """The timeline from a saved state; a still whose image is gone leaves its keyframe open."""
        self.scene = str(state.get("scene") or "")
        self.length = int(state.get("length") or 16)
        self.fps = float(state.get("fps") or 8.0)
        self.keyframes = []
        for item in state.get("keyframes") or []:
            still = images.get(str(item.get("still"))) if item.get("still") else None
            self.keyframes.append(
                KeyframeSlot(str(item["key"]), int(item["frame"]), str(item["description"]), still)
            )
        numbers = [int(slot.key[1:]) for slot in self.keyframes if slot.key[1:].isdigit()]
        self._next_key = max(numbers, default=0) + 1
        self._sort()
        self.selected = min(int(state.get("selected") or 0), max(0, len(self.keyframes) - 1))

    def images(self) -> dict[str, ImageRecord]:
        """Every finished image of the rounds, by id: where a reopened keyframe finds its still."""
        return {
            cell.image.id: cell.image
            for each in self.history.made or self.history.rounds
            for cell in each.cells
            if cell.image is not None
        }

    def sampling_stages(self) -> list[tuple[str, str]]:
        """Where a carried LoRA could go: nowhere yet, nothing is carried into a video."""
        return []

    def recipe_for(self, info: RoundInfo) -> Recipe | None:
        """A saved round's recipe: a keyframe's stills or a render (None: not this flow's)."""
        if info.stage in RENDER_LABELS:
            return self._render_recipe(info.stage)
        if not info.stage.startswith(STILL_STAGE):
            return None
        key = info.stage.removeprefix(STILL_STAGE)
        slot = next((s for s in self.keyframes if s.key == key), None)
        if slot is None:  # a keyframe since removed: its rounds stay, named by their frame
            meta = info.parameters.get("meta")
            frame = meta.get("frame") if isinstance(meta, dict) else None
            slot = KeyframeSlot(key, frame if isinstance(frame, int) else 0, "")
        return self._still_recipe(slot)

    # -- plumbing --------------------------------------------------------------------------------

    def _render_recipe(self, kind: str) -> RoundRecipe:
        quality = PREVIEW if kind == "preview" else FULL
        return RoundRecipe(
            kind, RENDER_LABELS[kind], 1, "(built from the timeline)", quality.min_tier
        )

    def _still_recipe(self, slot: KeyframeSlot) -> RoundRecipe:
        number = f" {self.keyframes.index(slot) + 1}" if slot in self.keyframes else " (removed)"
        return RoundRecipe(
            f"{STILL_STAGE}{slot.key}",
            f"Keyframe{number} (frame {slot.frame})",
            self.stills_per_round,
            self.still_workflow,
            "draft",
        )

    def slot(self, index: int) -> KeyframeSlot:
        if not 0 <= index < len(self.keyframes):
            raise KeyframeError(
                f"there is no keyframe {index + 1}; the timeline has {len(self.keyframes)}"
            )
        return self.keyframes[index]

    def _require_inside(self, frame: int) -> None:
        if not 0 <= frame < self.length:
            raise KeyframeError(
                f"frame {frame} is outside the timeline (0 to {self.length - 1}); lengthen it first"
            )

    def _free_frame(self) -> int:
        if not self.keyframes:
            return 0
        frames = sorted(slot.frame for slot in self.keyframes)
        edges = [*frames, self.length]
        gaps = [(b - a, a) for a, b in itertools.pairwise(edges)]
        width, start = max(gaps)
        if width < 2:
            raise KeyframeError("every frame near the end is taken; lengthen the timeline first")
        return start + width // 2

    def _sort(self) -> None:
        self.keyframes.sort(key=lambda slot: slot.frame)


def _unreadable(path: Path) -> str | None:
    """Why a picture file cannot be used, or None when Pillow reads it."""
    try:
        with Image.open(path) as image:
            image.verify()
    except FileNotFoundError:
        return "the file is missing"
    except UnidentifiedImageError:
        return "it is not a picture"
    except OSError as error:
        return error.strerror or str(error)
    except (SyntaxError, ValueError) as error:  # Pillow's verify raises these for bad data
        return str(error)
    return None


def _can_interpolate(classes: Mapping[str, Any]) -> bool:
    return any(name in classes for name in ("FrameInterpolate", "RIFE VFI", "FILM VFI"))


@dataclass(frozen=True)
class AnimatingNode:
    """What the flow needs to know of a node to build a render for it."""

    id: str
    tier: str
    capabilities: frozenset[str]
    classes: Mapping[str, Any] = field(repr=False)


def node_for(kind: RenderKind, nodes: list[AnimatingNode]) -> AnimatingNode:
    """The node whose classes a render is built for: confirmed to animate, at the tier wanted.

    A preview prefers the lowest tier that animates (fast nodes stay free for
    stills), a full render the highest; a farm without AnimateDiff anywhere is
    refused with each node's reason.
    """
    able = [node for node in nodes if node.capabilities >= VIDEO_NEEDS]
    if not able:
        reasons = "; ".join(
            f"{node.id}: no {', '.join(sorted(VIDEO_NEEDS - node.capabilities))}" for node in nodes
        )
        raise KeyframeError(f"no node can animate: {reasons or 'no nodes are configured'}")
    ranked = sorted(able, key=lambda node: tier_rank(node.tier))
    if kind == "full":
        smooth = [node for node in ranked if "interpolation" in node.capabilities]
        return (smooth or ranked)[-1]
    return ranked[0]
