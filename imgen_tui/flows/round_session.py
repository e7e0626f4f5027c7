"""What every flow's session does alike: the round operations, saved, on the farm.

A flow's session (the funnel's, the concept builder's) is its state machine,
the store and the scheduler together. Judging, seed locks, more-like-this,
upscale, undoing "again", cancelling and a finished image's verdict are the
same in each, so they live here once; a flow's session adds how it starts,
moves and saves (`_launch`, `save`) and whatever only it does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from imgen_tui.flows.round_maker import RoundMaker
from imgen_tui.flows.round_store import RoundRunner
from imgen_tui.flows.rounds import Cell, Round, RoundHistory
from imgen_tui.flows.stacks import Stack, StackLora
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.store import SessionStore
from imgen_tui.store.records import Verdict


class RoundFlow(Protocol):
    """A flow's state machine, as far as the shared operations need it."""

    @property
    def history(self) -> RoundHistory: ...

    @property
    def maker(self) -> RoundMaker: ...

    def sampling_stages(self) -> list[tuple[str, str]]: ...

    def undo_again(self) -> Round | None: ...

    def more_like_this(self, cell: Cell, denoise: float) -> JobSpec: ...

    def upscale(self, cell: Cell) -> JobSpec: ...


class RoundSession:
    def __init__(
        self, flow: RoundFlow, store: SessionStore, scheduler: Scheduler, name: str
    ) -> None:
        self.round_flow = flow
        self.store = store
        self.runner = RoundRunner(store, scheduler, name)

    @property
    def history(self) -> RoundHistory:
        return self.round_flow.history

    @property
    def current(self) -> Round | None:
        return self.history.current

    async def save(self) -> None:
        raise NotImplementedError

    async def _launch(self, specs: Sequence[JobSpec]) -> Round:
        """Write the jobs of the round on screen and hand them to the scheduler."""
        raise NotImplementedError

    async def undo_again(self) -> Round | None:
        undone = self.round_flow.undo_again()
        if undone is not None:
            await self.cancel_round(undone)
            await self.save()
        return undone

    async def more_like_this(self, cell: Cell, denoise: float) -> Round:
        return await self._launch([self.round_flow.more_like_this(cell, denoise)])

    async def upscale(self, cell: Cell) -> Round:
        return await self._launch([self.round_flow.upscale(cell)])

    async def cancel_round(self, only: Round | None = None) -> None:
        """Cancel what is still running in a round (the one on screen by default)."""
        target = only or self.current
        if target is not None:
            await self.runner.cancel(target.unfinished_jobs())

    async def cancel_all(self) -> None:
        await self.runner.cancel(self.history.unfinished_jobs())

    # -- a carried LoRA stack -------------------------------------------------------------------

    @property
    def stack(self) -> Stack:
        """The LoRAs carried in from a pick: every new job is made with those that fit it."""
        return self.round_flow.maker.stack

    async def carry_stack(self, stack: Stack) -> None:
        """Make the next jobs with `stack` (already settled against the farm: see carry.py)."""
        self.round_flow.maker.stack = tuple(stack)
        await self.save()

    async def drop_lora(self, index: int) -> StackLora:
        """Take one LoRA out of the carried stack: the next jobs are made without it."""
        stack = list(self.stack)
        dropped = stack.pop(index)
        self.round_flow.maker.stack = tuple(stack)
        await self.save()
        return dropped

    async def judge(self, cell: Cell, verdict: Verdict) -> Verdict:
        new = await self.runner.judge(cell, verdict)
        await self.save()
        return new

    async def toggle_seed_lock(self, cell: Cell) -> bool:
        locked = await self.runner.toggle_seed_lock(cell)
        await self.save()
        return locked

    async def image_arrived(self, cell: Cell) -> None:
        """A finished image: a verdict or lock given while it was being made goes on its row."""
        await self.runner.image_arrived(cell)


def read_pictures(picked: Cell | None, rejected: Cell | None) -> tuple[bytes | None, bytes | None]:
    """The two pictures the vision stage compares (blocking: call it in a thread)."""

    def read(cell: Cell | None) -> bytes | None:
        return cell.image.path.read_bytes() if cell is not None and cell.image else None

    return read(picked), read(rejected)
