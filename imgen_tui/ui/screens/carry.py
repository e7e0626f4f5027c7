"""Carry a picture into a flow: the chooser (which flow) and the hand-over to its screen."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from imgen_tui.flows.carry import CARRY_TARGETS, Carried, target_title


class CarryChooser(ModalScreen[str | None]):
    """Which flow the picture goes into; escape closes it and nothing changes."""

    BINDINGS = [Binding("escape,q", "cancel", "Cancel", id="carry.cancel")]

    def __init__(self, targets: tuple[tuple[str, str], ...] = CARRY_TARGETS) -> None:
        super().__init__()
        self.targets = targets

    def compose(self) -> ComposeResult:
        yield OptionList(
            *(Option(f"Carry into {title}", id=key) for key, title in self.targets),
            id="carry-targets",
        )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


async def carry_into(app: App[object], carried: Carried, target: str) -> None:
    """Open the target flow's screen with the carried prompt typed in, and say so."""
    if target == "funnel":
        from imgen_tui.ui.screens.funnel import FunnelScreen

        funnel = FunnelScreen()
        await app.push_screen(funnel)
        funnel.query_one("#prompt", Input).value = carried.prompt
    elif target == "concept":
        from imgen_tui.ui.screens.concept import ConceptScreen

        concept = ConceptScreen()
        await app.push_screen(concept)
        first = concept.config.fields[0].name
        concept.query_one(f"#field-{first}", Input).value = carried.prompt
    elif target == "explorer":
        from imgen_tui.ui.screens.explorer import ExplorerScreen

        explorer = ExplorerScreen()
        await app.push_screen(explorer)
        explorer.query_one("#explorer-prompt", Input).value = carried.prompt
    else:
        app.notify(f"There is no flow called {target!r} to carry into.", severity="warning")
        return
    app.notify(f"Carried #{carried.image_id} into {target_title(target)}: press enter to start.")
