"""The command palette (ctrl+p) knows the app: every action of the screen, with its key.

One provider serves every screen: it reads the bindings active where the
palette was opened (so a key remapped in keys.yaml shows its new key, and
an action the screen has switched off is not offered) and runs the chosen
one there, exactly as its key would.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode
from textual.keys import format_key

# Keys that only move around: the palette is for doing things.
MOVES = frozenset({"move(-1)", "move(1)", "move_row(-1)", "move_row(1)", "step(-1)", "step(1)"})


class ScreenActions(Provider):
    def _actions(self) -> list[tuple[str, str, Callable[[], object]]]:
        """(what it does, its keys, run it) for each binding active on the screen."""
        found: dict[tuple[int, str], tuple[DOMNode, Binding, list[str]]] = {}
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            if not binding.description or binding.action in MOVES:
                continue
            slot = found.setdefault((id(active.node), binding.action), (active.node, binding, []))
            slot[2].append(format_key(key))
        actions = []
        for node, binding, keys in found.values():
            run = partial(self.app.run_action, binding.action, node)
            actions.append((binding.description, ", ".join(keys), run))
        return sorted(actions, key=lambda action: action[0].lower())

    async def discover(self) -> Hits:
        for description, keys, run in self._actions():
            yield DiscoveryHit(f"{description} ({keys})", run, help=f"key: {keys}")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for description, keys, run in self._actions():
            text = f"{description} ({keys})"
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), run, help=f"key: {keys}")
