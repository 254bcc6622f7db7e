"""Train page: dataset + preprocessing, model + hyperparameters, training settings; Start / Pause / Stop;
a queue of every training run of the job manager (started here or resumed on the Runs page; one trains at
a time, imports and exports run beside it); live progress, curves and log.

The page only gathers choices: forms are built from the core schemas (``ModelSpec.params``,
``TRAIN_PARAMS``, ``PRESETS``) and a run is ``app.jobs.train_job`` = ``prepare_dataset`` +
``run_training``, exactly what ``embsr train`` does. Pause / Stop go through the task's cancel token,
which the trainer checks between batches (Stop saves a checkpoint, the run ends ``stopped``).
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.context import AppContext
from app.environment import device_choices
from app.jobs import TrainRequest, train_job
from app.pages.base import Page, card
from app.pages.train_monitor import TrainMonitor
from app.widgets.dialogs import error_box
from app.widgets.param_form import ParamForm
from app.workers import Task, TaskRunner, last_error_line
from embsr_core.data.from_store import default_preset
from embsr_core.data.preprocess import PRESETS
from embsr_core.models.registry import get_spec, list_specs, resolve_config
from embsr_core.store.repository import get_dataset, list_datasets
from embsr_core.training import TRAIN_PARAMS, Failed, RunOutcome, RunStarted, TrainConfig
from embsr_core.training.memory_estimate import estimate_for_shape

PREP_FIELDS = ("min_item_support", "max_len", "split", "augment")
SPLIT_TIPS = {
    "time": "70/10/20 by session end time (the authors' protocol)",
    "random": "70/10/20 at random (seeded); JD has no absolute time",
    "order": "70/10/20 in file order",
}
LEFT_WIDTH = 390
START_TIP = "Start training (Ctrl+Enter); while a run trains, add this one to the queue"
PAUSE_TIP = "Pause the running run between batches, or resume it"
STOP_TIP = "Stop the running run; a checkpoint is saved so it can be resumed (Runs page)"
IDLE_TIP = "Nothing is training right now"


def _scroll(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(widget)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area


class QueuedRun:
    """A training task of the job manager (started here or elsewhere): its label, task and queue line."""

    def __init__(self, label: str, task: Task, item: QListWidgetItem, request: TrainRequest | None = None) -> None:
        self.label = label
        self.request = request  # None for a run started elsewhere (a resume from the Runs page)
        self.task = task
        self.item = item
        self.run_id: int | None = None
        self.failure: Failed | None = None
        self.outcome: RunOutcome | None = None


class TrainPage(Page):
    page_id = "train"
    title = "Train"
    subtitle = "Train EMBSR, its ablations and baselines on a dataset, with live curves."
    icon_name = "train"

    runStarted = Signal(int)  # run id  # noqa: N815 - Qt naming
    runEnded = Signal(object)  # RunOutcome, or None when cancelled before training began  # noqa: N815

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.runs: list[QueuedRun] = []
        self.current: QueuedRun | None = None
        self.model_form: ParamForm | None = None
        self._submitting: TrainRequest | None = None  # the request submit() is queueing right now
        self._closed = False  # set by can_close: late memory estimates are dropped
        self._memory_runner = TaskRunner(self)  # the memory estimate's dry run, off the GUI thread
        if (app := QCoreApplication.instance()) is not None:
            app.aboutToQuit.connect(self._memory_runner.shutdown)
        self._memory_request = 0  # only the latest estimate is shown
        self._memory_timer = QTimer(self, singleShot=True, interval=400)
        self._memory_timer.timeout.connect(self._estimate_memory)
        self._build()
        self._fill_models()
        if context.store is None:
            self.message.setText(f"The store could not be opened: {context.store_error}")
            self.message.show()
            self.start_button.setEnabled(False)
        else:
            self.reload_datasets()
        # every training task of the job manager shows here, wherever it was started (e.g. a resume);
        # the page is built when first needed, so it also takes on those queued before it existed
        context.runner.trainingSubmitted.connect(self._adopt)
        for task in context.runner.training.active():
            self._adopt(task)
        context.runner.trainingBusyChanged.connect(self._update_buttons)
        self._update_buttons()

    # layout ----------------------------------------------------------------------------------------
    def _build(self) -> None:
        columns = QHBoxLayout()
        columns.setSpacing(14)
        left = QVBoxLayout()
        left.setSpacing(14)
        setup_card, setup_layout = card(self)
        self.tabs = QTabWidget(setup_card)
        self.tabs.addTab(_scroll(self._data_tab()), "Data")
        self.tabs.addTab(_scroll(self._model_tab()), "Model")
        self.tabs.addTab(_scroll(self._training_tab()), "Training")
        # the forms scroll inside their tabs: their full height must not make the whole page scroll
        self.tabs.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Ignored)
        self.tabs.setMinimumHeight(220)
        setup_layout.addWidget(self.tabs, 1)
        name_row = QHBoxLayout()
        self.run_name = QLineEdit(setup_card)
        self.run_name.setPlaceholderText("Run name (optional)")
        name_row.addWidget(self.run_name)
        setup_layout.addLayout(name_row)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start", setup_card)
        self.start_button.setProperty("primary", True)
        self.start_button.setShortcut("Ctrl+Return")
        self.start_button.setToolTip(START_TIP)
        self.start_button.clicked.connect(self.start)
        self.pause_button = QPushButton("Pause", setup_card)
        self.pause_button.setToolTip(PAUSE_TIP)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button = QPushButton("Stop", setup_card)
        self.stop_button.setToolTip(STOP_TIP)
        self.stop_button.clicked.connect(self.stop)
        self.tune_button = QPushButton("Tune…", setup_card)
        self.tune_button.setToolTip("Search better settings for this model on the validation data; "
                                    "each try is saved as a run and the best one is marked")
        self.tune_button.clicked.connect(self.open_tune)
        buttons.addWidget(self.start_button, 2)
        buttons.addWidget(self.tune_button, 1)
        buttons.addWidget(self.pause_button, 1)
        buttons.addWidget(self.stop_button, 1)
        setup_layout.addLayout(buttons)
        self.start_hint = QLabel(setup_card)  # why Start is disabled (a disabled button cannot say it)
        self.start_hint.setObjectName("StartHint")
        self.start_hint.setWordWrap(True)
        self.start_hint.hide()
        setup_layout.addWidget(self.start_hint)
        self.message = QLabel(setup_card)
        self.message.setObjectName("ErrorText")
        self.message.setWordWrap(True)
        self.message.hide()
        setup_layout.addWidget(self.message)
        self.memory_label = QLabel("Memory estimate: choose a dataset.", setup_card)
        self.memory_label.setObjectName("Muted")
        self.memory_label.setWordWrap(True)
        self.memory_label.setMinimumHeight(4 * self.memory_label.fontMetrics().lineSpacing())  # never clipped
        self.memory_label.setToolTip("Peak memory of one training step and of evaluation, measured on a few "
                                     "sessions before training; a run that would not fit lowers its batch "
                                     "size or does not start")
        setup_layout.addWidget(self.memory_label)
        left.addWidget(setup_card, 1)

        queue_card, queue_layout = card(self, "Queue")
        self.queue = QListWidget(queue_card)
        self.queue.setObjectName("RunQueue")
        self.queue.setMaximumHeight(64)
        self.queue.currentItemChanged.connect(self._update_buttons)
        queue_layout.addWidget(self.queue)
        self.remove_button = QPushButton("Remove from queue", queue_card)
        self.remove_button.setToolTip("Drop the selected queued run (a running run is stopped with Stop)")
        self.remove_button.clicked.connect(self.remove_selected)
        queue_layout.addWidget(self.remove_button, 0, Qt.AlignmentFlag.AlignRight)
        left.addWidget(queue_card)
        left_widget = QWidget(self)
        left_widget.setLayout(left)
        left.setContentsMargins(0, 0, 0, 0)
        left_widget.setFixedWidth(LEFT_WIDTH)
        columns.addWidget(left_widget)

        self.monitor = TrainMonitor(self)
        columns.addWidget(self.monitor, 1)
        self.body.addLayout(columns, 1)

    def _data_tab(self) -> QWidget:
        tab = QWidget()
        form = QFormLayout(tab)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.dataset_combo = QComboBox(tab)
        self.dataset_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.dataset_combo.setMinimumContentsLength(12)
        self.dataset_combo.setToolTip("A dataset in the store (import or generate one on the Datasets page)")
        self.dataset_combo.currentIndexChanged.connect(self._dataset_chosen)
        form.addRow("Dataset", self.dataset_combo)
        self.preset_combo = QComboBox(tab)
        for name in PRESETS:
            self.preset_combo.addItem(name, name)
        self.preset_combo.setToolTip("Preprocessing protocol; the fields below start from it and may be edited")
        self.preset_combo.currentIndexChanged.connect(self._preset_chosen)
        form.addRow("Preset", self.preset_combo)
        self.min_support = QSpinBox(tab)
        self.min_support.setRange(1, 1_000_000)
        self.min_support.setToolTip("Drop items with fewer micro-behaviors than this (paper: JD 50, Trivago 5)")
        form.addRow("Min item support", self.min_support)
        self.max_len = QSpinBox(tab)
        self.max_len.setRange(1, 10_000)
        self.max_len.setToolTip("L: micro-behaviors kept before the target (JD-Appl. 40, JD-Comp. 30, Trivago 50)")
        self.max_len.valueChanged.connect(self._schedule_memory_estimate)
        form.addRow("Max length", self.max_len)
        self.split_combo = QComboBox(tab)
        for name, tip in SPLIT_TIPS.items():
            self.split_combo.addItem(name, name)
            self.split_combo.setItemData(self.split_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.split_combo.setToolTip("How sessions are split into train / valid / test")
        form.addRow("Split", self.split_combo)
        self.augment_box = QCheckBox("Learn from every step", tab)
        self.augment_box.setToolTip(
            "On (recommended): each training session teaches the model once per item visited — predict the "
            "2nd item from the 1st, the 3rd from the first two, and so on.\nOff: only the session's last "
            "item is learnt, as in the paper's experiments (fewer examples; models tend to memorise).\n"
            "Validation and test always score the last item of each session.")
        form.addRow("Training examples", self.augment_box)
        self.dataset_info = QLabel(tab)
        self.dataset_info.setObjectName("Muted")
        self.dataset_info.setWordWrap(True)
        form.addRow(self.dataset_info)
        self._preset_chosen()
        return tab

    def _model_tab(self) -> QWidget:
        tab = QWidget()
        self.model_layout = QVBoxLayout(tab)
        self.model_combo = QComboBox(tab)
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(12)
        self.model_combo.setToolTip("EMBSR, its ablations and variants, and the baselines (model registry)")
        self.model_combo.currentIndexChanged.connect(self._model_chosen)
        self.model_layout.addWidget(self.model_combo)
        self.model_description = QLabel(tab)
        self.model_description.setObjectName("Muted")
        self.model_description.setWordWrap(True)
        self.model_layout.addWidget(self.model_description)
        self.reset_button = QPushButton("Reset to paper defaults", tab)
        self.reset_button.clicked.connect(self.reset_model_params)
        self.model_layout.addWidget(self.reset_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.model_layout.addStretch(1)
        return tab

    def _training_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        prefs = self.context.preferences
        self.train_form = ParamForm(TRAIN_PARAMS, tab, choices={"device": device_choices()},
                                    initial={"device": prefs.default_device})
        self.train_form.changed.connect(self._schedule_memory_estimate)
        layout.addWidget(self.train_form)
        reset = QPushButton("Reset to paper defaults", tab)
        reset.clicked.connect(self.reset_train_params)
        layout.addWidget(reset, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)
        return tab

    # choices ---------------------------------------------------------------------------------------
    def _fill_models(self) -> None:
        self.model_combo.blockSignals(True)
        for spec in list_specs():
            self.model_combo.addItem(f"{spec.name}  ·  {spec.family}", spec.name)
        self.model_combo.blockSignals(False)
        self._model_chosen()

    @Slot()
    def _model_chosen(self, *_args: object) -> None:
        name = self.model_combo.currentData()
        if not name:
            return
        spec = get_spec(name)
        self.model_description.setText(spec.description)
        if self.model_form is not None:
            self.model_layout.removeWidget(self.model_form)
            self.model_form.deleteLater()
        self.model_form = ParamForm(spec.params, self.model_combo.parentWidget())
        self.model_layout.insertWidget(2, self.model_form)
        self.model_form.changed.connect(self._schedule_memory_estimate)
        self._schedule_memory_estimate()
        self.reset_button.setEnabled(bool(spec.params))

    @Slot()
    def reset_model_params(self) -> None:
        if self.model_form is not None:
            self.model_form.reset()

    @Slot()
    def reset_train_params(self) -> None:
        self.train_form.reset()
        self.train_form.set_values({"device": self.context.preferences.default_device})

    def reload_datasets(self) -> None:
        """Refill the dataset list from the store, keeping the chosen one."""
        store = self.context.store
        if store is None:
            return
        keep = self.dataset_combo.currentData()
        self.dataset_combo.blockSignals(True)
        self.dataset_combo.clear()
        for ds in list_datasets(store):
            self.dataset_combo.addItem(f"{ds.name}  ({ds.n_events:,} micro-behaviors)", ds.id)
        index = self.dataset_combo.findData(keep)
        self.dataset_combo.setCurrentIndex(index if index >= 0 else 0)
        self.dataset_combo.blockSignals(False)
        if self.dataset_combo.currentData() != keep:
            self._dataset_chosen()
        self._update_buttons()

    @Slot()
    def _dataset_chosen(self, *_args: object) -> None:
        dataset_id = self.dataset_combo.currentData()
        if dataset_id is None or self.context.store is None:
            self.dataset_info.setText("No dataset in the store yet: import or generate one on the Datasets page.")
            return
        ds = get_dataset(self.context.store, int(dataset_id))
        preset = default_preset(ds)
        self.preset_combo.setCurrentIndex(self.preset_combo.findData(preset))
        self._preset_chosen()
        self.dataset_info.setText(f"{ds.source_format} · {ds.n_sessions:,} sessions · {ds.n_items:,} items · "
                                  f"{ds.n_operations} operations. Default preset: {preset}.")
        self._schedule_memory_estimate()

    @Slot()
    def _schedule_memory_estimate(self, *_args: object) -> None:
        self._memory_timer.start()  # restarts: one estimate after the edits settle

    @Slot()
    def _estimate_memory(self) -> None:
        """Dry-run the chosen model on the dataset's sizes in a worker; the label shows the verdict."""
        if self._closed:
            return
        dataset_id, model = self.dataset_combo.currentData(), self.model_combo.currentData()
        if dataset_id is None or model is None or self.model_form is None or self.context.store is None:
            return
        try:
            ds = get_dataset(self.context.store, int(dataset_id))
            overrides = resolve_config(str(model), self.model_form.values())
            config = TrainConfig.from_dict(self.train_form.values())
        except (ValueError, KeyError) as exc:
            self.memory_label.setText(f"Memory estimate: fix the settings first ({exc}).")
            return
        self._memory_request += 1
        request = self._memory_request
        self.memory_label.setText("Memory estimate: measuring a few sessions…")
        self._memory_runner.cancel_all()  # an older estimate's result would be dropped anyway
        # the stored item count is before the minimum-support filter: an upper bound
        task = self._memory_runner.submit(
            _memory_verdict, max(ds.n_items, 2), max(ds.n_operations, 1), self.max_len.value(),
            int(0.7 * ds.n_sessions), str(model), overrides, config, name="memory estimate",
            progress_kw=None, cancel_kw=None)
        task.finished.connect(lambda text: self._show_memory(request, str(text)))
        task.failed.connect(lambda text: self._show_memory(
            request, "Memory estimate unavailable: " + str(text).strip().splitlines()[-1]))

    def _show_memory(self, request: int, text: str) -> None:
        # a lambda slot outlives the page: a late estimate must not touch a deleted label
        if request == self._memory_request and not self._closed:
            self.memory_label.setText(text)

    def can_close(self) -> bool:
        self._closed = True
        self._memory_timer.stop()  # no new estimate once closing: its thread would outlive the page
        self._memory_runner.shutdown()  # join the estimate's thread before the window goes
        return True

    @Slot()
    def _preset_chosen(self, *_args: object) -> None:
        config = PRESETS[self.preset_combo.currentData()]
        self.min_support.setValue(config.min_item_support)
        self.max_len.setValue(config.max_len)
        self.split_combo.setCurrentIndex(self.split_combo.findData(config.split))
        self.augment_box.setChecked(config.augment)

    def select_dataset(self, dataset_id: int) -> None:
        self.dataset_combo.setCurrentIndex(self.dataset_combo.findData(dataset_id))

    def select_model(self, name: str) -> None:
        self.model_combo.setCurrentIndex(self.model_combo.findData(name))

    # hooks -----------------------------------------------------------------------------------------
    def on_shown(self) -> None:
        self.reload_datasets()

    def refresh(self) -> None:
        self.reload_datasets()

    # requests --------------------------------------------------------------------------------------
    def build_request(self) -> TrainRequest:
        """The run the forms describe; ``ValueError`` says what to fix (validated by the core schemas)."""
        dataset_id = self.dataset_combo.currentData()
        if dataset_id is None:
            raise ValueError("choose a dataset (import or generate one on the Datasets page)")
        preset = str(self.preset_combo.currentData())
        base = PRESETS[preset]
        chosen = {"min_item_support": self.min_support.value(), "max_len": self.max_len.value(),
                  "split": str(self.split_combo.currentData()), "augment": self.augment_box.isChecked()}
        overrides = {k: v for k, v in chosen.items() if getattr(base, k) != v}
        base.replace(**overrides)  # validates
        model = str(self.model_combo.currentData())
        assert self.model_form is not None
        model_overrides = resolve_config(model, self.model_form.values())
        train_config = TrainConfig.from_dict(self.train_form.values())
        name = self.dataset_combo.currentText().rsplit("  (", 1)[0]
        return TrainRequest(int(dataset_id), name, preset, overrides, model, model_overrides, train_config,
                            self.run_name.text().strip() or None)

    @Slot()
    def start(self) -> Task | None:
        """Queue a run with the current settings; it starts at once when nothing else runs."""
        if self.context.store is None:
            return None
        try:
            request = self.build_request()
        except ValueError as exc:
            self.message.setText(f"Cannot start: {exc}")
            self.message.show()
            return None
        self.message.hide()
        return self.submit(request)

    @Slot()
    def open_tune(self) -> None:
        """The Tune dialog for the current settings (it runs in the training queue)."""
        from app.widgets.tune_dialog import TuneDialog

        if self.context.store is None:
            return
        try:
            request = self.build_request()
        except ValueError as exc:
            self.message.setText(f"Cannot tune: {exc}")
            self.message.show()
            return
        self.message.hide()
        self.tune_dialog = TuneDialog(self.context, request, self)
        self.tune_dialog.useSettings.connect(self.apply_settings)
        self.tune_dialog.show()

    @Slot(object)
    def apply_settings(self, settings: object) -> None:
        """Fill the model and training fields from a run's settings (the Tune dialog's best try)."""
        if not isinstance(settings, dict):
            return
        if settings.get("model_name"):
            self.select_model(str(settings["model_name"]))
        if self.model_form is not None:
            self.model_form.set_values(settings.get("model", {}))
        self.train_form.set_values(settings.get("train", {}))

    def submit(self, request: TrainRequest) -> Task:
        assert self.context.store is not None
        self._submitting = request
        try:
            return self.context.runner.submit_training(train_job, self.context.store, request,
                                                       name=f"Training {request.label()}")
        finally:
            self._submitting = None

    @Slot(object)
    def _adopt(self, task: Task) -> None:
        """Show and control a training task of the job manager (ours, or a resume from the Runs page)."""
        if self._run_of(task) is not None:
            return
        request = self._submitting
        label = request.label() if request is not None else task.name
        item = QListWidgetItem(f"queued · {label}")
        self.queue.addItem(item)
        run = QueuedRun(label, task, item, request)
        self.runs.append(run)
        task.started.connect(self._on_task_started)
        task.progress.connect(self._on_task_event)
        task.finished.connect(self._on_task_finished)
        task.cancelled.connect(self._on_task_cancelled)
        task.failed.connect(self._on_task_failed)
        task.done.connect(self._on_task_done)
        if task.state == "running":  # started synchronously: ``started`` was emitted before we connected
            self._begin(run)
        self._update_buttons()

    def _run_of(self, sender: object) -> QueuedRun | None:
        return next((r for r in self.runs if r.task is sender), None)

    def _begin(self, run: QueuedRun) -> None:
        self.current = run
        run.item.setText(f"running · {run.label}")
        name = run.request.run_name if run.request is not None else None
        self.monitor.start(run.label + (f" · {name}" if name else ""))
        self._update_buttons()

    # task signals (GUI thread) -------------------------------------------------------------------------
    @Slot()
    def _on_task_started(self) -> None:
        run = self._run_of(self.sender())
        if run is not None and run is not self.current:
            self._begin(run)

    @Slot(object)
    def _on_task_event(self, event: object) -> None:
        run = self._run_of(self.sender())
        if run is None or run is not self.current:
            return
        if isinstance(event, RunStarted):
            run.run_id = event.run_id
            if run.request is None:  # started elsewhere: the run itself names its model
                run.label = f"{event.model_name} (run {event.run_id}, resumed)" if event.resumed else run.label
                self.monitor.title.setText(run.label)
            run.item.setText(f"running · run {event.run_id} · {run.label}")
            self.runStarted.emit(event.run_id)
        elif isinstance(event, Failed):
            run.failure = event
        self.monitor.handle(event)

    @Slot(object)
    def _on_task_finished(self, result: object) -> None:
        run = self._run_of(self.sender())
        if run is None:
            return
        run.outcome = result if isinstance(result, RunOutcome) else None
        if run.outcome is not None and run.outcome.status == "failed":
            details = run.failure.traceback if run.failure is not None else None
            error_box(self, "Training failed", f"Run {run.outcome.run_id} ({run.label}) failed:\n"
                      f"{run.outcome.error}", details)

    @Slot(object)
    def _on_task_cancelled(self, result: object) -> None:
        run = self._run_of(self.sender())
        if run is not None:
            run.outcome = result if isinstance(result, RunOutcome) else None

    @Slot(str)
    def _on_task_failed(self, traceback_text: str) -> None:
        run = self._run_of(self.sender())
        if run is None:
            return
        last = last_error_line(traceback_text)
        if run is self.current:
            self.monitor.set_status("failed")
            self.monitor.append_log(traceback_text.rstrip())
        if run.request is not None:  # a run started elsewhere reports its failure where it was started
            error_box(self, "Training failed", f"{run.label} could not run:\n{last}", traceback_text)

    @Slot()
    def _on_task_done(self) -> None:
        run = self._run_of(self.sender())
        if run is None:
            return
        status = run.outcome.status if run.outcome is not None else run.task.state
        row = self.queue.row(run.item)
        if row >= 0:
            self.queue.takeItem(row)
        self.runs.remove(run)
        if run is self.current:
            self.monitor.stop_rendering()
            if run.outcome is None and run.task.state == "cancelled":
                self.monitor.set_status("cancelled")
                self.monitor.append_log("cancelled before training began")
            self.current = None
        self._update_buttons()
        self.runEnded.emit(run.outcome)
        if self.window() is not None and run.outcome is not None:
            bar = getattr(self.window(), "statusBar", None)
            if callable(bar):
                bar().showMessage(f"Run {run.outcome.run_id} {status}.", 8000)

    # controls --------------------------------------------------------------------------------------
    @Slot()
    def toggle_pause(self) -> None:
        run = self.current
        if run is None or run.task.is_done():
            return
        if run.task.is_paused():
            run.task.resume()
            self.monitor.set_paused(False)
        else:
            run.task.pause()
            self.monitor.set_paused(True)
        self._update_buttons()

    @Slot()
    def stop(self) -> None:
        """Stop the running run (checkpoint saved by the trainer); queued runs stay queued."""
        run = self.current
        if run is None or run.task.is_done():
            return
        run.task.cancel()
        self.monitor.set_status("stopping")
        self.monitor.append_log("stopping after the current batch (a checkpoint is saved)…")
        self._update_buttons()

    @Slot()
    def remove_selected(self) -> None:
        item = self.queue.currentItem()
        run = next((r for r in self.runs if r.item is item), None)
        if run is not None and run.task.state == "queued":
            run.task.cancel()  # a queued task ends at once: done → removed from the list

    def start_blocked_reason(self) -> str | None:
        """Why Start cannot be pressed now, in the user's words; None when it can."""
        if self.context.store is None:
            return "the store could not be opened (choose another one in Settings)"
        if self.dataset_combo.count() == 0:
            return "there is no dataset yet; import or generate one on the Datasets page"
        return None

    @Slot()
    def _update_buttons(self, *_args: object) -> None:
        running = self.current is not None and not self.current.task.is_done()
        reason = self.start_blocked_reason()
        self.start_button.setEnabled(reason is None)
        self.tune_button.setEnabled(reason is None)
        self.start_button.setToolTip(START_TIP if reason is None else f"Start is unavailable: {reason}.")
        self.start_hint.setText(f"Start is unavailable: {reason}." if reason else "")
        self.start_hint.setVisible(reason is not None)
        self.start_button.setText("Add to queue" if self.context.runner.training.is_busy() else "Start")
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.pause_button.setToolTip(PAUSE_TIP if running else IDLE_TIP)
        self.stop_button.setToolTip(STOP_TIP if running else IDLE_TIP)
        paused = running and self.current is not None and self.current.task.is_paused()
        self.pause_button.setText("Resume" if paused else "Pause")
        self.remove_button.setEnabled(any(r.task.state == "queued" for r in self.runs))


def _memory_verdict(n_items: int, n_ops: int, max_len: int, n_train: int, model: str,
                    overrides: dict, config: TrainConfig) -> str:
    """The Train page's memory line (runs in a worker thread)."""
    return estimate_for_shape(n_items, n_ops, max_len, n_train, model, overrides, config).verdict()
