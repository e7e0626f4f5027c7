"""The LoRA browser: search as you type, filters, one row per LoRA the farm has.

Attributes down: the screen sets `catalog`, the checkpoint's family and the
marks; the browser filters and paints. It tells the screen nothing but which
row is highlighted (`highlighted_name`); keys that act on a row belong to the
screen, so the browser stays a list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from imgen_tui.flows.lora_catalog import FAMILY_LABELS, LoraEntry, filter_catalog, short_name

SIZE_UNITS = ((1e9, "GB"), (1e6, "MB"), (1e3, "kB"))


def human_size(size: int | None) -> str:
    if size is None:
        return "?"
    for factor, unit in SIZE_UNITS:
        if size >= factor:
            return f"{size / factor:.0f} {unit}" if unit != "GB" else f"{size / factor:.1f} GB"
    return f"{size} B"


def row_text(entry: LoraEntry, marks: str = "") -> Text:
    """Two lines: name, family, size, nodes; then the trigger words."""
    text = Text()
    if marks:
        text.append(f"[{marks}] ", style="bold magenta")
    text.append(short_name(entry.name), style="bold")
    text.append(f"  {entry.family_label or '?'}", style="cyan" if entry.family else "dim")
    text.append(f"  {human_size(entry.size)}", style="dim")
    nodes = ", ".join(n.removeprefix("gpu-") for n in entry.nodes) or "no node"
    text.append(f"  {nodes}", style="green" if entry.nodes else "red")
    words = ", ".join(entry.trigger_words) or "no trigger words known"
    text.append(f"\n  {words}", style="italic" if entry.trigger_words else "dim italic")
    return text


class LoraBrowser(Vertical):
    DEFAULT_CSS = """
    LoraBrowser #lora-search { height: 3; }
    LoraBrowser #lora-filters { height: 1; color: $text-muted; }
    LoraBrowser #lora-list { height: 1fr; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.catalog: list[LoraEntry] = []
        self.family: str | None = None  # filter: only this family
        self.node: str | None = None  # filter: only LoRAs this node has
        self.works_with: str | None = None  # the checkpoint family, when that filter is on
        self.checkpoint_family = "sd15"
        self.marks: dict[str, str] = {}  # LoRA name -> "A", "B" or "AB"
        self.rows: list[LoraEntry] = []
        self.waiting = "asking the nodes for their LoRAs…"  # until the catalog arrives

    def compose(self) -> ComposeResult:
        yield Input(placeholder="search LoRAs (/)", id="lora-search")
        yield Static("", id="lora-filters")
        yield OptionList(id="lora-list")

    def on_mount(self) -> None:
        self.refilter()

    @property
    def query_text(self) -> str:
        return self.query_one("#lora-search", Input).value

    @property
    def highlighted_name(self) -> str | None:
        options = self.query_one("#lora-list", OptionList)
        index = options.highlighted
        if index is None or not 0 <= index < len(self.rows):
            return None
        return self.rows[index].name

    def set_catalog(self, catalog: Sequence[LoraEntry]) -> None:
        self.catalog = list(catalog)
        self.waiting = ""
        self.refilter()

    # -- filters (the screen's keys call these) ---------------------------------------------------

    def cycle_family(self) -> str:
        families = [None, *sorted({e.family for e in self.catalog if e.family})]
        self.family = families[(families.index(self.family) + 1) % len(families)]
        self.refilter()
        return FAMILY_LABELS.get(self.family or "", "any family")

    def cycle_node(self) -> str:
        nodes = [None, *dict.fromkeys(n for e in self.catalog for n in (*e.nodes, *e.missing_on))]
        self.node = nodes[(nodes.index(self.node) + 1) % len(nodes)] if self.node in nodes else None
        self.refilter()
        return self.node or "any node"

    def toggle_works_with(self) -> bool:
        self.works_with = None if self.works_with else self.checkpoint_family
        self.refilter()
        return self.works_with is not None

    @on(Input.Changed, "#lora-search")
    def _typed(self) -> None:
        self.refilter()

    # -- painting ---------------------------------------------------------------------------------

    def refilter(self) -> None:
        keep = self.highlighted_name
        if self.works_with is not None:
            self.works_with = self.checkpoint_family
        self.rows = filter_catalog(
            self.catalog,
            self.query_text,
            family=self.family,
            node=self.node,
            works_with=self.works_with,
        )
        options = self.query_one("#lora-list", OptionList)
        options.clear_options()
        options.add_options(
            [Option(row_text(e, self.marks.get(e.name, "")), id=e.name) for e in self.rows]
        )
        if not self.rows:
            options.add_option(Option(self._empty_text(), disabled=True))
        else:
            names = [e.name for e in self.rows]
            options.highlighted = names.index(keep) if keep in names else 0
        self._paint_filters()

    def _empty_text(self) -> Text:
        if self.waiting:
            return Text(self.waiting, style="dim")
        if not self.catalog:
            return Text("no node listed any LoRA (F2 shows the nodes)", style="yellow")
        if self.query_text.strip():
            return Text(
                f"no LoRA matches '{self.query_text.strip()}': clear the search (esc) "
                "or loosen the filters",
                style="yellow",
            )
        return Text("no LoRA passes these filters: f, o and w change them", style="yellow")

    def _paint_filters(self) -> None:
        parts = [
            f"family {FAMILY_LABELS.get(self.family or '', 'any')}",
            f"node {self.node or 'any'}",
            f"works with {FAMILY_LABELS.get(self.works_with or '', '')}"
            if self.works_with
            else "all checkpoints",
            f"{len(self.rows)}/{len(self.catalog)}",
        ]
        self.query_one("#lora-filters", Static).update("  ·  ".join(parts))
