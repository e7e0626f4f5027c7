"""The keyframe video screen: scene and keyframe inputs, the round view, the timeline below.

Each keyframe is refined as rounds of stills in the shared `RoundView`
(judging is the same as everywhere); `L` makes the still under the cursor the
keyframe's look. `v` renders a motion preview, `V` the full render, `P` plays
the newest video in the lightbox and `e` exports it with the keyframe stills.
Everything that changes the session goes through `KeyframeSession`; a session
reopened from Home or the sessions list comes back with its timeline, stills,
locks and renders.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, Static

from imgen_tui.flows.keyframes import KeyframeError, KeyframeFlow
from imgen_tui.flows.keyframes_config import KeyframeConfig, load_keyframe_config
from imgen_tui.flows.keyframes_session import KeyframeSession
from imgen_tui.flows.rounds import Denoise
from imgen_tui.scheduler.events import JobFailed
from imgen_tui.store import CorruptImage
from imgen_tui.ui.messages import JobUpdate
from imgen_tui.ui.screens.modals import AskLineScreen, leave_cancelling
from imgen_tui.ui.widgets.node_strip import NodeStrip
from imgen_tui.ui.widgets.reference_chips import ReferenceChips
from imgen_tui.ui.widgets.round_view import RoundView
from imgen_tui.ui.widgets.timeline import Timeline, TimelineEntry

if TYPE_CHECKING:
    from imgen_tui.ui.app import ImgenApp

HINT = "type a keyframe and press enter, then n for a round of stills of it"
FPS_CHOICES = (6.0, 8.0, 12.0, 16.0, 24.0)
LENGTH_STEP = 8


class KeyframesScreen(Screen[None]):
    DEFAULT_CSS = """
    KeyframesScreen #video-body { height: 1fr; }
    KeyframesScreen #video-form { width: 34%; padding: 0 1; }
    KeyframesScreen #round { width: 66%; }
    KeyframesScreen #video-form Input { margin: 0 0 1 0; }
    KeyframesScreen #renders { height: 1fr; }
    """
    BINDINGS = [
        Binding("A", "describe_keyframe", "Add keyframe", id="keyframes.add"),
        Binding("n", "refine_keyframe", "Stills", id="keyframes.stills"),
        Binding("L", "lock_still", "Use still", id="keyframes.lock"),
        Binding("I", "image_file", "Image file", show=False, id="keyframes.image_file"),
        Binding("v", "render('preview')", "Preview", id="keyframes.preview"),
        Binding("V", "render('full')", "Full render", id="keyframes.full"),
        Binding("w", "play", "Watch", id="keyframes.play"),
        Binding("e", "export", "Export", id="keyframes.export"),
        Binding("comma", "select(-1)", "Prev keyframe", show=False, id="keyframes.previous"),
        Binding("full_stop", "select(1)", "Next keyframe", show=False, id="keyframes.next"),
        Binding("less_than_sign", "move(-1)", "Earlier", show=False, id="keyframes.earlier"),
        Binding("greater_than_sign", "move(1)", "Later", show=False, id="keyframes.later"),
        Binding("ctrl+left", "reorder(-1)", "Swap left", show=False, id="keyframes.swap_left"),
        Binding("ctrl+right", "reorder(1)", "Swap right", show=False, id="keyframes.swap_right"),
        Binding("delete", "remove", "Remove keyframe", show=False, id="keyframes.remove"),
        Binding("ctrl+up", "length(1)", "Longer", show=False, id="keyframes.longer"),
        Binding("ctrl+down", "length(-1)", "Shorter", show=False, id="keyframes.shorter"),
        Binding("f", "fps", "Cycle fps", show=False, id="keyframes.fps"),
        Binding("q", "leave", "Back/quit", id="keyframes.quit"),
    ]
    HELP = (
        "**Keyframe video.** Type the scene, then each keyframe (**A**, **enter** adds it). "
        "**,**/**.** choose a keyframe, **<**/**>** move it, **ctrl+←/→** swap it with its "
        "neighbour, **delete** removes it, **ctrl+↑/↓** the length, **f** the fps. **n** makes a "
        "round of stills of the keyframe; judge them as on every flow; **L** uses the still "
        "under the cursor for the keyframe, **I** a picture file instead (copied into the "
        "session). **v** motion preview, **V** full render (both start "
        "from the locked stills at their frames, as config/keyframes.yaml says), **w** plays "
        "the newest video, **e** exports it with the stills. Reopen the session from Home."
    )

    def __init__(
        self,
        export_to: Path | None = None,
        resume: str | None = None,
        config: KeyframeConfig | None = None,
    ) -> None:
        super().__init__()
        self.resume_id = resume
        self.config = config
        self.session: KeyframeSession | None = None
        self.denoise = Denoise()
        self.export_to = export_to

    @property
    def imgen(self) -> ImgenApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="video-body"):
            with Vertical(id="video-form"):
                yield Label("Scene", classes="heading")
                yield Input(placeholder="a red fox in a snowy forest", id="scene")
                yield Label("Keyframe", classes="heading")
                yield Input(placeholder="what this moment shows (enter adds it)", id="keyframe")
                yield Label("Renders", classes="heading")
                yield Static("", id="renders")
            yield RoundView(
                self.imgen.renderer,
                denoise=self.denoise,
                columns=2,
                page_size=4,
                hint=HINT,
                id="round",
            )
        yield Timeline(self.imgen.renderer, id="timeline")
        yield NodeStrip(self.imgen.engine.scheduler, id="node-strip")
        yield Footer()

    async def on_mount(self) -> None:
        engine = self.imgen.engine
        assert engine.store is not None and engine.scheduler is not None
        config = self.config or load_keyframe_config()
        flow = KeyframeFlow(self.imgen.library, engine.farm.models, config=config)
        self.session = KeyframeSession(flow, engine.store, engine.scheduler)
        view = self.query_one(RoundView)
        view.actions = self.session
        self.query_one("#scene", Input).focus()
        if self.resume_id is not None:
            await self.session.reopen(self.resume_id)
            self.query_one("#scene", Input).value = flow.scene
            await view.query_one(ReferenceChips).show(self.session.references)
            view.grid.focus()
        await self._repaint()

    @property
    def flow(self) -> KeyframeFlow:
        assert self.session is not None
        return self.session.flow

    # -- the form -----------------------------------------------------------------------------

    @on(Input.Submitted, "#scene")
    async def _scene_entered(self, event: Input.Submitted) -> None:
        self.flow.scene = event.value.strip()
        self.query_one("#keyframe", Input).focus()
        await self._save()

    @on(Input.Submitted, "#keyframe")
    async def _keyframe_entered(self, event: Input.Submitted) -> None:
        self.flow.scene = self.query_one("#scene", Input).value.strip()
        try:
            slot = self.flow.add(event.value)
        except KeyframeError as error:
            self.notify(str(error), severity="warning")
            return
        event.input.value = ""
        self.notify(f"Keyframe {self.flow.keyframes.index(slot) + 1} at frame {slot.frame}")
        await self._save()
        await self._repaint()

    async def start_from_picture(self, prompt: str, picture: Path | None) -> None:
        """A pick carried from another flow: the scene is its prompt, keyframe 1 looks like it."""
        self.query_one("#scene", Input).value = prompt
        self.flow.scene = prompt
        self.flow.add(prompt[:60] or "the picture")
        await self._repaint()
        if picture is not None:
            await self._use_file(0, str(picture))
        self.notify("Now type the next keyframes (A): each is a moment of the clip.")
        self.query_one("#keyframe", Input).focus()

    def action_describe_keyframe(self) -> None:
        self.query_one("#keyframe", Input).focus()

    def key_escape(self) -> None:
        self.query_one(RoundView).grid.focus()

    # -- the timeline ---------------------------------------------------------------------------

    async def _timeline_change(self, change: Any, *args: Any) -> None:
        try:
            change(*args)
        except KeyframeError as error:
            self.notify(str(error), severity="warning")
            return
        await self._save()
        await self._repaint()

    async def _save(self) -> None:
        """A timeline change is kept at once (once the session exists: after the first round)."""
        if self.session is not None:
            await self.session.save()

    async def action_select(self, delta: int) -> None:
        if not self.flow.keyframes:
            self.notify("The timeline is empty: add a keyframe first (a).")
            return
        assert self.session is not None
        await self.session.select((self.flow.selected + delta) % len(self.flow.keyframes))
        await self._repaint()

    async def action_move(self, frames: int) -> None:
        await self._timeline_change(self._on_selected(self.flow.move), frames)

    async def action_reorder(self, direction: int) -> None:
        await self._timeline_change(self._on_selected(self.flow.reorder), direction)

    async def action_remove(self) -> None:
        await self._timeline_change(self._on_selected(self.flow.remove))

    async def action_length(self, direction: int) -> None:
        await self._timeline_change(
            self.flow.set_length, self.flow.length + direction * LENGTH_STEP
        )

    async def action_fps(self) -> None:
        later = [fps for fps in FPS_CHOICES if fps > self.flow.fps]
        await self._timeline_change(self.flow.set_fps, later[0] if later else FPS_CHOICES[0])

    def _on_selected(self, change: Any) -> Any:
        def apply(*args: Any) -> Any:
            if not self.flow.keyframes:
                raise KeyframeError("the timeline is empty: add a keyframe first (a)")
            return change(self.flow.selected, *args)

        return apply

    # -- stills and renders ---------------------------------------------------------------------

    async def action_refine_keyframe(self) -> None:
        if self.session is None:
            return
        if not self.flow.keyframes:
            self.notify("Add a keyframe first: type it and press enter.", severity="warning")
            return
        self.flow.scene = self.query_one("#scene", Input).value.strip()
        await self.session.refine(self.flow.selected)
        view = self.query_one(RoundView)
        view.grid.cursor = 0
        view.grid.focus()
        await self._repaint()

    async def action_lock_still(self) -> None:
        view = self.query_one(RoundView)
        cell = view.cell()
        current = self.flow.history.current
        if self.session is None or cell is None or current is None:
            self.notify("Put the cursor on a finished still to use it for the keyframe.")
            return
        key = current.meta.get("keyframe")
        index = next((i for i, s in enumerate(self.flow.keyframes) if s.key == key), None)
        if index is None:
            self.notify("That is a render, not a keyframe's still.", severity="warning")
            return
        try:
            subject = await self.session.lock_still(index, cell)
        except KeyframeError as error:
            self.notify(str(error), severity="warning")
            return
        view.grid.refresh_job(cell.job_id)
        renders = " and the renders" if self.flow.config.as_reference else ""
        kept = (
            f"; its subject is kept for the other keyframes{renders} (IP-Adapter)"
            if subject is not None
            else ""
        )
        self.notify(f"Keyframe {index + 1} uses still #{view.number(cell)}{kept}")
        if subject is not None:
            await view.query_one(ReferenceChips).show(self.session.references)
        await self._repaint()

    def action_image_file(self) -> None:
        """A picture file as the selected keyframe's look, as if it were a locked still."""
        if self.session is None or not self.flow.keyframes:
            self.notify("Add a keyframe first: type it and press enter.", severity="warning")
            return
        index = self.flow.selected
        about = self.flow.keyframes[index].description
        question = f"Picture file for keyframe {index + 1} ({about})"
        self.app.push_screen(
            AskLineScreen(question, "~/Pictures/pose.png"),
            lambda typed: self._use_file(index, typed),
        )

    async def _use_file(self, index: int, typed: str | None) -> None:
        if typed is None or self.session is None:
            return
        path = Path(typed)
        try:
            path = await asyncio.to_thread(path.expanduser)
            subject = await self.session.use_file(index, path)
        except (OSError, CorruptImage) as error:
            why = getattr(error, "strerror", None) or str(error)
            self.notify(
                f"{path} cannot be used for keyframe {index + 1} ({why}); "
                "check the path and that it is a PNG, JPEG or WebP picture.",
                severity="error",
                timeout=10,
            )
            return
        except KeyframeError as error:
            self.notify(str(error), severity="warning")
            return
        kept = "; its subject is kept for the other keyframes" if subject is not None else ""
        self.notify(f"Keyframe {index + 1} uses {path.name}{kept}")
        if subject is not None:
            await self.query_one(RoundView).query_one(ReferenceChips).show(self.session.references)
        await self._repaint()

    async def action_render(self, kind: str) -> None:
        if self.session is None:
            return
        try:
            made, node = await self.session.render("full" if kind == "full" else "preview")
        except KeyframeError as error:
            self.notify(str(error), severity="warning", timeout=10)
            return
        what = "Full render" if kind == "full" else "Motion preview"
        start = (
            f", from the locked stills (denoise {made.meta['denoise']:g})"
            if made.meta.get("start") == "keyframes"
            else ""
        )
        self.notify(f"{what} of {self.flow.length} frames, built for {node}{start}")
        await self._repaint()

    def action_play(self) -> None:
        video = self.flow.latest_video()
        if video is None:
            self.notify("No video yet: v renders a motion preview.")
            return
        from imgen_tui.ui.screens.lightbox import LightboxScreen

        cell = next(
            c
            for r in self.flow.renders()
            for c in r.cells
            if c.image is not None and c.image == video
        )
        self.app.push_screen(LightboxScreen(cast(Any, [cell]), 0, self.imgen.renderer))

    async def action_export(self) -> None:
        if self.session is None:
            return
        session_id = self.session.runner.session.id if self.session.runner.session else "new"
        destination = self.export_to or Path.cwd() / f"video-{session_id[:8]}"
        try:
            written = await self.session.export(destination)
        except KeyframeError as error:
            self.notify(str(error), severity="warning")
            return
        self.notify(f"Exported {len(written)} files to {destination}")

    def action_leave(self) -> None:
        leave_cancelling(self, self.session)

    def on_screen_resume(self) -> None:
        if self.session is not None:
            self.query_one(RoundView).show_round()

    def on_job_update(self, message: JobUpdate) -> None:
        if self.session is None:
            return
        cell = self.flow.history.apply(message.event)
        if cell is None:
            return
        if isinstance(message.event, JobFailed):
            self.notify(f"A job failed: {message.event.reason}", severity="error", timeout=8)
        if self.app.screen is self:
            self.query_one(RoundView).job_changed(message.event, cell)
            self._repaint_renders()

    # -- painting ---------------------------------------------------------------------------------

    async def _repaint(self) -> None:
        view = self.query_one(RoundView)
        current = self.flow.history.current
        view.label = current.recipe.label if current else "Stills"
        view.show_round()
        entries = [
            TimelineEntry(
                slot.frame, slot.description, slot.still.thumb_path if slot.still else None
            )
            for slot in self.flow.keyframes
        ]
        await self.query_one(Timeline).show(
            entries, self.flow.length, self.flow.fps, self.flow.selected
        )
        self._repaint_renders()

    def _repaint_renders(self) -> None:
        text = Text()
        for each in self.flow.renders():
            cell = each.cells[0]
            text.append(f"{each.recipe.label}: ", style="bold")
            if cell.image is not None:
                text.append(
                    f"{cell.image.width}x{cell.image.height} on {cell.image.node_id}\n",
                    style="green",
                )
            elif cell.state == "failed":
                text.append(f"failed: {cell.error}\n", style="red")
            else:
                progress = f" {cell.step}/{cell.total}" if cell.total else ""
                text.append(f"{cell.state}{progress} {cell.node_id or ''}\n", style="dim")
        if not self.flow.renders():
            text.append("none yet: v previews the motion, V renders it in full", style="dim")
        self.query_one("#renders", Static).update(text)
