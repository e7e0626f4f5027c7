"""Which literal inputs a node class shows as widgets, and in what order the frontend saves them.

A UI-format workflow stores each node's widget values as a bare list
(`widgets_values`) with no names; only the class's `/object_info` says which
value belongs to which input. The frontend builds one widget per literal input
in `input_order` (required, then optional), and puts extra frontend-only
widgets right after some of them: the "control after generate" combo after a
seed (an INT with `control_after_generate`, or named `seed`/`noise_seed`),
that combo plus a filter box after a combo with `control_after_generate`, and
the upload button after an input with `image_upload`/`video_upload`. The
extras hold values in `widgets_values` but are never sent to the server.

Both directions use this: the UI → API converter (graphs/ui_format.py) and a
writer of UI-format workflows (the PNG `workflow` chunk).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

SlotKind = Literal["value", "control", "filter", "upload"]

#: what a "control after generate" widget can hold (and "increment-wrap" on combos)
CONTROL_MODES = frozenset({"fixed", "increment", "decrement", "randomize", "increment-wrap"})
#: the upload button's own value, saved after the file name
UPLOAD_VALUES = frozenset({"image", "video", "audio", "file", "upload"})
WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
SEED_NAMES = frozenset({"seed", "noise_seed"})
#: keyed widgets that only show something (VHS's preview) and are never sent
DISPLAY_WIDGETS = frozenset({"videopreview", "preview", "control_after_generate"})
_UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "file_upload")


@dataclass(frozen=True, slots=True)
class WidgetSlot:
    """One position in `widgets_values`: an input's value or a frontend-only extra after it."""

    input: str
    kind: SlotKind
    spec: tuple[Any, ...]

    @property
    def sent(self) -> bool:
        """Whether the frontend puts this value into the API prompt."""
        return self.kind == "value"


def input_specs(class_info: Mapping[str, Any]) -> Iterator[tuple[str, list[Any], bool]]:
    """(name, spec, required) of every declared input, in the order the frontend creates them.

    `input_order` (newer servers) wins; otherwise required then optional, in
    the order the server sent them. Hidden inputs are not inputs of the node.
    """
    inputs = class_info.get("input") if isinstance(class_info, Mapping) else None
    if not isinstance(inputs, Mapping):
        return
    order = class_info.get("input_order")
    for section in ("required", "optional"):
        specs = inputs.get(section)
        if not isinstance(specs, Mapping):
            continue
        names = list(specs)
        if isinstance(order, Mapping) and isinstance(order.get(section), list):
            ordered = [name for name in order[section] if name in specs]
            names = ordered + [name for name in names if name not in ordered]
        for name in names:
            spec = specs[name]
            if isinstance(spec, list) and spec:
                yield name, spec, section == "required"


def spec_type(spec: list[Any] | tuple[Any, ...]) -> str:
    """INT, FLOAT, STRING, BOOLEAN, COMBO (both shapes), or a socket type such as MODEL."""
    head = spec[0] if spec else None
    if isinstance(head, list):
        return "COMBO"
    return head if isinstance(head, str) else ""


def spec_options(spec: list[Any] | tuple[Any, ...]) -> dict[str, Any]:
    options = spec[1] if len(spec) > 1 else None
    return dict(options) if isinstance(options, Mapping) else {}


def combo_choices(spec: list[Any] | tuple[Any, ...]) -> list[Any]:
    """A combo's options in either shape: `[[a, b], {...}]` or `["COMBO", {"options": [a, b]}]`."""
    head = spec[0] if spec else None
    if isinstance(head, list):
        return list(head)
    options = spec_options(spec).get("options")
    return list(options) if isinstance(options, list) else []


def is_widget(spec: list[Any] | tuple[Any, ...]) -> bool:
    """A literal the frontend edits in place (it may still be wired, as a converted widget)."""
    return spec_type(spec) in WIDGET_TYPES


def has_control(name: str, spec: list[Any] | tuple[Any, ...]) -> bool:
    """The frontend adds "control after generate" (useIntWidget / useComboWidget)."""
    kind, flag = spec_type(spec), spec_options(spec).get("control_after_generate")
    if kind in ("INT", "FLOAT"):
        if flag is None:
            flag = spec_options(spec).get("control_before_generate")
        return bool(flag) if flag is not None else (kind == "INT" and name in SEED_NAMES)
    return kind == "COMBO" and bool(flag)


def widget_slots(class_info: Mapping[str, Any]) -> list[WidgetSlot]:
    """Every position of the class's `widgets_values`, in order."""
    slots: list[WidgetSlot] = []
    for name, spec, _ in input_specs(class_info):
        if not is_widget(spec):
            continue
        frozen = tuple(spec)
        slots.append(WidgetSlot(name, "value", frozen))
        if has_control(name, spec):
            slots.append(WidgetSlot(name, "control", frozen))
            if spec_type(spec) == "COMBO":
                slots.append(WidgetSlot(name, "filter", frozen))
        if any(spec_options(spec).get(flag) for flag in _UPLOAD_FLAGS):
            slots.append(WidgetSlot(name, "upload", frozen))
    return slots


def default_value(spec: list[Any] | tuple[Any, ...]) -> Any:
    """What a freshly created widget holds: the spec's default, else the frontend's fallback."""
    options = spec_options(spec)
    if "default" in options:
        return options["default"]
    kind = spec_type(spec)
    if kind == "COMBO":
        choices = combo_choices(spec)
        return choices[0] if choices else None
    return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(kind)


def assign_widget_values(
    class_info: Mapping[str, Any], values: object
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(input name -> value sent to the server, input name -> control mode) from `widgets_values`.

    Values are laid along `widget_slots`; an extra slot (control, filter,
    upload) takes a value only if that value looks like one, so a file saved
    by a frontend that leaves the extras out still lines up. A value missing
    at the end gets the widget's default, as the frontend does on load.
    `widgets_values` as an object (some packs save it keyed by name) is read
    by name.
    """
    slots = widget_slots(class_info)
    sent: dict[str, Any] = {}
    controls: dict[str, Any] = {}
    if isinstance(values, Mapping):
        for slot in slots:
            if slot.kind == "value":
                sent[slot.input] = values.get(slot.input, default_value(slot.spec))
        # Widgets a pack's script adds (VHS's per-format crf, pix_fmt...) are sent as inputs too.
        known = {slot.input for slot in slots}
        for name, value in values.items():
            if isinstance(name, str) and name not in known and name not in DISPLAY_WIDGETS:
                sent[name] = value
        return sent, controls
    items = list(values) if isinstance(values, list) else []
    cursor = 0
    control_taken = False
    for slot in slots:
        here = items[cursor] if cursor < len(items) else _MISSING
        if slot.kind == "value":
            sent[slot.input] = default_value(slot.spec) if here is _MISSING else here
            cursor += here is not _MISSING
            control_taken = False
        elif slot.kind == "control":
            control_taken = isinstance(here, str) and here in CONTROL_MODES
            if control_taken:
                controls[slot.input] = here
                cursor += 1
        elif slot.kind == "filter":
            if control_taken and isinstance(here, str):
                cursor += 1
        elif here is None or (isinstance(here, str) and here in UPLOAD_VALUES):
            cursor += 1
    return sent, controls


_MISSING: Any = object()
