"""Settings page: store URL and database file (applied on restart), theme, default device, data directory."""

from __future__ import annotations

from PySide6.QtCore import Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QWidget,
)
from sqlalchemy.engine import make_url

from app.context import AppContext
from app.environment import device_choices
from app.pages.base import Page, card
from app.theme import THEMES
from embsr_core.store import data_dir, default_url, runs_repo, store_location
from embsr_core.store.migrate import current_revision
from embsr_core.store.repository import list_datasets

SOURCE_TEXT = {
    "--db": "given when the workbench was started",
    "EMBSR_DB_URL": "set for this computer's session (EMBSR_DB_URL)",
    "settings": "chosen in Settings",
    "default": "the embedded default",
}
COMBO_WIDTH = 320


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _form() -> QFormLayout:
    form = QFormLayout()
    form.setHorizontalSpacing(18)
    form.setVerticalSpacing(10)
    form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
    return form


class SettingsPage(Page):
    page_id = "settings"
    title = "Settings"
    subtitle = "Where your data lives, how the workbench looks and which device trains by default."
    icon_name = "settings"

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        prefs = context.preferences

        # Store ------------------------------------------------------------------------------------
        store_card, store_layout = card(self, "Store")
        form = _form()
        self.current_url = QLineEdit(self._current_display_url(), store_card)
        self.current_url.setReadOnly(True)
        form.addRow("In use", self.current_url)
        self.location_edit = QLineEdit(self._current_location(), store_card)
        self.location_edit.setReadOnly(True)
        self.location_edit.setToolTip("The database file this store reads and writes (for a server: its address)")
        form.addRow("Database file", self.location_edit)
        self.store_status = QLabel(store_card)
        self.store_status.setObjectName("Muted")
        self.store_status.setWordWrap(True)
        self.store_status.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        form.addRow("", self.store_status)
        self.url_edit = QLineEdit(prefs.store_url or "", store_card)
        self.url_edit.setPlaceholderText("e.g. postgresql+psycopg://user@host/embsr (empty = default)")
        self.url_edit.setToolTip("Any SQLAlchemy URL. The workbench uses it the next time it starts.")
        form.addRow("Next start", self.url_edit)
        store_layout.addLayout(form)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.reset_url_button = QPushButton("Use default", store_card)
        self.reset_url_button.clicked.connect(self._reset_url)
        self.save_url_button = QPushButton("Save URL", store_card)
        self.save_url_button.setProperty("primary", True)
        self.save_url_button.clicked.connect(self._save_url)
        buttons.addWidget(self.reset_url_button)
        buttons.addWidget(self.save_url_button)
        store_layout.addLayout(buttons)
        self.url_message = QLabel(store_card)
        self.url_message.setWordWrap(True)
        self.url_message.hide()
        store_layout.addWidget(self.url_message)
        self.body.addWidget(store_card)

        # Appearance and training -------------------------------------------------------------------
        prefs_card, prefs_layout = card(self, "Workbench")
        form2 = _form()
        self.theme_combo = QComboBox(prefs_card)
        self.theme_combo.setMinimumWidth(COMBO_WIDTH)
        for name in THEMES:
            self.theme_combo.addItem(name.capitalize(), name)
        self.theme_combo.setCurrentIndex(max(0, self.theme_combo.findData(context.theme.name)))
        self.theme_combo.currentIndexChanged.connect(self._theme_chosen)
        context.theme.changed.connect(self._on_theme_changed)
        form2.addRow("Theme", self.theme_combo)
        self.device_combo = QComboBox(prefs_card)
        self.device_combo.setMinimumWidth(COMBO_WIDTH)
        for device, label in device_choices():
            self.device_combo.addItem(label, device)
        index = self.device_combo.findData(prefs.default_device)
        self.device_combo.setCurrentIndex(max(0, index))
        self.device_combo.setToolTip("Used by the Train page unless a run picks another device.")
        self.device_combo.currentIndexChanged.connect(self._device_chosen)
        form2.addRow("Default device", self.device_combo)
        prefs_layout.addLayout(form2)
        self.body.addWidget(prefs_card)

        # Data directory -----------------------------------------------------------------------------
        dir_card, dir_layout = card(self, "Data directory")
        row = QHBoxLayout()
        self.data_dir_edit = QLineEdit(str(data_dir()), dir_card)
        self.data_dir_edit.setReadOnly(True)
        row.addWidget(self.data_dir_edit, 1)
        self.open_dir_button = QPushButton("Open folder", dir_card)
        self.open_dir_button.clicked.connect(self.open_data_dir)
        row.addWidget(self.open_dir_button)
        dir_layout.addLayout(row)
        hint = QLabel("The default database, checkpoints and caches live here.", dir_card)
        hint.setObjectName("Muted")
        dir_layout.addWidget(hint)
        self.body.addWidget(dir_card)
        self.body.addStretch(1)
        # counts change whenever an import, a delete or a run ends: recount then, and each time shown
        context.runner.taskDone.connect(self._on_task_done)

    # hooks -----------------------------------------------------------------------------------------
    def on_shown(self) -> None:
        self.refresh()

    @Slot(object)
    def _on_task_done(self, _task: object) -> None:
        if self.isVisible():
            self.refresh()

    def refresh(self) -> None:
        ctx = self.context
        source = SOURCE_TEXT.get(ctx.store_url_source, ctx.store_url_source)
        if ctx.store is None:
            self.store_status.setObjectName("ErrorText")
            self.store_status.setText(f"Not open ({source}): {ctx.store_error}")
        else:
            n_datasets = len(list_datasets(ctx.store))
            n_runs = len(runs_repo.list_runs(ctx.store))
            revision = current_revision(ctx.store.engine)
            self.store_status.setObjectName("Muted")
            self.store_status.setText(
                f"{ctx.store.engine.dialect.name}, {source}, schema {revision or '?'} — "
                f"{_count(n_datasets, 'dataset')}, {_count(n_runs, 'run')}"
            )
        self.store_status.style().polish(self.store_status)

    # slots -----------------------------------------------------------------------------------------
    def _current_display_url(self) -> str:
        ctx = self.context
        if ctx.store is not None:
            return ctx.store.display_url
        return ctx.store_url

    def _current_location(self) -> str:
        ctx = self.context
        if ctx.store is not None and ctx.store.location:
            return ctx.store.location
        return store_location(ctx.store_url)

    def _message(self, text: str, error: bool = False) -> None:
        self.url_message.setObjectName("ErrorText" if error else "Muted")
        self.url_message.setText(text)
        self.url_message.setVisible(bool(text))
        self.url_message.style().polish(self.url_message)

    @Slot()
    def _save_url(self) -> None:
        url = self.url_edit.text().strip()
        if url:
            try:
                make_url(url)
            except Exception as exc:  # sqlalchemy's ArgumentError; the message is shown as-is
                self._message(f"Not a database URL: {exc}", error=True)
                return
        self.context.preferences.store_url = url or None
        self.context.preferences.sync()
        override = self.context.store_url_source in ("--db", "EMBSR_DB_URL")
        later = " (while the workbench is started with another store, that one is used instead)" if override else ""
        shown = url or default_url()
        where = store_location(shown)
        file_note = f" (database file {where})" if where != shown else ""
        self._message(f"Saved. The workbench will use {shown}{file_note} the next time it starts{later}.")

    @Slot()
    def _reset_url(self) -> None:
        self.url_edit.clear()
        self._save_url()

    @Slot(int)
    def _theme_chosen(self, index: int) -> None:
        name = self.theme_combo.itemData(index)
        if name and name != self.context.theme.name:
            self.context.preferences.theme = name
            self.context.theme.apply(name)

    @Slot(str)
    def _on_theme_changed(self, name: str) -> None:
        index = self.theme_combo.findData(name)
        if index >= 0 and index != self.theme_combo.currentIndex():
            self.theme_combo.blockSignals(True)
            self.theme_combo.setCurrentIndex(index)
            self.theme_combo.blockSignals(False)

    @Slot(int)
    def _device_chosen(self, index: int) -> None:
        self.context.preferences.default_device = self.device_combo.itemData(index)

    @Slot()
    def open_data_dir(self) -> bool:
        """Open the data directory in the system file manager; False if no handler is available."""
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(data_dir())))
