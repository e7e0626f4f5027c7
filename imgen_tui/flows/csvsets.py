"""Seed 001's CSV sets: one prompt per row, built base prompt → theme → row template → style.

Front words weigh most in SD prompts, so the order is fixed. Every problem
with the file is one sentence naming the file, the line and the column.
"""

from __future__ import annotations

import csv
import io
import string
from dataclasses import dataclass
from pathlib import Path

from imgen_tui.yamlfile import ConfigError


@dataclass(frozen=True)
class SetRow:
    line: int
    values: dict[str, str]


def template_fields(template: str) -> list[str]:
    """The column names a template uses, in order; refuses what str.format would trip on."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ConfigError(
            f"the template {template!r} is not valid ({error}): write {{column}} for a column "
            f"and {{{{ }}}} for a literal brace"
        ) from None
    fields: list[str] = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() and not name.replace(" ", "_").isidentifier():
            raise ConfigError(
                f"the template {template!r} uses {{{name}}}: name a column, e.g. {{suit}}"
            )
        if spec or conversion:
            raise ConfigError(
                f"the template {template!r} formats {{{name}}}; plain {{column}} placeholders only"
            )
        fields.append(name)
    if not fields:
        raise ConfigError(f"the template {template!r} uses no column: add {{column}} placeholders")
    return fields


def read_set(path: Path, needed: list[str]) -> list[SetRow]:
    """The rows of a CSV set, checked against the columns the template needs."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read the set file {path}: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ConfigError(
            f"{path} line {line} is not UTF-8 text (byte 0x{raw[error.start]:02x}); "
            f"save the file as UTF-8 and try again"
        ) from None
    if not text.strip():
        raise ConfigError(
            f"{path} is empty: it needs a header row naming the columns and one row per image"
        )
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader)]
        missing = [name for name in needed if name not in header]
        if missing:
            raise ConfigError(
                f"{path}: the template uses {{{missing[0]}}}, but the file has no column "
                f"'{missing[0]}' (its columns are: {', '.join(header)})"
            )
        rows: list[SetRow] = []
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue  # blank lines are allowed
            if len(record) != len(header):
                raise ConfigError(
                    f"{path} line {reader.line_num}: expected {len(header)} columns "
                    f"({', '.join(header)}), found {len(record)}"
                )
            values = dict(zip(header, (cell.strip() for cell in record), strict=True))
            for name in needed:
                if not values[name]:
                    raise ConfigError(
                        f"{path} line {reader.line_num}: column '{name}' is empty, "
                        f"but the template needs it"
                    )
            rows.append(SetRow(reader.line_num, values))
    except csv.Error as error:
        raise ConfigError(f"{path} line {reader.line_num}: {error}") from None
    if not rows:
        raise ConfigError(f"{path} has a header but no rows: add one row per image")
    return rows


def set_prompts(
    path: Path,
    template: str,
    *,
    base_prompt: str = "",
    theme: str = "",
    style_suffix: str = "",
) -> list[str]:
    """One prompt per row, in seed 001's order: base, theme, row, style."""
    fields = template_fields(template)
    prompts = []
    for row in read_set(path, fields):
        parts = (base_prompt, theme, template.format_map(row.values), style_suffix)
        prompts.append(", ".join(part.strip() for part in parts if part.strip()))
    return prompts
