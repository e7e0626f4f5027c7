"""Queue: our running and waiting jobs; cancel one, its round, or everything."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual.binding import Binding
from textual.widgets import DataTable

from imgen_tui.scheduler.jobs import Job, JobState
from imgen_tui.scheduler.routing import refusal
from imgen_tui.ui.screens.modals import ConfirmScreen
from imgen_tui.ui.widgets.live_table import LiveTableScreen

if TYPE_CHECKING:
    from imgen_tui.ui.app import ImgenApp


class QueueScreen(LiveTableScreen):
    COLUMNS = ("job", "state", "node", "family", "size", "steps", "attempts", "round")
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="queue.back"),
        Binding("d,delete", "cancel_job", "Cancel job", id="queue.cancel"),
        Binding("R", "cancel_round", "Cancel round", id="queue.cancel_round"),
        Binding("A", "cancel_all", "Cancel all", id="queue.cancel_all"),
    ]
    HELP = (
        "Our jobs still waiting or running, running first. **d** cancels the job "
        "under the cursor (a running prompt is interrupted on its node), **R** its "
        "whole round and **A** everything: both ask first. F2 switches to the nodes."
    )

    @property
    def imgen(self) -> ImgenApp:
        return self.app  # type: ignore[return-value]

    def _unfinished(self) -> list[Job]:
        scheduler = self.imgen.engine.scheduler
        if scheduler is None:
            return []
        jobs = [job for job in scheduler.jobs.values() if not job.state.finished]
        return sorted(jobs, key=lambda job: (-int(job.state), job.seq))

    def refresh_table(self) -> None:
        table = self.query_one(DataTable)
        jobs = self._unfinished()
        wanted = {job.job_id for job in jobs}
        for key in [key for key in table.rows if key.value not in wanted]:
            table.remove_row(key)
        for job in jobs:
            row = (
                job.job_id[:8],
                JobState(job.state).name.lower(),
                job.node_id or self._refusals(job),
                job.spec.family,
                f"{job.spec.width}x{job.spec.height}",
                str(job.spec.steps),
                str(job.attempts),
                (job.spec.round_id or "-")[:8],
            )
            self.put_row(job.job_id, row)

    def _refusals(self, job: Job) -> str:
        """A waiting job: why the nodes that cannot run it refuse ("gpu-draft: no ipadapter")."""
        scheduler = self.imgen.engine.scheduler
        if scheduler is None:
            return "-"
        now = time.monotonic()
        reasons = [refusal(job.spec, runtime.view(now)) for runtime in scheduler.nodes.values()]
        return "; ".join(reason for reason in reasons if reason) or "-"

    def _selected(self) -> Job | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            self.notify("Nothing is queued.")
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        scheduler = self.imgen.engine.scheduler
        return scheduler.jobs.get(key or "") if scheduler else None

    async def action_cancel_job(self) -> None:
        job = self._selected()
        if job is not None and self.imgen.engine.scheduler is not None:
            await self.imgen.engine.scheduler.cancel(job.job_id)
            self.refresh_table()
            self.notify(f"Cancelled job {job.job_id[:8]}.")

    async def action_cancel_round(self) -> None:
        job, scheduler = self._selected(), self.imgen.engine.scheduler
        if job is None or scheduler is None:
            return
        round_id = job.spec.round_id
        if not round_id:
            self.notify("That job belongs to no round: d cancels it alone.")
            return
        count = sum(
            1
            for j in scheduler.jobs.values()
            if j.spec.round_id == round_id and not j.state.finished
        )

        async def decided(yes: bool | None) -> None:
            if yes:
                await scheduler.cancel_round(round_id)
                self.refresh_table()
                self.notify(f"Cancelled {count} jobs of round {round_id[:8]}.")

        self.app.push_screen(
            ConfirmScreen(f"Cancel the {count} unfinished jobs of round {round_id[:8]}?"), decided
        )

    async def action_cancel_all(self) -> None:
        scheduler = self.imgen.engine.scheduler
        count = len(self._unfinished())
        if scheduler is None or not count:
            self.notify("Nothing is queued.")
            return

        async def decided(yes: bool | None) -> None:
            if yes:
                await scheduler.cancel_all()
                self.refresh_table()
                self.notify(f"Cancelled all {count} jobs.")

        self.app.push_screen(ConfirmScreen(f"Cancel all {count} unfinished jobs?"), decided)
