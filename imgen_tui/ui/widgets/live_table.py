"""A screen that is one table refreshed twice a second: the base of Nodes and Queue."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult, ScreenStackError
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static


class LiveTableScreen(Screen[None]):
    """A live table and, under it, the whole story of the row under the cursor.

    Cells are kept short so every column fits; `detail_for` gives the full
    text (a long "down (…)" reason) for the highlighted row.
    """

    COLUMNS: ClassVar[tuple[str, ...]] = ()

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(cursor_type="row")
        yield Static("", id="row-detail")
        yield Footer()

    def detail_for(self, key: str) -> str:
        return ""

    def _show_detail(self) -> None:
        table = self.query_one(DataTable)
        text = ""
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            text = self.detail_for(key or "")
        self.query_one("#row-detail", Static).update(text)

    def on_data_table_row_highlighted(self) -> None:
        self._show_detail()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in self.COLUMNS:
            table.add_column(column, key=column)
        self.refresh_table()
        self.set_interval(0.5, self._tick)

    def _tick(self) -> None:
        try:
            on_top = self.app.screen is self
        except ScreenStackError:  # the app is closing: its screens are already gone
            return
        if on_top:  # a covered screen repainting repaints the one on top
            self.refresh_table()
            self._show_detail()

    def refresh_table(self) -> None:
        raise NotImplementedError

    def put_row(self, key: str, row: tuple[object, ...]) -> None:
        """Add the row, or update its cells in place so the cursor stays where it is."""
        table = self.query_one(DataTable)
        if key in table.rows:
            for column, value in zip(self.COLUMNS, row, strict=True):
                table.update_cell(key, column, value)
        else:
            table.add_row(*row, key=key)
