"""A screen that is one table refreshed twice a second: the base of Nodes and Queue."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult, ScreenStackError
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header


class LiveTableScreen(Screen[None]):
    COLUMNS: ClassVar[tuple[str, ...]] = ()

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(cursor_type="row")
        yield Footer()

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
