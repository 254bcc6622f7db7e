"""Leaderboard page: "Compare all models" on one dataset, as ``embsr leaderboard`` does.

The page gathers the dataset, the models and the time; the job calls
:func:`embsr_core.training.leaderboard.leaderboard` in the training queue and the page renders its
progress (one row per model, ETA) and the resulting Table III (test split, Wilcoxon p against the
strongest model). Each cell is a stored run, so the Runs page and the Playground work on it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.context import AppContext
from app.jobs import Preparing
from app.pages.base import Page, card
from app.widgets.share_actions import report_job, report_written_text
from app.workers import CancelToken, Task, last_error_line
from embsr_core.data.from_store import prepare_dataset
from embsr_core.models.registry import list_specs
from embsr_core.reports import ComparisonTable
from embsr_core.store import Store
from embsr_core.store.repository import list_datasets
from embsr_core.training import TrainConfig
from embsr_core.training.board_seeds import SeedTable
from embsr_core.training.leaderboard import BoardProgress, BoardResult, export_board_csv, leaderboard, table3_models

MODEL_COLUMNS = ("Model", "Status", "Tries", "Best valid H@20", "Run")
SHOWN = (("hit", 5), ("hit", 10), ("hit", 20), ("mrr", 5), ("mrr", 10), ("mrr", 20))
STATUS_TEXT = {"running": "tuning…", "done": "done", "skipped": "done earlier (kept)", "failed": "no try finished",
               "cancelled": "stopped", "waiting": "waiting"}


def leaderboard_job(store: Store, dataset_id: int, models: list[str], budget_s: float, train_config: TrainConfig,
                    seeds: int = 1, *, progress: Any, cancel: CancelToken) -> BoardResult | None:
    """Prepare the dataset (its default preset) and run the board; progress events go to ``progress``."""
    progress(Preparing(str(dataset_id), "default"))
    prepared = prepare_dataset(store, dataset_id)
    if cancel.cancelled:
        return None
    return leaderboard(store, prepared, models, budget_s=budget_s, train_config=train_config, dataset_id=dataset_id,
                       on_progress=progress, control=cancel, seeds=seeds)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


class LeaderboardPage(Page):
    page_id = "leaderboard"
    title = "Leaderboard"
    subtitle = ("Compare all models on one dataset: each model gets the same tuning time and seeds, then all are "
                "scored on the test sessions. Started again with the same settings, an interrupted comparison "
                "continues where it stopped.")
    icon_name = "leaderboard"
    showRuns = Signal(object)  # run ids the user wants to see on the Runs page  # noqa: N815 - Qt naming

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.task: Task | None = None
        self.result: BoardResult | None = None
        self.report_task: Task | None = None
        self.folder = Path.home()  # where the last table or report was saved
        self._rows: dict[str, int] = {}
        self._build()
        self.reload_datasets()
        self._update_buttons()

    # layout ----------------------------------------------------------------------------------------
    def _build(self) -> None:
        columns = QHBoxLayout()
        columns.setSpacing(14)
        setup, setup_layout = card(self, "Comparison")
        form = QFormLayout()
        self.dataset_combo = QComboBox(setup)
        self.dataset_combo.setObjectName("BoardDataset")
        form.addRow("Dataset", self.dataset_combo)
        self.minutes = QSpinBox(setup)
        self.minutes.setRange(1, 7 * 24 * 60)
        self.minutes.setValue(30)
        self.minutes.setSuffix(" min")
        self.minutes.setToolTip("Total tuning time, shared equally by the chosen models; each model's first try "
                                "(its default settings) always finishes, even past its share")
        self.minutes.valueChanged.connect(self._update_share)
        form.addRow("Tuning time", self.minutes)
        self.epochs = QSpinBox(setup)
        self.epochs.setRange(1, 100_000)
        self.epochs.setValue(TrainConfig().max_epochs)
        self.epochs.setToolTip("Longest training of one try (early stopping usually ends it sooner)")
        form.addRow("Epochs per try (max)", self.epochs)
        self.patience = QSpinBox(setup)
        self.patience.setRange(1, 100_000)
        self.patience.setValue(TrainConfig().patience)
        self.patience.setSuffix(" epochs")
        self.patience.setToolTip("A try stops early after this many epochs without a better validation score "
                                 "(the command line's --patience)")
        form.addRow("Stop if no gain", self.patience)
        self.seeds = QSpinBox(setup)
        self.seeds.setRange(1, 10)
        self.seeds.setValue(1)
        self.seeds.setToolTip("Train each model's best settings again with this many seeds and show the mean ± "
                              "spread: a difference that survives other seeds is not the luck of one start. "
                              "Tuning is done once; a finished comparison gains seeds without tuning again")
        form.addRow("Seeds", self.seeds)
        setup_layout.addLayout(form)
        setup_layout.addWidget(QLabel("Models (the paper's Table III is ticked)", setup))
        self.models = QListWidget(setup)
        self.models.setObjectName("BoardModels")
        table3 = set(table3_models())
        for spec in list_specs():
            if spec.name.startswith("_"):
                continue
            item = QListWidgetItem(spec.name)
            item.setToolTip(spec.description)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if spec.name in table3 else Qt.CheckState.Unchecked)
            self.models.addItem(item)
        self.models.itemChanged.connect(self._update_share)
        setup_layout.addWidget(self.models, 1)
        self.share = QLabel(setup)
        self.share.setObjectName("Muted")
        setup_layout.addWidget(self.share)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Compare all models", setup)
        self.start_button.setProperty("primary", True)
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop", setup)
        self.stop_button.setToolTip("Stop the running try; start again with the same settings to continue")
        self.stop_button.clicked.connect(self.stop)
        buttons.addWidget(self.start_button, 2)
        buttons.addWidget(self.stop_button, 1)
        setup_layout.addLayout(buttons)
        setup.setFixedWidth(330)
        columns.addWidget(setup)

        right = QVBoxLayout()
        progress_card, progress_layout = card(self, "Progress")
        self.progress = QProgressBar(progress_card)
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        progress_layout.addWidget(self.progress)
        self.status = QLabel("Not started.", progress_card)
        self.status.setObjectName("BoardStatus")
        self.status.setWordWrap(True)
        progress_layout.addWidget(self.status)
        self.model_table = self._table(progress_card, MODEL_COLUMNS, "BoardModelsProgress")
        progress_layout.addWidget(self.model_table, 1)
        right.addWidget(progress_card, 1)
        result_card, result_layout = card(self, "Results on the test sessions (the paper's Table III layout)")
        self.result_note = QLabel("The table appears when the comparison ends.", result_card)
        self.result_note.setObjectName("Muted")
        self.result_note.setWordWrap(True)
        # a wrapped label may otherwise be squeezed below its lines when the page is short
        self.result_note.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        result_layout.addWidget(self.result_note)
        labels = ["Model"] + [f"{'H' if m == 'hit' else 'M'}@{k}" for m, k in SHOWN] + ["p", "Run"]
        self.result_table = self._table(result_card, labels, "BoardTable")
        self.result_table.horizontalHeaderItem(len(labels) - 2).setToolTip(
            "Wilcoxon signed-rank p-value of the model's per-session M@20 against the best model's")
        result_layout.addWidget(self.result_table, 1)
        actions = QHBoxLayout()
        self.csv_button = QPushButton("Export table (CSV)…", result_card)
        self.csv_button.setToolTip("Save this table as a CSV file (values as fractions: 0.41 = 41 %; over seeds: "
                                   "a mean and an sd column per metric)")
        self.csv_button.clicked.connect(self.export_csv)
        self.report_button = QPushButton("Export report…", result_card)
        self.report_button.setToolTip("Save one web page on the compared models (comparison, significance, curves, "
                                      "data, settings) that opens anywhere, without this program")
        self.report_button.clicked.connect(self.export_report)
        self.runs_button = QPushButton("Show on Runs page", result_card)
        self.runs_button.setToolTip("Open the Runs page with every run of this table selected (with seeds: each "
                                    "seed's run), to plot their curves, export or score with one of them")
        self.runs_button.clicked.connect(self.show_runs)
        for button in (self.csv_button, self.report_button, self.runs_button):
            actions.addWidget(button)
        actions.addStretch(1)
        result_layout.addLayout(actions)
        self.share_message = QLabel("", result_card)
        self.share_message.setObjectName("Muted")
        self.share_message.setWordWrap(True)
        self.share_message.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        result_layout.addWidget(self.share_message)
        right.addWidget(result_card, 1)
        columns.addLayout(right, 1)
        self.body.addLayout(columns, 1)
        self._update_share()

    def _table(self, parent: QWidget, labels: Any, name: str) -> QTableWidget:
        table = QTableWidget(0, len(labels), parent)
        table.setObjectName(name)
        table.setHorizontalHeaderLabels(list(labels))
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(True)
        return table

    # data ------------------------------------------------------------------------------------------
    def reload_datasets(self) -> None:
        store = self.context.store
        keep = self.dataset_combo.currentData()
        self.dataset_combo.clear()
        if store is not None:
            for ds in list_datasets(store):
                self.dataset_combo.addItem(f"{ds.name}  ({ds.n_sessions:,} sessions)", ds.id)
        index = self.dataset_combo.findData(keep)
        self.dataset_combo.setCurrentIndex(index if index >= 0 else 0)
        self._update_buttons()

    def chosen_models(self) -> list[str]:
        items = (self.models.item(i) for i in range(self.models.count()))
        return [item.text() for item in items if item.checkState() == Qt.CheckState.Checked]

    def set_models(self, names: list[str]) -> None:
        for i in range(self.models.count()):
            item = self.models.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in names else Qt.CheckState.Unchecked)

    @Slot()
    def _update_share(self, *_args: object) -> None:
        n = len(self.chosen_models())
        if not n:
            text = "Tick at least one model."
        else:
            share = _minutes(60 * self.minutes.value() / n)
            text = f"1 model · {share} of tuning" if n == 1 else f"{n} models · {share} of tuning each"
        self.share.setText(text)
        self._update_buttons()

    def on_shown(self) -> None:
        self.reload_datasets()

    def refresh(self) -> None:
        self.reload_datasets()

    def can_close(self) -> bool:
        if self.task is not None and not self.task.is_done():
            self.task.cancel()  # a rerun continues it
        return True

    # control ---------------------------------------------------------------------------------------
    def _runner(self) -> Any:
        return getattr(self.context.runner, "training", self.context.runner)  # one training at a time

    @Slot()
    def start(self) -> Task | None:
        store = self.context.store
        dataset_id = self.dataset_combo.currentData()
        models = self.chosen_models()
        if store is None or dataset_id is None or not models or (self.task is not None and not self.task.is_done()):
            return None
        config = TrainConfig(max_epochs=self.epochs.value(), patience=self.patience.value())
        self.model_table.setRowCount(0)
        self._rows = {}
        for model in models:
            self._set_model_row(model, "waiting", "", "", "")
        self.result_table.setRowCount(0)
        self.result = None
        self.progress.setValue(0)
        busy = self._runner().is_busy()
        self.status.setText("Waiting for the running training to end…" if busy else "Preparing the data…")
        task = self._runner().submit(leaderboard_job, store, int(dataset_id), models, 60.0 * self.minutes.value(),
                                     config, self.seeds.value(),
                                     name=f"Leaderboard on {self.dataset_combo.currentText()}")
        task.progress.connect(self._on_progress)
        task.finished.connect(self._on_done)
        task.cancelled.connect(self._on_done)
        task.failed.connect(self._on_failed)
        task.done.connect(self._update_buttons)
        self.task = task
        self._update_buttons()
        return task

    @Slot()
    def stop(self) -> None:
        if self.task is not None and not self.task.is_done():
            self.task.cancel()
            self.status.setText("Stopping after the current batch… (start again with the same settings to continue)")
            self.stop_button.setEnabled(False)

    @Slot()
    def _update_buttons(self, *_args: object) -> None:
        running = self.task is not None and not self.task.is_done()
        ok = self.context.store is not None and self.dataset_combo.count() > 0 and bool(self.chosen_models())
        self.start_button.setEnabled(ok and not running)
        self.stop_button.setEnabled(running)
        for widget in (self.dataset_combo, self.minutes, self.epochs, self.patience, self.seeds, self.models):
            widget.setEnabled(not running)
        has_table = self.result is not None and bool(self.result.run_ids)
        self.csv_button.setEnabled(has_table)
        self.report_button.setEnabled(has_table and (self.report_task is None or self.report_task.is_done()))
        self.runs_button.setEnabled(has_table)

    # the result's actions --------------------------------------------------------------------------
    def _save_name(self, title: str, name: str, filters: str, suffix: str) -> Path | None:
        path, _ = QFileDialog.getSaveFileName(self, title, str(self.folder / name), filters)
        if not path:
            return None
        chosen = Path(path) if Path(path).suffix.lower() == suffix else Path(path + suffix)
        self.folder = chosen.parent
        return chosen

    def _file_stem(self) -> str:
        dataset = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.dataset_combo.currentText()).strip("_")
        return f"leaderboard_{dataset or 'board'}"

    @Slot()
    def export_csv(self, path: str | Path | None = None) -> Path | None:
        """Save the shown table (Table III, or mean and sd over seeds) to a CSV file the user names."""
        store, result = self.context.store, self.result
        if store is None or result is None or not result.run_ids:
            return None
        target = Path(path) if path else self._save_name("Export the table as CSV", f"{self._file_stem()}.csv",
                                                         "CSV files (*.csv)", ".csv")
        if target is None:
            return None
        try:
            written = export_board_csv(store, result, target)
        except (OSError, ValueError) as exc:
            QMessageBox.critical(self, "Export failed", str(exc))
            self.share_message.setText(f"Export failed: {exc}")
            return None
        self.share_message.setText(f"Saved the table to {written.name} in {written.parent}; values are fractions "
                                   "(0.41 = 41 %).")
        return written

    @Slot()
    def export_report(self, path: str | Path | None = None) -> Task | None:
        """Write the HTML report on the board's best runs (and a PDF beside it when a converter is installed)."""
        store, result = self.context.store, self.result
        if store is None or result is None or not result.run_ids:
            return None
        target = Path(path) if path else self._save_name("Export report", f"{self._file_stem()}.html",
                                                         "Web page (*.html)", ".html")
        if target is None:
            return None
        self.share_message.setText(f"Writing the report on {len(result.run_ids)} model(s) …")
        task = self.context.runner.submit(report_job, store, list(result.run_ids), str(target), True,
                                          name="export report")
        task.finished.connect(self._report_written)
        task.failed.connect(self._report_failed)
        task.done.connect(self._update_buttons)
        self.report_task = task
        self._update_buttons()
        return task

    @Slot(object)
    def _report_written(self, written: Any) -> None:
        self.share_message.setText(report_written_text(written))

    @Slot(str)
    def _report_failed(self, traceback_text: str) -> None:
        last = last_error_line(traceback_text)
        self.share_message.setText(f"The report could not be written: {last.split(': ', 1)[-1]}")

    @Slot()
    def show_runs(self) -> None:
        if self.result is not None and self.result.run_ids:
            self.showRuns.emit(self.result.all_run_ids)

    # progress (GUI thread) -------------------------------------------------------------------------
    def _set_model_row(self, model: str, status: str, tries: str, best: str, run: str, *,
                       seed: int | None = None) -> None:
        row = self._rows.get(model)
        if row is None:
            row = self.model_table.rowCount()
            self.model_table.insertRow(row)
            self._rows[model] = row
        shown = f"seed {seed}…" if seed is not None else STATUS_TEXT.get(status, status)
        for col, text in enumerate((model, shown, tries, best, run)):
            old = self.model_table.item(row, col)
            if text or old is None or col == 1:  # a model's end message keeps its last tries / best values
                self.model_table.setItem(row, col, QTableWidgetItem(text))

    @Slot(object)
    def _on_progress(self, event: object) -> None:
        if isinstance(event, Preparing):
            self.status.setText("Preparing the data (cached afterwards)…")
            return
        if not isinstance(event, BoardProgress):
            return
        p = event.tune
        tries = best = ""
        if p is not None:
            tries = str(p.n_finished)
            if p.best is not None and p.best.valid:
                best = f"{100 * p.best.valid.get('hit@20', math.nan):.2f} %"
        run = "" if event.best_run_id is None or event.status == "running" else str(event.best_run_id)
        self._set_model_row(event.model_name, event.status, tries, best, run, seed=event.seed)
        finished = event.index + (0 if event.status == "running" else 1)
        fraction = finished / event.n_models
        if event.status == "running" and p is not None and p.budget_s:
            fraction += min(1.0, p.elapsed_s / p.budget_s) / event.n_models
        self.progress.setValue(int(1000 * min(1.0, fraction)))
        bound = "at most" if event.eta_is_bound else "(estimate)"  # repeated seeds are timed by earlier runs
        eta = "" if event.eta_s is None else f" · about {_minutes(event.eta_s)} left {bound}"
        doing = f"tuning {event.model_name}" if event.status == "running" else f"{event.model_name} {event.status}"
        if event.seed is not None:
            doing = f"{event.model_name}: its best settings again with seed {event.seed}"
        self.status.setText(f"Model {event.index + 1} of {event.n_models}: {doing}{eta}")

    @Slot(object)
    def _on_done(self, result: object) -> None:
        if not isinstance(result, BoardResult):
            self._update_buttons()
            self.status.setText("Stopped before the first model began.")
            return
        self.result = result
        self._update_buttons()
        if result.cancelled:
            self.status.setText("Stopped. Start again with the same settings to continue where it stopped.")
        else:
            self.progress.setValue(1000)
            self.status.setText(f"Finished: {len(result.run_ids)} of {len(result.models)} models have a result.")
        if result.seed_table is not None:
            self.show_seed_table(result.seed_table)
        elif result.table is not None:
            self.show_table(result.table)

    @Slot(str)
    def _on_failed(self, traceback_text: str) -> None:
        self._update_buttons()
        last = last_error_line(traceback_text)
        self.status.setText(f"The comparison could not run: {last}")

    def show_table(self, table: ComparisonTable) -> None:
        """Table III: best value bold, second best underlined, p-value of each model against the strongest."""
        index = {col: j for j, col in enumerate(table.columns)}
        chosen = next((i.model for i in table.runs if i.id == table.chosen_run_id), "")
        rows = []
        for i, info in enumerate(table.runs):
            cells = []
            for col in SHOWN:
                j = index.get(col)
                value = math.nan if j is None else float(table.values[i, j])
                marks = (False, False) if j is None else (bool(table.best[i, j]), bool(table.second[i, j]))
                cells.append(("–" if not math.isfinite(value) else f"{100 * value:.2f}", *marks))
            p = table.p_values.get(info.id)
            text = "best" if info.id == table.chosen_run_id else ("–" if p is None else f"{p:.3g}")
            rows.append((info.model, cells, text, str(info.id)))
        self._fill_results(rows)
        self.result_note.setText(
            f"Values in % on the test sessions, at each model's best validation epoch; bold = best, underlined = "
            f"second best. p: Wilcoxon paired signed-rank test of each model's per-session M@20 against {chosen} "
            "(below 0.05: the difference is unlikely to be chance). Each row is a run on the Runs page.")

    def show_seed_table(self, table: SeedTable) -> None:
        """Table III over seeds: mean ± sd per cell, best bold, second underlined, p against the strongest."""
        rows = []
        for i, model in enumerate(table.models):
            cells = []
            for col in SHOWN:
                j = table.columns.index(col) if col in table.columns else None
                mean, sd = (math.nan, math.nan) if j is None else (float(table.mean[i, j]), float(table.sd[i, j]))
                text = "–" if not math.isfinite(mean) else f"{100 * mean:.2f}"
                if math.isfinite(sd):
                    text += f" ± {100 * sd:.2f}"
                marks = (False, False) if j is None else (bool(table.best[i, j]), bool(table.second[i, j]))
                cells.append((text, *marks))
            p = table.p_values.get(model)
            text = "best" if model == table.chosen else ("–" if p is None else f"{p:.3g}")
            rows.append((model, cells, text, ", ".join(map(str, table.runs[model]))))
        self._fill_results(rows)
        self.result_note.setText(
            f"Values in % on the test sessions: the mean ± standard deviation over each model's seeds (one value: "
            f"a model that gives the same result for every seed, or one seed); bold = best, underlined = second "
            f"best. p: Wilcoxon test of each model's per-session M@20, averaged over its seeds, against {table.chosen} "
            "(below 0.05: the difference is unlikely to be chance). The runs are on the Runs page.")

    def _fill_results(self, rows: list[tuple[str, list[tuple[str, bool, bool]], str, str]]) -> None:
        """One row per model: its name, (text, best, second best) per shown metric, the p text, its runs."""
        self.result_table.setRowCount(0)
        for model, cells, p_text, runs in rows:
            row = self.result_table.rowCount()
            self.result_table.insertRow(row)
            self.result_table.setItem(row, 0, QTableWidgetItem(model))
            for c, (text, best, second) in enumerate(cells, start=1):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if best or second:
                    font = QFont(item.font())
                    font.setBold(best)
                    font.setUnderline(second)
                    item.setFont(font)
                self.result_table.setItem(row, c, item)
            self.result_table.setItem(row, len(SHOWN) + 1, QTableWidgetItem(p_text))
            self.result_table.setItem(row, len(SHOWN) + 2, QTableWidgetItem(runs))
