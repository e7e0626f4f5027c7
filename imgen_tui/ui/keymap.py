"""Remapped keys from the user's keys.yaml: `binding id: keys`, e.g. `funnel.pick: space,y`.

Textual's keymap takes whatever it is given: an unknown id is ignored, a
string that is no key leaves the binding with no key, and a key another
binding of the same screen has is silently taken from it. So every line is
checked first against the app's own bindings; a line that fails is left
out (that binding keeps its default keys) and gets one sentence.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import yaml
from textual.binding import Binding
from textual.keys import KEY_ALIASES, KEY_NAME_REPLACEMENTS, Keys, _character_to_key

MODIFIERS = frozenset({"ctrl", "shift", "alt", "meta", "super", "hyper"})
KEY_NAMES = frozenset(
    {key.value for key in Keys} | set(KEY_NAME_REPLACEMENTS.values()) | set(KEY_ALIASES)
)
Scopes = Mapping[str, Sequence[Binding]]  # a screen's name → its bindings (and the app's)


def load_keymap(path: Path | None) -> tuple[dict[str, str], str | None]:
    """(binding id -> keys, a problem to show or None); a bad file changes nothing."""
    if path is None or not path.is_file():
        return {}, None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        return {}, f"{path}: could not be read ({error}); keys are the defaults"
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        return {}, f"{path}: must map binding ids to keys, e.g. 'funnel.pick: space,y'"
    return dict(data), None


def is_key(text: str) -> bool:
    """A key Textual can bind: `y`, `U`, `space`, `f5`, `ctrl+r`, `question_mark`, `?`."""
    *modifiers, name = text.split("+")
    if not name or any(m not in MODIFIERS for m in modifiers):
        return False
    if len(name) == 1:
        return name.isprintable() and not name.isspace()
    if name in KEY_NAMES:
        return True
    try:
        unicodedata.lookup(name.replace("_", " "))
    except KeyError:
        return False
    return True


def normal_key(text: str) -> str:
    """The form Textual matches on (`?` → `question_mark`), to compare keys."""
    *modifiers, name = text.split("+")
    return "+".join([*modifiers, _character_to_key(name) if len(name) == 1 else name])


def check_keymap(
    wanted: Mapping[str, str], scopes: Scopes, path: Path
) -> tuple[dict[str, str], list[str]]:
    """The lines that can be applied, and one sentence for each line that cannot."""
    known = {b.id for bindings in scopes.values() for b in bindings if b.id}
    accepted: dict[str, str] = {}
    problems: list[str] = []
    for binding_id, keys in wanted.items():
        if binding_id not in known:
            close = difflib.get_close_matches(binding_id, sorted(known), n=1)
            hint = f"did you mean '{close[0]}'?" if close else "F1 on each screen lists its keys"
            problems.append(
                f"{path}: there is no key binding '{binding_id}' ({hint}); fix or remove that line."
            )
            continue
        parts = [part.strip() for part in keys.split(",")]
        bad = next((part for part in parts if not is_key(part)), None)
        if bad is not None or not parts:
            problems.append(
                f"{path}: '{bad if bad is not None else keys}' for {binding_id} is not a key "
                "(write e.g. 'y', 'space', 'f5' or 'ctrl+r'); "
                f"{binding_id} keeps its default keys."
            )
            continue
        accepted[binding_id] = ",".join(parts)
    for binding_id, other, key in _clashes(accepted, scopes):
        if binding_id not in accepted:
            continue
        del accepted[binding_id]
        problems.append(
            f"{path}: {binding_id} takes '{key}', which {other} on the same screen already "
            f"has; choose another key for {binding_id} or also move {other} "
            f"(e.g. '{other}: X'); {binding_id} keeps its default keys."
        )
    return accepted, problems


def _clashes(accepted: Mapping[str, str], scopes: Scopes) -> Iterable[tuple[str, str, str]]:
    """(remapped id, the other id, the key) for each key two bindings of one screen share."""
    for bindings in scopes.values():
        owner: dict[str, str] = {}
        remapped = [b for b in bindings if b.id in accepted]
        for binding in [b for b in bindings if b.id not in accepted] + remapped:
            keys = accepted.get(binding.id or "", binding.key)
            for key in (normal_key(k.strip()) for k in keys.split(",")):
                other = owner.get(key)
                if other is not None and other != binding.id:
                    yield binding.id or "", other, key
                else:
                    owner[key] = binding.id or key
