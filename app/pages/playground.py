"""Playground: build a session by hand and see what a trained run recommends next, and why.

The page gathers a session (search an item, click one of the dataset's operation buttons to append
it; or a random / test-set session), then asks ``embsr_core.inference.Predictor`` for the top-K and
its explanation in a worker thread (a checkpoint load takes seconds; a 50-step prediction on
100,000 items tens of ms). Requests are coalesced: while one runs, only the latest change waits.
A second run can be shown side by side on the same session (e.g. EMBSR vs SGNN-Self).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.context import AppContext
from app.pages.base import Page, card
from app.widgets.elided_label import ElidedLabel
from app.widgets.explain_views import GateBars, Heatmap
from app.workers import TaskRunner, last_error_line
from embsr_core import reports
from embsr_core.session_builder import Catalogue, Session, random_session, sample_test_session

USABLE = ("finished", "stopped", "interrupted")
SEARCH_LIMIT = 60


# --- work done in the worker thread (plain functions over core objects) ------------------------------


def load_predictor(store: Any, run_id: int, *, progress: Callable[[object], None], cancel: Any) -> Any:
    """The run's Predictor (checkpoint + catalogue) and a search index over its items."""
    from embsr_core.inference import Predictor

    predictor = Predictor.from_run(store, run_id, which="best")
    return predictor, Catalogue(predictor.vocab)


def load_model_file_predictor(path: str, *, progress: Callable[[object], None], cancel: Any) -> Any:
    """A portable model file's Predictor (no store needed) and a search index over its items."""
    from embsr_core.inference import Predictor

    predictor = Predictor.from_model_file(path)
    return predictor, Catalogue(predictor.vocab)


def predict_all(
    predictors: list[Any], session: Session, k: int, target_op: str | None, *,
    progress: Callable[[object], None], cancel: Any,
) -> list[tuple[list[Any], Any]]:
    """(top-K, explanation) of each predictor on the same session."""
    op = target_op or "unknown"
    out = []
    for predictor in predictors:
        top = predictor.predict(session, k=k, target_op=op)
        out.append((top, predictor.explain(session, target_op=op)))
    return out


def load_test_split(store: Any, run_id: int, *, progress: Callable[[object], None], cancel: Any) -> Any:
    """The prepared split the run was trained on (cached on disk by the data layer)."""
    from embsr_core.data.from_store import prepared_for_run
    from embsr_core.store import runs_repo

    run = runs_repo.get_run(store, run_id)
    return prepared_for_run(store, run.config, run.dataset_id)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _first(explanation: Any, key: str) -> np.ndarray | None:
    """One session's array from a batched explanation entry (B×…; B = 1 here)."""
    value = _get(explanation, key)
    if value is None:
        return None
    array = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
    return np.asarray(array[0], dtype=np.float64)


class PlaygroundPage(Page):
    page_id = "playground"
    title = "Playground"
    subtitle = "Build a session of micro-behaviors and see what a trained model recommends next, and why."
    icon_name = "playground"

    predictionsReady = Signal()  # after the tables and the explanation views were updated
    predictorLoaded = Signal()

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.runner = TaskRunner(self)  # our own queue: predictions never wait behind a training run
        app = QCoreApplication.instance()
        if app is not None:  # join a prediction thread still running when the application quits
            app.aboutToQuit.connect(self.runner.shutdown)
        self.predictor: Any = None
        self.other: Any = None
        self.catalogue: Catalogue | None = None
        self.session: Session = []
        self.true_next: tuple[str, str] | None = None
        self.results: list[tuple[list[Any], Any]] = []
        self._busy = False
        self._pending = False
        self._loading: set[str] = set()
        self._prepared: tuple[int, Any] | None = None  # (run id, PreparedDataset) for test samples
        self._test_row: int | None = None
        self._infos: dict[int, Any] = {}
        self._model_file: str | None = None  # the opened model file, when it replaces a run
        self._build()
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(150)
        self._search_timer.timeout.connect(self._run_search)
        self.search_edit.textChanged.connect(self._search_timer.start)
        self.reload_runs()

    # layout ----------------------------------------------------------------------------------------
    def _build(self) -> None:
        bar = QHBoxLayout()
        bar.setSpacing(8)
        self.run_combo = QComboBox(self)
        self.run_combo.setMinimumWidth(260)
        self.compare_combo = QComboBox(self)
        self.compare_combo.setMinimumWidth(220)
        for combo in (self.run_combo, self.compare_combo):  # long run names (a leaderboard's) must not widen the page
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(24)
        self.compare_combo.setToolTip("Show a second run's predictions on the same session")
        self.k_spin = QSpinBox(self)
        self.k_spin.setRange(1, 100)
        self.k_spin.setValue(10)
        self.target_combo = QComboBox(self)
        self.target_combo.setToolTip(
            "unknown: the model does not know what the user will do next;\n"
            "a named operation asks e.g. 'what will they add to the cart next?'"
        )
        bar.addWidget(QLabel("Run", self))
        bar.addWidget(self.run_combo, 2)
        bar.addWidget(QLabel("vs", self))
        bar.addWidget(self.compare_combo, 2)
        bar.addWidget(QLabel("Top-K", self))
        bar.addWidget(self.k_spin)
        bar.addWidget(QLabel("Next operation", self))
        bar.addWidget(self.target_combo, 1)
        self.open_file_button = QPushButton("Open model file…", self)
        self.open_file_button.setToolTip("Use a model file a colleague exported (no store needed)")
        self.open_file_button.clicked.connect(self._on_open_model_clicked)
        self.target_combo.setMinimumContentsLength(9)  # "unknown" stays readable beside the file buttons
        self.target_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.score_file_button = QPushButton("Score a file…", self)
        self.score_file_button.setToolTip("Recommend the next items for every session of a file with this model")
        self.score_file_button.clicked.connect(self.open_score_dialog)
        # the file buttons get their own row: beside the choosers they made the page wider than 1280 px
        files_bar = QHBoxLayout()
        files_bar.setSpacing(8)
        files_bar.addStretch(1)
        files_bar.addWidget(self.open_file_button)
        files_bar.addWidget(self.score_file_button)
        self.body.addLayout(bar)
        self.body.addLayout(files_bar)

        # left: the session builder
        left, lay = card(self, "Session")
        self.search_edit = QLineEdit(left)
        self.search_edit.setPlaceholderText("Search items by id or category")
        self.search_edit.setClearButtonEnabled(True)
        self.search_results = QListWidget(left)
        self.search_results.setMaximumHeight(84)
        self.search_results.setMinimumHeight(60)
        self.ops_box = QWidget(left)
        self.ops_grid = QGridLayout(self.ops_box)
        self.ops_grid.setContentsMargins(0, 0, 0, 0)
        self.ops_grid.setSpacing(3)
        self.op_buttons: dict[str, QPushButton] = {}
        ops_hint = QLabel("Select an item, then click an operation to append it:", left)
        ops_hint.setObjectName("Muted")
        self.steps = QListWidget(left)
        self.steps.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.steps.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.steps.model().rowsMoved.connect(self._on_steps_dragged)
        step_bar = QHBoxLayout()
        step_bar.setSpacing(4)
        self.up_button = QPushButton("Up", left)
        self.up_button.setToolTip("Move the selected step earlier")
        self.down_button = QPushButton("Down", left)
        self.down_button.setToolTip("Move the selected step later")
        self.remove_button = QPushButton("Remove", left)
        self.clear_button = QPushButton("Clear", left)
        for b in (self.up_button, self.down_button, self.remove_button, self.clear_button):
            step_bar.addWidget(b)
        gen_bar = QHBoxLayout()
        gen_bar.setSpacing(4)
        self.random_button = QPushButton("Random session", left)
        self.random_button.setToolTip("A plausible session from the synthetic behaviour model, on this catalogue")
        self.test_button = QPushButton("Sample from test set", left)
        self.test_button.setToolTip("A real held-out session; its true next item is shown")
        gen_bar.addWidget(self.random_button)
        gen_bar.addWidget(self.test_button)
        gen_bar.addStretch(1)
        self.true_label = QLabel(left)
        lay.addWidget(self.search_edit)
        lay.addWidget(self.search_results)
        lay.addWidget(ops_hint)
        lay.addWidget(self.ops_box)
        self.steps.setMinimumHeight(80)
        lay.addWidget(self.steps, 1)
        lay.addLayout(step_bar)
        lay.addLayout(gen_bar)
        lay.addWidget(self.true_label)
        left.setMinimumWidth(340)

        # right: predictions (one or two runs) over the explanation views
        right, rlay = card(self)
        rlay.setContentsMargins(10, 8, 10, 8)
        tables = QHBoxLayout()
        tables.setSpacing(10)
        self.pred_tables: list[QTableWidget] = []
        self.pred_titles: list[ElidedLabel] = []
        for _ in range(2):
            box = QVBoxLayout()
            title = ElidedLabel(right)  # long run names are shortened, not widening the page
            title.setObjectName("CardTitle")
            table = QTableWidget(0, 5, right)
            table.setHorizontalHeaderLabels(["#", "Item", "Category", "Score", "Seen"])
            table.horizontalHeaderItem(4).setToolTip("✓ = the item is already in the session")
            table.setMinimumHeight(110)
            table.verticalHeader().setVisible(False)
            table.verticalHeader().setDefaultSectionSize(24)
            table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
            table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
            header = table.horizontalHeader()
            header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
            # item ids are never cut: their column fits them; the category takes what is left
            header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
            header.setMinimumSectionSize(28)
            box.addWidget(title)
            box.addWidget(table, 1)
            tables.addLayout(box, 1)
            self.pred_tables.append(table)
            self.pred_titles.append(title)
        self.status = QLabel(right)
        self.status.setObjectName("Muted")
        self.status.setWordWrap(True)  # one long line (two runs' verdicts) widened the page past the window

        self.why_tabs = QTabWidget(right)
        self.attention_view = Heatmap(self, title="Attention: what each step (row) draws on (columns)")
        self.dyadic_view = Heatmap(self, title="Operation pairs: how much each pair pushes the prediction",
                                   diverging=True)
        gates = QWidget(self)
        glay = QVBoxLayout(gates)
        glay.setContentsMargins(0, 0, 0, 0)
        self.beta_label = QLabel(gates)  # no word wrap: wrapped labels make the page taller than the window
        self.beta_label.setToolTip(
            "β: how the prediction mixes the whole session (attention) with the last item.\n"
            "Last item's GRU step: before that mix, the last item's vector goes through one GRU step whose\n"
            "input is the op-GRU state of the operations done on it (models without operations: a learned\n"
            "vector); its update gate says how much of the item's own vector is kept.\n"
            "Seen again: the share of the prediction that points back at the session's own items (the\n"
            "rest scores every item alike).")
        self.star_view = GateBars(self, title="Star-node gate per step: how much the session summary updates the item")
        glay.addWidget(self.beta_label)
        glay.addWidget(self.star_view, 1)
        self.why_tabs.addTab(self.attention_view, "Attention")
        self.why_tabs.addTab(self.dyadic_view, "Dyadic (op pairs)")
        self.why_tabs.addTab(gates, "Gates (β, star)")

        upper = QWidget(right)
        upper_lay = QVBoxLayout(upper)
        upper_lay.setContentsMargins(0, 0, 0, 0)
        upper_lay.addLayout(tables, 1)
        upper_lay.addWidget(self.status)
        vsplit = QSplitter(Qt.Orientation.Vertical, right)
        vsplit.addWidget(upper)
        vsplit.addWidget(self.why_tabs)
        vsplit.setStretchFactor(0, 1)
        vsplit.setStretchFactor(1, 1)
        vsplit.setChildrenCollapsible(False)
        rlay.addWidget(vsplit)

        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        split.setSizes([360, 640])
        # Ignored vertical hint: the page fills the window instead of growing to the sum of the lists'
        # and plots' preferred heights (the page sits in a scroll area that honours height-for-width).
        split.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        split.setMinimumHeight(500)
        self.body.addWidget(split, 1)

        self.run_combo.currentIndexChanged.connect(self._on_run_changed)
        self.compare_combo.currentIndexChanged.connect(self._on_compare_changed)
        self.k_spin.valueChanged.connect(self.request_prediction)
        self.target_combo.currentIndexChanged.connect(self.request_prediction)
        self.search_results.itemDoubleClicked.connect(self._on_result_double_clicked)
        self.up_button.clicked.connect(self._move_up)
        self.down_button.clicked.connect(self._move_down)
        self.remove_button.clicked.connect(self._remove_step)
        self.clear_button.clicked.connect(self.clear_session)
        self.random_button.clicked.connect(self.random_session)
        self.test_button.clicked.connect(self._on_test_clicked)
        self._set_builder_enabled(False)
        self._show_tables()

    # runs ------------------------------------------------------------------------------------------
    def on_shown(self) -> None:
        self.reload_runs()  # runs may have finished elsewhere; the loaded one stays loaded

    def refresh(self) -> None:
        self.reload_runs()

    def reload_runs(self) -> None:
        """Fill the run choosers with runs that have a checkpoint (finished, stopped, interrupted)."""
        store = self.context.store
        current = self.run_combo.currentData()
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        if store is None:
            self.status.setText(f"The store could not be opened: {self.context.store_error}")
            self.run_combo.blockSignals(False)
            return
        from embsr_core.store import runs_repo

        usable = {r.id for r in runs_repo.list_runs(store, status=USABLE) if r.best_checkpoint_path}
        infos = [i for i in reports.run_infos(store) if i.id in usable]
        for info in infos:
            self.run_combo.addItem(f"#{info.id} {info.display_name} · {info.dataset} ({info.status})", info.id)
        self.run_combo.blockSignals(False)
        self._infos = {i.id: i for i in infos}
        if self._model_file is not None:
            self._add_model_file_entry()
            return
        if not infos:
            self.status.setText("No trained run yet: train one on the Train page, then come back.")
            return
        index = self.run_combo.findData(current)
        self.run_combo.setCurrentIndex(index if index >= 0 else 0)
        if index < 0 or self.predictor is None:
            self._on_run_changed()
        else:
            self._fill_compare_combo()

    def _fill_compare_combo(self) -> None:
        run_id = self.run_combo.currentData()
        info = self._infos.get(run_id)
        current = self.compare_combo.currentData()
        self.compare_combo.blockSignals(True)
        self.compare_combo.clear()
        self.compare_combo.addItem("no second run", None)
        for other in self._infos.values():
            if info is not None and other.id != run_id and other.dataset_id == info.dataset_id:
                self.compare_combo.addItem(f"#{other.id} {other.display_name}", other.id)
        index = self.compare_combo.findData(current)
        self.compare_combo.setCurrentIndex(max(0, index))
        self.compare_combo.blockSignals(False)

    def _add_model_file_entry(self) -> None:
        """The opened model file heads the run chooser (selected); choosing a run replaces it."""
        from pathlib import Path

        self.run_combo.blockSignals(True)
        self.run_combo.insertItem(0, f"Model file: {Path(str(self._model_file)).name}", None)
        self.run_combo.setCurrentIndex(0)
        self.run_combo.blockSignals(False)

    @Slot()
    def _on_open_model_clicked(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self, "Open model file", "", "EMBSR model files (*.embsr);;All files (*)")
        if path:
            self.open_model_file(path)

    @Slot()
    def open_score_dialog(self) -> Any:
        """The batch-scoring dialog for the model shown here (the opened model file, or the chosen run)."""
        from app.widgets.score_dialog import ScoreDialog, ScoreSource

        if self._model_file is not None:
            source = ScoreSource.from_model_file(self._model_file)
        elif self.run_combo.currentData() is not None and self.context.store is not None:
            run_id, label = self.run_combo.currentData(), self.run_combo.currentText()
            source = ScoreSource.from_run(self.context.store, run_id, label)
        else:
            return None
        self.score_dialog = ScoreDialog(source, self)
        self.score_dialog.show()
        return self.score_dialog

    def open_model_file(self, path: str) -> None:
        """Load a portable model file in the worker; it then takes the place of the chosen run."""
        self.predictor = None
        self.catalogue = None
        self._prepared = None
        self._set_builder_enabled(False)
        self.status.setText(f"Opening model file {path} …")
        self._loading.add("main")
        task = self.runner.submit(load_model_file_predictor, path, name="open model file")
        task.finished.connect(lambda result, p=path: self._on_model_file_loaded(p, result))
        task.failed.connect(self._on_task_failed)

    def _on_model_file_loaded(self, path: str, result: object) -> None:
        self._model_file = path
        self.compare_combo.setCurrentIndex(0)
        self._add_model_file_entry()
        self._on_predictor_loaded(result)

    @Slot()
    def _on_run_changed(self, *_args: object) -> None:
        run_id = self.run_combo.currentData()
        if run_id is None or self.context.store is None:
            return
        if self._model_file is not None:  # a run was chosen: the model file's entry goes
            self._model_file = None
            self.run_combo.blockSignals(True)
            self.run_combo.removeItem(self.run_combo.findData(None))
            self.run_combo.blockSignals(False)
        self._fill_compare_combo()
        self.predictor = None
        self.catalogue = None
        self._set_builder_enabled(False)
        self.status.setText(f"Loading run #{run_id} …")
        self._loading.add("main")
        task = self.runner.submit(load_predictor, self.context.store, run_id, name=f"load run {run_id}")
        task.finished.connect(self._on_predictor_loaded)
        task.failed.connect(self._on_task_failed)
        if self.compare_combo.currentData() is not None:
            self._on_compare_changed()

    @Slot()
    def _on_compare_changed(self, *_args: object) -> None:
        run_id = self.compare_combo.currentData()
        self.other = None
        if run_id is None or self.context.store is None:
            self._show_tables()
            self.request_prediction()
            return
        self._loading.add("other")
        task = self.runner.submit(load_predictor, self.context.store, run_id, name=f"load run {run_id}")
        task.finished.connect(self._on_other_loaded)
        task.failed.connect(self._on_task_failed)

    @Slot(object)
    def _on_predictor_loaded(self, result: object) -> None:
        self._loading.discard("main")
        self.predictor, self.catalogue = result  # type: ignore[misc]
        vocab = self.predictor.vocab
        self._build_op_buttons(vocab.op_names[1:])
        self.target_combo.blockSignals(True)
        self.target_combo.clear()
        self.target_combo.addItem("unknown", None)
        for name in vocab.op_names[1:]:
            self.target_combo.addItem(f"query: {name}", name)
        self.target_combo.blockSignals(False)
        # keep the steps the new catalogue knows
        self.session = [(i, o) for i, o in self.session if i in self.catalogue and o in vocab.op_names]
        self._set_builder_enabled(True)
        self._run_search()
        self._render_steps()
        self._show_tables()
        self.status.setText(f"{len(self.catalogue):,} items, {len(vocab.op_names) - 1} operations.")
        self.predictorLoaded.emit()
        self.request_prediction()

    @Slot(object)
    def _on_other_loaded(self, result: object) -> None:
        self._loading.discard("other")
        self.other = result[0]  # type: ignore[index]
        self._show_tables()
        self.request_prediction()

    @Slot(str)
    def _on_task_failed(self, text: str) -> None:
        self._loading.clear()
        self._busy = False
        last = last_error_line(text)
        self.status.setText(f"Failed: {last}")
        self.status.setToolTip(text)

    def _build_op_buttons(self, names: list[str]) -> None:
        for button in self.op_buttons.values():
            self.ops_grid.removeWidget(button)
            button.deleteLater()
        self.op_buttons.clear()
        columns = 2
        for i, name in enumerate(names):
            button = QPushButton(name, self.ops_box)
            button.setToolTip(f"Append the selected item with operation '{name}'")
            button.clicked.connect(self._on_op_clicked)
            self.ops_grid.addWidget(button, i // columns, i % columns)
            self.op_buttons[name] = button

    def _set_builder_enabled(self, enabled: bool) -> None:
        for w in (self.search_edit, self.search_results, self.ops_box, self.steps, self.up_button,
                  self.down_button, self.remove_button, self.clear_button, self.random_button, self.test_button):
            w.setEnabled(enabled)

    # session building ------------------------------------------------------------------------------
    @Slot()
    def _run_search(self) -> None:
        self.search_results.clear()
        if self.catalogue is None:
            return
        for match in self.catalogue.search(self.search_edit.text(), limit=SEARCH_LIMIT):
            text = match.item_id + (f"    (category {match.category})" if match.category else "")
            row = QListWidgetItem(text)
            row.setData(Qt.ItemDataRole.UserRole, match.item_id)
            self.search_results.addItem(row)
        if self.search_results.count():
            self.search_results.setCurrentRow(0)

    def append_step(self, item_id: str, op: str) -> None:
        if self.catalogue is None or item_id not in self.catalogue:
            raise KeyError(f"item {item_id!r} is not in the run's catalogue")
        self.session.append((item_id, op))
        self.true_next = None
        self._session_changed()

    @Slot()
    def _on_op_clicked(self) -> None:
        button = self.sender()
        op = next((name for name, b in self.op_buttons.items() if b is button), None)
        current = self.search_results.currentItem()
        if op is None or current is None:
            self.status.setText("Select an item in the search results first.")
            return
        self.append_step(current.data(Qt.ItemDataRole.UserRole), op)

    @Slot(QListWidgetItem)
    def _on_result_double_clicked(self, item: QListWidgetItem) -> None:
        if self.session:  # repeat the last operation: quick way to add several views
            self.append_step(item.data(Qt.ItemDataRole.UserRole), self.session[-1][1])

    def _selected_step(self) -> int:
        return self.steps.currentRow()

    @Slot()
    def _move_up(self) -> None:
        i = self._selected_step()
        if i > 0:
            self.session[i - 1], self.session[i] = self.session[i], self.session[i - 1]
            self._session_changed(select=i - 1)

    @Slot()
    def _move_down(self) -> None:
        i = self._selected_step()
        if 0 <= i < len(self.session) - 1:
            self.session[i + 1], self.session[i] = self.session[i], self.session[i + 1]
            self._session_changed(select=i + 1)

    @Slot()
    def _remove_step(self) -> None:
        i = self._selected_step()
        if 0 <= i < len(self.session):
            del self.session[i]
            self._session_changed(select=min(i, len(self.session) - 1))

    @Slot()
    def clear_session(self) -> None:
        self.session = []
        self.true_next = None
        self._session_changed()

    @Slot()
    def _on_steps_dragged(self, *_args: object) -> None:
        self.session = [self.steps.item(r).data(Qt.ItemDataRole.UserRole) for r in range(self.steps.count())]
        self._session_changed(render=False)

    @Slot()
    def random_session(self) -> None:
        if self.catalogue is None:
            return
        self.session = random_session(self.catalogue, seed=int(np.random.default_rng().integers(2**31)))
        self.true_next = None
        self._session_changed()

    @Slot()
    def _on_test_clicked(self) -> None:
        """The button's slot: ``clicked(bool)`` carries ``checked``, never a row (a random row is drawn)."""
        self.sample_test()

    def sample_test(self, row: int | None = None) -> None:
        """Replace the session by a held-out test session (its split is loaded once per run)."""
        # bool is an int subclass: a stray ``checked`` flag must not become row 0/1
        self._test_row = row if isinstance(row, int) and not isinstance(row, bool) else None
        run_id = self.run_combo.currentData()
        if self._prepared is not None and self._prepared[0] == run_id:
            self._apply_test_sample()
            return
        if run_id is None or self.context.store is None:
            return
        self.status.setText("Loading the test split …")
        self._loading.add("test")
        task = self.runner.submit(load_test_split, self.context.store, run_id, name="load test split")
        task.finished.connect(self._on_test_split_loaded)
        task.failed.connect(self._on_task_failed)

    @Slot(object)
    def _on_test_split_loaded(self, prepared: object) -> None:
        self._loading.discard("test")
        self._prepared = (self.run_combo.currentData(), prepared)
        self._apply_test_sample()

    def _apply_test_sample(self) -> None:
        assert self._prepared is not None
        sample = sample_test_session(self._prepared[1], row=self._test_row)
        self.session = list(sample.session)
        self.true_next = (sample.next_item, sample.next_op)
        self._session_changed()

    def set_session(self, session: Session) -> None:
        self.session = list(session)
        self.true_next = None
        self._session_changed()

    def _session_changed(self, select: int | None = None, render: bool = True) -> None:
        if render:
            self._render_steps(select)
        if self.true_next is None:
            self.true_label.setText("")
        else:
            item, op = self.true_next
            self.true_label.setText(f"True next item: <b>{item}</b> ({op})")
        self.request_prediction()

    def _render_steps(self, select: int | None = None) -> None:
        self.steps.clear()
        for n, (item, op) in enumerate(self.session, start=1):
            cat = self.catalogue.category(item) if self.catalogue is not None and item in self.catalogue else None
            row = QListWidgetItem(f"{n:>2}. {item}  ·  {op}" + (f"   [{cat}]" if cat else ""))
            row.setData(Qt.ItemDataRole.UserRole, (item, op))
            self.steps.addItem(row)
        if select is not None and 0 <= select < self.steps.count():
            self.steps.setCurrentRow(select)

    # predicting ------------------------------------------------------------------------------------
    def predictors(self) -> list[Any]:
        return [p for p in (self.predictor, self.other) if p is not None]

    def target_op(self) -> str | None:
        return self.target_combo.currentData()

    @Slot()
    def request_prediction(self, *_args: object) -> None:
        """Predict for the current session (coalesced: at most one request waits behind a running one)."""
        if self.predictor is None:
            return
        if not self.session:
            self.results = []
            self._show_results()
            return
        if self._busy:
            self._pending = True
            return
        self._busy = True
        self._pending = False
        task = self.runner.submit(
            predict_all, self.predictors(), list(self.session), self.k_spin.value(), self.target_op(),
            name="predict",
        )
        task.finished.connect(self._on_predicted)
        task.failed.connect(self._on_task_failed)

    @Slot(object)
    def _on_predicted(self, results: object) -> None:
        self._busy = False
        if self._pending:
            self.request_prediction()
            return
        self.results = list(results)  # type: ignore[call-overload]
        self._show_results()

    def is_idle(self) -> bool:
        return not self._busy and not self._pending and not self._loading

    def _show_tables(self) -> None:
        self.pred_tables[1].setVisible(self.compare_combo.currentData() is not None)
        self.pred_titles[1].setVisible(self.compare_combo.currentData() is not None)
        for i, combo in enumerate((self.run_combo, self.compare_combo)):
            self.pred_titles[i].setText(combo.currentText().split(" · ")[0] if combo.currentData() else "")

    def _show_results(self) -> None:
        self._show_tables()
        tops = [r[0] for r in self.results]
        shared = set.intersection(*[{_get(p, "item_id") for p in t} for t in tops]) if len(tops) > 1 else None
        truth = self.true_next[0] if self.true_next else None
        for t, table in enumerate(self.pred_tables):
            top = tops[t] if t < len(tops) else []
            table.setRowCount(len(top))
            for r, p in enumerate(top):
                item_id = _get(p, "item_id")
                cells = [str(r + 1), str(item_id), str(_get(p, "category") or ""), f"{float(_get(p, 'score')):.4f}",
                         "✓" if _get(p, "in_session") else ""]
                for c, text in enumerate(cells):
                    cell = QTableWidgetItem(text)
                    if c in (1, 2):
                        cell.setToolTip(text)
                    if c in (0, 3):
                        cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                    if c == 4:
                        cell.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                    if item_id == truth:
                        cell.setBackground(QColor(46, 157, 87, 70))
                    if shared is not None and item_id not in shared and c == 1:
                        font = QFont()
                        font.setBold(True)
                        cell.setFont(font)
                        cell.setToolTip("only in this run's top-K")
                    table.setItem(r, c, cell)
        if self.results:
            self._show_explanation(self.results[0][1])
        hit = ""
        if truth is not None and tops:
            names = [c.currentText().split(" ")[0] for c in (self.run_combo, self.compare_combo)]
            found = []
            for name, top in zip(names, tops, strict=False):
                rank = next((r + 1 for r, p in enumerate(top) if _get(p, "item_id") == truth), None)
                found.append(f"{name}: {'rank ' + str(rank) if rank else 'not in top-' + str(len(top))}")
            hit = f"  True next item {truth} (highlighted) – " + ", ".join(found) + "."
        steps = len(self.session)
        bold = "  Bold: only in that run's top-K." if shared is not None else ""
        summary = f"{steps} step(s), top-{self.k_spin.value()}.{hit}{bold}"
        self.status.setText(summary if steps else "Add steps to predict.")
        self.predictionsReady.emit()

    def step_labels(self) -> list[str]:
        """Axis labels of the steps: number and operation (long names shortened with an ellipsis)."""
        return [f"{n} {op if len(op) <= 10 else op[:9] + '…'}" for n, (_item, op) in enumerate(self.session, start=1)]

    def _show_explanation(self, explanation: Any) -> None:
        """Draw the primary run's explanation; steps beyond the model's max length were cut from the front."""
        attention = _first(explanation, "attention")  # (T+1)×(T+1), last token = star node
        star = _first(explanation, "star_gate")  # T
        n = attention.shape[0] - 1 if attention is not None else (star.shape[0] if star is not None else 0)
        labels = self.step_labels()[-n:] if n else []
        tokens = labels + ["star"]
        if attention is not None:
            self.attention_view.set_matrix(attention, tokens, tokens)
        else:
            self.attention_view.set_matrix(np.zeros((0, 0)), [], [])
        dyadic = _first(explanation, "dyadic_logit")
        self.dyadic_view.set_matrix(dyadic if dyadic is not None else np.zeros((0, 0)), tokens, tokens)
        self.star_view.set_values(star if star is not None else np.zeros(0), labels)
        beta = _first(explanation, "beta")
        missing = [name for name, v in (("attention", attention), ("dyadic term", dyadic), ("star gate", star))
                   if v is None]
        note = f" Not in this model: {', '.join(missing)}." if missing else ""
        keep = _first(explanation, "recent_keep_mean")  # () per session: the last item's GRU step
        copy = _first(explanation, "repeat_share")  # () per session: the share the pointer copies
        if copy is not None:
            note = (f"<br>Seen again: {100 * float(copy):.0f}% of the prediction points back at items already in "
                    f"the session.{note}")
        if keep is not None:
            k = float(keep)
            note = (f"<br>Last item's GRU step (x<sub>t</sub>): {100 * (1 - k):.0f}% of the item's vector rewritten, "
                    f"{100 * k:.0f}% kept (update gate).{note}")
        if beta is None:
            self.beta_label.setText("Fusion gate β: not used by this model." + note)
        else:
            b = float(np.mean(beta))
            self.beta_label.setText(
                f"Fusion gate β = <b>{b:.3f}</b> (mean over {beta.size} dimensions): the session vector is<br>"
                f"β · z<sub>s</sub> (self-attention readout of the micro-behaviors) + (1 − β) · x<sub>t</sub> "
                f"(last item) (paper, eq. 18):<br>here {100 * b:.0f}% attention, {100 * (1 - b):.0f}% last item.{note}"
            )
        self.explanation_missing = missing
