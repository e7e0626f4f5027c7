"""Carry a picture into a flow: the chooser (which flow) and the hand-over to its screen.

The hand-over asks the farm what LoRAs it has before the carried stack is
kept, so a file no node has is left out with a sentence instead of making
every job of the new flow unroutable (see `flows.carry.settle_stack`).
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from imgen_tui.comfy.lora_answers import NodeLoras
from imgen_tui.comfy.lora_cache import LoraDiscoveryCache
from imgen_tui.flows.carry import CARRY_TARGETS, Carried, settle_stack, target_title
from imgen_tui.flows.lora_catalog import discover_farm
from imgen_tui.flows.round_session import RoundSession
from imgen_tui.flows.stacks import Stack, describe_stack
from imgen_tui.locations import user_cache_dir
from imgen_tui.ui.widgets.round_view import RoundView


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
    """Open the target flow's screen with the carried prompt typed in and its stack, and say so."""
    session: RoundSession | None = None
    view: RoundView | None = None
    if target == "funnel":
        from imgen_tui.ui.screens.funnel import FunnelScreen

        funnel = FunnelScreen()
        await app.push_screen(funnel)
        funnel.query_one("#prompt", Input).value = carried.prompt
        session, view = funnel.flow, funnel.view
    elif target == "concept":
        from imgen_tui.ui.screens.concept import ConceptScreen

        concept = ConceptScreen()
        await app.push_screen(concept)
        first = concept.config.fields[0].name
        concept.query_one(f"#field-{first}", Input).value = carried.prompt
        session, view = concept.session, concept.query_one(RoundView)
    elif target == "explorer":
        from imgen_tui.ui.screens.explorer import ExplorerScreen

        explorer = ExplorerScreen()
        await app.push_screen(explorer)
        explorer.query_one("#explorer-prompt", Input).value = carried.prompt
    elif target == "keyframes":
        from imgen_tui.ui.screens.keyframes import KeyframesScreen

        video = KeyframesScreen()
        await app.push_screen(video)
        await video.start_from_picture(carried.prompt, carried.picture)
        if carried.stack:
            app.notify(
                f"{describe_stack(carried.stack)} stayed behind: a keyframe video takes no "
                "LoRAs yet.",
                severity="warning",
            )
        return
    else:
        app.notify(f"There is no flow called {target!r} to carry into.", severity="warning")
        return
    kept: Stack = ()
    said: list[str] = []
    if carried.stack and session is not None and view is not None:
        found = await farm_loras(app)
        stages = session.round_flow.sampling_stages()
        kept, said = settle_stack(carried.stack, found, stages, target)
        await session.carry_stack(kept)
        view.show_loras()
    with_loras = f" with {describe_stack(kept)}" if kept else ""
    into = f"{target_title(target)}{with_loras}"
    app.notify(f"Carried #{carried.image_id} into {into}: press enter to start.")
    for sentence in said:
        app.notify(sentence, severity="warning", timeout=10)


async def farm_loras(app: App[object]) -> list[NodeLoras]:
    """What each node has now (its answer cached as the explorer caches it; down: its error)."""
    from imgen_tui.ui.app import ImgenApp

    if not isinstance(app, ImgenApp):
        return []
    engine = app.engine
    cache = None if engine.demo else LoraDiscoveryCache(user_cache_dir() / "loras")
    return await discover_farm(engine.farm.nodes, cache=cache)
