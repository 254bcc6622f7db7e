"""Live view of one training run: progress bars, loss curve, validation curves, log.

Fed with the trainer's plain event objects (``embsr_core.training.events``) from a GUI-thread slot.
Slots only store: the loss goes into a ``LivePlot`` buffer (drawn at most 10 times a second) and the
latest batch into ``_last_batch``; a 10 Hz timer renders bars and labels. So thousands of batches a
second cost the GUI thread a few appends, never a repaint each.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.jobs import Preparing
from app.pages.base import card
from app.theme import theme_manager
from app.widgets.live_plot import LivePlot
from embsr_core.training import (
    BatchEnd,
    Cancelled,
    CheckpointSaved,
    EpochStarted,
    EvaluationEnd,
    Failed,
    Finished,
    RunStarted,
)

RENDER_MS = 100  # ~10 Hz
CURVES = (("hit@20", "H@20"), ("mrr@20", "M@20"), ("hit@10", "H@10"), ("mrr@10", "M@10"))
LOG_METRICS = ("hit@10", "hit@20", "mrr@10", "mrr@20")
# The two target-operation settings every epoch is evaluated in (the paper's Table III reports both).
MODES = {
    "unknown": "next operation unknown",
    "oracle": "next operation given (oracle)",
}
MODE_CHOICES = {"oracle": "oracle: op. given", "unknown": "unknown next op."}  # short: the combo is narrow
MODE_TIPS = {
    "unknown": "The model is not told what the user will do next: the realistic setting",
    "oracle": "The model is told the next operation (e.g. 'add to cart'): the paper's main setting",
}


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def metric_label(key: str) -> str:
    """``hit@20`` → ``H@20``, ``mrr@10`` → ``M@10`` (the paper's names)."""
    return key.replace("hit", "H").replace("mrr", "M").replace("ndcg", "NDCG")


def metrics_text(metrics: dict[str, float]) -> str:
    """The log's metrics, in percent (as everywhere in the workbench)."""
    return "  ".join(f"{metric_label(m)} {100 * metrics[m]:.2f} %" for m in LOG_METRICS if m in metrics)


class TrainMonitor(QWidget):
    """``start(title)`` before a run, ``handle(event)`` for each trainer event, ``set_paused(bool)``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(14)

        progress_card, progress_layout = card(self)
        head = QHBoxLayout()
        self.title = QLabel("No run yet. Choose a dataset and a model, then press Start.", progress_card)
        self.title.setObjectName("CardTitle")
        self.status = QLabel(progress_card)
        self.status.setObjectName("Badge")
        self.status.hide()
        head.addWidget(self.title, 1)
        head.addWidget(self.status)
        progress_layout.addLayout(head)
        bars = QHBoxLayout()
        bars.setSpacing(12)
        self.epoch_label = QLabel("Epoch –", progress_card)
        self.epoch_label.setMinimumWidth(92)
        self.epoch_bar = QProgressBar(progress_card)
        self.epoch_bar.setRange(0, 1000)
        self.epoch_bar.setTextVisible(False)
        self.batch_label = QLabel("Batch –", progress_card)
        self.batch_label.setMinimumWidth(118)
        self.batch_bar = QProgressBar(progress_card)
        self.batch_bar.setRange(0, 1000)
        self.batch_bar.setTextVisible(False)
        for w, stretch in ((self.epoch_label, 0), (self.epoch_bar, 1), (self.batch_label, 0), (self.batch_bar, 1)):
            bars.addWidget(w, stretch)
        progress_layout.addLayout(bars)
        self.rate_label = QLabel(" ", progress_card)
        self.rate_label.setObjectName("Muted")
        progress_layout.addWidget(self.rate_label)
        layout.addWidget(progress_card)

        plots = QHBoxLayout()
        plots.setSpacing(14)
        loss_card, loss_layout = card(self)
        self.loss_plot = LivePlot(loss_card, title="Training loss", x_label="step", smoothing=0.6)
        self.loss_plot.add_series("loss", "loss (smoothed)")
        self.loss_plot.getPlotItem().legend.hide()
        self.loss_plot.setMinimumHeight(150)
        loss_layout.addWidget(self.loss_plot, 1)
        smooth_row = QHBoxLayout()
        smooth_label = QLabel("Smoothing", loss_card)
        smooth_label.setObjectName("Muted")
        self.smoothing = QSlider(Qt.Orientation.Horizontal, loss_card)
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(60)
        self.smoothing.setToolTip("Exponential moving average of the loss (debiased); the raw curve stays faint "
                                  "underneath. 0 = raw only")
        self.smoothing.valueChanged.connect(self._on_smoothing)
        self.smoothing_value = QLabel("0.60", loss_card)
        self.smoothing_value.setObjectName("Muted")
        self.smoothing_value.setMinimumWidth(32)
        smooth_row.addWidget(smooth_label)
        smooth_row.addWidget(self.smoothing, 1)
        smooth_row.addWidget(self.smoothing_value)
        loss_layout.addLayout(smooth_row)
        metric_card, metric_layout = card(self)
        mode_row = QHBoxLayout()
        mode_label = QLabel("Validation (%)", metric_card)
        mode_label.setObjectName("CardTitle")
        self.mode_combo = QComboBox(metric_card)
        self.mode_combo.setObjectName("ValidationMode")
        # narrow when the window is: the text is elided instead of widening the page
        self.mode_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.mode_combo.setMinimumContentsLength(15)
        for mode in MODES:
            self.mode_combo.addItem(MODE_CHOICES[mode], mode)
            self.mode_combo.setItemData(self.mode_combo.count() - 1, MODE_TIPS[mode], Qt.ItemDataRole.ToolTipRole)
        self.mode_combo.setToolTip("Every epoch is evaluated both ways; choose which one the curves show")
        self.mode_combo.currentIndexChanged.connect(self._on_mode_chosen)
        mode_row.addWidget(mode_label)
        mode_row.addWidget(self.mode_combo, 1)
        metric_layout.addLayout(mode_row)
        self.metric_plot = LivePlot(metric_card, title="", x_label="epoch", y_label="%", smoothing=0.0)
        for key, label in CURVES:
            self.metric_plot.add_series(key, label)
        # the curves rise towards the top right, where pyqtgraph puts its legend: name them below instead
        self.metric_plot.getPlotItem().legend.hide()
        self.metric_plot.getPlotItem().getViewBox().setDefaultPadding(0.08)  # room for the "best" label
        self.metric_legend = QLabel(metric_card)
        self.metric_legend.setTextFormat(Qt.TextFormat.RichText)
        self.metric_legend.setObjectName("Muted")
        self.metric_plot.setMinimumHeight(150)
        metric_layout.addWidget(self.metric_plot, 1)
        metric_layout.addWidget(self.metric_legend)
        self.best_label = QLabel(" ", metric_card)
        self.best_label.setObjectName("Muted")
        metric_layout.addWidget(self.best_label)
        plots.addWidget(loss_card, 1)
        plots.addWidget(metric_card, 1)
        layout.addLayout(plots, 3)

        log_card, log_layout = card(self)
        self.log = QPlainTextEdit(log_card)
        self.log.setObjectName("RunLog")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setMinimumHeight(64)
        self.log.setMaximumHeight(150)
        self.log.setPlaceholderText("Run log")
        log_layout.addWidget(self.log)
        layout.addWidget(log_card, 1)

        self._timer = QTimer(self)
        self._timer.setInterval(RENDER_MS)
        self._timer.timeout.connect(self.render)
        self._last_batch: BatchEnd | None = None
        self._epoch: EpochStarted | None = None
        self.run_id: int | None = None
        self.best_epoch: int | None = None
        self.select_mode: str | None = None  # the setting the trainer picks the best epoch on
        # validation metrics per setting and epoch, as received: {mode: {epoch: {"hit@20": 0.04, ...}}}
        self.validation: dict[str, dict[int, dict[str, float]]] = {}
        self.events_seen = 0
        theme_manager().changed.connect(self._on_theme_changed)
        self._style_markers()

    # feeding -----------------------------------------------------------------------------------------
    def start(self, title: str) -> None:
        """A new run takes over the view."""
        self.loss_plot.reset()
        self.metric_plot.reset()
        self._last_batch, self._epoch = None, None
        self.run_id, self.best_epoch, self.select_mode = None, None, None
        self.validation = {}
        self.events_seen = 0
        self.title.setText(title)
        self.set_status("starting")
        self.best_label.setText(" ")
        self.rate_label.setText(" ")
        self.epoch_bar.setValue(0)
        self.batch_bar.setValue(0)
        self.epoch_label.setText("Epoch –")
        self.batch_label.setText("Batch –")
        self._timer.start()

    def stop_rendering(self) -> None:
        self.render()
        self._timer.stop()

    def set_status(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))

    def set_paused(self, paused: bool) -> None:
        self.set_status("paused" if paused else "running")
        self.append_log("paused (the trainer waits between batches)" if paused else "resumed")

    def append_log(self, line: str) -> None:
        self.log.appendPlainText(line)

    def handle(self, event: object) -> None:
        """One trainer event (GUI thread). Batch events only touch buffers; the timer draws."""
        self.events_seen += 1
        if isinstance(event, BatchEnd):
            self.loss_plot.append("loss", float(event.step), event.loss)
            self._last_batch = event
        elif isinstance(event, EpochStarted):
            self._epoch = event
            self._last_batch = None
        elif isinstance(event, EvaluationEnd):
            self._on_evaluation(event)
        elif isinstance(event, Preparing):
            self.set_status("preparing")
            self.append_log(f"preparing {event.dataset_name!r} with preset {event.preset} (cached afterwards)")
        elif isinstance(event, RunStarted):
            self.run_id = event.run_id
            self.set_status("running")
            what = "resumed" if event.resumed else "started"
            self.append_log(f"run {event.run_id} {what}: {event.model_name} on {event.device}, {event.n_train:,} "
                            f"train / {event.n_valid:,} valid / {event.n_test:,} test sessions, "
                            f"up to {event.max_epochs} epochs")
        elif isinstance(event, CheckpointSaved):
            self.append_log(f"  checkpoint ({event.kind}) saved after epoch {event.epoch}")
        elif isinstance(event, Finished):
            self._on_finished(event)
        elif isinstance(event, Cancelled):
            self.set_status("stopped")
            where = f"; checkpoint {event.checkpoint_path}" if event.checkpoint_path else ""
            self.append_log(f"run {event.run_id} stopped after epoch {event.epoch}{where}")
        elif isinstance(event, Failed):
            self.set_status("failed")
            self.append_log(f"run {event.run_id} failed: {event.reason}")
            if event.traceback:
                self.append_log(event.traceback.rstrip())

    def shown_mode(self) -> str:
        return str(self.mode_combo.currentData())

    def _on_evaluation(self, event: EvaluationEnd) -> None:
        mode = MODES.get(event.target_op, event.target_op)
        if event.split != "valid":
            self.append_log(f"test, {mode} (best epoch {event.epoch}): {metrics_text(event.metrics)}")
            return
        best = " (best)" if event.is_best else ""
        train = f"loss {event.train_loss:.4f}  " if event.train_loss is not None else ""
        self.append_log(f"epoch {event.epoch} validation, {mode}: {train}{metrics_text(event.metrics)}{best}")
        self.validation.setdefault(event.target_op, {})[event.epoch] = dict(event.metrics)
        if event.is_best:
            self.best_epoch = event.epoch
        if event.is_best is not None and self.select_mode is None:
            # a run's curves start in the setting its best epoch is chosen on; the user may switch
            self.select_mode = event.target_op
            self.mode_combo.blockSignals(True)
            self.mode_combo.setCurrentIndex(max(0, self.mode_combo.findData(event.target_op)))
            self.mode_combo.blockSignals(False)
        if event.target_op == self.shown_mode() or event.is_best:
            self._on_mode_chosen()  # a few points per run: redraw from the stored values

    @Slot()
    def _on_mode_chosen(self, *_args: object) -> None:
        """Redraw the curves from the stored values of the chosen setting."""
        self.metric_plot.reset()
        for epoch, metrics in sorted(self.validation.get(self.shown_mode(), {}).items()):
            for key, _label in CURVES:
                if key in metrics:
                    self.metric_plot.append(key, float(epoch), 100.0 * metrics[key])
        self.metric_plot.flush()
        self._show_best()

    def _show_best(self) -> None:
        """The best epoch's marker and values in the shown setting (it is chosen on ``select_mode``)."""
        if self.best_epoch is None:
            self.metric_plot.set_marker(None)
            self.best_label.setText(" ")
            return
        self.metric_plot.set_marker(float(self.best_epoch), "best")
        metrics = self.validation.get(self.shown_mode(), {}).get(self.best_epoch, {})
        shown = "  ".join(f"{label} {100 * metrics[k]:.2f} %" for k, label in CURVES[:2] if k in metrics)
        chosen = MODES.get(self.select_mode or "", self.select_mode or "")
        judged = "" if self.select_mode == self.shown_mode() else f" (best chosen with the {chosen} setting)"
        self.best_label.setText(f"best epoch {self.best_epoch}: {shown}{judged}")

    def _on_finished(self, event: Finished) -> None:
        self.set_status("finished")
        early = " (early stop)" if event.stopped_early else ""
        self.append_log(f"run {event.run_id} finished: best epoch {event.best_epoch} of {event.epochs_done}{early}")
        if self._epoch is not None:
            self.epoch_bar.setValue(1000)

    # rendering ---------------------------------------------------------------------------------------
    @Slot()
    def render(self) -> None:
        """Bars and labels from the latest state (10 Hz while a run is live)."""
        epoch, batch = self._epoch, self._last_batch
        if epoch is None:
            return
        done_batches = batch.batch if batch is not None else 0
        fraction = done_batches / max(epoch.n_batches, 1)
        self.epoch_label.setText(f"Epoch {epoch.epoch}/{epoch.max_epochs}")
        self.epoch_bar.setValue(round(1000 * (epoch.epoch - 1 + fraction) / max(epoch.max_epochs, 1)))
        self.batch_label.setText(f"Batch {done_batches}/{epoch.n_batches}")
        self.batch_bar.setValue(round(1000 * fraction))
        if batch is not None:
            self.rate_label.setText(
                f"loss {batch.loss:.4f} · {batch.samples_per_s:,.0f} samples/s · epoch ETA "
                f"{_duration(batch.epoch_eta_s)} · run ETA ≤ {_duration(batch.run_eta_s)}"
            )

    @Slot(int)
    def _on_smoothing(self, value: int) -> None:
        self.loss_plot.set_smoothing(value / 100.0)
        self.smoothing_value.setText(f"{value / 100:.2f}")

    @Slot(str)
    def _on_theme_changed(self, _name: str) -> None:
        self._style_markers()

    def _style_markers(self) -> None:
        """Validation curves have one point per epoch: draw them as dots on lines (visible from epoch 1)."""
        palette = theme_manager().palette
        smooth_items = self.metric_plot.getPlotItem().listDataItems()[1::2]  # (raw, smoothed) per series
        for index, item in enumerate(smooth_items):
            color = QColor(palette.series_color(index))
            item.setSymbol("o")
            item.setSymbolSize(7)
            item.setSymbolBrush(pg.mkBrush(color))
            item.setSymbolPen(pg.mkPen(color))
        self.metric_legend.setText("&nbsp;&nbsp;".join(
            f"<span style='color:{palette.series_color(k)}; font-size:14px'>●</span>&nbsp;{label}"
            for k, (_key, label) in enumerate(CURVES)
        ))
