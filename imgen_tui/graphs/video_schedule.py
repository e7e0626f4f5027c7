"""Prompt travel: keyframe descriptions as the schedule text AnimateDiff's prompt nodes read.

`ADE_PromptScheduling` and FizzNodes' `BatchPromptSchedule` both take one
string of `"frame": "prompt"` pairs separated by commas (`"0": "a fox
sleeping", "16": "a fox running"`); between two entries the conditioning is
interpolated. The text is JSON-like but not JSON (no braces, and people write
trailing commas), so it is written and read here with the same quoting rules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

_ENTRY = re.compile(r'"\s*(\d+)\s*"\s*:\s*"((?:[^"\\]|\\.)*)"')


def schedule_text(entries: Iterable[tuple[int, str]]) -> str:
    """`"0": "...",\\n"16": "..."`, ordered by frame; a later duplicate frame wins.

    Quotes and backslashes in a description are escaped JSON-style, which is
    what the nodes' own parser undoes; newlines become spaces, since each
    entry must stay on its line.
    """
    by_frame: dict[int, str] = {}
    for frame, text in entries:
        if frame < 0:
            raise ValueError(f"a keyframe at frame {frame}: frames start at 0")
        by_frame[frame] = " ".join(text.split())
    return ",\n".join(
        f'"{frame}": {json.dumps(by_frame[frame], ensure_ascii=False)}'
        for frame in sorted(by_frame)
    )


def parse_schedule(text: str) -> list[tuple[int, str]]:
    """The (frame, prompt) entries of a schedule text, in frame order."""
    found: dict[int, str] = {}
    for match in _ENTRY.finditer(text):
        found[int(match.group(1))] = json.loads(f'"{match.group(2)}"')
    return sorted(found.items())


def prompt_at(entries: list[tuple[int, str]], frame: int) -> tuple[str, str, float]:
    """The two keyframe prompts around `frame` and how far it is from the first (0..1)."""
    if not entries:
        return "", "", 0.0
    before = [entry for entry in entries if entry[0] <= frame]
    after = [entry for entry in entries if entry[0] > frame]
    if not before:
        return entries[0][1], entries[0][1], 0.0
    start = before[-1]
    if not after:
        return start[1], start[1], 0.0
    end = after[0]
    return start[1], end[1], (frame - start[0]) / (end[0] - start[0])
