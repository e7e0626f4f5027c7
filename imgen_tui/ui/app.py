"""The Textual app: owns the engine, relays scheduler events down to the screens.

Attributes down, messages up: screens get the engine and the funnel config
from the app; scheduler events arrive as `JobUpdate` messages posted to every
screen on the stack, and each screen takes what concerns it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path

import platformdirs
from textual import events
from textual.app import App
from textual.binding import Binding

from imgen_tui.config import FarmConfig
from imgen_tui.flows.engine import Engine
from imgen_tui.flows.funnel import FunnelConfig, load_funnel_config
from imgen_tui.graphs.templates import WorkflowLibrary, load_library
from imgen_tui.llm.config import EnhancementStyle, load_llm_config, load_styles
from imgen_tui.llm.ollama_stages import OllamaStages
from imgen_tui.locations import bundled_dir, user_config_dir, user_state_dir, workflow_folders
from imgen_tui.store.files import write_json_atomic
from imgen_tui.store.fresh_thumbnails import FRESH
from imgen_tui.ui.collector import TICK_SECONDS, QuietCollector
from imgen_tui.ui.commands import ScreenActions
from imgen_tui.ui.frame_pacing import pace_screen_repaints
from imgen_tui.ui.graphics import Graphics, choose
from imgen_tui.ui.keymap import Scopes, check_keymap, load_keymap
from imgen_tui.ui.keymap_order import keep_remapped_keys_in_place
from imgen_tui.ui.messages import JobUpdate
from imgen_tui.ui.passthrough import use_tmux_passthrough
from imgen_tui.ui.screens.home import HomeScreen
from imgen_tui.ui.screens.modals import ConfirmScreen
from imgen_tui.ui.screens.nodes import NodesScreen
from imgen_tui.ui.screens.queue import QueueScreen
from imgen_tui.ui.widgets.round_view import ROUND_BINDINGS

log = logging.getLogger(__name__)


DEFAULT_THEME = "tokyo-night"


def remembered_theme(path: Path | None, default: str) -> str:
    """The theme saved last time; the default when there is none or the file is unreadable."""
    if path is None:
        return default
    try:
        theme = json.loads(path.read_text(encoding="utf-8")).get("theme")
    except (OSError, ValueError, AttributeError):
        return default
    return theme if isinstance(theme, str) and theme else default


def remember_theme(path: Path, theme: str) -> None:
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        settings = {}
    if not isinstance(settings, dict):
        settings = {}
    settings["theme"] = theme
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, settings)
    except OSError as error:
        log.warning("could not remember the theme in %s: %s", path, error)


def default_export_dir() -> Path:
    """Exported finals go where people keep pictures: ~/Pictures/imgen-tui on most desktops."""
    return Path(platformdirs.user_pictures_dir()) / "imgen-tui"


class ImgenApp(App[int]):
    TITLE = "imgen-tui"
    CSS_PATH = str(bundled_dir("themes") / "imgen.tcss")
    BINDINGS = [
        Binding("f1,question_mark", "toggle_help", "Help", id="app.help"),
        Binding("f2", "open_view('nodes')", "Nodes", id="app.nodes"),
        Binding("f3", "open_view('queue')", "Queue", id="app.queue"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True, id="app.quit"),
    ]
    SCREENS = {"nodes": NodesScreen, "queue": QueueScreen}
    COMMANDS = App.COMMANDS | {ScreenActions}

    def __init__(
        self,
        engine: Engine,
        *,
        funnel_config: FunnelConfig,
        library: WorkflowLibrary,
        renderer: str,
        notice: str | None = None,
        keymap_file: Path | None = None,
        llm_stages: OllamaStages | None = None,
        enhancement_styles: dict[str, EnhancementStyle] | None = None,
        export_dir: Path | None = None,
        settings_file: Path | None = None,
    ) -> None:
        pace_screen_repaints()  # before the first screen makes its repaint timer
        super().__init__()
        self.engine = engine
        self.llm_stages = llm_stages  # None: refine by the offline rules
        self.enhancement_styles = enhancement_styles or {}  # offered by the refine panel
        self.funnel_config = funnel_config
        self.library = library
        self.renderer = renderer
        self._notice = notice
        self._keymap_file = keymap_file
        self.export_dir = export_dir or default_export_dir()  # where E puts the final
        self.settings_file = settings_file  # what the app remembers between runs (its theme)
        self.collector = QuietCollector()  # full GC pauses only when no one is typing
        self._hangup_signals: list[signal.Signals] = []
        self._hung_up = False  # a signal ended the app: the farm's work is kept

    async def on_mount(self) -> None:
        theme = await asyncio.to_thread(remembered_theme, self.settings_file, DEFAULT_THEME)
        self.theme = theme if theme in self.available_themes else DEFAULT_THEME
        self.watch(self, "theme", self._remember_theme, init=False)
        self._apply_keymap()
        if self._notice:
            self.notify(self._notice, timeout=8)
        for problem in self.library.problems:
            self.notify(problem, severity="warning", timeout=12)
        await self.engine.start()
        self.run_worker(self._relay_events(), name="scheduler events", exclusive=True)
        await self.push_screen(HomeScreen())
        self.collector.start()
        self.set_interval(TICK_SECONDS, self.collector.tick)
        self._listen_for_hangup()

    def _listen_for_hangup(self) -> None:
        """SIGHUP (the SSH link or the terminal window closed) and SIGTERM end the app as q does.

        Without this the process died on the spot: the terminal was left in the
        app's screen mode and the demo farm's folders stayed in /tmp. The farm's
        running jobs are not cancelled, since nobody could be asked: the nodes
        finish them and the next start collects them, as after a crash.
        """
        loop = asyncio.get_running_loop()
        for hangup in (signal.SIGHUP, signal.SIGTERM):
            try:
                loop.add_signal_handler(hangup, self._hang_up, hangup)
            except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not main thread
                continue
            self._hangup_signals.append(hangup)

    def _hang_up(self, hangup: signal.Signals) -> None:
        log.warning("%s: leaving; running jobs are left to the nodes", hangup.name)
        self._hung_up = True
        self.exit(return_code=128 + hangup)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.InputEvent):
            self.collector.touched()
        await super().on_event(event)

    def _remember_theme(self, theme: str) -> None:
        """The theme chosen (ctrl+p → theme) is the one the next start opens with."""
        if self.settings_file is not None:
            self.run_worker(
                asyncio.to_thread(remember_theme, self.settings_file, theme), group="settings"
            )

    def _apply_keymap(self) -> None:
        """keys.yaml, checked line by line: a bad line is said once and changes nothing."""
        wanted, problem = load_keymap(self._keymap_file)
        problems = [problem] if problem else []
        if wanted and self._keymap_file is not None:
            keymap, found = check_keymap(wanted, binding_scopes(), self._keymap_file)
            problems += found
            if keymap:
                keep_remapped_keys_in_place()
                self.set_keymap(keymap)
        for each in problems:
            self.notify(each, severity="warning", timeout=12)

    async def _relay_events(self) -> None:
        assert self.engine.scheduler is not None
        async for event in self.engine.scheduler.subscribe():
            # Only to screens that listen: a covered screen that wakes up for a
            # message it ignores makes Textual repaint the whole screen on top.
            for screen in self.screen_stack:
                if hasattr(screen, "on_job_update"):
                    screen.post_message(JobUpdate(event))

    async def on_unmount(self) -> None:
        loop = asyncio.get_running_loop()
        for hangup in self._hangup_signals:
            loop.remove_signal_handler(hangup)
        self.collector.stop()
        await self.engine.stop(cancel_jobs=not self._hung_up)

    async def action_open_view(self, name: str) -> None:
        """F2/F3: the nodes or the queue; one replaces the other instead of piling up."""
        views = (NodesScreen, QueueScreen)
        if self.screen is self.get_screen(name):
            return
        if isinstance(self.screen, views):
            await self.switch_screen(name)
        else:
            await self.push_screen(name)

    def unfinished_jobs(self) -> int:
        scheduler = self.engine.scheduler
        if scheduler is None:
            return 0
        return sum(not job.state.finished for job in scheduler.jobs.values())

    async def action_quit(self) -> None:
        """Quit, asking first when jobs are still running (they would be cancelled)."""
        running = self.unfinished_jobs()
        if not running:
            self.exit()
            return
        if isinstance(self.screen, ConfirmScreen):
            return

        def decided(leave: bool | None) -> None:
            if leave:
                self.exit()

        await self.push_screen(
            ConfirmScreen(f"{running} jobs are still running. Cancel them and quit?"), decided
        )

    def action_toggle_help(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()


def binding_scopes() -> Scopes:
    """Every screen's bindings with the app's (active everywhere): what keys.yaml may remap.

    A screen that composes the round view has its `round.*` bindings too.
    """
    from imgen_tui.ui.screens.concept import ConceptScreen
    from imgen_tui.ui.screens.explorer import ExplorerScreen
    from imgen_tui.ui.screens.explorer_modals import LoraCompareScreen
    from imgen_tui.ui.screens.funnel import FunnelScreen
    from imgen_tui.ui.screens.gallery import GalleryScreen
    from imgen_tui.ui.screens.intent import IntentScreen
    from imgen_tui.ui.screens.keyframes import KeyframesScreen
    from imgen_tui.ui.screens.lightbox import CompareScreen, LightboxScreen
    from imgen_tui.ui.screens.refine import RefineScreen
    from imgen_tui.ui.screens.sessions import SessionsScreen
    from imgen_tui.ui.screens.workflow_run import WorkflowRunScreen
    from imgen_tui.ui.screens.workflows import WorkflowsScreen

    screens: list[type[object]] = [
        HomeScreen,
        FunnelScreen,
        NodesScreen,
        QueueScreen,
        LightboxScreen,
        CompareScreen,
        ConfirmScreen,
        RefineScreen,
        IntentScreen,
        ConceptScreen,
        ExplorerScreen,
        LoraCompareScreen,
        WorkflowsScreen,
        WorkflowRunScreen,
        SessionsScreen,
        GalleryScreen,
        KeyframesScreen,
    ]
    with_round_view = (
        FunnelScreen,
        ConceptScreen,
        ExplorerScreen,
        WorkflowRunScreen,
        KeyframesScreen,
    )
    app = [b for b in ImgenApp.BINDINGS if isinstance(b, Binding)]
    return {
        screen.__name__: app
        + [b for b in getattr(screen, "BINDINGS", []) if isinstance(b, Binding)]
        + (
            [b for b in ROUND_BINDINGS if isinstance(b, Binding)]
            if screen in with_round_view
            else []
        )
        for screen in screens
    }


def make_app(
    farm: FarmConfig | None,
    *,
    demo: bool = False,
    data_dir: Path | None = None,
    graphics: Graphics = "auto",
    demo_speed: float = 1.0,
    funnel_file: Path | None = None,
    demo_farm: Path | None = None,
    use_llm: bool = False,
) -> ImgenApp:
    """The one way to build the app, used by the CLI and the tests alike."""
    FRESH.keep()  # this process paints thumbnails: keep the ones the store has just made
    renderer, notice, passthrough = choose(graphics)
    use_tmux_passthrough(passthrough)
    return ImgenApp(
        Engine(farm, data_dir=data_dir, demo=demo, demo_speed=demo_speed, demo_farm=demo_farm),
        funnel_config=load_funnel_config(funnel_file),
        library=load_library(workflow_folders()),
        renderer=renderer,
        notice=notice,
        keymap_file=user_config_dir() / "keys.yaml",
        settings_file=user_state_dir() / "settings.json",
        llm_stages=OllamaStages(load_llm_config()) if use_llm else None,
        enhancement_styles=load_styles(),
    )
