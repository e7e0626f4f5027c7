"""The explorer's two dialogs: A/B compare with a difference overlay, and feedback for refine.

The compare view is the shared `CompareScreen` (sides, flip) with a third
pane: where B differs from A as a heat map (`flows.explorer_diff`), made in
a thread from the originals. `f` flips A and B and the overlay follows.
"""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, Static

from imgen_tui.flows.explorer_diff import heatmap_of_files
from imgen_tui.store import ImageRecord
from imgen_tui.ui.graphics import image_widget
from imgen_tui.ui.screens.lightbox import LIGHTBOX_MAX_SIDE, CompareScreen, describe


class LoraCompareScreen(CompareScreen):
    """A and B side by side (labelled with what made them); `d` shows where they differ."""

    HELP = (
        "**A/B compare.** The two pictures side by side, each with what made it. "
        "**f** or **space** flips A and B, **d** shows or hides the difference "
        "overlay: A in grey, where B differs painted red (a little) to yellow (a lot)."
    )
    BINDINGS = [
        *CompareScreen.BINDINGS,
        Binding("d", "overlay", "Difference", id="explorer_compare.overlay"),
    ]
    DEFAULT_CSS = """
    LoraCompareScreen #side-diff-pane { display: none; }
    LoraCompareScreen.overlay #side-diff-pane { display: block; }
    """

    def __init__(
        self,
        first: ImageRecord,
        second: ImageRecord,
        renderer: str,
        labels: tuple[str, str] = ("", ""),
    ) -> None:
        super().__init__(first, second, renderer)
        self.labels = list(labels)
        self.overlay = False
        self.share: float | None = None  # the share of pixels that differ, once computed

    def compose(self) -> ComposeResult:
        with Horizontal(id="compare"):
            for side in ("a", "b"):
                with Vertical(classes="side"):
                    yield image_widget(self.renderer)(None, id=f"side-{side}")
                    yield Static("", id=f"about-{side}")
            with Vertical(classes="side", id="side-diff-pane"):
                yield image_widget(self.renderer)(None, id="side-diff")
                yield Static("", id="about-diff")
        yield Footer()

    def action_flip(self) -> None:
        self.labels.reverse()
        super().action_flip()
        if self.overlay:
            self._start_overlay()

    def action_overlay(self) -> None:
        self.overlay = not self.overlay
        self.set_class(self.overlay, "overlay")
        if self.overlay:
            self._start_overlay()

    def _show(self) -> None:
        """Each side with what made it ("A detail-tweaker 0.7") above the picture's facts."""
        for side, image, label in zip(("a", "b"), self.pair, self.labels, strict=True):
            text = Text(f"{side.upper()}  ", style="bold")
            if label:
                text.append(f"{label}\n", style="bold cyan")
            self.query_one(f"#about-{side}", Static).update(text + describe(image))
            self.run_worker(self._load(side, image), group=side, exclusive=True)

    def _start_overlay(self) -> None:
        self.share = None
        self.query_one("#about-diff", Static).update(Text("comparing…", style="dim"))
        self.run_worker(self._compute_overlay(), group="overlay", exclusive=True)

    async def _compute_overlay(self) -> None:
        first, second = self.pair
        heat, share = await asyncio.to_thread(
            heatmap_of_files, first.path, second.path, max_side=LIGHTBOX_MAX_SIDE
        )
        self.query_one("#side-diff").image = heat  # type: ignore[attr-defined]
        self.share = share
        self.query_one("#about-diff", Static).update(
            Text(f"where B differs from A: {share:.0%} of the pixels", style="bold")
        )


class FeedbackScreen(ModalScreen[str | None]):
    """One line of feedback for refine; enter gives it, escape gives None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="explorer_feedback.cancel")]

    def __init__(self, about: str) -> None:
        super().__init__()
        self.about = about

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.about)
            yield Input(
                placeholder="what should change: 'more fog, warmer light', 'without film-grain'",
                id="feedback-text",
            )
            yield Label(
                "[b]enter[/] refine (the LoRA stack and trigger words stay)   [b]esc[/] cancel"
            )

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
