"""The Runs page's "Share" row: export a model file, score a file, export a report, move runs.

Each button gathers a file name, then calls one ``embsr_core.sharing`` function in a worker and says
in the page's message line what was written. The page tells the row which runs are selected.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QMessageBox, QPushButton, QWidget

from app.widgets.score_dialog import ScoreDialog, ScoreSource
from app.workers import TaskRunner, last_error_line

WITH_CHECKPOINT = ("finished", "stopped", "interrupted")


def export_model_job(store: Any, run_id: int, path: str, *, progress: Callable[[object], None], cancel: Any) -> Any:
    from embsr_core.sharing.model_file import export_model

    return export_model(store, run_id, path)


def report_job(store: Any, run_ids: list[int], path: str, pdf: bool, *, progress: Callable[[object], None],
               cancel: Any) -> Any:
    from embsr_core.sharing.report import write_report

    return write_report(store, run_ids, path, pdf=pdf, progress=progress)


def report_written_text(result: Any) -> str:
    """What the user is told once :func:`report_job` has written its files."""
    pdf = f" and {result.pdf_path.name}" if result.pdf_path else f" (no PDF: {result.pdf_note})"
    return f"Saved the report {result.html_path.name}{pdf} in {result.html_path.parent}; open it in any web browser."


def export_runs_job(store: Any, run_ids: list[int], path: str, *, progress: Callable[[object], None],
                    cancel: Any) -> Any:
    from embsr_core.sharing.runs_transfer import export_runs

    return export_runs(store, run_ids, path, progress=progress, cancel=cancel)


def import_runs_job(store: Any, path: str, *, progress: Callable[[object], None], cancel: Any) -> Any:
    from embsr_core.sharing.runs_transfer import import_runs

    return import_runs(store, path, progress=progress, cancel=cancel)


class ShareBar(QWidget):
    """Buttons acting on the selected runs; ``message(str)`` reports the outcome to the page."""

    message = Signal(str)
    exported = Signal(object)  # the path written (model file, report, runs archive)
    imported = Signal(object)  # the ImportResult of "Import runs…" (the page reloads its table)

    def __init__(self, store: Callable[[], Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._infos: list[Any] = []
        self.folder = Path.home()
        self.score_dialog: ScoreDialog | None = None
        self.runner = TaskRunner(self)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.runner.shutdown)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Share", self))
        self.model_button = QPushButton("Export model…", self)
        self.model_button.setToolTip("Save the selected run's trained model as one file a colleague can use "
                                     "to score sessions (no store needed)")
        self.model_button.clicked.connect(self.export_model)
        self.score_button = QPushButton("Score a file…", self)
        self.score_button.setToolTip("Recommend the next items for every session of a file with the selected run")
        self.score_button.clicked.connect(self.open_score_dialog)
        self.report_button = QPushButton("Export report…", self)
        self.report_button.setToolTip("Save one web page on the selected runs (comparison, significance, curves, data, "
                                      "settings) that opens anywhere, without this program")
        self.report_button.clicked.connect(self.export_report)
        self.runs_button = QPushButton("Export runs…", self)
        self.runs_button.setToolTip("Pack the selected runs with their checkpoints into one file for another store")
        self.runs_button.clicked.connect(self.export_runs)
        self.import_button = QPushButton("Import runs…", self)
        self.import_button.setToolTip("Add runs a colleague exported; runs already here are skipped")
        self.import_button.clicked.connect(self.import_runs)
        for b in (self.model_button, self.score_button, self.report_button, self.runs_button, self.import_button):
            row.addWidget(b)
        row.addStretch(1)
        self.set_selection([])

    def set_selection(self, infos: list[Any]) -> None:
        self._infos = list(infos)
        one_trained = len(infos) == 1 and infos[0].status in WITH_CHECKPOINT
        self.model_button.setEnabled(one_trained)
        self.score_button.setEnabled(one_trained)
        self.report_button.setEnabled(bool(infos))
        self.runs_button.setEnabled(bool(infos) and all(i.status not in ("queued", "running") for i in infos))

    def _save_name(self, title: str, name: str, filters: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self, title, str(self.folder / name), filters)
        if path:
            self.folder = Path(path).parent
        return path

    def _failed(self, title: str) -> Callable[[str], None]:
        def show(text: str) -> None:
            last = last_error_line(text)
            QMessageBox.critical(self, title, last.split(": ", 1)[-1])
            self.message.emit(f"{title}: {last.split(': ', 1)[-1]}")
        return show

    @Slot()
    def export_model(self) -> Any:
        if len(self._infos) != 1:
            return None
        info = self._infos[0]
        path = self._save_name("Export model", f"run{info.id}_{info.model}.embsr", "EMBSR model files (*.embsr)")
        if not path:
            return None
        if not path.endswith(".embsr"):
            path += ".embsr"
        self.message.emit(f"Exporting the model of run {info.id} …")
        task = self.runner.submit(export_model_job, self._store(), info.id, path, name="export model")
        task.finished.connect(lambda result: self._model_exported(result))
        task.failed.connect(self._failed("Export failed"))
        return task

    def _model_exported(self, info: Any) -> None:
        self.message.emit(f"Saved {info.model_name} as {info.path.name} in {info.path.parent}; "
                          "open it on the Playground or score files with it.")
        self.exported.emit(info.path)

    @Slot()
    def open_score_dialog(self) -> ScoreDialog | None:
        if len(self._infos) != 1:
            return None
        info = self._infos[0]
        source = ScoreSource.from_run(self._store(), info.id, f"run {info.id} ({info.display_name})")
        self.score_dialog = ScoreDialog(source, self, self.folder)
        self.score_dialog.show()
        return self.score_dialog

    def _stem(self) -> str:
        ids = [i.id for i in self._infos]
        return "runs_" + "-".join(map(str, ids[:8])) + ("_etc" if len(ids) > 8 else "")

    @Slot()
    def export_report(self, pdf: bool = True) -> Any:
        """Write the HTML report (and a PDF beside it when a converter is installed)."""
        if not self._infos:
            return None
        path = self._save_name("Export report", f"report_{self._stem()}.html", "Web page (*.html)")
        if not path:
            return None
        if not path.endswith(".html"):
            path += ".html"
        self.message.emit(f"Writing the report of {len(self._infos)} run(s) …")
        task = self.runner.submit(report_job, self._store(), [i.id for i in self._infos], path, pdf,
                                  name="export report")
        task.finished.connect(self._report_written)
        task.failed.connect(self._failed("Report failed"))
        return task

    def _report_written(self, result: Any) -> None:
        self.message.emit(report_written_text(result))
        self.exported.emit(result.html_path)

    @Slot()
    def export_runs(self) -> Any:
        if not self._infos:
            return None
        path = self._save_name("Export runs", f"{self._stem()}.zip", "Runs archive (*.zip)")
        if not path:
            return None
        if not path.endswith(".zip"):
            path += ".zip"
        self.message.emit(f"Packing {len(self._infos)} run(s) with their checkpoints …")
        task = self.runner.submit(export_runs_job, self._store(), [i.id for i in self._infos], path,
                                  name="export runs")
        task.finished.connect(lambda p: (self.message.emit(f"Saved {len(self._infos)} run(s) to {Path(p).name} in "
                                                           f"{Path(p).parent}."), self.exported.emit(Path(p))))
        task.failed.connect(self._failed("Export failed"))
        return task

    @Slot()
    def import_runs(self) -> Any:
        path, _ = QFileDialog.getOpenFileName(self, "Import runs", str(self.folder), "Runs archive (*.zip)")
        if not path:
            return None
        self.message.emit("Importing runs …")
        task = self.runner.submit(import_runs_job, self._store(), path, name="import runs")
        task.finished.connect(self._runs_imported)
        task.failed.connect(self._failed("Import failed"))
        return task

    def _runs_imported(self, result: Any) -> None:
        self.message.emit(" ".join(result.summary_lines()))
        self.imported.emit(result)
