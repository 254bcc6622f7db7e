"""Tune dialog: search better settings for the Train page's model on the validation data.

The page gathers nothing new: it hands over the Train page's request; the job calls the same core
function as ``embsr tune`` (:func:`embsr_core.training.tuning.tune`) in the training queue, and this
dialog only renders its progress (one row per trial, the best so far) and its result.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.context import AppContext
from app.jobs import Preparing, TrainRequest
from app.widgets.setting_labels import setting_label
from app.workers import CancelToken, Task, last_error_line
from embsr_core.data.from_store import prepare_dataset
from embsr_core.models.registry import get_spec
from embsr_core.store import Store, runs_repo
from embsr_core.training import EpochStarted, EvaluationEnd, TrainEvent
from embsr_core.training.config import EXECUTION_SETTINGS, TRAIN_PARAMS
from embsr_core.training.tuning import TrialInfo, TuneProgress, TuneResult, search_space, tune

COLUMNS = ("Try", "Settings", "Outcome", "Valid H@20", "Valid M@20", "Note")
OUTCOME_TEXT = {"complete": "finished", "pruned": "stopped early", "failed": "failed", "running": "training…"}


def tune_job(store: Store, request: TrainRequest, budget_s: float | None, n_trials: int | None, *,
             progress: Any, cancel: CancelToken) -> TuneResult | None:
    """What ``embsr tune`` does: prepare the split, then tune; epoch and trial events go to ``progress``."""
    progress(Preparing(request.dataset_name, request.preset))
    prepared = prepare_dataset(store, request.dataset_id, request.preset, overrides=request.prep_overrides)
    if cancel.cancelled:
        return None

    def epochs_only(event: TrainEvent) -> None:  # batch events would flood the GUI thread for nothing
        if isinstance(event, EpochStarted | EvaluationEnd):
            progress(event)

    return tune(store, prepared, request.model_name, budget_s=budget_s, n_trials=n_trials,
                model_overrides=request.model_overrides, train_config=request.train_config,
                dataset_id=request.dataset_id, callback=epochs_only, on_progress=progress, control=cancel)


def knob_label(name: str, model_name: str) -> str:
    """A setting's label, the same as in the Train form (:func:`setting_label`)."""
    params = {p.name: p for p in TRAIN_PARAMS} | {p.name: p for p in get_spec(model_name).params}
    return setting_label(name, params[name].help if name in params else "")


def settings_text(params: dict[str, Any], model_name: str) -> str:
    return "; ".join(f"{knob_label(k, model_name)}: {v}" for k, v in params.items()) or "defaults"


def _pct(metrics: dict[str, float] | None, key: str) -> str:
    return "" if not metrics or key not in metrics else f"{100 * metrics[key]:.2f} %"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


class TuneDialog(QDialog):
    """Start, follow and cancel one tuning study; ``bestRun(run_id)`` when it found its best run,
    ``useSettings({"model": …, "train": …})`` when the user takes its settings to the Train page."""

    bestRun = Signal(int)  # noqa: N815 - Qt naming
    useSettings = Signal(object)  # noqa: N815 - Qt naming

    def __init__(self, context: AppContext, request: TrainRequest, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.request = request
        self.task: Task | None = None
        self.result: TuneResult | None = None
        self._rows: dict[int, int] = {}  # trial number → table row
        self.setWindowTitle(f"Tune {request.model_name}")
        self.setObjectName("TuneDialog")
        self.resize(760, 520)
        self._build()

    # layout ----------------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        title = QLabel(f"Tune {self.request.model_name} on {self.request.dataset_name}", self)
        title.setObjectName("CardTitle")
        layout.addWidget(title)
        intro = QLabel(
            "Tries other settings on the validation sessions and keeps the best. The first try is always your "
            "current settings, so the result is never worse than them on validation. Tries that fall behind "
            "are stopped early. Every try is saved as a run (Runs page); the best one is marked.", self)
        intro.setWordWrap(True)
        intro.setObjectName("Muted")
        layout.addWidget(intro)
        space = search_space(self.request.model_name)
        searched = "; ".join(f"{knob_label(k, self.request.model_name)}: {', '.join(str(v) for v in vals)}"
                             for k, vals in space.items()) or "nothing to tune for this model (one try)"
        self.space_label = QLabel(f"Searched — {searched}", self)
        self.space_label.setWordWrap(True)
        layout.addWidget(self.space_label)

        limits = QHBoxLayout()
        limits.addWidget(QLabel("Stop after", self))
        self.minutes = QSpinBox(self)
        self.minutes.setRange(1, 24 * 60)
        self.minutes.setValue(15)
        self.minutes.setSuffix(" min")
        self.minutes.setToolTip("Time for the whole search; the try with your current settings always finishes, and "
                                   "a try still training when the time runs out is scored at its best epoch so far")
        limits.addWidget(self.minutes)
        limits.addWidget(QLabel("or after", self))
        self.trials = QSpinBox(self)
        self.trials.setRange(0, 10_000)
        self.trials.setSpecialValueText("any number of")
        self.trials.setToolTip("Most tries to make (any number: only the time limit applies)")
        limits.addWidget(self.trials)
        limits.addWidget(QLabel("tries, whichever comes first", self))
        limits.addStretch(1)
        layout.addLayout(limits)

        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        layout.addWidget(self.progress)
        self.status = QLabel("Not started.", self)
        self.status.setObjectName("TuneStatus")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.best_label = QLabel("", self)
        self.best_label.setObjectName("TuneBest")
        self.best_label.setWordWrap(True)
        self.best_label.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.best_label)

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("TuneTrials")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)  # notes wrap, not scroll
        self.table.setWordWrap(True)
        layout.addWidget(self.table, 1)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.start_button = QPushButton("Start tuning", self)
        self.start_button.setProperty("primary", True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Stop", self)
        self.cancel_button.setToolTip("Stop the running try and end the search; the best so far is kept")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.use_button = QPushButton("Use the best settings", self)
        self.use_button.setToolTip("Put the best try's settings into the Train page's fields, to train with them "
                                   "(for longer, with another seed, or on another dataset)")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self.use_best_settings)
        self.close_button = QPushButton("Close", self)
        self.close_button.setToolTip("Close the window; a running search stops (the best so far is kept)")
        self.close_button.clicked.connect(self.close)
        for button in (self.use_button, self.start_button, self.cancel_button, self.close_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)

    # control ---------------------------------------------------------------------------------------
    @Slot()
    def start(self) -> Task | None:
        store = self.context.store
        if store is None or (self.task is not None and not self.task.is_done()):
            return None
        budget_s = 60.0 * self.minutes.value()
        n_trials = self.trials.value() or None
        self.table.setRowCount(0)
        self._rows.clear()
        self.best_label.setText("")
        self.result = None
        self._budget_s = budget_s
        self._n_trials = n_trials
        busy = self.context.runner.training.is_busy()
        self.status.setText("Waiting for the running training to end…" if busy else "Preparing the data…")
        # the training queue (one training at a time), without the Train page adopting it as a run
        task = self.context.runner.training.submit(tune_job, store, self.request, budget_s, n_trials,
                                                   name=f"Tuning {self.request.label()}")
        task.progress.connect(self._on_progress)
        task.finished.connect(self._on_finished)
        task.cancelled.connect(self._on_cancelled)
        task.failed.connect(self._on_failed)
        self.task = task
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.minutes.setEnabled(False)
        self.trials.setEnabled(False)
        return task

    @Slot()
    def cancel(self) -> None:
        if self.task is not None and not self.task.is_done():
            self.task.cancel()
            self.status.setText("Stopping after the current batch…")
            self.cancel_button.setEnabled(False)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt naming
        self.cancel()  # closing the window ends the search (the best so far is kept)
        super().closeEvent(event)

    # task signals (GUI thread) ---------------------------------------------------------------------
    @Slot(object)
    def _on_progress(self, event: object) -> None:
        if isinstance(event, Preparing):
            self.status.setText(f"Preparing {event.dataset_name!r}…")
        elif isinstance(event, EpochStarted):
            self.status.setText(self._status_head() + f" · epoch {event.epoch} of at most {event.max_epochs}")
        elif isinstance(event, TuneProgress):
            self._last = event
            if not event.trial.duplicate:  # a re-proposed known configuration trained nothing
                self._show_trial(event.trial)
            self._show_best(event.best)
            self._show_fraction(event)
            self.status.setText(self._status_head())

    def _status_head(self) -> str:
        p: TuneProgress | None = getattr(self, "_last", None)
        if p is None:
            return "Training"
        running = "A try is training" if p.trial.state == "running" else "Choosing the next try"
        left = "" if p.eta_s is None else f" · about {_minutes(p.eta_s)} left"
        return f"{running} · {p.n_finished} finished · {_minutes(p.elapsed_s)} spent{left}"

    def _show_fraction(self, p: TuneProgress) -> None:
        parts = []
        if p.budget_s:
            parts.append(p.elapsed_s / p.budget_s)
        if p.max_trials:
            parts.append(p.n_finished / p.max_trials)
        if parts:
            self.progress.setValue(int(1000 * min(1.0, max(parts))))

    def _show_trial(self, t: TrialInfo) -> None:
        row = self._rows.get(t.number)
        if row is None:
            row = self.table.rowCount()
            self.table.insertRow(row)
            self._rows[t.number] = row
        note = {"defaults": "your current settings"}.get(t.note, t.note)
        values = (str(row + 1), settings_text(t.params, self.request.model_name), OUTCOME_TEXT.get(t.state, t.state),
                  _pct(t.valid, "hit@20"), _pct(t.valid, "mrr@20"), note)
        for col, text in enumerate(values):
            item = QTableWidgetItem(text)
            if col in (3, 4):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if col in (1, len(values) - 1) and text:
                item.setToolTip(text)
            self.table.setItem(row, col, item)
        self.table.resizeRowToContents(row)
        self.table.scrollToItem(self.table.item(row, 0))

    def _show_best(self, best: TrialInfo | None) -> None:
        if best is None:
            return
        shown = self._rows.get(best.number)
        which = f"try {shown + 1}" if shown is not None else "an earlier try"
        self.best_label.setText(
            f"<b>Best so far:</b> {which} ({settings_text(best.params, self.request.model_name)}) — validation "
            f"H@20 {_pct(best.valid, 'hit@20')}, M@20 {_pct(best.valid, 'mrr@20')}, run {best.run_id}")

    @Slot()
    def use_best_settings(self) -> dict[str, Any] | None:
        """Hand the best run's model and training settings to the Train page (how to run stays its own)."""
        run_id = None if self.result is None else self.result.best_run_id
        run = None if run_id is None or self.context.store is None else runs_repo.get_run(self.context.store, run_id)
        if run is None:
            self.status.setText("The best run is no longer in the store: tune again.")
            self.use_button.setEnabled(False)
            return None
        settings = {"model_name": run.model_name, "model": dict(run.config.get("model", {})),
                    "train": {k: v for k, v in run.config.get("train", {}).items() if k not in EXECUTION_SETTINGS}}
        self.useSettings.emit(settings)
        self.status.setText(f"The settings of run {run_id} are now in the Train page's fields: Start training there "
                            "to train with them.")
        return settings

    def _end(self) -> None:
        self.start_button.setEnabled(True)
        self.start_button.setText("Tune again")
        self.cancel_button.setEnabled(False)
        self.minutes.setEnabled(True)
        self.trials.setEnabled(True)

    @Slot(object)
    def _on_finished(self, result: object) -> None:
        self._end()
        if not isinstance(result, TuneResult):
            return
        self.result = result
        self.use_button.setEnabled(result.best_run_id is not None)
        self.progress.setValue(1000)
        self._show_best(result.best)
        reason = {"budget": "the time limit was reached", "trials": "all tries were made",
                  "exhausted": "every combination was tried", "converged": "the search kept proposing known "
                  "settings", "cancelled": "it was stopped"}.get(result.stop_reason, result.stop_reason)
        if result.best is None:
            self.status.setText(f"Finished ({reason}), but no try finished: see the failed runs on the Runs page.")
            return
        gain = ""
        if result.default is not None and result.default.number != result.best.number and result.default.valid:
            gain = (f" Your settings gave H@20 {_pct(result.default.valid, 'hit@20')}, "
                    f"M@20 {_pct(result.default.valid, 'mrr@20')}.")
        self.status.setText(f"Finished: {reason}. The best settings are saved as run {result.best_run_id} "
                            f"(open it on the Runs page or try it in the Playground).{gain}")
        if result.best_run_id is not None:
            self.bestRun.emit(int(result.best_run_id))

    @Slot(object)
    def _on_cancelled(self, result: object) -> None:
        self._end()
        if isinstance(result, TuneResult) and result.best is not None:
            self.result = result
            self.use_button.setEnabled(result.best_run_id is not None)
            self._show_best(result.best)
            self.status.setText(f"Stopped. The best settings so far are saved as run {result.best_run_id}; "
                                "the stopped try can be resumed from the Runs page.")
        else:
            self.status.setText("Stopped before any try finished.")

    @Slot(str)
    def _on_failed(self, traceback_text: str) -> None:
        self._end()
        last = last_error_line(traceback_text)
        self.status.setText(f"Tuning could not run: {last}")
