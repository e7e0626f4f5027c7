"""What each model family's prompts look like, told to stage 2 and used by the check."""

from __future__ import annotations

SD_RULES = (
    "Family {family}: comma-separated tags and short phrases, most important first. "
    "Emphasis is ComfyUI's (phrase:1.2); de-emphasis is (phrase:0.8) - there is no [phrase] "
    "and no BREAK. Keep weights between 0.5 and 1.5. CLIP reads 77 tokens per chunk: keep "
    "the subject and its key traits in the first ~70 tokens."
)
QUALITY_TAGS: dict[str, tuple[str, ...]] = {
    "pony": ("score_9", "score_8_up", "score_7_up"),
    "illustrious": ("masterpiece", "best quality", "very aesthetic"),
}
FLUX_RULES = (
    "Family flux: one or two plain natural-language sentences, no tag lists, no weights, "
    "and no negative prompt (leave negative empty)."
)


def syntax_rules(family: str) -> str:
    if family.startswith("flux"):
        return FLUX_RULES
    rules = SD_RULES.format(family=family)
    if family in QUALITY_TAGS:
        rules += f" Start with the quality tags: {', '.join(QUALITY_TAGS[family])}."
    return rules


def uses_weights(family: str) -> bool:
    return not family.startswith("flux")


def quality_tags(family: str) -> tuple[str, ...]:
    return QUALITY_TAGS.get(family, ())
