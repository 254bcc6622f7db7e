"""Score a file of sessions with a trained model (a run of the store, or a model file) → predictions CSV.

The dialog gathers the files and choices, then runs ``embsr_core.sharing.scoring.score_file`` in a
worker (progress bar, Cancel), and shows what was scored and what was skipped (unknown items or
operations) in plain words. A cancelled or failed scoring leaves no output file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.workers import TaskRunner, last_error_line


@dataclass(frozen=True)
class ScoreSource:
    """Which model scores: a label for the analyst, its operation names and how to load it (in the worker)."""

    label: str
    op_names: list[str]
    load: Callable[[], Any]  # → embsr_core.inference.Predictor

    @classmethod
    def from_run(cls, store: Any, run_id: int, label: str) -> ScoreSource:
        from embsr_core.inference import Predictor
        from embsr_core.store import repository, runs_repo

        run = runs_repo.get_run(store, run_id)
        ops = repository.operation_names(store, run.dataset_id)
        return cls(label, list(ops), lambda: Predictor.from_run(store, run_id))

    @classmethod
    def from_model_file(cls, path: str | Path) -> ScoreSource:
        from embsr_core.inference import Predictor
        from embsr_core.sharing.model_file import read_info

        info = read_info(path)
        return cls(f"model file {Path(path).name} ({info.model_name})", list(info.manifest["vocabulary"]["op_names"]),
                   lambda: Predictor.from_model_file(path))


def score_job(source: ScoreSource, sessions: str, output: str, *, top_k: int, target_op: str, exclude_seen: bool,
              progress: Callable[[object], None], cancel: Any) -> Any:
    """Worker body: load the model, then stream the file through it."""
    from embsr_core.sharing.scoring import score_file

    return score_file(source.load(), sessions, output, top_k=top_k, target_op=target_op,
                      exclude_seen=exclude_seen, progress=progress, cancel=cancel)


class ScoreDialog(QDialog):
    def __init__(self, source: ScoreSource, parent: QWidget | None = None, folder: Path | None = None) -> None:
        super().__init__(parent)
        self.source = source
        self.folder = folder or Path.home()
        self.report: Any = None
        self.task: Any = None
        self.runner = TaskRunner(self)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.runner.shutdown)
        self.setWindowTitle("Score a file of sessions")
        self.resize(620, 330)
        lay = QVBoxLayout(self)
        intro = QLabel(f"Recommend the next items for every session of a file with <b>{source.label}</b>. "
                       "The file may be in any format the import knows (JD, trivago, a CSV / Parquet table).", self)
        intro.setWordWrap(True)
        lay.addWidget(intro)
        form = QFormLayout()
        self.sessions_edit = QLineEdit(self)
        self.sessions_edit.setPlaceholderText("The file with the sessions to score")
        self.sessions_browse = QPushButton("Browse…", self)
        self.sessions_browse.clicked.connect(self._browse_sessions)
        form.addRow("Sessions file", self._row(self.sessions_edit, self.sessions_browse))
        self.output_edit = QLineEdit(self)
        self.output_edit.setPlaceholderText("Where to save the predictions (CSV)")
        self.output_browse = QPushButton("Browse…", self)
        self.output_browse.clicked.connect(self._browse_output)
        form.addRow("Save predictions to", self._row(self.output_edit, self.output_browse))
        self.k_spin = QSpinBox(self)
        self.k_spin.setRange(1, 1000)
        self.k_spin.setValue(20)
        form.addRow("Items per session", self.k_spin)
        self.target_combo = QComboBox(self)
        self.target_combo.addItem("not known", "unknown")
        for name in source.op_names:
            self.target_combo.addItem(name, name)
        self.target_combo.setToolTip("not known: the model does not know what the user will do next;\n"
                                     "an operation asks e.g. 'which items will they put in the cart next?'")
        form.addRow("Next operation", self.target_combo)
        self.exclude_check = QCheckBox("Never recommend an item already in the session", self)
        form.addRow("", self.exclude_check)
        lay.addLayout(form)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        lay.addWidget(self.progress)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        lay.addWidget(self.status, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.start_button = QPushButton("Score", self)
        self.start_button.setObjectName("PrimaryButton")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = QPushButton("Close", self)
        self.close_button.clicked.connect(self.reject)
        for b in (self.start_button, self.cancel_button, self.close_button):
            buttons.addWidget(b)
        lay.addLayout(buttons)

    def _row(self, edit: QLineEdit, button: QPushButton) -> QWidget:
        box = QWidget(self)
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        row.addWidget(button)
        return box

    @Slot()
    def _browse_sessions(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Sessions to score", str(self.folder),
                                              "Session files (*.txt *.csv *.tsv *.parquet *.gz);;All files (*)")
        if path:
            self.sessions_edit.setText(path)
            if not self.output_edit.text():
                self.output_edit.setText(str(Path(path).with_name(Path(path).stem + "_predictions.csv")))

    @Slot()
    def _browse_output(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save predictions", self.output_edit.text() or str(self.folder),
                                              "CSV files (*.csv)")
        if path:
            self.output_edit.setText(path)

    def is_running(self) -> bool:
        return self.task is not None and not self.task.is_done()

    @Slot()
    def start(self) -> None:
        sessions, output = self.sessions_edit.text().strip(), self.output_edit.text().strip()
        if not sessions or not output:
            self.status.setText("Choose the sessions file and where to save the predictions first.")
            return
        self.report = None
        self.progress.setValue(0)
        self.status.setText("Loading the model and reading the file …")
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.task = self.runner.submit(
            score_job, self.source, sessions, output, top_k=self.k_spin.value(),
            target_op=self.target_combo.currentData(), exclude_seen=self.exclude_check.isChecked(), name="score file",
        )
        self.task.progress.connect(self._on_progress)
        self.task.finished.connect(self._on_finished)
        self.task.failed.connect(self._on_failed)
        self.task.cancelled.connect(self._on_cancelled)

    @Slot()
    def cancel(self) -> None:
        if self.is_running():
            self.task.cancel()
            self.status.setText("Cancelling …")

    @Slot(object)
    def _on_progress(self, event: object) -> None:
        fraction = getattr(event, "fraction", None)
        if fraction is not None:
            self.progress.setValue(int(fraction * 1000))
            self.status.setText(f"{getattr(event, 'sessions_scored', 0):,} sessions scored …")

    def _idle(self) -> None:
        self.start_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    @Slot(object)
    def _on_finished(self, report: object) -> None:
        self._idle()
        self.report = report
        self.progress.setValue(1000)
        self.status.setText("\n".join(report.summary_lines()))  # type: ignore[attr-defined]

    @Slot(str)
    def _on_failed(self, text: str) -> None:
        self._idle()
        last = last_error_line(text)
        self.status.setText("Scoring failed: " + re.sub(r"^[\w.]+: ", "", last))  # the message without its class
        self.status.setToolTip(text)

    @Slot(object)
    def _on_cancelled(self, _result: object) -> None:
        self._idle()
        self.progress.setValue(0)
        self.status.setText("Cancelled; no predictions file was written.")

    def done(self, result: int) -> None:  # noqa: D401 - Qt override: closing cancels a running scoring
        if self.is_running():
            self.task.cancel()
        self.runner.shutdown()
        super().done(result)
