"""Sessions (Home `s`): every session of every flow; search, sort, open, delete, export.

The list comes from two queries and opens at once; each session's disk use
is measured afterwards in a thread (and cached by the store until the session
changes), so hundreds of sessions cost nothing to open. Search and sort are
`flows/session_list.py`; which screen reopens a flow is `resume.py`'s table.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from imgen_tui.flows.session_list import SORTS, SessionRow, next_sort, shown_rows
from imgen_tui.llm.labels import LabelRun, label_session
from imgen_tui.llm.ollama_stages import LlmError
from imgen_tui.scheduler.farm_stats import size_text
from imgen_tui.store import StoreError
from imgen_tui.store.files import safe_name
from imgen_tui.store.records import SessionDetails
from imgen_tui.ui.graphics import image_widget
from imgen_tui.ui.screens.export_dialog import ExportChoice, ExportDialog
from imgen_tui.ui.screens.modals import ConfirmScreen
from imgen_tui.ui.screens.resume import resumer_for
from imgen_tui.ui.widgets.thumbs import load_picture

if TYPE_CHECKING:
    from imgen_tui.ui.app import ImgenApp

STRIP = 6  # picked thumbnails shown for the highlighted session
COLUMNS = ("flow", "title", "when", "images", "picks", "disk")
TITLE_WIDTH = 48


class SessionsScreen(Screen[None]):
    DEFAULT_CSS = """
    SessionsScreen #session-search { margin: 0 1; }
    SessionsScreen #session-table { height: 1fr; }
    SessionsScreen #picked-strip { height: 10; }
    SessionsScreen .strip-picture { width: 16; height: 8; margin: 0 1; }
    SessionsScreen #session-detail { height: auto; max-height: 4; padding: 0 1; }
    """
    BINDINGS = [
        Binding("slash", "search", "Search", id="sessions.search"),
        Binding("o", "sort", "Sort", id="sessions.sort"),
        Binding("d,delete", "delete", "Delete", id="sessions.delete"),
        Binding("E", "export", "Export", id="sessions.export"),
        Binding("G", "gallery", "Gallery", id="sessions.gallery"),
        Binding("L", "label", "Label", id="sessions.label"),
        Binding("escape,q", "leave", "Back", id="sessions.back"),
    ]
    HELP = (
        "**Sessions.** Every session of every flow, newest first: its flow, title (the "
        "first prompt), when, images, picks and disk use, and a strip of its picks. "
        "**enter** reopens it in its own flow where it was; **/** searches prompts, "
        "labels, dates (2026-12-01, December, Monday) and flows; **o** changes the "
        "order; **d** deletes (it asks, naming the space that comes back); **E** "
        "exports the picks with their sidecars, or every image, to a folder you type; "
        "**G** is the gallery of every pick and final; **L** labels the session's images "
        "(caption, tags, NSFW flag) with the vision model, in the background."
    )

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[SessionRow] = []
        self.sort = "newest"
        self.query_text = ""
        self._strip_shown: str | None = None
        self._left = False  # another screen has been on top since the list was read

    @property
    def imgen(self) -> ImgenApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="/ search: prompt words, label, date, flow", id="session-search")
        yield DataTable(cursor_type="row", id="session-table")
        yield Static("", id="session-detail")
        with Horizontal(id="picked-strip"):
            for _ in range(STRIP):
                yield image_widget(self.imgen.renderer)(None, classes="strip-picture")
        yield Footer()

    async def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        table.focus()
        await self.reload()

    async def reload(self) -> None:
        """The list now; the sizes not yet known follow from a thread."""
        store = self.imgen.engine.store
        if store is None:
            return
        try:
            sessions = await store.sessions(disk_use=False)
            details = await store.session_details(thumbs=STRIP)
            labels = await store.session_labels()
        except StoreError as error:
            self.notify(f"{str(error)[0].upper()}{str(error)[1:]}.", severity="error")
            return
        self.rows = [
            SessionRow(
                info=session,
                details=details.get(session.id, SessionDetails()),
                labels=labels.get(session.id, ""),
                disk_bytes=store.cached_disk_use(session),
            )
            for session in sessions
        ]
        self.redraw()
        if any(row.disk_bytes is None for row in self.rows):
            self.measure_disk_use()

    @work(exclusive=True, group="disk-use", exit_on_error=False)
    async def measure_disk_use(self) -> None:
        store = self.imgen.engine.store
        assert store is not None
        sizes = await store.disk_use([row.info for row in self.rows])
        self.rows = [dataclasses.replace(row, disk_bytes=sizes.get(row.id)) for row in self.rows]
        table = self.query_one(DataTable)
        for row in self.rows:
            if row.id in table.rows:
                table.update_cell(row.id, "disk", size_text(row.disk_bytes))
        if self.sort == "disk":
            self.redraw()

    def shown(self) -> list[SessionRow]:
        return shown_rows(self.rows, self.query_text, self.sort)

    def redraw(self) -> None:
        table = self.query_one(DataTable)
        current = self.highlighted()
        table.clear()
        shown = self.shown()
        for row in shown:
            table.add_row(
                row.info.flow,
                Text(_short(row.info.title or "(untitled)", TITLE_WIDTH)),
                row.when(),
                str(row.info.image_count),
                str(row.details.picks),
                "…" if row.disk_bytes is None else size_text(row.disk_bytes),
                key=row.id,
            )
        if current is not None and current.id in table.rows:
            table.move_cursor(row=table.get_row_index(current.id))
        self.sub_title = f"{len(shown)} of {len(self.rows)} sessions, {SORTS[self.sort][0]}"
        self._show_highlighted()

    def highlighted(self) -> SessionRow | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((row for row in self.rows if row.id == key), None)

    # -- the highlighted session ------------------------------------------------------------

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._show_highlighted()

    def _show_highlighted(self) -> None:
        row = self.highlighted()
        detail = self.query_one("#session-detail", Static)
        if row is None:
            detail.update("No session matches." if self.rows else "No sessions yet.")
            self._show_strip(None)
            return
        prompts = row.details.prompts.splitlines()
        lines = [f"{row.id[:8]} · {row.info.flow} · {prompts[0] if prompts else row.info.title}"]
        if len(prompts) > 1:
            lines.append(f"then: {' → '.join(prompts[1:3])}{' …' if len(prompts) > 3 else ''}")
        if row.labels:
            lines.append(f"labels: {_short(row.labels.replace(chr(10), '; '), 120)}")
        detail.update(Text("\n".join(lines)))
        self._show_strip(row)

    def _show_strip(self, row: SessionRow | None) -> None:
        wanted = None if row is None else row.id
        if wanted == self._strip_shown:
            return
        self._strip_shown = wanted
        self.load_strip(row.details.picked_thumbs if row else ())

    @work(exclusive=True, group="strip", exit_on_error=False)
    async def load_strip(self, thumbs: tuple[Path, ...]) -> None:
        pictures = list(self.query(".strip-picture"))
        for index, widget in enumerate(pictures):
            picture = None
            if index < len(thumbs):
                try:
                    picture = await load_picture(thumbs[index], 256)
                except OSError:
                    picture = None  # a thumbnail removed by hand: an empty slot, not an error
            widget.image = picture  # type: ignore[attr-defined]
            widget.display = index < len(thumbs)

    # -- actions ------------------------------------------------------------------------------

    def action_search(self) -> None:
        self.query_one("#session-search", Input).focus()

    @on(Input.Changed, "#session-search")
    def _search(self, event: Input.Changed) -> None:
        self.query_text = event.value
        self.redraw()

    @on(Input.Submitted, "#session-search")
    def _search_done(self) -> None:
        self.query_one(DataTable).focus()

    def action_label(self) -> None:
        row = self.highlighted()
        if row is None:
            return
        if self.imgen.llm_stages is None:
            self.notify(
                "Labels need the vision model (vision: in llm.yaml) on Ollama, and this run "
                "has none (demo or --no-llm); start imgen-tui without them, or use "
                "`imgen-tui label SESSION`.",
                severity="warning",
                timeout=10,
            )
            return
        self.label_in_background(row)

    @work(exclusive=True, group="labels", exit_on_error=False)
    async def label_in_background(self, row: SessionRow) -> None:
        """One image after another; the sub-title counts, the list is searchable after."""
        store, stages = self.imgen.engine.store, self.imgen.llm_stages
        assert store is not None and stages is not None

        def progress(run: LabelRun) -> None:
            self.sub_title = f"labelling {row.id[:8]}: {run.done} of {run.total}"

        try:
            run = await label_session(store, stages, row.id, progress=progress)
        except LlmError as error:
            self.notify(f"{str(error)[0].upper()}{str(error)[1:]}.", severity="error", timeout=10)
            return
        finally:
            self.sub_title = ""
        for problem in run.failed:
            self.notify(problem, severity="warning", timeout=10)
        self.notify(f"Labelled {run.labelled} of {run.total} images of session {row.id[:8]}.")
        await self.reload()

    def action_gallery(self) -> None:
        from imgen_tui.ui.screens.gallery import GalleryScreen

        self.app.push_screen(GalleryScreen())

    def action_sort(self) -> None:
        self.sort = next_sort(self.sort)
        self.redraw()
        self.notify(f"Sessions {SORTS[self.sort][0]}.", timeout=2)

    def action_leave(self) -> None:
        search = self.query_one("#session-search", Input)
        if search.has_focus:
            self.query_one(DataTable).focus()
            return
        self.app.pop_screen()

    @on(DataTable.RowSelected)
    async def _open(self) -> None:
        row = self.highlighted()
        if row is None:
            return
        resume = resumer_for(row.info.flow)
        if resume is None:
            self.notify(
                f"Session {row.id[:8]} was made by `imgen-tui {row.info.flow}`, which has no "
                "screen to reopen it in; export (E) or delete (d) it here.",
                severity="warning",
            )
            return
        await self.app.push_screen(resume(row.id))

    def on_screen_suspend(self) -> None:
        self._left = True

    async def on_screen_resume(self) -> None:
        if self._left:  # back from a flow (or a dialog): its session may have changed
            self._left = False
            await self.reload()

    def action_delete(self) -> None:
        row = self.highlighted()
        if row is None:
            return
        size = "its files" if row.disk_bytes is None else size_text(row.disk_bytes)
        question = (
            f"Delete session {row.id[:8]} ({_short(row.info.title, 40)}, {row.info.flow}): "
            f"{row.info.image_count} images, {row.details.picks} picks and their sidecars? "
            f"{size} come back."
        )

        async def decided(yes: bool | None) -> None:
            if yes:
                await self._delete(row)

        self.app.push_screen(ConfirmScreen(question), decided)

    async def _delete(self, row: SessionRow) -> None:
        store = self.imgen.engine.store
        assert store is not None
        try:
            left = await store.delete_session(row.id)
        except StoreError as error:
            self.notify(f"{str(error)[0].upper()}{str(error)[1:]}.", severity="error", timeout=10)
            return
        self.rows = [each for each in self.rows if each.id != row.id]
        self.redraw()
        if left:
            self.notify(
                f"Deleted session {row.id[:8]}, but {len(left)} of its files could not be "
                f"removed, e.g. {left[0]}.",
                severity="warning",
                timeout=10,
            )
        else:
            freed = "" if row.disk_bytes is None else f"; {size_text(row.disk_bytes)} freed"
            self.notify(f"Deleted session {row.id[:8]} ({row.info.title}){freed}.")

    def action_export(self) -> None:
        row = self.highlighted()
        if row is None:
            return
        suggestion = self.imgen.export_dir / safe_name(f"{row.info.title}-{row.id[:8]}")

        async def chosen(choice: ExportChoice | None) -> None:
            if choice is not None:
                await self._export(row, choice)

        self.app.push_screen(
            ExportDialog(f"session {row.id[:8]} ({_short(row.info.title, 40)})", suggestion),
            chosen,
        )

    async def _export(self, row: SessionRow, choice: ExportChoice) -> None:
        store = self.imgen.engine.store
        assert store is not None
        if not choice.everything and not row.details.picks:
            self.notify(
                f"Session {row.id[:8]} has no picks: tick 'every image' to export all "
                f"{row.info.image_count} images.",
                severity="warning",
            )
            return
        try:
            copies = await store.export_session(row.id, choice.folder, everything=choice.everything)
        except StoreError as error:
            self.notify(f"{str(error)[0].upper()}{str(error)[1:]}.", severity="error", timeout=10)
            return
        what = "images" if choice.everything else "picked images"
        self.notify(f"Exported {len(copies) // 2} {what} with their sidecars to {choice.folder}.")


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
