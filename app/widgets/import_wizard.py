"""Import wizard: files and detected format → column mapping with a live preview (generic tables) →
import with progress, rows/s and Cancel.

Every check is the importer's own (``embsr_core.data.preview.preview_source`` reads the head of the
file with the chosen mapping exactly as the import will), and the import itself is
``import_into_store`` in the task runner: one transaction, so an error or a cancel stores nothing.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from PySide6.QtCore import QSettings, QStandardPaths, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from app.jobs import ImportProgress, Problem, import_job
from app.widgets.dialogs import error_box
from app.workers import Task, TaskRunner, last_error_line
from embsr_core.data.errors import DataFormatError
from embsr_core.data.importers import DEFAULT_SESSION_GAP, FORMATS, ColumnMapping, detect_format, get_importer
from embsr_core.data.preview import MAPPED_FIELDS, SourcePreview, preview_source, suggest_mapping
from embsr_core.data.store_io import ImportReport
from embsr_core.store import Store
from embsr_core.store.repository import dataset_exists

FILE_FILTER = "Micro-behavior logs (*.txt *.csv *.tsv *.gz *.parquet *.dat);;All files (*)"
NONE = "(none)"
DELIMITERS = (("Auto-detect", ""), ("Comma  ,", ","), ("Semicolon  ;", ";"), ("Tab", "\t"), ("Pipe  |", "|"))
FIELD_HELP = {
    "session": "Column holding the session id (required)",
    "item": "Column holding the item id (required)",
    "operation": "Column holding the operation / action type (required unless a fixed operation is given)",
    "timestamp": "Column holding the time: seconds or ISO dates (required)",
    "category": "Column holding the item's category (optional)",
    "dwell": "Column holding the dwell time in seconds (optional)",
    "user": "A log without sessions: the column holding the user id. Each user's events are cut into "
            "sessions wherever nothing happened for longer than the session gap",
}
SETTINGS_LAST_FOLDER = "import/last_folder"


def start_folder() -> str:
    """Where the file dialog opens: the folder of the last import, else the user's documents (or home)."""
    last = QSettings().value(SETTINGS_LAST_FOLDER, "", type=str)
    if last and Path(last).is_dir():
        return last
    docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    return docs if docs and Path(docs).is_dir() else str(Path.home())


def remember_folder(path: str | Path) -> None:
    QSettings().setValue(SETTINGS_LAST_FOLDER, str(Path(path).parent))
REQUIRED_FIELDS = ("session", "item", "operation", "timestamp")
PREVIEW_DEBOUNCE_MS = 150


def problem_text(problem: Problem) -> str:
    """File / line / column / problem on separate lines, for the error dialog."""
    lines = []
    if problem.path:
        lines.append(f"File: {problem.path}")
    if problem.line is not None:
        lines.append(f"Line: {problem.line}")
    if problem.column:
        lines.append(f"Column: {problem.column}")
    lines.append(f"Problem: {problem.detail or problem.message}")
    return "\n".join(lines)


def fill_table(table: QTableWidget, columns: list[str], rows: list[list[Any]]) -> None:
    table.clear()
    table.setColumnCount(len(columns))
    table.setRowCount(len(rows))
    table.setHorizontalHeaderLabels(columns)
    for r, row in enumerate(rows):
        for c, value in enumerate(row[: len(columns)]):
            table.setItem(r, c, QTableWidgetItem(str(value)))
    table.resizeColumnsToContents()


def frame_rows(frame: pd.DataFrame) -> tuple[list[str], list[list[Any]]]:
    shown = frame.drop(columns=[c for c in ("step",) if c in frame.columns])
    return list(shown.columns), shown.astype(str).to_numpy().tolist()


def _table(parent: QWidget, height: int = 150) -> QTableWidget:
    table = QTableWidget(parent)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    table.setMinimumHeight(height)
    table.setAlternatingRowColors(True)
    return table


class FilesPage(QWizardPage):
    """Pick one file (several for generic tables / JD parts), see the detected format and its head."""

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.setTitle("Choose the data")
        self.setSubTitle("JD micro-behavior lines, a trivago train file, or any CSV / TSV / Parquet table. "
                         "The format is detected from the content.")
        self.detected: str | None = None
        self.preview: SourcePreview | None = None
        self._auto_name = ""  # the name the wizard filled in from a file (replaced when the file changes)
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.files = QListWidget(self)
        self.files.setMaximumHeight(72)
        row.addWidget(self.files, 1)
        buttons = QVBoxLayout()
        self.add_button = QPushButton("Add files…", self)
        self.add_button.clicked.connect(self._browse)
        self.clear_button = QPushButton("Clear", self)
        self.clear_button.clicked.connect(self._clear)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.clear_button)
        buttons.addStretch(1)
        row.addLayout(buttons)
        layout.addLayout(row)
        form = QFormLayout()
        self.format_combo = QComboBox(self)
        self.format_combo.addItem("Auto-detect", "auto")
        for name in FORMATS:
            self.format_combo.addItem(f"{name} — {get_importer(name).DESCRIPTION}", name)
        self.format_combo.setToolTip("Leave on auto-detect unless the detection is wrong")
        self.format_combo.currentIndexChanged.connect(self._update)
        form.addRow("Format", self.format_combo)
        self.detected_label = QLabel(self)
        self.detected_label.setObjectName("Muted")
        self.detected_label.setWordWrap(True)
        form.addRow("Detected", self.detected_label)
        self.name_edit = QLineEdit(self)
        self.name_edit.setPlaceholderText("Dataset name in the store")
        self.name_edit.textChanged.connect(self._update)
        form.addRow("Dataset name", self.name_edit)
        layout.addLayout(form)
        self.message = QLabel(self)
        self.message.setObjectName("ErrorText")
        self.message.setWordWrap(True)
        self.message.hide()
        layout.addWidget(self.message)
        caption = QLabel("First rows as they will be imported", self)
        caption.setObjectName("Muted")
        layout.addWidget(caption)
        self.preview_table = _table(self)
        layout.addWidget(self.preview_table, 1)

    # files ----------------------------------------------------------------------------------------
    def paths(self) -> list[Path]:
        return [Path(self.files.item(i).text()) for i in range(self.files.count())]

    def set_files(self, paths: list[str | Path]) -> None:
        self.files.clear()
        for p in paths:
            self.files.addItem(str(p))
        self._suggest_name()
        self._update()

    def _suggest_name(self) -> None:
        """Name the dataset after the first file unless the user typed a name of their own."""
        current = self.name_edit.text().strip()
        if current and current != self._auto_name:
            return
        paths = self.paths()
        self._auto_name = self._free_name(paths[0].stem) if paths else ""
        self.name_edit.setText(self._auto_name)

    def _free_name(self, base: str) -> str:
        name, n = base, 1
        while dataset_exists(self.store, name):
            n += 1
            name = f"{base} ({n})"
        return name

    @Slot()
    def _browse(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Import micro-behavior data", start_folder(), FILE_FILTER)
        if paths:
            remember_folder(paths[0])
            refused = self.message.isVisible()  # a refused choice is replaced, not kept beside the new one
            self.set_files(paths if refused else [*self.paths(), *paths])

    @Slot()
    def _clear(self) -> None:
        self.files.clear()
        self._suggest_name()
        self._update()

    def chosen_format(self) -> str:
        return str(self.format_combo.currentData())

    def resolved_format(self) -> str | None:
        return self.detected if self.chosen_format() == "auto" else self.chosen_format()

    # checks ---------------------------------------------------------------------------------------
    def _show_error(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    @Slot()
    def _update(self, *_args: object) -> None:
        self.detected, self.preview = None, None
        self.preview_table.clear()
        self.preview_table.setRowCount(0)
        self.preview_table.setColumnCount(0)
        error = ""
        paths = self.paths()
        if paths:
            try:
                found = [detect_format(p) for p in paths]
                self.detected = found[0]
                if len(set(found)) > 1:
                    listing = ", ".join(f"{p.name}: {f}" for p, f in zip(paths, found, strict=True))
                    error = f"The files are of different formats ({listing}); import them separately."
                self.detected_label.setText(
                    f"<b>{self.detected}</b> — {get_importer(self.detected).DESCRIPTION}"
                )
            except DataFormatError as exc:
                self.detected_label.setText("—")
                error = str(exc)
            fmt = self.resolved_format()
            if not error and fmt is not None:
                try:
                    self.preview = preview_source(paths[0], fmt)
                    if self.preview.ok:
                        fill_table(self.preview_table, *frame_rows(self.preview.events))
                    else:
                        fill_table(self.preview_table, self.preview.columns, self.preview.raw_rows)
                        if fmt != "generic":  # generic tables get their mapping on the next page
                            error = str(self.preview.error)
                except (DataFormatError, ValueError) as exc:
                    error = str(exc)
        else:
            self.detected_label.setText("Add a file to detect its format.")
        name = self.name_edit.text().strip()
        if not error and name and dataset_exists(self.store, name):
            error = f"A dataset named {name!r} already exists; choose another name."
        self._show_error(error)
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802 - Qt API
        return bool(self.paths()) and self.preview is not None and not self.message.isVisible() \
            and bool(self.name_edit.text().strip())

    def nextId(self) -> int:  # noqa: N802 - Qt API
        wizard = self.wizard()
        if isinstance(wizard, ImportWizard):
            return wizard.MAPPING if self.resolved_format() == "generic" else wizard.RUN
        return super().nextId()


class MappingPage(QWizardPage):
    """Generic tables: which column is which field, with the raw head and the mapped head side by side."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Map the columns")
        self.setSubTitle("Tell the importer which column holds each field. The preview below is read by the "
                         "importer itself, so what it shows is what will be stored.")
        self.preview: SourcePreview | None = None
        self.columns: list[str] = []
        layout = QVBoxLayout(self)
        grid = QHBoxLayout()
        left, right = QFormLayout(), QFormLayout()
        self.combos: dict[str, QComboBox] = {}
        for k, fld in enumerate(MAPPED_FIELDS):
            combo = QComboBox(self)
            combo.setObjectName(f"map_{fld}")
            combo.setToolTip(FIELD_HELP[fld])
            combo.setMinimumWidth(150)
            combo.currentIndexChanged.connect(self._schedule)
            self.combos[fld] = combo
            label = fld.capitalize() + (" *" if fld in REQUIRED_FIELDS else "")
            (left if k < 3 else right).addRow(label, combo)
        self.delimiter = QComboBox(self)
        for text, value in DELIMITERS:
            self.delimiter.addItem(text, value)
        self.delimiter.setToolTip("Column separator of a text table (auto-detected from the first lines)")
        self.delimiter.currentIndexChanged.connect(self._delimiter_changed)
        left.addRow("Delimiter", self.delimiter)
        self.fixed_op = QLineEdit(self)
        self.fixed_op.setPlaceholderText("e.g. purchase")
        self.fixed_op.setToolTip("A file without an operation column (e.g. Diginetica purchases): every row "
                                 "gets this operation")
        self.fixed_op.textChanged.connect(self._schedule)
        right.addRow("Fixed operation", self.fixed_op)
        self.no_header = QCheckBox("The first line is data (no column names)", self)
        self.no_header.setToolTip("Columns are then chosen by position: 1 is the first column, 2 the second, …")
        self.no_header.toggled.connect(self._delimiter_changed)
        left.addRow("Header", self.no_header)
        self.numeric_ids = QCheckBox("Ids that are numbers are one number (007 = 7)", self)
        self.numeric_ids.setToolTip("Off: ids are compared as written, so 007 and 7 are two items. On: ids that are "
                                    "whole numbers are compared as numbers")
        self.numeric_ids.toggled.connect(self._schedule)
        left.addRow("Ids", self.numeric_ids)
        user = QComboBox(self)
        user.setObjectName("map_user")
        user.setToolTip(FIELD_HELP["user"])
        user.setMinimumWidth(150)
        user.currentIndexChanged.connect(self._schedule)
        self.combos["user"] = user
        right.addRow("User (no sessions)", user)
        self.gap = QDoubleSpinBox(self)
        self.gap.setObjectName("session_gap")
        self.gap.setRange(0.5, 7 * 24 * 60)
        self.gap.setDecimals(1)
        self.gap.setSuffix(" min")
        self.gap.setValue(DEFAULT_SESSION_GAP / 60)
        self.gap.setToolTip("With a user column and no session column: a pause longer than this starts a new "
                            "session (30 minutes is the usual choice in session-based recommendation)")
        self.gap.valueChanged.connect(self._schedule)
        right.addRow("Session gap", self.gap)
        grid.addLayout(left)
        grid.addSpacing(20)
        grid.addLayout(right)
        grid.addStretch(1)
        layout.addLayout(grid)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        tables = QHBoxLayout()
        raw_box, mapped_box = QVBoxLayout(), QVBoxLayout()
        raw_caption = QLabel("File (first rows)", self)
        raw_caption.setObjectName("Muted")
        mapped_caption = QLabel("As imported", self)
        mapped_caption.setObjectName("Muted")
        self.raw_table = _table(self, 170)
        self.mapped_table = _table(self, 170)
        raw_box.addWidget(raw_caption)
        raw_box.addWidget(self.raw_table)
        mapped_box.addWidget(mapped_caption)
        mapped_box.addWidget(self.mapped_table)
        tables.addLayout(raw_box, 1)
        tables.addLayout(mapped_box, 1)
        layout.addLayout(tables, 1)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PREVIEW_DEBOUNCE_MS)
        self._timer.timeout.connect(self.refresh_preview)

    def _wizard(self) -> ImportWizard:
        wizard = self.wizard()
        assert isinstance(wizard, ImportWizard)
        return wizard

    def initializePage(self) -> None:  # noqa: N802 - Qt API
        self._load_columns()

    def _load_columns(self) -> None:
        path = self._wizard().files_page.paths()[0]
        head = preview_source(path, "generic", ColumnMapping(delimiter=self.delimiter.currentData() or None,
                                                             header=not self.no_header.isChecked()))
        self.columns = head.columns
        guess = suggest_mapping(head.columns)
        for fld, combo in self.combos.items():
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(NONE, None)
            for c in head.columns:
                combo.addItem(c, c)
            index = combo.findData(guess.get(fld)) if not self.no_header.isChecked() else -1
            combo.setCurrentIndex(max(index, 0))
            combo.blockSignals(False)
        self._update_gap()
        self.refresh_preview()

    def _update_gap(self) -> None:
        self.gap.setEnabled(self.combos["session"].currentData() is None and self.combos["user"].currentData()
                            is not None)

    @Slot()
    def _delimiter_changed(self) -> None:
        self._load_columns()

    @Slot()
    def _schedule(self, *_args: object) -> None:
        self._update_gap()
        self._timer.start()

    def mapping(self) -> ColumnMapping:
        chosen = {fld: combo.currentData() for fld, combo in self.combos.items()}
        by_user = chosen["session"] is None and chosen["user"] is not None
        return ColumnMapping(**chosen, delimiter=self.delimiter.currentData() or None,
                             session_gap=60.0 * self.gap.value() if by_user else None,
                             header=not self.no_header.isChecked(), numeric_ids=self.numeric_ids.isChecked())

    def fixed_operation(self) -> str | None:
        return self.fixed_op.text().strip() or None

    def _missing(self) -> list[str]:
        fixed = self.fixed_operation()
        has_user = self.combos["user"].currentData() is not None
        return [("session (or user)" if f == "session" else f) for f in REQUIRED_FIELDS
                if self.combos[f].currentData() is None and not (f == "operation" and fixed)
                and not (f == "session" and has_user)]

    @Slot()
    def refresh_preview(self) -> None:
        """Read the head of the first file with the current mapping (the importer's own checks)."""
        self._timer.stop()
        paths = self._wizard().files_page.paths()
        missing = self._missing()
        try:
            self.preview = preview_source(paths[0], "generic", self.mapping(), operation=self.fixed_operation())
        except DataFormatError as exc:
            self.preview = None
            self._set_status(str(exc), ok=False)
            self.completeChanged.emit()
            return
        fill_table(self.raw_table, self.preview.columns, self.preview.raw_rows)
        if missing:
            self.mapped_table.setRowCount(0)
            self._set_status("Choose a column for: " + ", ".join(missing) + ".", ok=False)
        elif not self.preview.ok:
            self.mapped_table.setRowCount(0)
            self._set_status(str(self.preview.error), ok=False)
        else:
            fill_table(self.mapped_table, *frame_rows(self.preview.events))
            n = len(self.preview.events)
            note = (f" Sessions are cut per user after {self.gap.value():g} minutes without an event (shown here "
                    "from the first rows of the file)." if self.mapping().session is None else "")
            self._set_status(f"✓ The first {n} rows read correctly with this mapping.{note}", ok=True)
        self.completeChanged.emit()

    def _set_status(self, text: str, ok: bool) -> None:
        self.status.setObjectName("Muted" if ok else "ErrorText")
        self.status.setText(text)
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)

    def is_valid(self) -> bool:
        return self.preview is not None and self.preview.ok and not self._missing()

    def isComplete(self) -> bool:  # noqa: N802 - Qt API
        return self.is_valid()


class RunPage(QWizardPage):
    """Runs the import in the task runner; progress, rows/s, Cancel; the result or the error."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Import")
        self.setSubTitle("One transaction: if anything goes wrong, or you cancel, nothing is stored.")
        layout = QVBoxLayout(self)
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.summary)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 1000)
        layout.addWidget(self.bar)
        row = QHBoxLayout()
        self.rate = QLabel(self)
        self.rate.setObjectName("Muted")
        row.addWidget(self.rate, 1)
        self.cancel_button = QPushButton("Cancel import", self)
        self.cancel_button.setToolTip("Stop the import; the store is left as it was")
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.result_label = QLabel(self)
        self.result_label.setWordWrap(True)
        self.result_label.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.result_label)
        self.skip_cut_button = QPushButton("Import without the cut last line", self)
        self.skip_cut_button.setToolTip("The file ends inside its last line (a download cut short). Import every "
                                        "other line; the import report counts the one skipped")
        self.skip_cut_button.clicked.connect(self.retry_without_cut_line)
        self.skip_cut_button.setVisible(False)
        layout.addWidget(self.skip_cut_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)
        self.task: Task | None = None
        self.report: ImportReport | None = None
        self.problem: Problem | None = None
        self._t0 = 0.0

    def _wizard(self) -> ImportWizard:
        wizard = self.wizard()
        assert isinstance(wizard, ImportWizard)
        return wizard

    def initializePage(self) -> None:  # noqa: N802 - Qt API
        self._start(skip_cut_last_line=False)

    @Slot()
    def retry_without_cut_line(self) -> None:
        """Import again, skipping the last line the file ends inside (offered only after that refusal)."""
        if not self.is_running():
            self._start(skip_cut_last_line=True)

    def _start(self, *, skip_cut_last_line: bool) -> None:
        wizard = self._wizard()
        files = wizard.files_page
        fmt = files.resolved_format() or "auto"
        mapping = wizard.mapping_page.mapping() if fmt == "generic" else None
        if skip_cut_last_line:
            mapping = replace(mapping or ColumnMapping(), skip_cut_last_line=True)
        self.skip_cut_button.setVisible(False)
        fixed = wizard.mapping_page.fixed_operation() if fmt == "generic" else None
        name = files.name_edit.text().strip()
        names = "<br>".join(str(p) for p in files.paths())
        self.summary.setText(f"Importing as <b>{name}</b> ({fmt}):<br><span>{names}</span>")
        self.report, self.problem = None, None
        self.bar.setValue(0)
        self.result_label.clear()
        self.cancel_button.setEnabled(True)
        runner = wizard.runner
        waiting = runner.is_busy()
        self.task = runner.submit(import_job, wizard.store, files.paths(), fmt, name, mapping, fixed,
                                  name=f"Importing {name}")
        self.rate.setText("Waiting for the running task to finish…" if waiting else "Starting…")
        self._t0 = time.perf_counter()
        self.task.started.connect(self._on_started)
        self.task.progress.connect(self._on_progress)
        self.task.finished.connect(self._on_finished)
        self.task.failed.connect(self._on_failed)
        self.task.cancelled.connect(self._on_cancelled)
        self.completeChanged.emit()

    def cleanupPage(self) -> None:  # noqa: N802 - Qt API: "Back" while importing cancels the import
        self.cancel()

    def is_running(self) -> bool:
        return self.task is not None and not self.task.is_done()

    @Slot()
    def cancel(self) -> None:
        if self.is_running():
            assert self.task is not None
            self.task.cancel()
            self.rate.setText("Cancelling…")
            self.cancel_button.setEnabled(False)

    @Slot()
    def _on_started(self) -> None:
        self._t0 = time.perf_counter()
        self.rate.setText("Reading…")

    @Slot(object)
    def _on_progress(self, event: object) -> None:
        if not isinstance(event, ImportProgress):
            return
        if event.total > 0:
            self.bar.setValue(round(1000 * min(1.0, event.done / event.total)))
        elapsed = max(time.perf_counter() - self._t0, 1e-6)
        self.rate.setText(f"{event.rows:,} rows read · {event.rows / elapsed:,.0f} rows/s")

    def _end(self) -> None:
        self.cancel_button.setEnabled(False)
        self.completeChanged.emit()
        self._wizard().task_ended()

    @Slot(object)
    def _on_finished(self, result: object) -> None:
        if isinstance(result, Problem):
            self.problem = result
            self.bar.setValue(0)
            self.rate.setText("")
            if result.cut_last_line:
                self.result_label.setText("<span style='font-weight:600'>Nothing was stored.</span> The file ends "
                                          "inside its last line, as a download cut short does. Import the rest "
                                          "without that line, go back to choose another file, or close the wizard.")
            else:
                self.result_label.setText("<span style='font-weight:600'>Nothing was stored.</span> Go back to fix "
                                          "the file choice or the mapping, or close the wizard.")
            self.skip_cut_button.setVisible(result.cut_last_line)
            self._end()
            self._wizard().show_problem(result)
            return
        assert isinstance(result, ImportReport)
        self.report = result
        self.bar.setValue(1000)
        self.rate.setText(f"{result.rows_read:,} rows in {result.seconds:.1f} s · "
                          f"{result.rows_per_second:,.0f} rows/s")
        reasons = "; ".join(f"{reason}: {n:,}" for reason, n in sorted(result.skipped.items()))
        rows = "row" if result.rows_skipped == 1 else "rows"
        skipped = f", {result.rows_skipped:,} {rows} skipped ({reasons})" if result.rows_skipped else ""
        self.result_label.setText(
            f"✓ <b>{result.dataset_name}</b>: {result.n_sessions:,} sessions, {result.rows_kept:,} "
            f"micro-behaviors, {result.n_items:,} items, {result.n_operations} operations{skipped}."
        )
        self._end()
        self._wizard().imported.emit(result)

    @Slot(str)
    def _on_failed(self, traceback_text: str) -> None:
        last = last_error_line(traceback_text)
        self.problem = Problem(last, detail=last)
        self.result_label.setText("<b>Nothing was stored.</b>")
        self._end()
        error_box(self, "Import failed", f"The import failed:\n{last}\n\nNothing was stored.", traceback_text)
        self._wizard().failed.emit(self.problem)

    @Slot(object)
    def _on_cancelled(self, _result: object) -> None:
        self.bar.setValue(0)
        self.rate.setText("Cancelled.")
        self.result_label.setText("The import was cancelled; nothing was stored.")
        self._end()

    def isComplete(self) -> bool:  # noqa: N802 - Qt API
        return self.report is not None


class ImportWizard(QWizard):
    """Non-blocking (``open()``): ``imported(ImportReport)`` when a dataset was stored, ``failed(Problem)``."""

    FILES, MAPPING, RUN = 0, 1, 2
    imported = Signal(object)
    failed = Signal(object)

    def __init__(self, store: Store, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.runner = runner
        self.setWindowTitle("Import dataset")
        self.setWizardStyle(QWizard.WizardStyle.ModernStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, False)
        self.setOption(QWizard.WizardOption.NoCancelButtonOnLastPage, True)
        self.files_page = FilesPage(store, self)
        self.mapping_page = MappingPage(self)
        self.run_page = RunPage(self)
        self.setPage(self.FILES, self.files_page)
        self.setPage(self.MAPPING, self.mapping_page)
        self.setPage(self.RUN, self.run_page)
        self.setStartId(self.FILES)
        self.resize(860, 620)
        self._closing = False

    def set_files(self, paths: list[str | Path]) -> None:
        self.files_page.set_files(paths)

    def show_problem(self, problem: Problem) -> None:
        error_box(self, "Import failed", problem_text(problem) + "\n\nNothing was stored.", problem.message)
        self.failed.emit(problem)

    def task_ended(self) -> None:
        if self._closing:
            self._closing = False
            super().reject()

    def reject(self) -> None:
        """Closing while importing cancels first and closes once the import has rolled back."""
        if self.run_page.is_running():
            self._closing = True
            self.run_page.cancel()
            return
        super().reject()
