"""Runs page: every run in a sortable, filterable table; overlaid curves and the paper's Table III for
the selected runs; Wilcoxon significance; resume, delete and CSV export; double-click for a run's
details (settings, stored log, files, notes and tags).

Metrics are shown in percent; the table's split (test or validation) is the user's choice and is
named in the column headers. Runs of different datasets or splits are not compared head to head.

All numbers come from ``embsr_core.reports`` (the CLI's `embsr runs compare` shows the same); the page
only gathers choices and renders. The table refreshes itself while the page is visible by polling a
cheap fingerprint of the runs table (id, status, epochs done) every 2 s.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.context import AppContext
from app.pages.base import Page, card
from app.pages.runs_models import RUN_ID_ROLE, ComparisonModel, RunsFilterProxy, RunsTableModel
from app.widgets.run_curves import SPLIT_LABELS, RunCurves, metric_choices
from app.widgets.run_detail import RunDetailDialog
from app.widgets.share_actions import ShareBar
from app.workers import last_error_line
from embsr_core import reports
from embsr_core.reports import RunInfo
from embsr_core.store import run_details

POLL_MS = 2000
RESUMABLE = ("interrupted", "stopped")
LIVE = ("queued", "running")
STATUSES = ("running", "finished", "stopped", "failed", "interrupted", "queued")
LEGEND = "<b>bold</b> = best, <u>underlined</u> = second best; ◆ = the run whose Imp. is shown"
AGG_WORDS = {"best": "", "last": ", last epoch", "max": ", max over epochs", "min": ", min over epochs"}
AGG_TIPS = ("best = at the epoch chosen on validation (as the paper reports); last = the last epoch; "
            "max / min over all epochs")


def _combo(parent: QWidget, items: list[tuple[str, Any]], current: Any = None, tip: str = "") -> QComboBox:
    box = QComboBox(parent)
    for text, data in items:
        box.addItem(text, data)
    if current is not None:  # findData cannot match tuples (they arrive as lists), so compare here
        box.setCurrentIndex(next((i for i, (_t, d) in enumerate(items) if d == current), 0))
    if tip:
        box.setToolTip(tip)
    return box


def resume_job(store: Any, run_id: int, *, progress: Callable[[object], None], cancel: Any) -> Any:
    """Worker job: rebuild the run's prepared split, then the engine's ``resume_run`` (as `embsr resume`)."""
    from app.workers import TrainingBridge
    from embsr_core.data.from_store import prepared_for_run
    from embsr_core.store import runs_repo
    from embsr_core.training import resume_run

    run = runs_repo.get_run(store, run_id)
    missing = [key for key in ("prep", "model", "train") if key not in (run.config or {})]
    if missing:
        raise ValueError(f"run {run_id} has no stored {' / '.join(missing)} settings, so it cannot be resumed")
    prepared = prepared_for_run(store, run.config, run.dataset_id)
    return resume_run(store, run_id, prepared, control=cancel, recorders=[TrainingBridge(progress)])


class RunsPage(Page):
    page_id = "runs"
    title = "Runs"
    subtitle = "Compare runs, test significance, resume or delete them, and export reports."
    icon_name = "runs"

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self._signature: tuple = ()
        self._selected_ids: list[int] = []
        self.last_export: tuple[Path, Path] | None = None
        self.detail: RunDetailDialog | None = None
        self._export_folder = Path.home() / "Documents" if (Path.home() / "Documents").is_dir() else Path.home()
        self._build()
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)
        if context.store is None:
            self.message.setText(f"The store could not be opened: {context.store_error}")
            self.message.setObjectName("ErrorText")
        else:
            self.reload()

    # layout ----------------------------------------------------------------------------------------
    def _build(self) -> None:
        metric_items = metric_choices()
        # toolbar row 1: filters; row 2: what the table shows + actions
        filters = QHBoxLayout()
        filters.setSpacing(8)
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Search runs (name, model, dataset, lr=…)")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setMinimumWidth(220)
        self.status_filter = _combo(self, [("All statuses", "")] + [(s, s) for s in STATUSES])
        self.model_filter = _combo(self, [("All models", "")], tip="Show only the runs of one model")
        self.dataset_filter = _combo(self, [("All datasets", "")], tip="Show only the runs of one dataset")
        self.tag_filter = _combo(self, [("All tags", "")], tip="Show only the runs with this tag "
                                 "(add tags in a run's details: double-click it)")
        filters.addWidget(self.filter_edit, 1)
        for box in (self.status_filter, self.model_filter, self.dataset_filter, self.tag_filter):
            filters.addWidget(box)
        self.body.addLayout(filters)

        bar = QHBoxLayout()
        bar.setSpacing(8)
        self.table_split = _combo(self, [("test", "test"), ("validation", "valid")], "test",
                                  "Split the table's metric columns are read on; a run not evaluated on it shows –")
        self.col_a = _combo(self, metric_items, ("hit", 20), "First metric column of the table")
        self.col_b = _combo(self, metric_items, ("mrr", 20), "Second metric column of the table")
        self.col_agg = _combo(self, [(a, a) for a in reports.AGGREGATIONS], "best", AGG_TIPS)
        self.details_button = QPushButton("Details…", self)
        self.details_button.setToolTip("Settings, training log, curves, files, notes and tags of the selected run "
                                       "(or double-click it)")
        self.resume_button = QPushButton("Resume", self)
        self.resume_button.setToolTip("Continue an interrupted or stopped run from its last checkpoint")
        self.delete_button = QPushButton("Delete…", self)
        self.delete_button.setToolTip("Delete the selected runs, their metrics and checkpoints")
        self.export_button = QPushButton("Export CSV…", self)
        self.export_button.setToolTip("Save the comparison table of the selected runs as a CSV file; their "
                                      "per-epoch metrics go to a second file beside it")
        self.export_button.setObjectName("PrimaryButton")
        bar.addWidget(QLabel("Scores (%) on", self))
        bar.addWidget(self.table_split)
        bar.addSpacing(6)
        bar.addWidget(QLabel("Columns", self))
        bar.addWidget(self.col_a)
        bar.addWidget(self.col_b)
        bar.addWidget(self.col_agg)
        bar.addStretch(1)
        bar.addWidget(self.details_button)
        bar.addWidget(self.resume_button)
        bar.addWidget(self.delete_button)
        bar.addWidget(self.export_button)
        self.body.addLayout(bar)
        self.share = ShareBar(lambda: self.store, self)  # model file, scoring, report, moving runs
        self.body.addWidget(self.share)

        # runs table
        self.model = RunsTableModel(self)
        self.proxy = RunsFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(26)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setWordWrap(False)

        # lower half: curves | comparison
        self.curves = RunCurves(self)
        self.cmp_model = ComparisonModel(self)
        self.cmp_view = QTableView(self)
        self.cmp_view.setModel(self.cmp_model)
        self.cmp_view.verticalHeader().setVisible(False)
        self.cmp_view.verticalHeader().setDefaultSectionSize(26)
        self.cmp_view.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.cmp_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.cmp_agg = _combo(self, [(a, a) for a in reports.AGGREGATIONS], "best", AGG_TIPS)
        self.cmp_split = _combo(self, [("automatic", None), ("test", "test"), ("validation", "valid")], None,
                                "automatic = test when every selected run was evaluated on it, else validation")
        self.cmp_target = _combo(self, [("oracle operation", "oracle"), ("unknown operation", "unknown")], "oracle",
                                 "Oracle: the model is told the user's next operation; unknown: it is not")
        self.cmp_families = _combo(self, [("H and M", ("hit", "mrr")), ("H, M and NDCG", ("hit", "mrr", "ndcg")),
                                          ("H only", ("hit",)), ("M only", ("mrr",))], ("hit", "mrr"))
        self.cmp_chosen = QComboBox(self)
        self.cmp_chosen.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.cmp_chosen.setMinimumContentsLength(14)  # long run names must not widen the page
        self.cmp_chosen.setToolTip("Run whose relative improvement over the best other run is shown (Imp.)")
        self.cmp_sig_metric = _combo(self, [(lbl, key) for lbl, key in metric_items], ("mrr", 20),
                                     "Per-session metric compared by the Wilcoxon signed-rank test")
        cmp_bar = QHBoxLayout()
        cmp_bar.setSpacing(8)
        for text, widget in (("Value", self.cmp_agg), ("Split", self.cmp_split), ("", self.cmp_target),
                             ("", self.cmp_families), ("Imp. of", self.cmp_chosen), ("Test on", self.cmp_sig_metric)):
            if text:
                cmp_bar.addWidget(QLabel(text, self))
            cmp_bar.addWidget(widget)
        cmp_bar.addStretch(1)
        self.p_label = QLabel(self)
        self.p_label.setWordWrap(True)
        self.p_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        cmp_page = QWidget(self)
        cmp_layout = QVBoxLayout(cmp_page)
        cmp_layout.setContentsMargins(0, 0, 0, 0)
        cmp_layout.addLayout(cmp_bar)
        cmp_layout.addWidget(self.cmp_view, 1)
        self.cmp_legend = QLabel(LEGEND, self)
        self.cmp_legend.setObjectName("Muted")
        cmp_layout.addWidget(self.cmp_legend)
        cmp_layout.addWidget(self.p_label)

        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.curves, "Curves")
        self.tabs.addTab(cmp_page, "Comparison (Table III)")
        frame, lower = card(self)
        lower.setContentsMargins(10, 8, 10, 8)
        lower.addWidget(self.tabs)

        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.table)
        splitter.addWidget(frame)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        self.body.addWidget(splitter, 1)
        self.message = QLabel(self)
        self.message.setObjectName("Muted")
        self.message.setWordWrap(True)
        self.body.addWidget(self.message)

        self.filter_edit.textChanged.connect(self.proxy.set_text)
        self.status_filter.currentIndexChanged.connect(self._on_status_filter)
        for box in (self.col_a, self.col_b, self.col_agg):
            box.currentIndexChanged.connect(self._on_columns_changed)
        for box in (self.cmp_agg, self.cmp_split, self.cmp_target, self.cmp_families, self.cmp_chosen,
                    self.cmp_sig_metric):
            box.currentIndexChanged.connect(self._on_comparison_settings)
        self.model_filter.currentIndexChanged.connect(
            lambda *_: self.proxy.set_model(self.model_filter.currentData() or ""))
        self.dataset_filter.currentIndexChanged.connect(
            lambda *_: self.proxy.set_dataset(self.dataset_filter.currentData() or ""))
        self.tag_filter.currentIndexChanged.connect(lambda *_: self.proxy.set_tag(self.tag_filter.currentData() or ""))
        self.table_split.currentIndexChanged.connect(self._on_columns_changed)
        self.table.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.table.doubleClicked.connect(self._on_double_clicked)
        self.details_button.clicked.connect(self.open_details)
        self.resume_button.clicked.connect(self.resume_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.export_button.clicked.connect(self.export_selected)
        self.share.message.connect(self.message.setText)
        self.share.imported.connect(lambda _result: self.reload())
        self._update_buttons()

    # page hooks ------------------------------------------------------------------------------------
    def heightForWidth(self, _width: int) -> int:  # noqa: N802 - Qt override
        """The wrapped labels must not make the page ask the scroll area for its preferred height: it
        fills the window (the table and the charts share what there is), scrolling only below its minimum."""
        return self.minimumSizeHint().height()

    def on_shown(self) -> None:
        self.poll()

    def refresh(self) -> None:
        self.reload()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self.context.store is not None:
            self._timer.start()

    def hideEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self._timer.stop()
        super().hideEvent(event)

    # data ------------------------------------------------------------------------------------------
    @property
    def store(self) -> Any:
        return self.context.store

    @Slot()
    def poll(self) -> None:
        """Reload when the runs table changed (new run, status change, an epoch finished)."""
        if self.store is None:
            return
        if reports.runs_signature(self.store) != self._signature:
            self.reload()

    def reload(self) -> None:
        """Re-read every run and its table metrics; keeps the selection and the curves' settings."""
        if self.store is None:
            return
        self._signature = reports.runs_signature(self.store)
        infos = reports.run_infos(self.store)
        columns = [self.col_a.currentData(), self.col_b.currentData()]
        agg = self.col_agg.currentData()
        values, split = reports.summary_values(self.store, infos, columns, agg, split=self.table_split.currentData())
        split_word = SPLIT_LABELS.get(split, split)
        headers = [f"{reports.metric_label(*c)} % ({split_word}{AGG_WORDS.get(agg, ', ' + agg)})" for c in columns]
        keep = list(self._selected_ids)
        tags = run_details.tags_by_run(self.store)
        self._fill_filter(self.model_filter, "All models", sorted({i.model for i in infos}))
        self._fill_filter(self.dataset_filter, "All datasets", sorted({i.dataset for i in infos}))
        self._fill_filter(self.tag_filter, "All tags", run_details.all_tags(self.store))
        self.model.set_rows(infos, values, headers, tags, split_word)
        self.table.resizeColumnsToContents()
        for col in range(self.model.columnCount()):
            if self.table.columnWidth(col) > 220:
                self.table.setColumnWidth(col, 220)
        live = sum(1 for i in infos if i.status in LIVE)
        self.message.setText(
            f"{len(infos)} run(s); scores in percent on the {split_word} split; double-click a run for its details"
            + (f"; {live} live, refreshing every {POLL_MS // 1000} s" if live else "")
            if infos else "No runs yet: start one on the Train page."
        )
        self.select_runs(keep)
        self._on_selection_changed()

    @staticmethod
    def _fill_filter(box: QComboBox, all_text: str, values: list[str]) -> None:
        """Refill a filter's choices, keeping the current one (kept even when no run has it any more)."""
        current = box.currentData() or ""
        wanted = [""] + values + ([current] if current and current not in values else [])
        if [box.itemData(i) for i in range(box.count())] == wanted:
            return
        box.blockSignals(True)
        box.clear()
        for value in wanted:
            box.addItem(value or all_text, value)
        box.setCurrentIndex(max(0, box.findData(current)))
        box.blockSignals(False)

    def clear_filters(self) -> None:
        """Show every run again (the search text and the four filters back to "all")."""
        self.filter_edit.clear()
        for box in (self.status_filter, self.model_filter, self.dataset_filter, self.tag_filter):
            box.setCurrentIndex(0)

    def select_runs(self, run_ids: list[int]) -> None:
        """Select the rows of ``run_ids`` (those still present and not filtered out)."""
        selection = self.table.selectionModel()
        selection.blockSignals(True)
        selection.clearSelection()
        wanted = set(run_ids)
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            if index.data(RUN_ID_ROLE) in wanted:
                selection.select(
                    index,
                    QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows,
                )
        selection.blockSignals(False)
        self._on_selection_changed()

    def selected_infos(self) -> list[RunInfo]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        infos = []
        for row in rows:
            source = self.proxy.mapToSource(self.proxy.index(row, 0))
            infos.append(self.model.info(source.row()))
        return infos

    # reactions -------------------------------------------------------------------------------------
    @Slot()
    def _on_status_filter(self, *_args: object) -> None:
        self.proxy.set_status(self.status_filter.currentData())

    @Slot()
    def _on_columns_changed(self, *_args: object) -> None:
        self.reload()

    @Slot()
    def _on_selection_changed(self, *_args: object) -> None:
        infos = self.selected_infos()
        self._selected_ids = [i.id for i in infos]
        if self.store is None:
            return
        frames = reports.metrics_by_run(self.store, self._selected_ids) if infos else {}
        losses = reports.losses_by_run(self.store, self._selected_ids) if infos else {}
        self.curves.set_runs(infos, frames, losses)
        chosen = self.cmp_chosen.currentData()
        self.cmp_chosen.blockSignals(True)
        self.cmp_chosen.clear()
        for info in infos:
            self.cmp_chosen.addItem(f"#{info.id} {info.display_name}", info.id)
        if chosen in self._selected_ids:
            self.cmp_chosen.setCurrentIndex(self.cmp_chosen.findData(chosen))
        else:
            self.cmp_chosen.setCurrentIndex(-1)  # let the comparison pick the strongest run
        self.cmp_chosen.blockSignals(False)
        self.update_comparison()
        self._update_buttons()

    @Slot()
    def _on_comparison_settings(self, *_args: object) -> None:
        self.update_comparison()

    def update_comparison(self) -> None:
        """Recompute the Table-III view and the Wilcoxon line for the selected runs."""
        if self.store is None or not self._selected_ids:
            self.cmp_model.set_table(None)
            self.p_label.setText("Select runs in the table to compare them (Ctrl/Shift-click for several).")
            return
        table = reports.comparison_table(
            self.store,
            self._selected_ids,
            metrics=self.cmp_families.currentData(),
            aggregation=self.cmp_agg.currentData(),
            split=self.cmp_split.currentData(),
            target_op=self.cmp_target.currentData(),
            chosen_run_id=self.cmp_chosen.currentData(),
            significance=len(self._selected_ids) > 1,
            significance_metric=self.cmp_sig_metric.currentData(),
        )
        self.cmp_model.set_table(table)
        self.cmp_chosen.setEnabled(table.comparable)  # no Imp. across datasets or splits
        where = f"Scores in percent on the {SPLIT_LABELS.get(table.split, table.split)} split"
        self.cmp_legend.setText(f"{where}{AGG_WORDS.get(table.aggregation, '')}; {LEGEND}" if table.comparable
                                else f"{where}{AGG_WORDS.get(table.aggregation, '')}")
        if self.cmp_chosen.currentData() != table.chosen_run_id:
            self.cmp_chosen.blockSignals(True)
            self.cmp_chosen.setCurrentIndex(self.cmp_chosen.findData(table.chosen_run_id))
            self.cmp_chosen.blockSignals(False)
        self.p_label.setText(self._p_text(table))

    @staticmethod
    def _p_text(table: reports.ComparisonTable) -> str:
        if table.mismatch:
            return (f"<span style='color:#d9731c'><b>Not comparable:</b> {table.mismatch}.</span> Compare runs "
                    "of one dataset with the same preprocessing.")
        if len(table.runs) < 2:
            return "Select a second run for a Wilcoxon signed-rank test."
        metric = reports.metric_label(*table.significance_metric) if table.significance_metric else ""
        parts = []
        for info in table.runs:
            if info.id == table.chosen_run_id:
                continue
            p = table.p_values.get(info.id)
            if p is None:
                parts.append(f"#{info.id}: no per-session results on the same {SPLIT_LABELS.get(table.split)} "
                             "split")
            else:
                verdict = "significant at 0.05" if p < 0.05 else "not significant at 0.05"
                parts.append(f"#{info.id}: p = {p:.3g} ({verdict})")
        if not parts:
            return ""
        return (
            f"<b>Wilcoxon signed-rank</b>, per-session {metric} on {SPLIT_LABELS.get(table.split)}, vs "
            f"#{table.chosen_run_id}: " + "; ".join(parts)
        )

    def _update_buttons(self) -> None:
        infos = self.selected_infos()
        self.details_button.setEnabled(len(infos) == 1)
        self.resume_button.setEnabled(len(infos) == 1 and infos[0].status in RESUMABLE)
        self.delete_button.setEnabled(bool(infos) and all(i.status not in LIVE for i in infos))
        self.export_button.setEnabled(bool(infos))
        self.share.set_selection(infos)

    # actions ---------------------------------------------------------------------------------------
    @Slot()
    def _on_double_clicked(self, index: Any) -> None:
        run_id = self.proxy.index(index.row(), 0).data(RUN_ID_ROLE)
        if run_id is not None:
            self.open_details(int(run_id))

    @Slot()
    def open_details(self, run_id: int | None = None) -> RunDetailDialog | None:
        """The run detail window of ``run_id`` (default: the selected run); one at a time, non-modal."""
        if self.store is None:
            return None
        if not run_id:
            infos = self.selected_infos()
            if len(infos) != 1:
                return None
            run_id = infos[0].id
        if self.detail is not None:
            self.detail.close()
        self.detail = RunDetailDialog(self.store, int(run_id), self)
        self.detail.saved.connect(self.reload)
        self.detail.show()
        return self.detail

    @Slot()
    def resume_selected(self) -> Any:
        """Queue the training engine's resume of the selected run on the training queue (shown on the Train page)."""
        infos = self.selected_infos()
        if len(infos) != 1 or infos[0].status not in RESUMABLE or self.store is None:
            return None
        task = self.context.runner.submit_training(resume_job, self.store, infos[0].id,
                                                   name=f"Resuming run {infos[0].id}")
        task.done.connect(self.reload)
        task.failed.connect(self._on_resume_failed)
        self.message.setText(f"Resuming run #{infos[0].id}; follow it on the Train page.")
        return task

    @Slot(str)
    def _on_resume_failed(self, text: str) -> None:
        last = last_error_line(text)
        QMessageBox.warning(self, "Resume failed", last.split(": ", 1)[-1])

    @Slot()
    def delete_selected(self, *, confirm: bool = True) -> bool:
        """Delete the selected runs (with their checkpoints) after a confirmation."""
        infos = self.selected_infos()
        if not infos or self.store is None:
            return False
        names = "\n".join(f"  #{i.id} {i.display_name} ({i.status})" for i in infos[:12])
        more = f"\n  … and {len(infos) - 12} more" if len(infos) > 12 else ""
        if confirm:
            answer = QMessageBox.question(
                self,
                "Delete runs",
                f"Delete {len(infos)} run(s), their metrics and checkpoint files?\n\n{names}{more}\n\n"
                "This cannot be undone.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel,
            )
            if answer != QMessageBox.StandardButton.Yes:
                return False
        from embsr_core.store import runs_repo

        errors = []
        for info in infos:
            try:
                runs_repo.delete_run(self.store, info.id)
            except Exception as exc:  # a live run, a locked file: say so, keep the others going
                errors.append(f"#{info.id}: {exc}")
        self._selected_ids = []
        self.reload()
        if errors:
            QMessageBox.warning(self, "Some runs were not deleted", "\n".join(errors))
            return False
        self.message.setText(f"Deleted {len(infos)} run(s).")
        return True

    @Slot()
    def export_selected(self, path: str | None = None) -> tuple[Path, Path] | None:
        """Save the comparison table of the selected runs to a CSV file the user names; their per-epoch
        metrics go beside it as ``<name>_per_epoch.csv``. Values are fractions (see the README)."""
        ids = self._selected_ids
        if not ids or self.store is None:
            return None
        if not path:
            stem = "runs_" + "-".join(map(str, ids[:8])) + ("_etc" if len(ids) > 8 else "")
            path, _filter = QFileDialog.getSaveFileName(
                self, "Export the comparison as CSV", str(self._export_folder / f"{stem}.csv"),
                "CSV files (*.csv)")
        if not path:
            return None
        comparison_path = Path(path) if Path(path).suffix.lower() == ".csv" else Path(path + ".csv")
        metrics_path = comparison_path.with_name(f"{comparison_path.stem}_per_epoch.csv")
        self._export_folder = comparison_path.parent
        try:
            reports.export_metrics_csv(self.store, ids, metrics_path)
            reports.export_comparison_csv(
                self.store,
                ids,
                comparison_path,
                aggregation=self.cmp_agg.currentData(),
                split=self.cmp_split.currentData(),
                target_op=self.cmp_target.currentData(),
                chosen_run_id=self.cmp_chosen.currentData(),
            )
        except (OSError, ValueError) as exc:
            QMessageBox.critical(self, "Export failed", str(exc))
            return None
        self.last_export = (metrics_path, comparison_path)
        self.message.setText(
            f"Exported {len(ids)} run(s) to {comparison_path.name} (comparison) and {metrics_path.name} "
            f"(per-epoch metrics) in {comparison_path.parent}; values are fractions (0.41 = 41 %)"
        )
        return self.last_export

    def comparison_cell(self, row: int, col: int) -> tuple[str, bool, bool]:
        """(text, bold, underlined) of one comparison cell (for tests and accessibility)."""
        index = self.cmp_model.index(row, col)
        font = self.cmp_model.data(index, Qt.ItemDataRole.FontRole)
        text = self.cmp_model.data(index, Qt.ItemDataRole.DisplayRole)
        return str(text), bool(font and font.bold()), bool(font and font.underline())
