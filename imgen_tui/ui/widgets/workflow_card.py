"""A workflow card as text (seed 004): what it is, what it needs, where it runs.

The browser lists cards in an OptionList (one option per card), so a card is
a multi-line `Text`, not a composite widget: a folder of hundreds of
workflows stays one widget.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text

from imgen_tui.flows.workflow_catalog import WorkflowCard, describe_size

ICONS = {"text": "✎ text", "image": "▣ image", "video": "▶ video", "audio": "♪ audio"}


def describe_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "time unknown"
    if seconds < 60:
        return f"~{max(1, round(seconds))} s"
    return f"~{seconds / 60:.1f} min"


def card_text(
    card: WorkflowCard,
    sizes: Mapping[tuple[str, str], int],
    seconds: float | None,
) -> Text:
    text = Text()
    text.append(card.name, style="bold")
    text.append(f"   [{card.category}] {card.format}", style="dim")
    if card.info is not None:
        text.append(f"  {card.family} · {card.task}", style="dim")
    text.append("\n")
    if card.error is not None:
        text.append(card.error, style="red")
        return text
    if card.description:
        text.append(card.description + "\n")
    ins = " ".join(ICONS.get(kind, kind) for kind in card.inputs) or "nothing"
    outs = " ".join(ICONS.get(kind, kind) for kind in card.outputs) or "nothing"
    text.append(f"Input: {ins}   Output: {outs}   {describe_seconds(seconds)}\n", style="cyan")
    if card.models:
        files = []
        total = 0
        for ref in card.models:
            size = sizes.get((ref.folder, ref.name))
            total += size or 0
            files.append(f"{ref.name}" + (f" ({describe_size(size)})" if size else ""))
        text.append("Models: " + ", ".join(dict.fromkeys(files)), style="dim")
        if total:
            text.append(f"  = {describe_size(total)}", style="dim")
        text.append("\n")
    if card.missing_classes:
        text.append("No node has the class " + ", ".join(card.missing_classes) + "\n", style="red")
    for status in card.statuses:
        text.append(f"{status.node_id} ", style="dim")
        style = "green" if status.ready else ("yellow" if status.readiness is None else "red")
        text.append(status.label(), style=style)
        if not status.ready and status.detail():
            text.append(f" ({status.detail()})", style="dim")
        text.append("   ")
    return text
