"""Whether a node's `/object_info` backs up `animatediff`, `interpolation` and `video`.

AnimateDiff needs its node classes *and* a motion model file (the recorded
400 for a missing one is what a node without it would answer); interpolation
needs core's `FrameInterpolate` or the Frame-Interpolation pack's RIFE/FILM;
`video` needs a node that writes an animated file. Each answer is a
(verdict, reason) pair for `comfy.capabilities` to wrap.
"""

from __future__ import annotations

from typing import Literal

from imgen_tui.comfy.responses import ObjectInfo

Verdict = Literal["confirmed", "missing"]

#: Gen2 loader first, then Gen1 (the builder prefers them in this order)
MOTION_LOADERS = ("ADE_LoadAnimateDiffModel", "ADE_AnimateDiffLoaderGen1")
INTERPOLATORS = ("FrameInterpolate", "RIFE VFI", "FILM VFI")
VIDEO_SAVERS = ("VHS_VideoCombine", "SaveAnimatedWEBP", "SaveWEBM", "SaveVideo")
VIDEO_CAPABILITIES = frozenset({"animatediff", "interpolation", "video"})


def motion_models(info: ObjectInfo) -> tuple[str, ...]:
    """The motion model files the node's AnimateDiff loaders list (Gen2's list first)."""
    for loader in MOTION_LOADERS:
        found = info.options(loader, "model_name")
        if found:
            return found
    return ()


def check_video_capability(info: ObjectInfo, capability: str) -> tuple[Verdict, str]:
    if capability == "animatediff":
        loaders = [name for name in MOTION_LOADERS if info.has_class(name)]
        if not loaders:
            return (
                "missing",
                "custom node ADE_LoadAnimateDiffModel (AnimateDiff-Evolved) is not installed",
            )
        models = motion_models(info)
        if not models:
            return (
                "missing",
                "AnimateDiff is installed but has no motion model (animatediff_models is empty)",
            )
        return "confirmed", f"{loaders[0]} with {len(models)} motion model(s)"
    if capability == "interpolation":
        found = [name for name in INTERPOLATORS if info.has_class(name)]
        if not found:
            return "missing", "no FrameInterpolate, RIFE VFI or FILM VFI node is installed"
        return "confirmed", f"{found[0]} is installed"
    savers = [name for name in VIDEO_SAVERS if info.has_class(name)]
    if not savers:
        return "missing", "no video saver (VHS_VideoCombine, SaveAnimatedWEBP) is installed"
    return "confirmed", f"{savers[0]} is installed"
