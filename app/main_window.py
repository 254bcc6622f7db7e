"""The main window: sidebar navigation, a stack of pages, status bar, menus, shortcuts, About box.

Fast start: the sidebar and menus are drawn from the page entries (``app.pages.PAGES``); a page is
imported and built the first time it is shown (:meth:`MainWindow.page` builds one on demand), and
the device in the status bar, which needs PyTorch, is filled in once the window has been painted.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QProgressDialog,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

import embsr_core
from app.context import AppContext
from app.environment import device_label, resolve_device, versions
from app.pages import PAGES, Page
from app.resources import app_icon, icon
from app.theme import THEMES
from app.widgets.dialogs import error_box
from app.workers import Task, last_error_line, progress_fraction
from embsr_core.store.repository import list_datasets

DEFAULT_SIZE = QSize(1280, 800)
DEMO_MODULE = "embsr_core.data.demo"
DEMO_FUNCTION = "generate_demo_dataset"


def demo_generator() -> Callable[..., Any] | None:
    """``embsr_core.data.demo.generate_demo_dataset`` once the data library provides it, else None."""
    if importlib.util.find_spec(DEMO_MODULE) is None:
        return None
    return getattr(importlib.import_module(DEMO_MODULE), DEMO_FUNCTION, None)


class MainWindow(QMainWindow):
    """Hosts the pages; ``persist=False`` (smoke mode, tests) leaves QSettings untouched on close."""

    def __init__(self, context: AppContext, *, persist: bool = True) -> None:
        super().__init__()
        self.context = context
        self.persist = persist
        self.setObjectName("MainWindow")
        self.setWindowTitle("EMBSR Workbench")
        self.setWindowIcon(app_icon())
        self._demo_task: Task | None = None
        self._demo_dialog: QProgressDialog | None = None

        self._built: dict[int, Page] = {}  # sidebar row → its page, once first shown
        self._device_pending = True
        self._painted = False  # the window has been on screen (its first paint)
        self._opening: int | None = None  # the restored page that loads PyTorch: built after the first paint
        self._build_central()
        self._build_status_bar()
        self._build_actions()
        context.theme.changed.connect(self._on_theme_changed)
        context.runner.taskStarted.connect(self._on_task_started)
        context.runner.taskDone.connect(self._show_running_tasks)
        context.runner.trainingSubmitted.connect(self._on_training_submitted)
        self._on_theme_changed(context.theme.name)
        self.restore_state()

    # construction ----------------------------------------------------------------------------------
    def _build_central(self) -> None:
        central = QWidget(self)
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)

        sidebar = QFrame(central)
        sidebar.setObjectName("Sidebar")
        sidebar.setFixedWidth(212)
        side = QVBoxLayout(sidebar)
        side.setContentsMargins(0, 4, 0, 0)
        side.setSpacing(0)
        brand = QLabel("EMBSR Workbench", sidebar)
        brand.setObjectName("SidebarBrand")
        side.addWidget(brand)
        self.nav = QListWidget(sidebar)
        self.nav.setObjectName("NavList")
        self.nav.setIconSize(QSize(20, 20))
        self.nav.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.nav.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        for number, entry in enumerate(PAGES, start=1):
            item = QListWidgetItem(entry.title)
            item.setToolTip(f"{entry.title} (Ctrl+{number})")
            item.setSizeHint(QSize(180, 40))
            self.nav.addItem(item)
        side.addWidget(self.nav, 1)
        footer = QLabel(f"v{embsr_core.__version__}  ·  F1 for Help", sidebar)
        footer.setObjectName("SidebarFooter")
        side.addWidget(footer)
        row.addWidget(sidebar)

        self.stack = QStackedWidget(central)
        self.stack.setObjectName("PageStack")
        for _entry in PAGES:
            # each page scrolls on its own, so small screens still fit the window; the page itself
            # is put in when first shown (see page_at)
            scroll = QScrollArea(self.stack)
            scroll.setObjectName("PageScroll")
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setWidgetResizable(True)
            self.stack.addWidget(scroll)
        row.addWidget(self.stack, 1)
        self.nav.currentRowChanged.connect(self._on_nav_row_changed)
        self.setCentralWidget(central)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        ctx = self.context
        ok = ctx.store is not None
        text = f"Store: {ctx.store.location}" if ctx.store else f"Store unavailable: {ctx.store_error}"
        self.store_label = QLabel(text, bar)
        self.store_label.setObjectName("StoreLabel" if ok else "ErrorText")
        self.store_label.setToolTip(f"{text}\n(source: {ctx.store_url_source})")
        bar.addWidget(self.store_label, 1)
        self.task_label = QLabel(bar)
        self.task_progress = QProgressBar(bar)
        self.task_progress.setFixedWidth(140)
        self.task_progress.setMaximumHeight(14)
        self.task_progress.setTextVisible(False)
        self.task_label.hide()
        self.task_progress.hide()
        bar.addPermanentWidget(self.task_label)
        bar.addPermanentWidget(self.task_progress)
        self.device_label = QLabel("Device: …", bar)
        self.device_label.setObjectName("DeviceLabel")
        self.device_label.setToolTip("The default training device (Settings); found once the window is open.")
        bar.addPermanentWidget(self.device_label)
        if "torch" in sys.modules or ctx.device:  # nothing left to load: say it now
            self.fill_device_label()

    def ensure_device(self) -> str:
        """The default device the preference resolves to; the first call imports PyTorch."""
        if not self.context.device:
            self.context.device = resolve_device(self.context.preferences.default_device)
        return self.context.device

    @Slot()
    def fill_device_label(self) -> None:
        if not self._device_pending:
            return
        self._device_pending = False
        try:
            text = f"Device: {device_label(self.ensure_device())}"
        except Exception as exc:  # a broken PyTorch install must not stop the window
            text = f"Device: unknown (PyTorch could not be loaded: {type(exc).__name__})"
        self.device_label.setText(text)

    def event(self, event: QEvent) -> bool:
        handled = super().event(event)
        if getattr(self, "_painted", True) is False and event.type() == QEvent.Type.UpdateRequest:
            self._painted = True  # the window has just been painted: what loads PyTorch comes after that
            QTimer.singleShot(0, self._after_first_paint)
        return handled

    @Slot()
    def _after_first_paint(self) -> None:
        row, self._opening = self._opening, None
        if row is not None and row == self.stack.currentIndex():
            self.page_at(row).on_shown()
        self.fill_device_label()

    def _action(self, text: str, shortcut: QKeySequence | str | None, slot: Callable[[], Any]) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        self.quit_action = self._action("&Quit", QKeySequence.StandardKey.Quit, self.close)
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        file_menu.addAction(self.quit_action)

        view_menu = menu.addMenu("&View")
        self.page_actions: list[QAction] = []
        for number, entry in enumerate(PAGES, start=1):
            action = self._action(entry.title, f"Ctrl+{number}", self._on_page_action)
            action.setData(number - 1)
            view_menu.addAction(action)
            self.page_actions.append(action)
        self.settings_action = self._action("Settings…", "Ctrl+,", self._show_settings)
        view_menu.addAction(self.settings_action)
        view_menu.addSeparator()
        self.theme_action = self._action("&Dark Theme", "Ctrl+Shift+T", self.toggle_theme)
        self.theme_action.setCheckable(True)
        view_menu.addAction(self.theme_action)
        self.fullscreen_action = self._action("&Full Screen", "F11", self.toggle_full_screen)
        view_menu.addAction(self.fullscreen_action)

        help_menu = menu.addMenu("&Help")
        self.shortcuts_action = self._action("&Keyboard Shortcuts", "Ctrl+/", self.show_shortcuts)
        help_menu.addAction(self.shortcuts_action)
        self.help_action = self._action("&Help", "F1", self.show_help)
        help_menu.addAction(self.help_action)
        self.about_action = self._action("&About EMBSR Workbench", None, self.show_about)
        help_menu.addAction(self.about_action)

    # navigation ------------------------------------------------------------------------------------
    def page_ids(self) -> list[str]:
        return [entry.page_id for entry in PAGES]

    def page_at(self, index: int) -> Page:
        """The page in sidebar row ``index``, imported and built now if it has not been shown yet."""
        page = self._built.get(index)
        if page is None:
            QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
            try:
                page = PAGES[index].load()(self.context)
            finally:
                QGuiApplication.restoreOverrideCursor()
            self._built[index] = page
            if hasattr(page, "showRuns"):  # a page whose results are runs (the Leaderboard)
                page.showRuns.connect(self.show_runs)
            scroll = self.stack.widget(index)
            assert isinstance(scroll, QScrollArea)
            scroll.setWidget(page)
            page.show()
        return page

    @property
    def pages(self) -> list[Page]:
        """Every page, in sidebar order (builds the ones not shown yet: for tests and whole-window tasks)."""
        return [self.page_at(i) for i in range(len(PAGES))]

    def built_pages(self) -> list[Page]:
        return [self._built[i] for i in sorted(self._built)]

    def current_page(self) -> Page:
        return self.page_at(self.stack.currentIndex())

    def page(self, page_id: str) -> Page:
        return self.page_at(self.page_ids().index(page_id))

    def show_page(self, target: int | str) -> None:
        index = self.page_ids().index(target) if isinstance(target, str) else int(target)
        if not 0 <= index < len(PAGES):
            raise IndexError(f"no page {target!r}; pages are {self.page_ids()}")
        self.nav.setCurrentRow(index)

    @Slot(object)
    def show_runs(self, run_ids: object) -> None:
        """The Runs page with ``run_ids`` selected: re-read first (they may be new since it was last shown),
        every filter cleared (a filter left on from earlier would hide them)."""
        self.show_page("runs")
        runs = self.page("runs")
        runs.reload()  # type: ignore[attr-defined]
        runs.clear_filters()  # type: ignore[attr-defined]
        runs.select_runs(list(run_ids))  # type: ignore[attr-defined, call-overload]

    @Slot(int)
    def _on_nav_row_changed(self, row: int) -> None:
        if row < 0:
            return
        entry = PAGES[row]
        if self.persist:
            self.context.preferences.last_page = entry.page_id
        if not self._painted and row not in self._built and entry.loads_torch and "torch" not in sys.modules:
            # the last session ended on a page that loads PyTorch (seconds): open the window first
            scroll = self.stack.widget(row)
            assert isinstance(scroll, QScrollArea)
            opening = QLabel(f"Opening {entry.title}…", scroll)
            opening.setObjectName("Muted")
            opening.setAlignment(Qt.AlignmentFlag.AlignCenter)
            scroll.setWidget(opening)
            self._opening = row
            self.stack.setCurrentIndex(row)
            return
        page = self.page_at(row)
        self.stack.setCurrentIndex(row)
        page.on_shown()

    @Slot(object)
    def _on_training_submitted(self, _task: object) -> None:
        """A run queued away from the Train page (a resume on the Runs page…): the Train page shows and
        controls every run, so it is built now if it was not yet (it takes on the queued runs)."""
        self.page("train")

    @Slot()
    def _on_page_action(self) -> None:
        action = self.sender()
        if isinstance(action, QAction):
            self.show_page(int(action.data()))

    @Slot()
    def _show_settings(self) -> None:
        self.show_page("settings")

    # state -----------------------------------------------------------------------------------------
    def restore_state(self) -> None:
        """Window geometry and last page from QSettings (defaults: 1280×800, first page)."""
        prefs = self.context.preferences
        geometry = prefs.geometry
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(DEFAULT_SIZE)
        last = prefs.last_page
        self.show_page(self.page_ids().index(last) if last in self.page_ids() else 0)

    def save_state(self) -> None:
        prefs = self.context.preferences
        prefs.geometry = self.saveGeometry()
        prefs.last_page = self.current_page().page_id
        prefs.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if not self.confirm_close() or not all(page.can_close() for page in self.built_pages()):
            event.ignore()
            return
        self.context.runner.shutdown()
        if self.persist:
            self.save_state()
        event.accept()

    def training_tasks(self) -> list[Task]:
        """Training runs running or queued on the job manager's training queue."""
        return self.context.runner.training.active()

    def confirm_close(self) -> bool:
        """While a run trains, ask before quitting (quitting stops it; its checkpoint allows a resume)."""
        tasks = self.training_tasks()
        if not tasks:
            return True
        names = "".join(f"<li>{t.name}{'' if t.state == 'running' else ' (queued)'}</li>" for t in tasks)
        box = QMessageBox(QMessageBox.Icon.Question, "Quit while training?", "", QMessageBox.StandardButton.NoButton,
                          self)
        box.setObjectName("ConfirmQuit")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(
            f"<b>Training is in progress:</b><ul>{names}</ul>"
            "Quitting stops the running run after its current batch and saves a checkpoint, so you can "
            "resume it later from the Runs page. Queued runs are dropped."
        )
        quit_button = box.addButton("Stop training and quit", QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("Keep training", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(keep)
        box.setEscapeButton(keep)
        box.exec()
        return box.clickedButton() is quit_button

    # theme -----------------------------------------------------------------------------------------
    @Slot()
    def toggle_theme(self) -> None:
        current = self.context.theme.name
        name = THEMES[(THEMES.index(current) + 1) % len(THEMES)]
        self.context.preferences.theme = name
        self.context.theme.apply(name)

    @Slot(str)
    def _on_theme_changed(self, _name: str) -> None:
        palette = self.context.theme.palette
        for row, entry in enumerate(PAGES):
            self.nav.item(row).setIcon(icon(entry.icon_name, palette.sidebar_text, palette.accent))
        self.theme_action.setChecked(palette.name == "dark")

    @Slot()
    def toggle_full_screen(self) -> None:
        self.setWindowState(self.windowState() ^ Qt.WindowState.WindowFullScreen)

    # help ------------------------------------------------------------------------------------------
    @Slot()
    def show_help(self) -> None:
        """F1: the Help page, at the part about the page the user was on."""
        came_from = self.current_page().page_id
        self.show_page("help")
        help_page = self.page("help")
        help_page.show_section(help_page.section_for(came_from))  # type: ignore[attr-defined]

    def about_text(self) -> str:
        rows = "".join(f"<tr><td>{k}</td><td>&nbsp;&nbsp;{v}</td></tr>" for k, v in versions().items())
        return (
            f"<h3>EMBSR Workbench {embsr_core.__version__}</h3>"
            "<p>Session-based recommendation with micro-behaviors (EMBSR): import interaction logs, "
            "train and compare models, and explore recommendations, without a terminal.</p>"
            f"<table>{rows}</table>"
            f"<p>Store: {self.context.store.location if self.context.store else self.context.store_url}"
            f"<br>Device: {device_label(self.ensure_device())}</p>"
        )

    @Slot()
    def show_about(self) -> QMessageBox:
        box = QMessageBox(self)
        box.setWindowTitle("About EMBSR Workbench")
        box.setIconPixmap(app_icon().pixmap(64, 64))
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(self.about_text())
        box.open()
        return box

    def shortcuts_text(self) -> str:
        actions = [
            *self.page_actions,
            self.settings_action,
            self.theme_action,
            self.fullscreen_action,
            self.shortcuts_action,
            self.help_action,
            self.quit_action,
        ]
        rows = "".join(
            f"<tr><td><b>{a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)}</b></td>"
            f"<td>&nbsp;&nbsp;{a.text().replace('&', '').rstrip('…')}</td></tr>"
            for a in actions
        )
        return f"<table>{rows}</table>"

    @Slot()
    def show_shortcuts(self) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard Shortcuts", "", QMessageBox.StandardButton.Ok, self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(self.shortcuts_text())
        box.open()
        return box

    # tasks in the status bar -------------------------------------------------------------------------
    @Slot(object)
    def _on_task_started(self, task: Task) -> None:
        self.task_progress.setRange(0, 0)  # busy until a fraction arrives
        task.progress.connect(self._on_task_progress)
        self._show_running_tasks()

    @Slot()
    def _show_running_tasks(self, *_args: object) -> None:
        """Every running task (a training run and an import may run side by side)."""
        running = [t for t in self.context.runner.running() if not t.is_done()]
        self.task_label.setText("  ·  ".join(f"{t.name}…" for t in running))
        self.task_label.setVisible(bool(running))
        self.task_progress.setVisible(bool(running))

    @Slot(object)
    def _on_task_progress(self, event: object) -> None:
        fraction = progress_fraction(event)
        if fraction is not None:
            self.task_progress.setRange(0, 1000)
            self.task_progress.setValue(round(fraction * 1000))

    # first launch ----------------------------------------------------------------------------------
    def store_is_empty(self) -> bool:
        return self.context.store is not None and not list_datasets(self.context.store)

    def offer_demo_dataset_if_empty(self) -> bool:
        """First-launch hook: on an empty store, offer the demo dataset (when the core provides it).

        Returns True if the offer was shown. The answer 'Not now' with 'Don't ask again' is remembered.
        """
        if demo_generator() is None or self.context.preferences.demo_offer_dismissed:
            return False
        if not self.store_is_empty():
            return False
        generate, dont_ask = self.ask_generate_demo()
        if generate:
            self.generate_demo_dataset()
        elif dont_ask:
            self.context.preferences.demo_offer_dismissed = True
        return True

    def ask_generate_demo(self) -> tuple[bool, bool]:
        """The modal welcome question; returns (generate, don't ask again). Tests replace it."""
        box = QMessageBox(self)
        box.setWindowTitle("Welcome to EMBSR Workbench")
        box.setIconPixmap(app_icon().pixmap(48, 48))
        box.setText(
            "<b>Your store is empty.</b><br>Generate the demo dataset (synthetic sessions with a planted "
            "signal) to explore the workbench right away? It takes under a minute."
        )
        generate = box.addButton("Generate demo dataset", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Not now", QMessageBox.ButtonRole.RejectRole)
        dont_ask = QCheckBox("Don't ask again", box)
        box.setCheckBox(dont_ask)
        box.setDefaultButton(generate)
        box.exec()
        return box.clickedButton() is generate, dont_ask.isChecked()

    def generate_demo_dataset(self) -> Task | None:
        """Run ``embsr_core.data.demo.generate_demo_dataset(store, progress=, cancel=)`` in the task runner."""
        fn = demo_generator()
        if fn is None or self.context.store is None:
            return None
        task = self.context.runner.submit(fn, self.context.store, name="Generating demo dataset")
        dialog = QProgressDialog("Generating the demo dataset…", "Cancel", 0, 0, self)  # busy until a fraction
        dialog.setWindowTitle("Demo dataset")
        dialog.setMinimumDuration(0)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.canceled.connect(task.cancel)
        task.progress.connect(self._on_demo_progress)
        task.finished.connect(self._on_demo_finished)
        task.failed.connect(self._on_demo_failed)
        task.cancelled.connect(self._on_demo_cancelled)
        self._demo_task, self._demo_dialog = task, dialog
        dialog.show()
        return task

    @Slot(object)
    def _on_demo_progress(self, event: object) -> None:
        fraction = progress_fraction(event)
        if self._demo_dialog is not None and fraction is not None:
            self._demo_dialog.setRange(0, 1000)
            self._demo_dialog.setValue(round(fraction * 1000))

    def _close_demo_dialog(self) -> None:
        if self._demo_dialog is not None:
            self._demo_dialog.close()
            self._demo_dialog.deleteLater()
        self._demo_dialog = None
        self._demo_task = None

    @Slot(object)
    def _on_demo_finished(self, _result: object) -> None:
        self._close_demo_dialog()
        for page in self.built_pages():  # the others read the store when first shown
            page.refresh()
        self.show_page("datasets")
        self.statusBar().showMessage("Demo dataset ready.", 8000)

    @Slot(str)
    def _on_demo_failed(self, traceback_text: str) -> None:
        self._close_demo_dialog()
        last_line = last_error_line(traceback_text)
        error_box(self, "Demo dataset", f"The demo dataset could not be generated:\n{last_line}", traceback_text)

    @Slot(object)
    def _on_demo_cancelled(self, _result: object) -> None:
        self._close_demo_dialog()
        self.statusBar().showMessage("Demo dataset cancelled.", 8000)
