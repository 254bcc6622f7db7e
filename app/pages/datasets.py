"""Datasets page: the datasets in the store, their statistics and sessions; import, generate, delete;
and a paged, filterable view of the imported micro-behaviors and sessions (``DataBrowser``).

The page only gathers choices and renders: listing is ``repository.list_datasets``; statistics are
``dataset_stats(prepare_dataset(store, ds, default_preset(ds)))`` computed in a worker (seconds on
big datasets; cached on disk afterwards); imports, generation and deletion are core calls queued on
the shared task runner (the one database writer), so the store is never written from the GUI thread.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from PySide6.QtCore import QCoreApplication, QItemSelection, QSortFilterProxyModel, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.context import AppContext
from app.jobs import DatasetOverview, Problem, delete_job, overview_job, synthetic_job
from app.pages.base import Page, card
from app.pages.datasets_models import DATASET_ID_ROLE, SORT_ROLE, DatasetsTableModel
from app.widgets.data_browser import DataBrowser
from app.widgets.dataset_charts import LengthHistogram, OperationChart, SessionTimeline
from app.widgets.dialogs import error_box
from app.widgets.import_wizard import ImportWizard
from app.widgets.synthetic_dialog import SyntheticDialog
from app.workers import Task, TaskRunner, last_error_line, progress_fraction
from embsr_core.data.store_io import ImportReport
from embsr_core.store.repository import list_datasets

COLUMN_WIDTHS = (78, 76, 64, 90, 128, 126)  # format … imported at; the name takes the rest
TABLE2_LABELS = {"train": "Training sessions", "valid": "Validation sessions", "test": "Test sessions"}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table2_html(overview: DatasetOverview) -> str:
    """The paper's Table II row (train / valid / test sessions, items, micro-behaviors) and a few facts."""
    stats = overview.stats
    t2 = stats.get("table2", {})
    rows: list[tuple[str, Any]] = [(TABLE2_LABELS.get(k, k.replace("_", "-").capitalize()), v) for k, v in t2.items()]
    rows += [
        ("Mean session length", stats.get("mean_session_length")),
        ("Mean macro-items", stats.get("mean_macro_items")),
        ("Revisit rate", f"{100 * stats.get('revisit_rate', 0.0):.1f}%"),
    ]
    body = "".join(
        f"<tr><td style='padding:1px 18px 1px 0'>{label}</td><td align='right'><b>{_fmt(v)}</b></td></tr>"
        for label, v in rows if v is not None
    )
    note = f"<p style='color:gray'>{overview.note}</p>" if overview.note else ""
    return (f"<div style='color:gray'>Preprocessed (preset <b>{overview.preset}</b>)</div>"
            f"<table style='margin-top:6px'>{body}</table>{note}")


class DatasetsPage(Page):
    page_id = "datasets"
    title = "Datasets"
    subtitle = "Import micro-behavior logs, generate synthetic data and inspect what is in the store."
    icon_name = "datasets"

    overviewShown = Signal(int)  # dataset id whose statistics are now on screen  # noqa: N815 - Qt naming
    datasetsChanged = Signal()  # noqa: N815 - Qt naming

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        # Statistics are reads: their own one-thread runner, so they never wait behind a training run.
        self.reader = TaskRunner()
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.reader.shutdown)
        self._overviews: dict[int, DatasetOverview] = {}
        self._overview_task: Task | None = None
        self._write_task: Task | None = None
        self.wizard: ImportWizard | None = None
        self._build()
        if context.store is None:
            self.message.setText(f"The store could not be opened: {context.store_error}")
            self.message.show()
            for button in (self.import_button, self.generate_button, self.delete_button):
                button.setEnabled(False)
        else:
            self.reload()

    # layout ----------------------------------------------------------------------------------------
    def _build(self) -> None:
        bar = QHBoxLayout()
        bar.setSpacing(8)
        self.import_button = QPushButton("Import…", self)
        self.import_button.setProperty("primary", True)
        self.import_button.setToolTip("Import a JD, trivago or generic CSV / Parquet file (Ctrl+I)")
        self.import_button.setShortcut("Ctrl+I")
        self.import_button.clicked.connect(self.open_import_wizard)
        self.generate_button = QPushButton("Generate synthetic…", self)
        self.generate_button.setToolTip("Generate sessions with a planted micro-behavior signal")
        self.generate_button.clicked.connect(self.open_generate_dialog)
        self.delete_button = QPushButton("Delete…", self)
        self.delete_button.setToolTip("Delete the selected dataset with its runs (refused while a run uses it)")
        self.delete_button.clicked.connect(self.delete_selected)
        self.task_label = QLabel(self)
        self.task_label.setObjectName("Muted")
        self.task_bar = QProgressBar(self)
        self.task_bar.setFixedWidth(160)
        self.task_bar.setMaximumHeight(14)
        self.task_bar.setTextVisible(False)
        self.task_bar.setRange(0, 1000)
        self.task_label.hide()
        self.task_bar.hide()
        for w in (self.import_button, self.generate_button, self.delete_button):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.task_label)
        bar.addWidget(self.task_bar)
        self.body.addLayout(bar)

        self.message = QLabel(self)
        self.message.setObjectName("ErrorText")
        self.message.setWordWrap(True)
        self.message.hide()
        self.body.addWidget(self.message)

        self.model = DatasetsTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView(self)
        self.table.setObjectName("DatasetsTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(6, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setShowGrid(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column, width in enumerate(COLUMN_WIDTHS, start=1):
            header.resizeSection(column, width)
        self.table.setWordWrap(False)
        self.empty_label = QLabel("No dataset yet. Import a file or generate a synthetic dataset.", self)
        self.empty_label.setObjectName("Muted")
        self.empty_label.hide()
        self.table.selectionModel().selectionChanged.connect(self._on_selection)

        # left: the selected dataset's Table II and operations; right: the table, lengths and sessions
        columns = QHBoxLayout()
        columns.setSpacing(14)
        left = QVBoxLayout()
        left.setSpacing(14)
        summary_card, summary_layout = card(self)
        self.summary = QLabel("Select a dataset.", summary_card)
        self.summary.setObjectName("DatasetSummary")
        self.summary.setToolTip("The dataset after the preprocessing preset, counted as in the paper's Table II")
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setWordWrap(True)
        self.summary.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        summary_layout.addWidget(self.summary, 1)
        summary_card.setFixedHeight(212)
        left.addWidget(summary_card)
        ops_card, ops_layout = card(self)
        self.op_chart = OperationChart(ops_card)
        ops_layout.addWidget(self.op_chart)
        left.addWidget(ops_card, 1)
        left_widget = QWidget(self)
        left_widget.setLayout(left)
        left.setContentsMargins(0, 0, 0, 0)
        left_widget.setFixedWidth(290)
        columns.addWidget(left_widget)

        right = QVBoxLayout()
        right.setSpacing(14)
        self.table.setFixedHeight(152)
        right.addWidget(self.table)
        right.addWidget(self.empty_label)
        charts = QWidget(self)
        charts_layout = QVBoxLayout(charts)
        charts_layout.setContentsMargins(0, 8, 0, 0)
        charts_layout.setSpacing(14)
        len_card, len_layout = card(self)
        self.length_chart = LengthHistogram(len_card)
        len_layout.addWidget(self.length_chart)
        len_card.setFixedHeight(178)
        charts_layout.addWidget(len_card)
        timeline_card, timeline_layout = card(self)
        self.timeline = SessionTimeline(timeline_card)
        timeline_layout.addWidget(self.timeline, 1)
        charts_layout.addWidget(timeline_card, 1)
        self.browser = DataBrowser(self.context.store, self.reader, self)
        browse_page = QWidget(self)
        browse_layout = QVBoxLayout(browse_page)
        browse_layout.setContentsMargins(0, 8, 0, 0)
        browse_layout.addWidget(self.browser)
        self.views = QTabWidget(self)
        self.views.addTab(charts, "Charts")
        self.views.addTab(browse_page, "Micro-behaviors and sessions")
        self.views.setTabToolTip(1, "Browse and filter every imported micro-behavior and session, page by page")
        right.addWidget(self.views, 1)
        columns.addLayout(right, 1)
        self.body.addLayout(columns, 1)

    # hooks -----------------------------------------------------------------------------------------
    def on_shown(self) -> None:
        if self.context.store is not None:
            self.reload()

    def refresh(self) -> None:
        self._overviews.clear()
        if self.context.store is not None:
            self.reload()

    def can_close(self) -> bool:
        # Not a veto: the window is closing, so stop the statistics thread before it goes away.
        self.reader.shutdown()
        return True

    # table -----------------------------------------------------------------------------------------
    def reload(self, select_id: int | None = None) -> None:
        """Re-read the datasets; keeps (or moves to ``select_id``) the selection."""
        store = self.context.store
        if store is None:
            return
        keep = select_id if select_id is not None else self.selected_id()
        self.model.set_datasets(list_datasets(store))
        empty = self.model.rowCount() == 0
        self.empty_label.setVisible(empty)
        self.delete_button.setEnabled(not empty)
        if empty:
            self._show_overview(None)
            self.browser.set_dataset(None)
            return
        self.select(keep if keep is not None and self.model.row_of(keep) >= 0 else None)

    def select(self, dataset_id: int | None) -> None:
        """Select a dataset by id (None: the first row as sorted)."""
        if dataset_id is None:
            row = 0
        else:
            source = self.model.index(self.model.row_of(dataset_id), 0)
            row = self.proxy.mapFromSource(source).row()
        if row >= 0:
            self.table.selectRow(row)  # a reset model has no selection, so this always loads the overview

    def selected_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return int(rows[0].data(DATASET_ID_ROLE)) if rows else None

    @Slot(QItemSelection, QItemSelection)
    def _on_selection(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self._load_overview(self.selected_id())
        self.browser.set_dataset(self.selected_id())

    # statistics --------------------------------------------------------------------------------------
    def _load_overview(self, dataset_id: int | None) -> None:
        if dataset_id is None or self.context.store is None:
            self._show_overview(None)
            return
        if dataset_id in self._overviews:
            self._show_overview(self._overviews[dataset_id])
            return
        if self._overview_task is not None and not self._overview_task.is_done():
            self._overview_task.cancel()  # a queued request for another dataset is dropped
        row = self.model.dataset(self.model.row_of(dataset_id))
        self.summary.setText(f"<b>{row.name}</b><br>Computing statistics…")
        task = self.reader.submit(overview_job, self.context.store, dataset_id, name=f"Statistics of {row.name}")
        task.finished.connect(self._on_overview)
        task.failed.connect(self._on_overview_failed)
        self._overview_task = task

    @Slot(object)
    def _on_overview(self, overview: object) -> None:
        assert isinstance(overview, DatasetOverview)
        self._overviews[overview.dataset_id] = overview
        if overview.dataset_id == self.selected_id():
            self._show_overview(overview)

    @Slot(str)
    def _on_overview_failed(self, traceback_text: str) -> None:
        last = last_error_line(traceback_text)
        self.summary.setText(f"<span>Statistics could not be computed:</span><br>{last}")

    def overview(self) -> DatasetOverview | None:
        selected = self.selected_id()
        return self._overviews.get(selected) if selected is not None else None

    def _show_overview(self, overview: DatasetOverview | None) -> None:
        if overview is None:
            self.summary.setText("Select a dataset." if self.model.rowCount() else "")
            self.op_chart.set_counts({})
            self.length_chart.set_histogram({})
            self.timeline.set_events(pd.DataFrame())
            return
        stats = overview.stats
        self.summary.setText(f"<b style='font-size:14px'>{overview.name}</b>" + table2_html(overview))
        self.op_chart.set_counts(stats.get("operations", {}))
        self.length_chart.set_histogram(stats.get("session_length_hist", {}), stats.get("mean_session_length"))
        self.timeline.set_events(overview.preview, list(stats.get("operations", {})))
        self.overviewShown.emit(overview.dataset_id)

    # actions ---------------------------------------------------------------------------------------
    @Slot()
    def open_import_wizard(self) -> ImportWizard | None:
        if self.context.store is None:
            return None
        wizard = ImportWizard(self.context.store, self.context.runner, self.window())
        wizard.imported.connect(self._on_imported)
        wizard.finished.connect(wizard.deleteLater)
        self.wizard = wizard
        wizard.open()
        return wizard

    @Slot(object)
    def _on_imported(self, report: object) -> None:
        assert isinstance(report, ImportReport)
        self.reload(select_id=report.dataset_id)
        self.datasetsChanged.emit()

    @Slot()
    def open_generate_dialog(self) -> Task | None:
        dialog = SyntheticDialog(self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return self.generate_synthetic(dialog.parameters())

    def generate_synthetic(self, parameters: dict[str, Any]) -> Task | None:
        """Queue ``import_synthetic`` with the dialog's parameters (``name`` made free in the worker)."""
        if self.context.store is None:
            return None
        params = dict(parameters)
        name = params.pop("name")
        task = self.context.runner.submit(synthetic_job, self.context.store, name, name=f"Generating {name}",
                                          **params)
        self._track(task, f"Generating {name}…")
        task.finished.connect(self._on_write_finished)
        return task

    def ask(self, title: str, text: str) -> bool:
        """A yes/no question (tests replace it)."""
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    @Slot()
    def delete_selected(self) -> Task | None:
        dataset_id = self.selected_id()
        if dataset_id is None or self.context.store is None:
            return None
        row = self.model.dataset(self.model.row_of(dataset_id))
        if not self.ask("Delete dataset",
                        f"Delete <b>{row.name}</b> ({row.micro_behaviors:,} micro-behaviors) and all of its runs, "
                        "metrics and checkpoints? This cannot be undone."):
            return None
        task = self.context.runner.submit(delete_job, self.context.store, dataset_id, name=f"Deleting {row.name}")
        self._track(task, f"Deleting {row.name}…")
        task.finished.connect(self._on_write_finished)
        return task

    def _track(self, task: Task, text: str) -> None:
        self._write_task = task
        self.task_label.setText(text if task.state == "running" else f"{text} (waiting for the running task)")
        self.task_bar.setValue(0)
        self.task_label.show()
        self.task_bar.show()
        task.started.connect(self._on_write_started)
        task.progress.connect(self._on_write_progress)
        task.failed.connect(self._on_write_failed)
        task.done.connect(self._on_write_done)

    @Slot()
    def _on_write_started(self) -> None:
        self.task_label.setText(self.task_label.text().replace(" (waiting for the running task)", ""))

    @Slot(object)
    def _on_write_progress(self, event: object) -> None:
        fraction = progress_fraction(event)
        if fraction is not None:
            self.task_bar.setValue(round(fraction * 1000))

    @Slot(object)
    def _on_write_finished(self, result: object) -> None:
        if isinstance(result, Problem):
            error_box(self, "Datasets", result.message)
            return
        self._overviews.clear()
        self.reload(select_id=result.dataset_id if isinstance(result, ImportReport) else None)
        self.datasetsChanged.emit()
        if isinstance(result, dict) and "dataset" in result:
            self.context_message(f"Deleted {result['dataset']!r} ({result['events']:,} micro-behaviors, "
                                 f"{result['runs']} runs).")

    def context_message(self, text: str) -> None:
        window = self.window()
        bar = getattr(window, "statusBar", None)
        if callable(bar):
            bar().showMessage(text, 8000)

    @Slot(str)
    def _on_write_failed(self, traceback_text: str) -> None:
        last = last_error_line(traceback_text)
        error_box(self, "Datasets", f"The task failed:\n{last}", traceback_text)

    @Slot()
    def _on_write_done(self) -> None:
        self.task_label.hide()
        self.task_bar.hide()
        self._write_task = None
