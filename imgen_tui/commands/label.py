"""`imgen-tui label SESSION [--demo]`: caption, tags and NSFW flag for a session's images.

Labels come from the stage-3 vision model (`vision:` in llm.yaml) and go into
the database (the sessions screen searches them) and each image's sidecar.
`--demo` first makes a small session of simulated pictures to label, so the
command can be tried without a farm; it still needs Ollama with a vision model.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from imgen_tui.llm.config import load_llm_config
from imgen_tui.llm.labels import LabelRun, NoVisionModel, label_session
from imgen_tui.llm.ollama_stages import OllamaStages
from imgen_tui.sim.images import encode_png, render_picture
from imgen_tui.store import NewImage, SessionStore

DEMO_PROMPT = "a red fox in the snow"
DEMO_IMAGES = 4


async def make_demo_session(store: SessionStore) -> str:
    """A session of a few simulated pictures (picked), as a farm would have made them."""
    session = await store.create_session("batch", f"demo: {DEMO_PROMPT}")
    round_info = await store.add_round(session.id, "drafts", prompt=DEMO_PROMPT)
    jobs = [(f"{session.id}-demo-{i}", "{}") for i in range(DEMO_IMAGES)]
    await store.add_jobs(round_info.id, jobs)
    for seed, (job_id, _) in enumerate(jobs, start=1):
        data = encode_png(render_picture(DEMO_PROMPT, seed, 512, 512), {}, {})
        image = NewImage(data, seed, "sim", None, None, {"prompt": DEMO_PROMPT})
        (record,) = await store.save_images(job_id, [image])
        await store.set_verdict(record.id, "picked")
    return session.id


async def label_command(
    console: Console,
    data_dir: Path | None,
    wanted: str | None,
    *,
    demo: bool = False,
    picked_only: bool = False,
    llm_file: Path | None = None,
) -> int:
    """Exit 0 when every image got its label, 1 otherwise (each failure named)."""
    stages = OllamaStages(load_llm_config(llm_file))
    store = await SessionStore.open(data_dir)
    try:
        if demo and wanted is None:
            wanted = await make_demo_session(store)
            console.print(f"Made demo session {wanted[:8]} ({DEMO_IMAGES} simulated pictures).")
        if wanted is None:
            console.print("Name the session to label (`imgen-tui sessions` lists them).")
            return 1
        session = await store.find_session(wanted)
        with Progress(
            TextColumn("labelling"), BarColumn(), MofNCompleteColumn(), console=console
        ) as bar:
            task = bar.add_task("labels", total=None)

            def advanced(run: LabelRun) -> None:
                bar.update(task, total=run.total, completed=run.done)

            try:
                run = await label_session(
                    store, stages, session.id, picked_only=picked_only, progress=advanced
                )
            except NoVisionModel as error:
                bar.stop()
                console.print(f"{str(error)[0].upper()}{str(error)[1:]}.", markup=False)
                return 1
    finally:
        await store.close()
    for problem in run.failed:
        console.print(f"• {problem}", markup=False, style="yellow")
    if not run.total:
        console.print(f"Every image of session {session.id[:8]} is labelled already.")
        return 0
    console.print(
        f"Labelled {run.labelled} of {run.total} images of session {session.id[:8]} "
        f"({session.title}); the labels are in the sidecars and searchable on the sessions screen."
    )
    return 0 if not run.failed else 1
