"""One run in full (double-click a run on the Runs page): settings, dataset and preprocessing, the
stored training log, curves, files, and the analyst's notes and tags.

Everything is read from the store (``embsr_core.store.run_details`` and ``embsr_core.reports``), so
the window shows the same after a restart as while the run trains; a live run's log and curves
follow every 2 s.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from PySide6.QtCore import QStringListModel, Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCompleter,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.widgets.run_curves import RunCurves
from app.widgets.run_format import STATUS_COLORS, fmt_metric
from app.widgets.setting_labels import setting_label
from embsr_core import reports
from embsr_core.store import Store, run_details, runs_repo
from embsr_core.store.repository import get_dataset

POLL_MS = 2000
LIVE = ("queued", "running")
PREP_LABELS = {  # stored name → (label, what it means)
    "min_item_support": ("Minimum item count", "Items seen fewer times than this are dropped"),
    "min_macro_items": ("Minimum items per session", "Sessions with fewer distinct items are dropped"),
    "max_len": ("Steps kept per session", "The most recent micro-behaviors kept before the target"),
    "split": ("Split", "How sessions are split: time = by end time, random, or in file order"),
    "split_fractions": ("Training / validation / test", "Share of the sessions in each split"),
    "seed": ("Split seed", "Random seed of a random split"),
    "augment": ("Prefix training", "One training example per step of a session (no = one per session)"),
}


def format_size(size: int | None) -> str:
    """Bytes as ``"12.3 MB"``; ``"missing"`` when the file is gone."""
    if size is None:
        return "missing"
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} bytes"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return " / ".join(_value(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _source_text(source_format: str, source_path: str | None) -> str:
    """``jd: /data/x.txt``; a source that already names its format (synthetic) is shown as it is."""
    if not source_path:
        return source_format
    return source_path if source_path.startswith(f"{source_format}:") else f"{source_format}: {source_path}"


def _param_help(model: str) -> dict[str, str]:
    """Model settings' and training settings' descriptions, to label them for an analyst."""
    from embsr_core.models.registry import get_spec
    from embsr_core.training.config import TRAIN_PARAMS

    labels = {p.name: p.help for p in TRAIN_PARAMS}
    with contextlib.suppress(KeyError):  # a model no longer registered keeps its raw names
        labels.update({p.name: p.help for p in get_spec(model).params})
    return labels


class RunDetailDialog(QDialog):
    """Non-modal window of one run; ``saved`` fires after notes/tags were stored."""

    saved = Signal()

    def __init__(self, store: Store, run_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.run_id = int(run_id)
        self._last_seq = 0
        self._state: tuple = ()
        self._folder: Path | None = None
        self.setWindowTitle(f"Run #{self.run_id}")
        self.setObjectName("RunDetail")
        self.resize(980, 680)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 16, 18, 14)
        self.heading = QLabel(self)
        self.heading.setObjectName("CardTitle")
        self.heading.setTextFormat(Qt.TextFormat.RichText)
        self.summary = QLabel(self)
        self.summary.setObjectName("Muted")
        self.summary.setWordWrap(True)
        layout.addWidget(self.heading)
        layout.addWidget(self.summary)

        self.tabs = QTabWidget(self)
        self.settings = QTreeWidget(self)
        self.settings.setHeaderLabels(["Setting", "Value", "What it means"])
        self.settings.setAlternatingRowColors(True)
        self.settings.header().setStretchLastSection(True)
        self.settings.setColumnWidth(0, 300)
        self.settings.setColumnWidth(1, 240)
        self.log = QPlainTextEdit(self)
        self.log.setReadOnly(True)
        self.log.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.log.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.log.setPlaceholderText("No log lines stored for this run (runs trained before logs were stored "
                                    "have none).")
        self.curves = RunCurves(self)
        self.files = QTableWidget(0, 3, self)
        self.files.setHorizontalHeaderLabels(["File", "What", "Size"])
        self.files.verticalHeader().setVisible(False)
        self.files.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.files.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.files.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.open_folder_button = QPushButton("Open folder", self)
        self.open_folder_button.setToolTip("Show the run's checkpoint folder in the file manager")
        files_page = QWidget(self)
        files_layout = QVBoxLayout(files_page)
        files_layout.addWidget(self.files, 1)
        files_bar = QHBoxLayout()
        self.files_note = QLabel(self)
        self.files_note.setObjectName("Muted")
        files_bar.addWidget(self.files_note, 1)
        files_bar.addWidget(self.open_folder_button)
        files_layout.addLayout(files_bar)

        notes_page = QWidget(self)
        notes_form = QFormLayout(notes_page)
        self.notes = QPlainTextEdit(notes_page)
        self.notes.setPlaceholderText("What you tried, what you saw, what to do next …")
        self.tags = QLineEdit(notes_page)
        self.tags.setPlaceholderText("e.g. baseline, learning-rate sweep (comma-separated)")
        self.tags.setToolTip("Tags let you filter the Runs page; separate them with commas")
        self._completer_model = QStringListModel(self)
        completer = QCompleter(self._completer_model, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.tags.setCompleter(completer)
        self.save_button = QPushButton("Save notes and tags", notes_page)
        self.save_button.setObjectName("PrimaryButton")
        self.save_state = QLabel(notes_page)
        self.save_state.setObjectName("Muted")
        save_row = QHBoxLayout()
        save_row.addWidget(self.save_button)
        save_row.addWidget(self.save_state, 1)
        notes_form.addRow("Notes", self.notes)
        notes_form.addRow("Tags", self.tags)
        notes_form.addRow("", save_row)

        self.tabs.addTab(self.settings, "Settings")
        self.tabs.addTab(self.log, "Training log")
        self.tabs.addTab(self.curves, "Curves")
        self.tabs.addTab(files_page, "Files")
        self.tabs.addTab(notes_page, "Notes and tags")
        layout.addWidget(self.tabs, 1)
        close_row = QHBoxLayout()
        close_row.addStretch(1)
        self.close_button = QPushButton("Close", self)
        close_row.addWidget(self.close_button)
        layout.addLayout(close_row)

        self.save_button.clicked.connect(self.save)
        self.close_button.clicked.connect(self.close)
        self.open_folder_button.clicked.connect(self._open_folder)
        self.notes.textChanged.connect(self._mark_dirty)
        self.tags.textEdited.connect(self._mark_dirty)
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)
        self.reload()
        self._load_notes()

    # reading ---------------------------------------------------------------------------------------
    def reload(self) -> None:
        """Re-read the run: heading, settings, files, curves; append new log lines."""
        run = runs_repo.get_run(self.store, self.run_id)
        (info,) = reports.run_infos(self.store, [self.run_id])
        state = (info.status, info.epochs_done, info.best_epoch)
        status_changed = state != self._state
        self._state = state
        color = STATUS_COLORS.get(info.status, "#8a8f99")
        self.heading.setText(f"#{info.id} {info.display_name} &nbsp;<span style='color:{color}'>{info.status}</span>")
        final = runs_repo.final_metrics(self.store, self.run_id).get("oracle", {})
        scores = "  ".join(f"{reports.metric_label(*runs_repo.split_metric_name(k))} {fmt_metric(final[k])} %"
                           for k in ("hit@20", "mrr@20") if k in final)
        duration = reports.format_duration(info.duration_s())
        self.summary.setText(
            f"{info.model} on {info.dataset} · {info.epochs_done} epoch(s)"
            + (f", best {info.best_epoch}" if info.best_epoch is not None else "")
            + (f" · {duration}" if duration else "")
            + (f" · test: {scores}" if scores else "")
        )
        if status_changed:  # redrawn once per epoch, not every poll: the tree keeps its scroll and folds
            self._fill_settings(info)
        self._fill_files(run)
        frames = reports.metrics_by_run(self.store, [self.run_id])
        losses = reports.losses_by_run(self.store, [self.run_id])
        self.curves.set_runs([info], frames, losses)
        self._append_log()
        if info.status in LIVE:
            self._timer.start()
        else:
            self._timer.stop()

    @Slot()
    def poll(self) -> None:
        self.reload()

    def _append_log(self) -> None:
        lines = run_details.run_log(self.store, self.run_id, after_seq=self._last_seq)
        if lines:
            self.log.appendPlainText("\n".join(line.render() for line in lines))
            self._last_seq = lines[-1].seq

    def _fill_settings(self, info: reports.RunInfo) -> None:
        self.settings.clear()
        config = info.config or {}
        labels = _param_help(info.model)

        def group(title: str, rows: list[tuple[str, str, str, str]]) -> None:
            if not rows:
                return
            top = QTreeWidgetItem(self.settings, [title])
            font = top.font(0)
            font.setBold(True)
            top.setFont(0, font)
            for name, value, meaning, key in rows:
                child = QTreeWidgetItem(top, [name, value, meaning])
                tip = f"{meaning}\n(stored as {key})" if key else (meaning or value)
                for col in range(3):
                    child.setToolTip(col, tip)
            top.setExpanded(True)

        when = [("Created", info.created_at), ("Started", info.started_at), ("Finished", info.finished_at)]
        group("Run", [
            ("Status", info.status, "", ""),
            ("Model", info.model, "", ""),
            ("Device", info.device or "–", "", ""),
            *[(label, f"{value:%Y-%m-%d %H:%M:%S}", "", "") for label, value in when if value is not None],
            ("Epochs done", str(info.epochs_done), "", ""),
            ("Best epoch", "–" if info.best_epoch is None else str(info.best_epoch),
             "The epoch with the best validation score; its model is the one tested and kept", ""),
            *([("Problem", (info.error_text or "").strip().splitlines()[-1], info.error_text or "", "")]
              if info.error_text else []),
        ])
        dataset_rows: list[tuple[str, str, str, str]] = [("Dataset", info.dataset, "", "")]
        try:
            dataset = get_dataset(self.store, info.dataset_id)
            dataset_rows += [
                ("Imported from", _source_text(dataset.source_format, dataset.source_path), "", ""),
                ("Sessions / items / events", f"{dataset.n_sessions:,} / {dataset.n_items:,} / {dataset.n_events:,}",
                 "Counts as imported, before preprocessing", ""),
            ]
        except KeyError:
            pass
        prep = config.get("prep") or {}
        dataset_rows += [(PREP_LABELS.get(k, (setting_label(k), ""))[0], _value(v),
                          PREP_LABELS.get(k, ("", ""))[1], k) for k, v in prep.items()]
        group("Dataset and preprocessing", dataset_rows)
        for title, part in (("Model settings", "model"), ("Training settings", "train")):
            group(title, [(setting_label(k, labels.get(k, "")), _value(v), labels.get(k, ""), k)
                          for k, v in (config.get(part) or {}).items()])
        other = {k: v for k, v in config.items() if k not in ("prep", "model", "train")}
        group("Other", [(setting_label(k), _value(v), "", k) for k, v in reports.flatten_config(other).items()])

    def _fill_files(self, run: Any) -> None:
        files = run_details.run_files(run)
        self.files.setRowCount(len(files))
        for row, item in enumerate(files):
            cells = (item.path.name, item.kind, format_size(item.size))
            for col, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                cell.setToolTip(str(item.path))
                if col == 2:
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.files.setItem(row, col, cell)
        self.files.resizeColumnsToContents()
        self.files.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self._folder = files[0].path.parent if files else None
        total = sum(f.size or 0 for f in files)
        self.files_note.setText(f"{len(files)} file(s), {format_size(total)} in {self._folder}" if files
                                else "No checkpoint yet (saved after the first epoch).")
        self.open_folder_button.setEnabled(bool(files) and self._folder is not None and self._folder.is_dir())

    @Slot()
    def _open_folder(self) -> None:
        if self._folder is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._folder)))

    # notes and tags --------------------------------------------------------------------------------
    def _load_notes(self) -> None:
        self.notes.blockSignals(True)
        self.notes.setPlainText(run_details.get_notes(self.store, self.run_id))
        self.notes.blockSignals(False)
        self.tags.setText(", ".join(run_details.get_tags(self.store, self.run_id)))
        self._completer_model.setStringList(run_details.all_tags(self.store))
        self.save_state.setText("")
        self.save_button.setEnabled(False)

    @Slot()
    def _mark_dirty(self, *_args: object) -> None:
        self.save_button.setEnabled(True)
        self.save_state.setText("Not saved yet")

    @Slot()
    def save(self) -> bool:
        """Store the notes and tags; a bad tag is reported and nothing is changed."""
        try:
            tags = run_details.parse_tags(self.tags.text())
        except ValueError as exc:
            self.save_state.setText(str(exc))
            self.save_state.setObjectName("ErrorText")
            self.save_state.style().polish(self.save_state)
            return False
        with self.store.session() as session, session.begin():  # both or neither
            run_details.set_notes(session, self.run_id, self.notes.toPlainText())
            stored = run_details.set_tags(session, self.run_id, tags)
        self.tags.setText(", ".join(stored))
        self._completer_model.setStringList(run_details.all_tags(self.store))
        self.save_state.setObjectName("Muted")
        self.save_state.style().polish(self.save_state)
        self.save_state.setText("Saved")
        self.save_button.setEnabled(False)
        self.saved.emit()
        return True

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self._timer.stop()
        super().closeEvent(event)
