"""`config/concept.yaml`: the concept builder's fields and round settings, checked strictly.

The field list is data so that a user can add a field ("camera", "palette")
by editing YAML; the mistakes that edit invites (a duplicate name, a
catch-all or family that names nothing) are reported with the file, the
line and the key, in one sentence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from imgen_tui.config import Tier
from imgen_tui.flows.round_maker import MoreLikeThisConfig
from imgen_tui.llm.fields import ConceptField
from imgen_tui.locations import bundled_dir, user_config_dir
from imgen_tui.yamlfile import ConfigError, StrictModel, load_yaml_model

FIELD_NAME = r"^[a-z][a-z0-9_]*$"


class FieldConfig(StrictModel):
    name: str = Field(pattern=FIELD_NAME)
    label: str | None = None
    default: str = ""
    required: bool = False
    noun: str | None = None
    aliases: tuple[str, ...] = ()
    hint: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    def as_field(self, text: str, *, locked: bool) -> ConceptField:
        return ConceptField(self.name, text, locked, self.noun, self.aliases)


class ConceptConfig(StrictModel):
    fields: list[FieldConfig] = Field(min_length=1)
    catch_all: str = "mood"
    variations: int = Field(default=4, ge=1, le=32)
    family: str = "sdxl"
    workflows: dict[str, str] = Field(
        default_factory=lambda: {
            "sd15": "sd15_txt2img",
            "sdxl": "sdxl_txt2img",
            "flux": "flux_txt2img",
        }
    )
    min_tier: Tier = "quality"
    params: dict[str, Any] = Field(default_factory=dict)
    more_like_this: MoreLikeThisConfig = MoreLikeThisConfig()
    upscale_workflow: str = "upscale_esrgan"

    @property
    def workflow(self) -> str:
        return self.workflows[self.family]

    def field(self, name: str) -> FieldConfig | None:
        return next((f for f in self.fields if f.name == name), None)


def concept_config_path(path: Path | None = None) -> Path:
    """The user's concept.yaml if there is one, else the shipped one."""
    candidates = [path] if path else [user_config_dir() / "concept.yaml"]
    candidates.append(bundled_dir("config") / "concept.yaml")
    return next(p for p in candidates if p is not None and p.is_file())


def load_concept_config(path: Path | None = None) -> ConceptConfig:
    chosen = concept_config_path(path)
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{chosen}: cannot be read ({error.strerror}).") from None
    return parse_concept_config(text, chosen)


def parse_concept_config(text: str, path: Path) -> ConceptConfig:
    document = load_yaml_model(text, path, ConceptConfig, what="a 'fields:' list")
    config = document.value
    seen: dict[str, int] = {}
    for index, each in enumerate(config.fields):
        if each.name in seen:
            line = document.line_of(("fields", index, "name"))
            raise ConfigError(
                f"{path}, line {line}: fields[{index}].name '{each.name}' is already "
                f"fields[{seen[each.name]}]'s name; give each field its own name."
            )
        seen[each.name] = index
    if config.catch_all not in seen:
        raise ConfigError(
            f"{path}, line {document.line_of(('catch_all',))}: catch_all '{config.catch_all}' "
            f"is not a field; use one of {', '.join(seen)}."
        )
    if config.family not in config.workflows:
        raise ConfigError(
            f"{path}, line {document.line_of(('family',))}: family '{config.family}' has no "
            f"template under workflows:; add one or use {', '.join(config.workflows)}."
        )
    return config
