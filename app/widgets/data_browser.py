"""Browse a dataset's imported events or sessions page by page, filtered by session, item and operation.

The numbers come from ``embsr_core.data.browse`` (one page per query, counts capped), run on the
page's reader thread when one is given so a filter over millions of events never freezes the window.
Double-click a session to see its events.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pandas as pd
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.workers import TaskRunner
from embsr_core.data.browse import BrowseFilter, BrowsePage, browse_events, browse_sessions, operation_choices
from embsr_core.store import Store

PAGE_SIZES = (100, 500, 1000)
HEADERS = {
    "session": "Session",
    "position": "Step",  # 1 = the session's first micro-behavior
    "item": "Item",
    "category": "Category",
    "operation": "Operation",
    "timestamp": "Time",
    "dwell": "Dwell (s)",
    "events": "Micro-behaviors",
    "items": "Distinct items",
    "operations": "Distinct operations",
    "first_timestamp": "First time",
    "last_timestamp": "Last time",
}
HEADER_TIPS = {
    "position": "Position of the micro-behavior in its session; 1 = the first",
    "timestamp": "Date and time of the micro-behavior; data without clock times (JD) shows seconds since the "
                 "session began",
    "dwell": "Seconds spent on the item, as imported",
    "first_timestamp": "Time of the session's first micro-behavior",
    "last_timestamp": "Time of the session's last micro-behavior",
}
NUMERIC = {"position", "dwell", "events", "items", "operations"}
TIME_COLUMNS = {"timestamp", "first_timestamp", "last_timestamp"}
Index = QModelIndex | QPersistentModelIndex


def format_time(value: Any) -> str:
    """Unix seconds as local date and time; small values (JD: seconds since the session began) as seconds."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    seconds = float(value)
    if seconds >= 1e8:
        return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")
    return f"{seconds:,.0f} s"


def browse_job(store: Store, mode: str, dataset_id: int, flt: BrowseFilter, offset: int, limit: int,
               *, progress: Any, cancel: Any) -> BrowsePage:
    """Worker job: one page of events or sessions."""
    del progress, cancel  # one short query: nothing to report, nothing to stop halfway
    read = browse_events if mode == "events" else browse_sessions
    return read(store, dataset_id, flt, offset=offset, limit=limit)


class FrameModel(QAbstractTableModel):
    """A read-only page (DataFrame) with analyst headers; times and numbers formatted for reading."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.frame = pd.DataFrame()
        self.first_row = 0

    def set_page(self, frame: pd.DataFrame, first_row: int = 0) -> None:
        self.beginResetModel()
        self.frame = frame.reset_index(drop=True)
        self.first_row = first_row
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt API
        return 0 if parent.isValid() else len(self.frame)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt API
        return 0 if parent.isValid() else len(self.frame.columns)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Vertical:
            return f"{self.first_row + section + 1:,}" if role == Qt.ItemDataRole.DisplayRole else None
        column = str(self.frame.columns[section])
        if role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS.get(column)
        return HEADERS.get(column, column) if role == Qt.ItemDataRole.DisplayRole else None

    def column(self, name: str) -> int:
        return list(self.frame.columns).index(name)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        name = str(self.frame.columns[index.column()])
        value = self.frame.iat[index.row(), index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            if name in TIME_COLUMNS:
                return format_time(value)
            if value is None or (isinstance(value, float) and not math.isfinite(value)):
                return "–"
            if name == "position":  # stored from 0; an analyst counts steps from 1
                return f"{int(value) + 1:,}"
            if name in NUMERIC:
                return f"{value:,.0f}" if isinstance(value, float) else f"{int(value):,}"
            return str(value)
        if role == Qt.ItemDataRole.TextAlignmentRole and (name in NUMERIC or name in TIME_COLUMNS):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class DataBrowser(QWidget):
    """``set_dataset(id)``; loads when visible. ``loaded`` fires with each page shown."""

    loaded = Signal(object)  # BrowsePage

    def __init__(self, store: Store | None, runner: TaskRunner | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.runner = runner
        self.dataset_id: int | None = None
        self.page: BrowsePage | None = None
        self.offset = 0
        self._request = 0
        self._stale = True

        self.mode = QComboBox(self)
        self.mode.addItem("Micro-behaviors", "events")
        self.mode.addItem("Sessions", "sessions")
        self.mode.setToolTip("Show each imported micro-behavior, or one row per session")
        self.session_edit = QLineEdit(self)
        self.session_edit.setPlaceholderText("Session id contains…")
        self.item_edit = QLineEdit(self)
        self.item_edit.setPlaceholderText("Item id contains…")
        for edit in (self.session_edit, self.item_edit):
            edit.setClearButtonEnabled(True)
            edit.setMinimumWidth(90)
        self.operation = QComboBox(self)
        self.operation.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.operation.setMinimumContentsLength(12)
        self.operation.setToolTip("Keep only this operation")
        self.apply_button = QPushButton("Apply", self)
        self.apply_button.setToolTip("Apply the filters (or press Enter in a field)")
        top = QHBoxLayout()
        top.setSpacing(8)
        top.addWidget(QLabel("Show", self))
        top.addWidget(self.mode)
        top.addSpacing(6)
        top.addWidget(self.session_edit, 1)
        top.addWidget(self.item_edit, 1)
        top.addWidget(self.operation)
        top.addWidget(self.apply_button)

        self.model = FrameModel(self)
        self.table = QTableView(self)
        self.table.setObjectName("DataBrowserTable")
        self.table.setModel(self.model)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.horizontalHeader().setStretchLastSection(True)

        self.status = QLabel(self)
        self.status.setObjectName("Muted")
        self.page_size = QComboBox(self)
        for size in PAGE_SIZES:
            self.page_size.addItem(f"{size} rows per page", size)
        self.prev_button = QPushButton("◀ Previous", self)
        self.next_button = QPushButton("Next ▶", self)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.page_size)
        bottom.addWidget(self.prev_button)
        bottom.addWidget(self.next_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addLayout(bottom)

        self.apply_button.clicked.connect(self.apply_filters)
        self.session_edit.returnPressed.connect(self.apply_filters)
        self.item_edit.returnPressed.connect(self.apply_filters)
        self.operation.currentIndexChanged.connect(self.apply_filters)
        self.mode.currentIndexChanged.connect(self.apply_filters)
        self.page_size.currentIndexChanged.connect(self.apply_filters)
        self.prev_button.clicked.connect(self.previous_page)
        self.next_button.clicked.connect(self.next_page)
        self.table.doubleClicked.connect(self._on_double_clicked)
        self._update_pager()

    # public ----------------------------------------------------------------------------------------
    def set_dataset(self, dataset_id: int | None) -> None:
        """Browse ``dataset_id`` from its first page (filters cleared); loads now if visible."""
        self.dataset_id = dataset_id
        self.offset = 0
        self.page = None
        for edit in (self.session_edit, self.item_edit):
            edit.clear()
        self.operation.blockSignals(True)
        self.operation.clear()
        self.operation.addItem("All operations", "")
        if dataset_id is not None and self.store is not None:
            for name in operation_choices(self.store, dataset_id):
                self.operation.addItem(name, name)
        self.operation.blockSignals(False)
        self.model.set_page(pd.DataFrame())
        self._stale = True
        if self.isVisible():
            self.load()
        else:
            self.status.setText("")
            self._update_pager()

    def current_filter(self) -> BrowseFilter:
        return BrowseFilter(self.session_edit.text(), self.item_edit.text(), self.operation.currentData() or "")

    def load(self) -> None:
        """Query the current page (in the reader thread when there is one)."""
        if self.store is None or self.dataset_id is None:
            self.status.setText("Select a dataset.")
            return
        self._stale = False
        self._request += 1
        request = self._request
        args = (self.store, self.mode.currentData(), self.dataset_id, self.current_filter(), self.offset,
                int(self.page_size.currentData()))
        self.status.setText("Loading…")
        self.prev_button.setEnabled(False)
        self.next_button.setEnabled(False)
        if self.runner is None:
            try:
                page = browse_job(*args, progress=None, cancel=None)
            except (KeyError, ValueError) as exc:
                self._show_error(str(exc.args[0] if isinstance(exc, KeyError) else exc), request)
                return
            self._show(page, request)
            return
        task = self.runner.submit(browse_job, *args, name="Reading the dataset")
        task.finished.connect(lambda page, r=request: self._show(page, r))
        task.failed.connect(lambda text, r=request: self._show_error(text.strip().splitlines()[-1], r))

    # reactions -------------------------------------------------------------------------------------
    @Slot()
    def apply_filters(self, *_args: object) -> None:
        self.offset = 0
        self.load()

    @Slot()
    def next_page(self) -> None:
        if self.page is not None and (self.page.end < self.page.total or self.page.capped):
            self.offset = self.page.end
            self.load()

    @Slot()
    def previous_page(self) -> None:
        if self.offset > 0:
            self.offset = max(0, self.offset - int(self.page_size.currentData()))
            self.load()

    @Slot()
    def _on_double_clicked(self, index: QModelIndex) -> None:
        """A session row → that session's micro-behaviors."""
        if self.mode.currentData() != "sessions" or "session" not in self.model.frame.columns:
            return
        session = str(self.model.frame.iat[index.row(), self.model.column("session")])
        self.session_edit.setText(session)
        self.mode.blockSignals(True)
        self.mode.setCurrentIndex(self.mode.findData("events"))
        self.mode.blockSignals(False)
        self.apply_filters()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._stale:
            self.load()

    def _show(self, page: object, request: int) -> None:
        if request != self._request or not isinstance(page, BrowsePage):
            return  # an older request answered after a newer one was made
        self.page = page
        self.model.set_page(page.rows, page.offset)
        self.table.resizeColumnsToContents()
        what = "micro-behaviors" if self.mode.currentData() == "events" else "sessions"
        self.status.setText(f"{what.capitalize()}: {page.describe()}")
        self._update_pager()
        self.loaded.emit(page)

    def _show_error(self, text: str, request: int) -> None:
        if request != self._request:
            return
        self.page = None
        self.model.set_page(pd.DataFrame())
        self.status.setText(f"Could not read the dataset: {text}")
        self._update_pager()

    def _update_pager(self) -> None:
        page = self.page
        self.prev_button.setEnabled(page is not None and self.offset > 0)
        self.next_button.setEnabled(page is not None and (page.end < page.total or page.capped))
