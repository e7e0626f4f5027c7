"""The concept builder (seed 000, flow 1) as a plain state machine.

Structured fields, each with a lock → a prompt composed for the target
family → a round of variations (4 SDXL on the quality/premium tiers by
default) → the operator judges and gives feedback → only the unlocked fields
are refined → the next round. Every round keeps the field values and locks
it was made from, so the history can be walked back (`go_to`) and a reopened
session is exactly where it was. A locked field is also a pinned trait of the
session's intent document, so refinement in any later round keeps it.

Like the funnel it decides *what* to make; `RoundRunner` saves and submits,
and scheduler events come back through `history.apply`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from imgen_tui.flows.concept_config import ConceptConfig
from imgen_tui.flows.round_maker import RoundMaker
from imgen_tui.flows.round_store import rounds_state
from imgen_tui.flows.rounds import Cell, Recipe, Round, RoundHistory, RoundRecipe
from imgen_tui.flows.stacks import stack_from_json, stack_to_json
from imgen_tui.graphs.templates import WorkflowLibrary
from imgen_tui.llm.field_refine import FieldRefinement, FieldRefineRequest
from imgen_tui.llm.fields import ConceptField, compose
from imgen_tui.llm.pipeline import Intent, negative_for
from imgen_tui.scheduler.jobs import JobSpec
from imgen_tui.store.records import RoundInfo

FLOW = "concept"
STAGE = "concept"  # the store's stage name for a concept round


class ConceptError(ValueError):
    """Something the operator asked for that cannot be done, said in one sentence."""


class ConceptBuilder:
    def __init__(
        self,
        config: ConceptConfig,
        library: WorkflowLibrary,
        models: Mapping[str, str],
        *,
        rng: random.Random | None = None,
        config_name: str = "concept.yaml",
    ) -> None:
        self.config = config
        self.maker = RoundMaker(
            library,
            models,
            config_name=config_name,
            more_like_this=config.more_like_this,
            upscale_workflow=config.upscale_workflow,
            rng=rng,
        )
        self.recipe = RoundRecipe(
            STAGE, "Concept", config.variations, config.workflow, config.min_tier, config.params
        )
        self.maker.template(config.workflow)  # a bad workflow name shows up now, not mid-round
        self.values: dict[str, str] = {f.name: f.default for f in config.fields}
        self.locked: set[str] = set()
        self.history = RoundHistory()

    # -- fields and locks ------------------------------------------------------------------------

    @property
    def family(self) -> str:
        return self.config.family

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.config.fields]

    @property
    def fields(self) -> list[ConceptField]:
        """The fields as the refinement and composition see them."""
        return [
            f.as_field(self.values.get(f.name, ""), locked=f.name in self.locked)
            for f in self.config.fields
        ]

    def set_field(self, name: str, text: str) -> None:
        """The operator edits a field: a lock guards against refinement, not the operator."""
        self._require_field(name)
        self.values[name] = text.strip()

    def toggle_lock(self, name: str) -> bool:
        self._require_field(name)
        if name in self.locked:
            self.locked.discard(name)
        else:
            self.locked.add(name)
        return name in self.locked

    def pins(self) -> list[str]:
        """The pinned traits the locks make: every term of every locked field."""
        return [term.text for each in self.fields if each.locked for term in each.terms]

    def pin_into(self, intent: Intent, previous: Iterable[str]) -> list[str]:
        """Make the intent's pins match the locks; `previous` is what the locks pinned before.

        Pins the operator made by hand (in the intent screen) are left alone.
        Returns the pins the locks make now, to pass as `previous` next time.
        """
        old = set(previous)
        now = self.pins()
        kept = [p for p in intent.pinned if p not in old]
        intent.pinned = kept + [p for p in now if p not in kept]
        return now

    # -- composing and making rounds --------------------------------------------------------------

    def compose(self) -> str:
        return compose(self.fields, self.family)

    def negative(self, avoid: Sequence[str] = ()) -> str:
        base = self.maker.default_negative(self.recipe)
        keep = [term.text for each in self.fields if each.locked for term in each.terms]
        return negative_for(base, list(avoid), keep, self.family)

    @property
    def current(self) -> Round | None:
        return self.history.current

    def generate(self, avoid: Sequence[str] = ()) -> list[JobSpec]:
        """A new round from the fields as they are; locked seeds on screen carry over."""
        self.require_filled()
        carried = [c.seed for c in self.current.cells if c.locked] if self.current else []
        new = Round(self.recipe, self.compose(), self.negative(avoid), meta=self.snapshot())
        self.history.push(new)
        return self.maker.first(new, carried)

    def again(self) -> list[JobSpec]:
        """The round on screen once more as a new round: picked and locked cells stay."""
        self._require_current()
        return self.maker.again(self.history)

    def undo_again(self) -> Round | None:
        """Back to the round "again" replaced; returns the undone one (None: nothing to undo)."""
        return self.history.undo_again()

    def more_like_this(self, cell: Cell, denoise: float) -> JobSpec:
        return self.maker.more_like_this(self._require_current(), cell, denoise)

    def upscale(self, cell: Cell) -> JobSpec:
        return self.maker.upscale(self._require_current(), cell)

    def go_to(self, index: int) -> Round:
        """Look at an earlier (or later) round, and take back its fields and locks."""
        chosen = self.history.go_to(index)
        self._take(chosen.meta)
        return chosen

    def back(self) -> Round | None:
        if self.history.position == 0:
            return None
        return self.go_to(self.history.position - 1)

    def recipe_for(self, info: RoundInfo) -> Recipe | None:
        return self.recipe if info.stage == STAGE else None

    def sampling_stages(self) -> list[tuple[str, str]]:
        """(label, family) of what the builder makes: where a carried LoRA can go."""
        return [(self.recipe.label, self.maker.template(self.config.workflow).family)]

    # -- refinement ---------------------------------------------------------------------------

    def refine_request(
        self, feedback: str, *, pinned: Sequence[str] = (), avoid: Sequence[str] = ()
    ) -> FieldRefineRequest:
        current = self.current
        return FieldRefineRequest(
            feedback=feedback,
            fields=self.fields,
            family=self.family,
            catch_all=self.config.catch_all,
            negative=self.negative(avoid),
            pinned=list(pinned),
            picked=[image.id for image in current.picks] if current else [],
            rejected=[image.id for image in current.rejects] if current else [],
        )

    def accept(self, refinement: FieldRefinement) -> list[str]:
        """Take a refinement's texts for the unlocked fields; returns the fields that changed.

        A refinement that would change a locked field is refused outright —
        `settle` never makes one, so this guards a caller that built its own.
        """
        for name in self.locked:
            if refinement.texts.get(name, self.values.get(name)) != self.values.get(name):
                raise ConceptError(f"the refinement changed the locked field {name}; not applied")
        changed = []
        for name in self.names:
            new = refinement.texts.get(name)
            if new is not None and name not in self.locked and new != self.values.get(name):
                self.values[name] = new
                changed.append(name)
        return changed

    def fill_described(self, described: Mapping[str, str]) -> list[str]:
        """Fill the unlocked empty fields from a picture's description; returns which."""
        filled = []
        for name in self.names:
            text = described.get(name, "").strip()
            if text and name not in self.locked and not self.values.get(name, "").strip():
                self.values[name] = text
                filled.append(name)
        return filled

    def empty_unlocked(self) -> dict[str, str]:
        """Field name → hint for what describing a pick could fill."""
        return {
            f.name: f.hint or f.title
            for f in self.config.fields
            if f.name not in self.locked and not self.values.get(f.name, "").strip()
        }

    # -- saving and resuming -------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The fields and locks: a round's meta, and part of the session's state."""
        return {
            "fields": {name: self.values.get(name, "") for name in self.names},
            "locks": [name for name in self.names if name in self.locked],
        }

    def state(self, pins: Sequence[str] = ()) -> dict[str, Any]:
        """Everything reopening the session needs besides the store's rows."""
        return {
            **rounds_state(self.history),
            **self.snapshot(),
            "pins": list(pins),
            "loras": stack_to_json(self.maker.stack),
        }

    def restore(self, state: Mapping[str, Any]) -> list[str]:
        """The fields and locks as the session left them (its rounds are already back).

        Returns the pins the locks had made (for `pin_into`).
        """
        self._take(state)
        self.maker.stack = stack_from_json(state.get("loras"))
        pins = state.get("pins")
        return [str(p) for p in pins] if isinstance(pins, list) else []

    # -- plumbing --------------------------------------------------------------------------------

    def _take(self, snapshot: Mapping[str, Any]) -> None:
        fields = snapshot.get("fields")
        if isinstance(fields, dict):
            # A field added to the config since keeps its default; one removed is dropped.
            self.values = {f.name: str(fields.get(f.name, f.default)) for f in self.config.fields}
        locks = snapshot.get("locks")
        if isinstance(locks, list):
            self.locked = {str(name) for name in locks if str(name) in self.names}

    def _require_field(self, name: str) -> None:
        if name not in self.names:
            raise ConceptError(
                f"there is no field '{name}'; the fields are {', '.join(self.names)} "
                "(concept.yaml lists them)"
            )

    def require_filled(self) -> None:
        for each in self.config.fields:
            if each.required and not self.values.get(each.name, "").strip():
                what = f"type {each.hint}" if each.hint else "fill it in"
                raise ConceptError(f"The {each.title.lower()} is empty: {what}, then generate.")

    def _require_current(self) -> Round:
        if self.current is None:
            raise ConceptError("fill in the fields and generate a round first")
        return self.current
