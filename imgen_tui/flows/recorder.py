"""Keeps a session's jobs in the store while the scheduler runs them.

This is the scheduler's `JobKeeper`: the prompt id is committed before the
prompt is posted, and a finished job's images are downloaded, checked and
written (with the job marked done in the same transaction) before `JobDone`
reaches anyone. Lesser state changes (started, retrying, failed, cancelled)
are written in order on the store's thread without holding the scheduler up;
`drain()` waits for them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from PIL import Image as PILImage

from imgen_tui.comfy.client import DEFAULT_DOWNLOAD_CAP, ComfyClient
from imgen_tui.comfy.errors import ComfyError
from imgen_tui.comfy.events import ImageRef
from imgen_tui.graphs.params import read_values
from imgen_tui.graphs.references import describe_references
from imgen_tui.graphs.video_savers import video_sidecar_fields
from imgen_tui.scheduler.events import (
    JobCancelled,
    JobEvent,
    JobFailed,
    JobRetrying,
    JobStarted,
)
from imgen_tui.scheduler.jobs import Job, JobSpec, UnreadableSpec
from imgen_tui.scheduler.scheduler import Scheduler
from imgen_tui.store import CorruptImage, NewImage, SessionStore, StoreError
from imgen_tui.store.animation import inspect_output
from imgen_tui.store.files import CheckedImage, check_pixel_budget
from imgen_tui.store.records import JobRow, JobRowState

log = logging.getLogger(__name__)
# A picture up to this size is read back in its download's last hop (see `_fetch`).
READ_AT_ONCE = 16 * 1024 * 1024

#: a picture as the store checked it, and its thumbnail decoded (`SessionStore.check_data`)
Checked = tuple[CheckedImage, PILImage.Image | None]


def job_seconds(job: Job) -> float | None:
    """How long the node worked on the job, for the image's record."""
    return None if job.started_at is None else time.monotonic() - job.started_at


class SessionRecorder:
    def __init__(self, store: SessionStore, *, download_cap: int = DEFAULT_DOWNLOAD_CAP) -> None:
        self.store = store
        self.download_cap = download_cap
        self.store_failure: StoreError | None = None  # the disk is full or read-only: stop
        self._writes: set[asyncio.Task[None]] = set()

    # -- JobKeeper -----------------------------------------------------------------------------

    async def before_post(self, job: Job) -> None:
        assert job.node_id is not None and job.prompt_id is not None
        await self.store.job_submitted(job.job_id, job.node_id, job.prompt_id, job.attempts)

    async def keep_outputs(
        self, job: Job, node_id: str, client: ComfyClient, images: tuple[ImageRef, ...]
    ) -> tuple[object, ...]:
        """Download, check and save; the job's time limit covers the downloads too."""
        if not images:
            raise CorruptImage(f"{node_id}: prompt {job.prompt_id} saved no image to keep")
        sidecar = sidecar_fields(job.spec, job.prompt_id, graph=job.graph_sent)
        fps = sidecar.get("fps")
        fetched = await self._fetch(
            job, node_id, client, images, fps if isinstance(fps, float) else None
        )
        maps = await self._keep_maps(job, node_id, client) if job.reference_maps else {}
        seconds = job_seconds(job)
        for entry in sidecar["references"]:
            load_id = str(entry["nodes"][0]).split()[0]
            if load_id in maps:
                entry["map"] = str(maps[load_id])
        seed = sidecar.get("seed")
        outputs = [
            NewImage(
                data=payload,
                seed=seed if isinstance(seed, int) else None,
                node_id=node_id,
                seconds=seconds,
                parent_id=job.spec.parent_image_id,
                sidecar=sidecar,
            )
            for payload, _ in fetched
        ]
        checked = [done for _, done in fetched if done is not None]
        try:
            return tuple(
                await self.store.save_images(
                    job.job_id, outputs, checked if len(checked) == len(outputs) else None
                )
            )
        except StoreError as error:
            self.store_failure = self.store_failure or error
            raise

    async def _keep_maps(self, job: Job, node_id: str, client: ComfyClient) -> dict[str, Path]:
        """The job's preprocessor maps kept in the store: reference LoadImage id -> file.

        A map is a by-product: one that cannot be fetched or read is logged and
        left out, and the job's picture is kept all the same.
        """
        files = dict(job.spec.reference_images)
        kept: dict[str, Path] = {}
        for kind, load_id, image in job.reference_maps:
            reference = files.get(load_id)
            if reference is None:
                continue
            path = self._download_path()
            try:
                data = await client.download_then(
                    image,
                    path,
                    _read_and_remove,
                    max_bytes=self.download_cap,
                    deadline=job.spec.time_limit,
                )
                about = {"kind": kind, "reference": reference, "job_id": job.job_id}
                kept[load_id] = await self.store.save_reference_map(
                    job.job_id, kind, reference, data, {**about, "node_id": node_id}
                )
            except (ComfyError, CorruptImage, OSError) as error:
                log.warning(
                    "%s: the %s map of %s was not kept: %s", node_id, kind, reference, error
                )
                await asyncio.to_thread(_remove, [path])  # a partial download
            except BaseException:  # cancelled: what came of it goes too
                await asyncio.to_thread(_remove, [path])
                raise
        return kept

    def _download_path(self) -> Path:
        """Where one download lands: on disk under the data folder, never whole in memory.

        Only named here: the download makes the folder when its first piece is
        written, in that same thread hop. Making it first cost a hop of its
        own, and on a busy loop each hop waits for a frame (5 ms a picture, 12
        at p95). Each file is removed as soon as it has been read back.
        """
        return self.store.data_dir / ".downloads" / f"{uuid.uuid4().hex}.download"

    async def _fetch(
        self,
        job: Job,
        node_id: str,
        client: ComfyClient,
        images: tuple[ImageRef, ...],
        fps_hint: float | None,
    ) -> list[tuple[bytes, Checked | None]]:
        """Each picture streamed to a file, checked from its header before any is decoded.

        The header check, and reading a picture of up to `READ_AT_ONCE` back,
        run in the thread hop that writes its last piece (`download_then`): a
        hop of their own waited for a busy loop's turn. A job's only picture is
        also decoded and thumbnailed there (`SessionStore.check_data`), since
        its header alone keeps it under the pixel budget; several are decoded
        by the store once they passed the budget together, and a bigger one is
        read only then. A node's answer names the file it made, never ours, so
        a `../` in it reaches nowhere.
        """
        paths = [self._download_path() for _ in images]
        check = (
            partial(self.store.check_data, fps_hint=fps_hint, job_id=job.job_id)
            if len(images) == 1
            else None
        )
        try:
            inspected = await asyncio.gather(
                *(
                    client.download_then(
                        image,
                        path,
                        partial(_inspect_and_read, node_id, image.filename, check),
                        max_bytes=self.download_cap,
                        deadline=job.spec.time_limit,
                    )
                    for image, path in zip(images, paths, strict=True)
                )
            )
            try:
                check_pixel_budget([(width, height) for width, height, _, _ in inspected])
            except CorruptImage as error:
                raise CorruptImage(f"{node_id}: prompt {job.prompt_id}: {error}") from None
            read = [data for _, _, data, _ in inspected]
            whole = [data for data in read if data is not None]
            if len(whole) < len(read):
                whole = await asyncio.to_thread(_read_the_rest, read, paths)
            return [(data, done) for data, (_, _, _, done) in zip(whole, inspected, strict=True)]
        except BaseException:
            await asyncio.to_thread(_remove, paths)
            raise

    def record(self, event: JobEvent) -> None:
        change = _state_change(event)
        if change is not None:
            job_id, state, error = change
            task = asyncio.ensure_future(self._write(job_id, state, error))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def drain(self) -> None:
        """Until every state change recorded so far is in the database."""
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    async def _write(self, job_id: str, state: JobRowState, error: str | None) -> None:
        try:
            await self.store.set_job_state(job_id, state, error)
        except StoreError as failure:
            log.error("could not record job %s as %s: %s", job_id, state, failure)
            self.store_failure = self.store_failure or failure

    # -- resuming --------------------------------------------------------------------------------

    @staticmethod
    def resume(scheduler: Scheduler, rows: Iterable[JobRow]) -> list[Job]:
        """Put a session's unfinished jobs back to work, re-attaching to posted prompts.

        A job whose saved spec cannot be read is left where it is (its cell
        says so, see `cell_from_rows`): the others still resume.
        """
        jobs: list[Job] = []
        for row in rows:
            try:
                spec = JobSpec.from_json(row.spec_json)
            except UnreadableSpec as error:
                log.warning("job %s not resumed: %s", row.id, error)
                continue
            if row.state in ("submitted", "running") and row.node_id and row.prompt_id:
                jobs.append(
                    scheduler.adopt(spec, row.node_id, row.prompt_id, attempts=row.attempts)
                )
            elif row.state != "done":
                jobs.append(scheduler.submit(spec))
        return jobs


def _state_change(event: JobEvent) -> tuple[str, JobRowState, str | None] | None:
    if isinstance(event, JobStarted):
        return event.job.job_id, "running", None
    if isinstance(event, JobRetrying):
        return event.job.job_id, "queued", event.reason
    if isinstance(event, JobFailed):
        return event.job.job_id, "failed", event.reason
    if isinstance(event, JobCancelled):
        return event.job.job_id, "cancelled", None
    return None


def sidecar_fields(
    spec: JobSpec, prompt_id: str | None, *, graph: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What a person needs to understand and redo the image without the app (seed 001).

    `graph` is the graph as posted (the uploaded source image's name filled
    in); without it (a prompt an earlier run posted) the job's own graph.
    """
    graph = graph if graph is not None else spec.graph
    values = read_values(graph)
    return {
        "prompt": values.get("positive_prompt", ""),
        "negative": values.get("negative_prompt", ""),
        "seed": values.get("seed"),
        "family": spec.family,
        "checkpoint": spec.checkpoint,
        "steps": values.get("steps"),
        "cfg": values.get("cfg"),
        "sampler": values.get("sampler_name"),
        "scheduler": values.get("scheduler"),
        "denoise": values.get("denoise"),
        "loras": values.get("lora_name"),
        "references": describe_references(graph, spec.reference_images),
        "comfyui_prompt_id": prompt_id,
        "graph": graph,
        **video_sidecar_fields(graph),
    }


def _inspect_and_read(
    node_id: str, name: str, check: Callable[[bytes], Checked] | None, path: Path
) -> tuple[int, int, bytes | None, Checked | None]:
    """In the download's last hop: the header checked, a small file read back and removed,
    and (`check`) decoded and thumbnailed."""
    try:
        _, width, height = inspect_output(path)
        if path.stat().st_size > READ_AT_ONCE:
            return width, height, None, None
        data = _read_and_remove(path)
        return width, height, data, check(data) if check is not None else None
    except CorruptImage as error:
        raise CorruptImage(f"{node_id}: {name!r} from /view: {error}") from None


def _read_and_remove(path: Path) -> bytes:
    data = path.read_bytes()
    path.unlink()
    return data


def _read_the_rest(read: list[bytes | None], paths: list[Path]) -> list[bytes]:
    """The pictures too big to read at once, read now that the job passed its pixel budget."""
    try:
        return [
            path.read_bytes() if data is None else data
            for data, path in zip(read, paths, strict=True)
        ]
    finally:
        _remove(paths)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
