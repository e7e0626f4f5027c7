"""What a carried LoRA stack becomes in its target: kept, kept for some stages, or left out."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from imgen_tui.comfy.lora_answers import LoraFile, LoraMetadata, NodeLoras
from imgen_tui.flows.carry import settle_stack
from imgen_tui.flows.stacks import StackLora, fitting, stack_from_json, stack_to_json

FUNNEL = [("Drafts", "sd15"), ("Refined", "sdxl"), ("Polished", "sdxl")]
PONY = "pony-style.safetensors"


def node(name: str, files: dict[str, str | None]) -> NodeLoras:
    """A node that answered, with each file's family from its header (None: no header)."""
    return NodeLoras(
        node=name,
        files=tuple(LoraFile(name=f) for f in files),
        metadata={f: LoraMetadata(family=family) for f, family in files.items() if family},
    )


def down(name: str) -> NodeLoras:
    return NodeLoras(node=name, error=f"{name} (http://127.0.0.1:1) is unreachable")


FARM = [
    node("big", {"detail.safetensors": "sd15", "wc.safetensors": "sdxl", PONY: "pony"}),
    node("small", {"detail.safetensors": "sd15", "plain.safetensors": None}),
]


def test_a_lora_of_one_family_is_kept_for_its_stages_and_the_sentence_names_them() -> None:
    kept, said = settle_stack((StackLora("detail.safetensors", 0.7, 0.7),), FARM, FUNNEL, "funnel")
    assert [(lora.name, lora.family) for lora in kept] == [("detail.safetensors", "sd15")]
    assert said == [
        "detail.safetensors is an SD1.5 LoRA: only Drafts get it, not Refined, Polished."
    ]
    assert fitting(kept, "sd15") == kept and fitting(kept, "sdxl") == ()


def test_the_files_family_wins_over_the_pictures_and_unknown_fits_everywhere() -> None:
    carried = (
        StackLora("wc.safetensors", 0.8, 0.8, "sd15"),  # made on SD1.5, but the file says SDXL
        StackLora("plain.safetensors", 0.5, 0.5, None),
    )
    kept, said = settle_stack(carried, FARM, FUNNEL, "funnel")
    assert [lora.family for lora in kept] == ["sdxl", None]
    assert said[0] == "wc.safetensors is an SDXL LoRA: only Refined, Polished get it, not Drafts."
    assert said[1] == "wc.safetensors is only on big: its jobs go there only."
    assert said[2] == "plain.safetensors is only on small: its jobs go there only."


def test_pony_loras_fit_sdxl_graphs() -> None:
    kept, said = settle_stack((StackLora(PONY, 1.0, 1.0),), FARM, [("Concept", "sdxl")], "concept")
    assert kept[0].family == "pony" and kept[0].fits("sdxl") and not kept[0].fits("sd15")
    assert said == [f"{PONY} is only on big: its jobs go there only."]


def test_left_out_when_no_node_has_it_or_no_stage_fits_it() -> None:
    carried = (StackLora("gone.safetensors", 1, 1), StackLora("detail.safetensors", 1, 1))
    kept, said = settle_stack(carried, FARM, [("Concept", "sdxl")], "concept")
    assert kept == ()
    assert said == [
        "gone.safetensors is on no node of the farm, so it was left out of the stack.",
        "detail.safetensors is an SD1.5 LoRA and the concept builder makes SDXL pictures, "
        "so it was left out of the stack.",
    ]


def test_a_node_that_is_down_is_named_and_nothing_is_checked_when_all_are() -> None:
    only_there = (StackLora("wc.safetensors", 1, 1),)
    kept, said = settle_stack(only_there, [down("big"), FARM[1]], FUNNEL, "funnel")
    assert kept == ()
    assert said == [
        "wc.safetensors is on no node of the farm that answered (big did not), "
        "so it was left out of the stack."
    ]
    kept, said = settle_stack(only_there, [down("big"), down("small")], FUNNEL, "funnel")
    assert kept == only_there and said[0].startswith("No node answered")
    assert settle_stack((), [down("big")], FUNNEL, "funnel") == ((), [])


names = st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=12)
strengths = st.floats(-4, 4, allow_nan=False).map(lambda value: round(value, 2))


@given(
    st.lists(
        st.builds(
            StackLora,
            names.map(lambda n: f"{n}.safetensors"),
            strengths,
            strengths,
            st.sampled_from([None, "sd15", "sdxl", "pony"]),
        ),
        max_size=4,
    )
)
def test_a_stack_survives_the_saved_state_family_included(loras: list[StackLora]) -> None:
    back = stack_from_json(stack_to_json(tuple(loras)))
    assert back == tuple(loras)
    assert [lora.family for lora in back] == [lora.family for lora in loras]
