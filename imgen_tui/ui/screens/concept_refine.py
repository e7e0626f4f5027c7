"""The concept builder's part of the shared refine panel: the fields after refinement.

The panel (`refine.RefineScreen`) is every flow's; this part shows the
result per field — what changed, what a lock refused and why — and enter
(with the feedback unchanged) hands the refinement back, to make the next
round from those fields.
"""

from __future__ import annotations

from rich.text import Text

from imgen_tui.llm.field_refine import FieldRefinement

TITLE = "Refine the unlocked fields: what should change?"
PLACEHOLDER = "e.g. make the mood eerie, change the background to a beach, more fog"


class FieldsPart:
    edits_prompt = False
    ready_hint = "enter: make the next round with these fields   edit the feedback to run again"

    def describe(self, result: FieldRefinement) -> Text:
        return describe_fields(result)

    def chosen(self, result: FieldRefinement, prompt: str) -> FieldRefinement:
        return result


def describe_fields(result: FieldRefinement) -> Text:
    """The fields after refinement, changed ones marked; then refusals and notices."""
    text = Text()
    path = "local LLM" if result.path == "llm" else "offline rules"
    text.append(f"ran: {path}\n", style="bold")
    for name, value in result.texts.items():
        changed = name in result.changed
        text.append(f"{'→' if changed else ' '} {name}: ", style="bold" if changed else "dim")
        text.append((value or "—") + "\n", style="green" if changed else "dim")
    for refusal in result.refusals:
        text.append(f"refused: {refusal}\n", style="yellow")
    if result.notice:
        text.append(result.notice + "\n", style="yellow")
    if result.not_understood:
        text.append("not understood: " + "; ".join(result.not_understood) + "\n", style="red")
    return text
