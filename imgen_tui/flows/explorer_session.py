"""A LoRA-explorer session on the farm: the explorer, the store and the scheduler together.

Every action that touches the store goes through here (showcase, A/B,
judge, lock, refine, again, reopen), so the explorer screen is only keys and
painting and the tests without a terminal run the very code the screen runs.
The explorer's state (prompt, family, seeds, strengths, marks, the rounds
document) is written after every change, so reopening is exact.
"""

from __future__ import annotations

from collections.abc import Sequence

from imgen_tui.flows.explorer import FLOW, ExplorerError, LoraExplorer
from imgen_tui.flows.lora_catalog import LoraEntry, short_name
from imgen_tui.flows.reference_pins import ReferencePins
from imgen_tui.flows.round_store import RoundRunner
from imgen_tui.flows.rounds import Cell, Round, RoundHistory
from imgen_tui.flows.stacks import Stack, describe_stack, stack_from_json
from imgen_tui.llm.ollama_stages import OllamaStages
from imgen_tui.llm.pipeline import Intent, Refinement, RefineRequest, StageListener, refine
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.store import SessionStore
from imgen_tui.store.records import Verdict


class ExplorerSession:
    def __init__(self, explorer: LoraExplorer, store: SessionStore, scheduler: Scheduler) -> None:
        self.explorer = explorer
        self.store = store
        self.runner = RoundRunner(store, scheduler, FLOW)
        self.references = ReferencePins(store, lambda: self.session_id, explorer.maker)

    @property
    def session_id(self) -> str | None:
        return self.runner.session.id if self.runner.session else None

    @property
    def current(self) -> Round | None:
        return self.explorer.current

    @property
    def history(self) -> RoundHistory:
        return self.explorer.history

    def set_catalog(self, catalog: Sequence[LoraEntry]) -> None:
        self.explorer.catalog = list(catalog)

    # -- rounds ----------------------------------------------------------------------------------

    async def showcase(self, name: str) -> Round:
        """The sweep of `name`; what the round on screen still has running is cancelled."""
        previous = self.current
        specs = self.explorer.showcase(name)
        if previous is not None:
            await self.cancel_round(previous)
        return await self._launch(specs)

    async def ab(self) -> Round:
        previous = self.current
        specs = self.explorer.ab()
        if previous is not None:
            await self.cancel_round(previous)
        return await self._launch(specs)

    async def again(self) -> Round:
        await self.cancel_round()
        return await self._launch(self.explorer.again())

    async def undo_again(self) -> Round | None:
        undone = self.explorer.undo_again()
        if undone is not None:
            await self.cancel_round(undone)
            await self.save()
        return undone

    async def more_like_this(self, cell: Cell, denoise: float) -> Round:
        return await self._launch([self.explorer.more_like_this(cell, denoise)])

    async def upscale(self, cell: Cell) -> Round:
        return await self._launch([self.explorer.upscale(cell)])

    async def refine(
        self,
        feedback: str,
        cell: Cell | None,
        stages: OllamaStages | None = None,
        listener: StageListener | None = None,
    ) -> tuple[Refinement, Stack]:
        """Feedback → a new prompt (trigger words of the kept stack pinned) and the next round.

        The stack is the pick's (or the cell's) unless the feedback takes a
        LoRA out ("without film-grain"); its trigger words are pinned so the
        rewrite keeps them, and those of a LoRA taken out are not.
        """
        if not feedback.strip():
            raise ExplorerError("Say what should change first (e.g. 'more fog, warmer light').")
        current = self.explorer._require_current()
        stack, _dropped = self.explorer.refine_stack(cell, feedback)
        intent = await self.intent()
        pinned = [*intent.pinned, *self.explorer.trigger_words(stack)]
        request = RefineRequest(
            feedback=feedback,
            prompt=current.prompt,
            family=self.explorer.family,
            negative=current.negative,
            pinned=list(dict.fromkeys(pinned)),
            picked=[image.id for image in current.picks],
            rejected=[image.id for image in current.rejects],
        )
        result = await refine(request, intent, stages, listener)
        if self.session_id is not None:
            await self.store.set_intent(self.session_id, intent.model_dump())
        await self.cancel_round()
        specs = self.explorer.refined(result.prompt, result.negative, stack)
        await self._launch(specs)
        return result, stack

    async def cancel_round(self, only: Round | None = None) -> None:
        """What a round still has running (the one on screen by default) is cancelled."""
        target = only or self.current
        if target is not None:
            await self.runner.cancel(target.unfinished_jobs())

    async def cancel_all(self) -> None:
        await self.runner.cancel(self.history.unfinished_jobs())

    async def go_to(self, index: int) -> Round:
        chosen = self.explorer.go_to(index)
        await self.save()
        return chosen

    async def back(self) -> Round | None:
        chosen = self.explorer.back()
        if chosen is not None:
            await self.save()
        return chosen

    # -- verdicts, locks -------------------------------------------------------------------------

    async def judge(self, cell: Cell, verdict: Verdict) -> Verdict:
        new = await self.runner.judge(cell, verdict)
        await self.save()
        return new

    async def toggle_seed_lock(self, cell: Cell) -> bool:
        locked = await self.runner.toggle_seed_lock(cell)
        await self.save()
        return locked

    async def image_arrived(self, cell: Cell) -> None:
        await self.runner.image_arrived(cell)

    async def intent(self) -> Intent:
        if self.session_id is None:
            return Intent()
        return Intent.from_document(await self.store.intent(self.session_id))

    # -- saving and reopening ----------------------------------------------------------------------

    async def save(self) -> None:
        await self.runner.save_state(self.explorer.state())

    async def reopen(self, session_id: str) -> None:
        state = await self.runner.reopen(session_id, self.history, self.explorer.recipe_for)
        self.explorer.restore(state)
        await self.references.load()

    async def _launch(self, specs: Sequence[JobSpec]) -> Round:
        current = self.current
        assert current is not None
        state = self.explorer.state()
        await self.runner.launch(current, specs, title=_title(current), state=state)
        await self.save()  # again, now that the round has its id: the document names it
        return current


def _title(stage_round: Round) -> str:
    """What the round is about, for the session list: the LoRA, the pair, or the stack."""
    meta = stage_round.meta
    if isinstance(meta.get("lora"), str):
        about = short_name(meta["lora"])
    elif meta.get("marks"):
        about = " vs ".join(lora.describe() for lora in stack_from_json(meta["marks"]))
    else:
        about = describe_stack(stack_from_json(meta.get("stack")))
    return f"{about} · {stage_round.prompt}"
