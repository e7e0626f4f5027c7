"""`imgen-tui bench scheduler`: the scheduler's figures, as one table per question."""

from __future__ import annotations

import asyncio

from rich.console import Console
from rich.table import Table

from imgen_tui.bench import scheduler_bench as bench


async def bench_scheduler(console: Console, *, scale: float = 1.0, quick: bool = False) -> int:
    console.print(
        f"Simulated seed farm (config/demo.yaml speeds x{scale:g}), 20 SD1.5 drafts, "
        "512x512, 10 steps, each job ±10% around its node's mean."
    )
    rows, optimum, measured_optimum = await bench.makespan_rows(scale, jitter=0.1)
    table = Table(title="1-2. Makespan and GPU idle time")
    for column in ("policy", "makespan s", "/ optimal", "/ floor*", "worst node idle"):
        table.add_column(column, justify="right" if column != "policy" else "left")
    for row in rows:
        table.add_row(
            row.policy,
            f"{row.makespan:.2f}",
            f"{row.makespan / optimum:.3f}",
            f"{row.makespan / measured_optimum:.3f}",
            f"{row.idle_share:.2%}",
        )
    table.add_row("exact optimum, configured speeds", f"{optimum:.2f}", "1.000", "", "")
    table.add_row(
        "floor*: exact optimum, measured job times",
        f"{measured_optimum:.2f}",
        f"{measured_optimum / optimum:.3f}",
        "1.000",
        "",
    )
    console.print(table)
    console.print(
        "* each node's mean prompt time in the first run, decode and save included: "
        "the floor no policy can beat on this farm. Idle: GPU idle between consecutive "
        "jobs as a share of busy time, worst node."
    )

    latency = Table(title="3, 5. Enqueue and dispatch latency (zero-time nodes)")
    for column in (
        "farm",
        "jobs",
        "enqueue ms",
        "dispatch p50 ms",
        "dispatch p99 ms",
        "pass cost median µs",
        "pass cost mean µs",
    ):
        latency.add_column(column, justify="right")
    sizes = [(4, 1000)] if quick else [(4, 1000), (32, 2000)]
    for nodes, jobs in sizes:
        measured = await bench.latency_row(nodes, jobs)
        latency.add_row(
            measured.label,
            str(measured.jobs),
            f"{measured.enqueue_ms:.1f}",
            f"{measured.p50_ms:.2f}",
            f"{measured.p99_ms:.2f}",
            f"{measured.dispatch_median_us:.0f}",
            f"{measured.dispatch_cpu_us:.0f}",
        )
    console.print(latency)

    swaps = Table(title="4. Checkpoint loads, 40 interleaved SD1.5/SDXL jobs")
    swaps.add_column("model affinity")
    swaps.add_column("checkpoint loads", justify="right")
    for affinity in (True, False):
        swaps.add_row(
            "on" if affinity else "off", str(await bench.model_swaps(affinity, scale * 0.25))
        )
    console.print(swaps)
    console.print(await _lora_sweep_table(scale))
    return 0


async def _lora_sweep_table(scale: float) -> Table:
    from imgen_tui.bench.lora_sweep import lora_sweep_row

    table = Table(title="5. LoRA sweep, 4 LoRAs x 4 strengths x 2 seeds on the seed farm")
    table.add_column("LoRA-stack affinity")
    table.add_column("jobs", justify="right")
    table.add_column("re-patches", justify="right")
    table.add_column("makespan s", justify="right")
    for affinity in (True, False):
        row = await lora_sweep_row(affinity, scale)
        table.add_row(
            "on" if affinity else "off", str(row.jobs), str(row.patches), f"{row.makespan:.2f}"
        )
    return table


async def bench_ui(console: Console, *, scale: float = 1.0) -> int:
    """Key latency, thumbnail latency and terminal bytes, for TGP and Sixel."""
    import tempfile
    from pathlib import Path

    from imgen_tui.ui.bench import (
        KEY_PRESSES,
        RENDERERS,
        SIZE,
        measure,
        measure_encoders,
        percentile,
    )

    console.print(
        f"Demo farm at x{scale:g} speed in a child process (`imgen-tui sim`: a real farm is other "
        f"machines, so its image making does not share the app's loop and GIL), 20 SD1.5 drafts "
        f"(512x512), terminal {SIZE[0]}x{SIZE[1]}, {KEY_PRESSES} cursor keys pressed while the "
        "drafts stream progress and previews. Finished→painted: from the node's execution_success "
        "to the write that puts the stored thumbnail on the terminal (fetched, checked, stored "
        "with fsync, thumbnailed, loaded and encoded in between)."
    )
    table = Table(title="imgen-tui bench ui")
    for column, target in (
        ("renderer", ""),
        ("key→repaint p50", ""),
        ("key→repaint p99", "< 33 ms"),
        ("finished→painted p95", "< 100 ms"),
        ("first paint, 20 thumbs", "< 1.5 MB"),
        ("per cursor move", "< 5 KB"),
    ):
        table.add_column(f"{column}\n{target}".strip(), justify="right")
    for renderer in RENDERERS:
        with tempfile.TemporaryDirectory(prefix="imgen-bench-ui-") as folder:
            figures = await measure(renderer, Path(folder), scale)
        moves = figures.move_bytes
        table.add_row(
            renderer,
            f"{percentile(figures.key_latencies, 0.5) * 1000:.1f} ms",
            f"{percentile(figures.key_latencies, 0.99) * 1000:.1f} ms",
            f"{percentile(figures.paint_latencies, 0.95) * 1000:.0f} ms",
            f"{figures.first_paint_bytes / 1e6:.2f} MB",
            f"{sum(moves) / max(1, len(moves)) / 1000:.2f} KB",
        )
    console.print(table)
    console.print(await _playback_table())
    encoders = Table(
        title="Sixel encoders, one 384 px picture (read back as xterm 379 reads it, and leniently)",
        caption="blurred error: both pictures blurred 2 px first, so dither noise averages "
        "out and what is left is banding (an undithered 256-colour sky: about 1.5)",
    )
    for column in (
        "picture",
        "encoder",
        "ms per picture",
        "bytes",
        "loop stalled",
        "mean error",
        "blurred error (bands)",
        "xterm draws it right",
    ):
        encoders.add_column(column, justify="left" if column in ("picture", "encoder") else "right")
    for sample, encoded in await asyncio.to_thread(measure_encoders):
        right = encoded.streaked_rows == 0
        encoders.add_row(
            sample,
            encoded.name,
            f"{encoded.milliseconds:.1f}",
            f"{encoded.sixel_bytes:,}",
            f"{encoded.loop_stall * 1000:.1f} ms",
            f"{encoded.mean_error:.1f}",
            f"{encoded.blurred_error:.2f}",
            "yes" if right else f"no: {encoded.streaked_rows:.0%} of rows differ",
        )
    console.print(encoders)
    console.print(
        "libsixel bindings (libsixel-python) were not a candidate: they need the system "
        "libsixel, which a fresh machine does not have (PyPI ships no wheel with it)."
    )
    return 0


async def _playback_table() -> Table:
    """The lightbox playing a 16-frame 512x512 video: frames/s shown and bytes/s sent."""
    import tempfile
    from pathlib import Path

    from imgen_tui.ui.bench import RENDERERS
    from imgen_tui.ui.bench_playback import FRAMES, SIDE, measure_playback

    table = Table(title=f"Playback in the lightbox, {FRAMES} frames at {SIDE}x{SIDE}, looping")
    for column in (
        "renderer",
        "video fps",
        "frames/s shown",
        "bytes/s to the terminal",
        "first frame",
    ):
        table.add_column(column, justify="left" if column == "renderer" else "right")
    for renderer in (*RENDERERS, "halfcell"):  # half cells: what tmux without passthrough gets
        with tempfile.TemporaryDirectory(prefix="imgen-bench-play-") as folder:
            figures = await measure_playback(renderer, Path(folder))
        table.add_row(
            renderer,
            f"{figures.fps:g}",
            f"{figures.frames_per_second:.1f}",
            f"{figures.bytes_per_second / 1e6:.2f} MB/s",
            f"{figures.first_frame_seconds * 1000:.0f} ms",
        )
    return table
