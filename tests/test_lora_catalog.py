"""The farm catalog: one entry per LoRA with its metadata and which nodes have it."""

from __future__ import annotations

from imgen_tui.comfy.lora_answers import LoraFile, LoraMetadata, NodeLoras
from imgen_tui.flows.lora_catalog import availability_map, build_catalog

FOX = LoraMetadata(family="sd15", trigger_words=("red fox",), title="Fox")


def node(name: str, *files: str, **metadata: LoraMetadata) -> NodeLoras:
    return NodeLoras(
        node=name,
        files=tuple(LoraFile(name=f, size=10 if name == "premium" else None) for f in files),
        metadata={f"{key}.safetensors": value for key, value in metadata.items()},
    )


def test_entries_merge_nodes_and_take_metadata_from_whoever_had_it() -> None:
    catalog = build_catalog(
        [
            node("premium", "fox.safetensors", "Grain.safetensors"),
            node("quality", "fox.safetensors", fox=FOX),
            node("draft", "grain.pt"),
        ]
    )
    assert [entry.name for entry in catalog] == ["fox.safetensors", "grain.pt", "Grain.safetensors"]
    fox = catalog[0]
    assert fox.family == "sd15" and fox.family_label == "SD1.5"
    assert fox.trigger_words == ("red fox",) and fox.size == 10
    assert fox.nodes == ("premium", "quality") and fox.missing_on == ("draft",)
    assert fox.availability() == "on premium, quality; missing on draft"
    assert catalog[1].family is None and catalog[1].size is None
    assert catalog[1].to_json()["family"] is None


def test_a_node_that_did_not_answer_is_neither_having_nor_missing() -> None:
    catalog = build_catalog(
        [node("premium", "fox.safetensors"), NodeLoras(node="draft", error="draft is down")]
    )
    assert catalog[0].nodes == ("premium",) and catalog[0].missing_on == ()
    assert availability_map(catalog) == {"fox.safetensors": {"premium": True}}


def test_availability_map_names_every_answering_node() -> None:
    catalog = build_catalog([node("a", "x.safetensors"), node("b", "y.safetensors")])
    assert availability_map(catalog) == {
        "x.safetensors": {"a": True, "b": False},
        "y.safetensors": {"a": False, "b": True},
    }
    assert build_catalog([]) == []
