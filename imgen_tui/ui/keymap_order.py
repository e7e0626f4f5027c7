"""Remapped keys keep their place in the footer.

Textual's `BindingsMap.apply_keymap` deletes a remapped binding's key and
appends its new one, so every binding keys.yaml touches moves to the end of
the footer and the palette: a user who remaps `funnel.pick` finds "pick" last
instead of first. Textual (8.x) has no hook for this, so the method is
wrapped once: it runs as before and then puts each key back at the place its
binding had.
"""

from __future__ import annotations

from typing import Any

from textual.binding import BindingsMap, Keymap, KeymapApplyResult

_WRAPPED = "_imgen_keeps_order"


def _place_of_each_binding(bindings_map: BindingsMap) -> dict[str, int]:
    """Binding id (or key, for bindings without one) → its position before the remap."""
    places: dict[str, int] = {}
    for place, (key, bindings) in enumerate(bindings_map.key_to_bindings.items()):
        for binding in bindings:
            places.setdefault(binding.id or f"key:{key}", place)
    return places


def keep_remapped_keys_in_place() -> None:
    """Wrap `BindingsMap.apply_keymap` (once) so a remap does not reorder the bindings."""
    original: Any = BindingsMap.apply_keymap
    if getattr(original, _WRAPPED, False):
        return

    def apply_keymap_in_order(self: BindingsMap, keymap: Keymap) -> KeymapApplyResult:
        places = _place_of_each_binding(self)
        result: KeymapApplyResult = original(self, keymap)
        last = len(places)

        def place(item: tuple[str, list[Any]]) -> int:
            key, bindings = item
            found = [places.get(b.id or f"key:{key}", last) for b in bindings]
            return min(found, default=last)

        ordered = sorted(self.key_to_bindings.items(), key=place)  # stable: ties keep order
        self.key_to_bindings.clear()
        self.key_to_bindings.update(ordered)
        return result

    setattr(apply_keymap_in_order, _WRAPPED, True)
    BindingsMap.apply_keymap = apply_keymap_in_order  # type: ignore[method-assign]
