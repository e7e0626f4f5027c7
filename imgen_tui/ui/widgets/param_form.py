"""The form of any workflow: one typed editor per parameter, important ones first.

A combo is a Select (model lists included), a number an Input checked
against its bounds when it is left or entered (a bad value is refused with
the sentence saying why, and the field goes back to its last good value:
nothing else in the form changes), a multiline string a TextArea, a boolean a
Checkbox. Parameters without a role are folded under "More parameters".
Below the parameters are the variations (count, seed mode, prompt lines,
sweeps) and the CSV set; `values()` and `settings()` read it all back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Collapsible, Input, Label, Select, Static, TextArea

from imgen_tui.flows.rounds import SOURCE_PLACEHOLDER
from imgen_tui.flows.workflow_run import (
    SEED_MODES,
    SWEEP_MODES,
    ParameterKey,
    RunSettings,
    WorkflowRunError,
    key_text,
    parse_value,
)
from imgen_tui.graphs.typed_params import TypedParameter


def field_id(parameter: TypedParameter) -> str:
    """A CSS-safe id for a parameter's editor (node ids of expanded subgraphs have colons)."""
    return "param-" + re.sub(r"[^A-Za-z0-9_-]", "_", f"{parameter.node}-{parameter.input}")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


class ParamForm(VerticalScroll):
    DEFAULT_CSS = """
    ParamForm .param-row { height: auto; margin: 0 0 1 0; }
    ParamForm .param-label { width: 22; padding: 0 1 0 0; }
    ParamForm .param-row Input, ParamForm .param-row Select { width: 1fr; }
    ParamForm .param-row TextArea { width: 1fr; height: 3; }
    ParamForm .variation-box { height: 4; margin: 0 0 1 0; }
    ParamForm #plan { margin: 1 0; }
    ParamForm #csv-preview { color: $text-muted; }
    """

    def __init__(
        self,
        parameters: Sequence[TypedParameter],
        remembered: Mapping[str, Any],
        settings: RunSettings,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.parameters = list(parameters)
        self.by_id = {field_id(p): p for p in self.parameters}
        self.initial = {
            (p.node, p.input): remembered.get(key_text((p.node, p.input)), p.value)
            for p in self.parameters
        }
        self.good: dict[ParameterKey, Any] = dict(self.initial)
        self.start_settings = settings

    # -- building ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        important = [p for p in self.parameters if p.role is not None]
        rest = [p for p in self.parameters if p.role is None]
        yield Label("Parameters", classes="heading")
        for parameter in important:
            yield from self._row(parameter)
        if rest:
            with Collapsible(title=f"More parameters ({len(rest)})", collapsed=True, id="more"):
                for parameter in rest:
                    yield from self._row(parameter)
        settings = self.start_settings
        yield Label("Variations", classes="heading")
        with Horizontal(classes="param-row"):
            yield Label("count", classes="param-label")
            yield Input(str(settings.count), id="count", type="integer", compact=True)
        with Horizontal(classes="param-row"):
            yield Label("seed mode", classes="param-label")
            yield Select(
                [(mode, mode) for mode in SEED_MODES],
                value=settings.seed_mode,
                allow_blank=False,
                compact=True,
                id="seed-mode",
            )
        yield Label("prompts, one per line (cycled; empty: the prompt above)")
        yield TextArea(settings.prompts, id="prompts", classes="variation-box", compact=True)
        yield Label("sweeps, one per line: steps = 10..30 step 10 · sampler = euler, dpmpp_2m")
        yield TextArea(settings.sweeps, id="sweeps", classes="variation-box", compact=True)
        with Horizontal(classes="param-row"):
            yield Label("sweep mode", classes="param-label")
            yield Select(
                [(mode, mode) for mode in SWEEP_MODES],
                value=settings.sweep_mode,
                allow_blank=False,
                compact=True,
                id="sweep-mode",
            )
        yield Static("", id="plan")
        with Collapsible(title="CSV set: prompts from a file", collapsed=True, id="csv"):
            yield Input(placeholder="path/to/set.csv", id="csv-file", compact=True)
            yield Input(
                placeholder="template, e.g. {subject} in {place}", id="csv-template", compact=True
            )
            yield Static(
                "choose a file and a template to preview the first prompts", id="csv-preview"
            )
            yield Button("Use as prompts", id="csv-use")

    def _row(self, parameter: TypedParameter) -> ComposeResult:
        value = self.initial[(parameter.node, parameter.input)]
        label = parameter.role or parameter.input
        with Horizontal(classes="param-row"):
            yield Label(f"{label} ({parameter.node})", classes="param-label")
            yield self._editor(parameter, value)

    def _editor(self, parameter: TypedParameter, value: Any) -> Widget:
        ident = field_id(parameter)
        if (
            parameter.role == "image"
        ):  # a picture on this machine, uploaded to the node that runs it
            shown = "" if value == SOURCE_PLACEHOLDER else _text(value)
            return Input(
                shown, placeholder="path to a picture on this machine", id=ident, compact=True
            )
        if parameter.kind == "combo" and parameter.options:
            options = list(dict.fromkeys(parameter.options))
            if value not in options:
                options.insert(0, value)  # what the file names, even if no node has it
            return Select(
                [(str(option), option) for option in options],
                value=value,
                allow_blank=False,
                compact=True,
                id=ident,
            )
        if parameter.kind == "boolean":
            return Checkbox(parameter.input, bool(value), id=ident, compact=True)
        if parameter.kind == "string" and parameter.multiline:
            return TextArea(_text(value), id=ident, compact=True)
        if parameter.kind == "unknown":
            return Static(_text(value), id=ident)
        bounds = ""
        if parameter.minimum is not None or parameter.maximum is not None:
            low = "" if parameter.minimum is None else f"{parameter.minimum:g}"
            high = "" if parameter.maximum is None else f"{parameter.maximum:g}"
            bounds = f"{low}..{high}"
        return Input(_text(value), placeholder=bounds, id=ident, compact=True)

    # -- refusing bad numbers as they are entered -------------------------------------------------

    @on(Input.Submitted)
    @on(Input.Blurred)
    def _checked(self, event: Input.Submitted | Input.Blurred) -> None:
        parameter = self.by_id.get(event.input.id or "")
        if parameter is None or parameter.kind not in ("int", "float"):
            return
        key = (parameter.node, parameter.input)
        try:
            self.good[key] = parse_value(parameter, event.input.value)
        except WorkflowRunError as error:
            self.notify(str(error), severity="warning", timeout=8)
            event.input.value = _text(self.good[key])

    # -- reading it back --------------------------------------------------------------------------

    def values(self) -> dict[ParameterKey, Any]:
        """Every parameter's value from its editor (WorkflowRunError names the first bad one)."""
        found: dict[ParameterKey, Any] = {}
        for ident, parameter in self.by_id.items():
            key = (parameter.node, parameter.input)
            widget = self.query_one(f"#{ident}")
            if isinstance(widget, Select | Checkbox):
                found[key] = widget.value
            elif isinstance(widget, TextArea):
                found[key] = widget.text
            elif isinstance(widget, Input):
                found[key] = (
                    parse_value(parameter, widget.value)
                    if parameter.kind in ("int", "float")
                    else widget.value
                )
            else:
                found[key] = parameter.value
        return found

    def settings(self) -> RunSettings:
        count_text = self.query_one("#count", Input).value.strip()
        try:
            count = int(count_text)
        except ValueError:
            raise WorkflowRunError(
                f"the count is a whole number of images, not {count_text!r}"
            ) from None
        seed_mode = self.query_one("#seed-mode", Select).value
        sweep_mode = self.query_one("#sweep-mode", Select).value
        return RunSettings(
            count=count,
            seed_mode=seed_mode if seed_mode in SEED_MODES else "random",
            prompts=self.query_one("#prompts", TextArea).text,
            sweeps=self.query_one("#sweeps", TextArea).text,
            sweep_mode=sweep_mode if sweep_mode in SWEEP_MODES else "cartesian",
        )

    def show_plan(self, line: str, *, problem: bool = False) -> None:
        self.query_one("#plan", Static).update(Text(line, style="red" if problem else ""))
