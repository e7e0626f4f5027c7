"""The browser's search and intent bar: pure pattern matching, no model."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from imgen_tui.flows.workflow_filter import describe_intent, filter_workflows, parse_intent


@dataclass(frozen=True)
class Card:
    name: str
    task: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    description: str = ""
    category: str = "shipped"
    family: str = "sd15"


CARDS = [
    Card("sd15_txt2img", "txt2img", ("text",), ("image",), "fast drafts"),
    Card("sdxl_img2img", "img2img", ("text", "image"), ("image",), family="sdxl"),
    Card("upscale_esrgan", "upscale", ("image",), ("image",), family="any"),
    Card("wan_i2v", "video", ("text", "image"), ("video",), "image to video with WAN"),
    Card("wan_t2v", "video", ("text",), ("video",)),
    Card("flux_txt2img", "txt2img", ("text",), ("image",), family="flux", category="user"),
]


def names(search: str = "", intent: str = "") -> list[str]:
    return [card.name for card in filter_workflows(CARDS, search=search, intent_text=intent)[0]]


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("upscale", ["upscale_esrgan"]),
        ("I want to… make it bigger", ["upscale_esrgan"]),
        ("image to video", ["wan_i2v"]),
        ("animate my photo", ["wan_i2v"]),
        ("text to video", ["wan_t2v"]),
        ("text to image", ["sd15_txt2img", "flux_txt2img"]),
        ("txt2img", ["sd15_txt2img", "flux_txt2img"]),
        ("edit a photo", ["sdxl_img2img"]),
        ("image to image", ["sdxl_img2img"]),
    ],
)
def test_an_intent_keeps_the_workflows_whose_media_fit(phrase: str, expected: list[str]) -> None:
    assert names(intent=phrase) == expected


def test_an_unknown_phrase_searches_its_words_instead() -> None:
    assert parse_intent("something with flux") is None
    assert names(intent="flux") == ["flux_txt2img"]
    assert names(intent="nothing like this") == []


def test_search_needs_every_word_somewhere_in_the_card() -> None:
    assert names(search="sdxl") == ["sdxl_img2img"]
    assert names(search="wan video") == ["wan_i2v", "wan_t2v"]
    assert names(search="user") == ["flux_txt2img"]  # the folder is a category
    assert names(search="txt2img flux") == ["flux_txt2img"]
    assert names(search="  ") == [card.name for card in CARDS]


def test_search_and_intent_combine() -> None:
    assert names(search="flux", intent="text to image") == ["flux_txt2img"]
    assert names(search="sdxl", intent="upscale") == []


def test_the_line_says_what_was_understood() -> None:
    kept, intent = filter_workflows(CARDS, intent_text="upscale")
    assert describe_intent(intent, "upscale", kept) == "I want to… upscale: 1 workflow"
    kept, intent = filter_workflows(CARDS, intent_text="flux")
    assert "no intent recognised in 'flux'" in describe_intent(intent, "flux", kept)
