"""The gallery (G on the sessions screen): every picked and final image of every session.

One `ThumbGrid`, so only a page of cell widgets is ever mounted however many
images there are (Textual slows down with hundreds of mounted widgets); paging
shows the next images in the same widgets. Enter opens the lightbox; `f`
carries the image's prompt into a new funnel; `o` reopens its session in its
own flow.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from imgen_tui.flows.rounds import Cell
from imgen_tui.store import StoreError
from imgen_tui.store.records import GalleryImage
from imgen_tui.ui.screens.resume import resumer_for
from imgen_tui.ui.widgets.grid import ThumbGrid

if TYPE_CHECKING:
    from imgen_tui.ui.app import ImgenApp

PAGE = 20  # cell widgets mounted: the most one page shows


def gallery_cell(found: GalleryImage) -> Cell:
    image = found.image
    return Cell(
        job_id=image.job_id,
        seed=image.seed or 0,
        state="done",
        node_id=image.node_id,
        image=image,
        verdict=image.verdict,
    )


class GalleryScreen(Screen[None]):
    DEFAULT_CSS = """
    GalleryScreen #gallery-grid { height: 1fr; }
    GalleryScreen #gallery-about { height: 2; padding: 0 1; }
    """
    BINDINGS = [
        Binding("left,h", "move(-1)", "Left", show=False, id="gallery.left"),
        Binding("right,l", "move(1)", "Right", show=False, id="gallery.right"),
        Binding("up,k", "move_rows(-1)", "Up", show=False, id="gallery.up"),
        Binding("down,j", "move_rows(1)", "Down", show=False, id="gallery.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="gallery.page_up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="gallery.page_down"),
        Binding("enter", "lightbox", "View", id="gallery.view"),
        Binding("f", "carry_funnel", "Into a funnel", id="gallery.funnel"),
        Binding("c", "carry", "Carry into…", id="gallery.carry"),
        Binding("o", "open_session", "Its session", id="gallery.session"),
        Binding("escape,q", "app.pop_screen", "Back", id="gallery.back"),
    ]
    HELP = (
        "**Gallery.** Every picked and final image of every session, newest first. "
        "Arrows move, **pgup/pgdn** page, **enter** shows one large, **f** starts a new "
        "funnel from its prompt, **o** reopens the session it came from."
    )

    def __init__(self) -> None:
        super().__init__()
        self.images: list[GalleryImage] = []

    @property
    def imgen(self) -> ImgenApp:
        return self.app  # type: ignore[return-value]

    @property
    def grid(self) -> ThumbGrid:
        return self.query_one(ThumbGrid)

    def compose(self) -> ComposeResult:
        yield Header()
        yield ThumbGrid(self.imgen.renderer, page_size=PAGE, id="gallery-grid")
        yield Static("", id="gallery-about")
        yield Footer()

    async def on_mount(self) -> None:
        store = self.imgen.engine.store
        if store is None:
            return
        try:
            self.images = await store.gallery()
        except StoreError as error:
            self.notify(f"{str(error)[0].upper()}{str(error)[1:]}.", severity="error")
            return
        self.grid.set_cells([gallery_cell(found) for found in self.images])
        self.grid.focus()
        self._about()

    def current(self) -> GalleryImage | None:
        cursor = self.grid.cursor
        return self.images[cursor] if 0 <= cursor < len(self.images) else None

    def _about(self) -> None:
        found = self.current()
        about = self.query_one("#gallery-about", Static)
        if found is None:
            about.update("No picked or final images yet: pick some in a flow (space).")
            return
        grid = self.grid
        about.update(
            f"{grid.cursor + 1} of {len(self.images)} (page {grid.page + 1}/{grid.pages}) · "
            f"{found.flow} {found.session_id[:8]} · {found.prompt[:100]}"
        )

    def on_thumb_grid_moved(self) -> None:
        self._about()

    def on_thumb_grid_opened(self) -> None:
        self.action_lightbox()

    def action_move(self, delta: int) -> None:
        self.grid.move(delta)
        self._about()

    def action_move_rows(self, delta: int) -> None:
        self.grid.move(delta * self.grid.columns)
        self._about()

    def action_page(self, delta: int) -> None:
        self.grid.move(delta * self.grid.per_page)
        self._about()

    def action_lightbox(self) -> None:
        if not self.grid.cells:
            return
        from imgen_tui.ui.screens.lightbox import LightboxScreen

        def closed(shown: Cell | None) -> None:
            if shown is not None and shown in self.grid.cells:
                self.grid.cursor = self.grid.cells.index(shown)
                self._about()

        self.app.push_screen(
            LightboxScreen(self.grid.cells, self.grid.cursor, self.imgen.renderer), closed
        )

    async def action_carry_funnel(self) -> None:
        """A new funnel with this image's prompt typed in (and its LoRA stack), ready for enter."""
        found = self.current()
        if found is None:
            return
        from imgen_tui.flows.carry import carried_from_gallery
        from imgen_tui.ui.screens.carry import carry_into

        carried = await asyncio.to_thread(carried_from_gallery, found)
        await carry_into(self.app, carried, "funnel")

    async def action_carry(self) -> None:
        """The chooser: which flow this picture's prompt and stack go into (escape: nowhere).

        The stack is read from the picture's sidecar (its graph's LoRA loaders)
        in a thread, before the chooser opens.
        """
        found = self.current()
        if found is None:
            return
        from imgen_tui.flows.carry import carried_from_gallery
        from imgen_tui.ui.screens.carry import CarryChooser, carry_into

        carried = await asyncio.to_thread(carried_from_gallery, found)

        async def chosen(target: str | None) -> None:
            if target is not None:
                await carry_into(self.app, carried, target)

        self.app.push_screen(CarryChooser(), chosen)

    async def action_open_session(self) -> None:
        found = self.current()
        if found is None:
            return
        resume = resumer_for(found.flow)
        if resume is None:
            self.notify(
                f"Session {found.session_id[:8]} was made by `imgen-tui {found.flow}`, which "
                "has no screen to reopen it in.",
                severity="warning",
            )
            return
        await self.app.push_screen(resume(found.session_id))
