"""Seed 001's CSV sets: prompts in the right order, and every bad file named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgen_tui.flows.csvsets import set_prompts
from imgen_tui.yamlfile import ConfigError

CARDS = """value,suit,personality,visual_layout
Ace,Spades,The Seeker,"Large single black spade, centred"
Two,Hearts,The Pair,"Two red heart symbols, mirrored"
"""


def write(tmp_path: Path, text: str | bytes, name: str = "cards.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_prompts_follow_base_theme_row_style_order(tmp_path: Path) -> None:
    prompts = set_prompts(
        write(tmp_path, CARDS),
        "{value} of {suit}, {visual_layout}",
        base_prompt="a playing card",
        theme="gothic style",
        style_suffix="highly detailed",
    )
    assert prompts == [
        "a playing card, gothic style, Ace of Spades, Large single black spade, centred, highly detailed",
        "a playing card, gothic style, Two of Hearts, Two red heart symbols, mirrored, highly detailed",
    ]


def test_a_byte_order_mark_and_blank_lines_are_fine(tmp_path: Path) -> None:
    path = write(tmp_path, ("\ufeff" + CARDS + "\n\n").encode())
    assert len(set_prompts(path, "{value} of {suit}")) == 2


@pytest.mark.parametrize(
    ("content", "template", "message"),
    [
        (
            CARDS,
            "{value} of {colour}",
            r"cards.csv: the template uses \{colour\}, but the file has no column 'colour' \(its columns are: value, suit, personality, visual_layout\)",
        ),
        ("", "{value}", r"cards.csv is empty: it needs a header row"),
        ("   \n", "{value}", r"cards.csv is empty"),
        ("value,suit\n", "{value}", r"cards.csv has a header but no rows"),
        (
            "value,suit\nAce,Spades\nTwo\n",
            "{value}",
            r"cards.csv line 3: expected 2 columns \(value, suit\), found 1",
        ),
        ("value,suit\nAce,\n", "{suit}", r"cards.csv line 2: column 'suit' is empty"),
        (
            b"value,suit\nAce,Spades\nZw\xf6lf,Herz\n",
            "{value}",
            r"cards.csv line 3 is not UTF-8 text \(byte 0xf6\); save the file as UTF-8",
        ),
        (CARDS, "{value} of {suit", r"the template '\{value\} of \{suit' is not valid"),
        (CARDS, "{0} of {suit}", r"uses \{0\}: name a column"),
        (CARDS, "a card", r"uses no column"),
        (CARDS, "{value!r}", r"plain \{column\} placeholders only"),
    ],
)
def test_bad_sets_are_one_clear_sentence(
    tmp_path: Path, content: str | bytes, template: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        set_prompts(write(tmp_path, content), template)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read the set file .*nope.csv"):
        set_prompts(tmp_path / "nope.csv", "{value}")


def test_ten_thousand_rows_make_ten_thousand_prompts(tmp_path: Path) -> None:
    rows = "".join(f"{i},Spades\n" for i in range(10_000))
    prompts = set_prompts(write(tmp_path, "value,suit\n" + rows), "{value} of {suit}")
    assert len(prompts) == 10_000 and prompts[-1] == "9999 of Spades"
