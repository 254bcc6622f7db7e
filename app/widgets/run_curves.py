"""Overlaid metric curves of several finished or live runs (TensorBoard-style).

Each run is one colour: the raw values faint underneath, the debiased EMA on top (smoothing 0 = raw
only), and a star at the run's best (early-stopping) epoch. X is the epoch or the wall time. Metrics
are drawn in percent (as everywhere in the GUI); the axis says the split and the target-operation mode.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from app.theme import style_plot, theme_manager
from app.widgets.live_plot import RAW_ALPHA, ema_debiased
from embsr_core import reports
from embsr_core.reports import RunInfo

X_AXES = (("epoch", "Epoch"), ("wall", "Wall time (s)"))
SPLIT_LABELS = {"valid": "validation", "test": "test"}


LOSS = ("loss", 0)


def metric_choices() -> list[tuple[str, tuple[str, int]]]:
    """(label, (metric, k)) for every metric@K, H first as in the paper."""
    return [(reports.metric_label(m, k), (m, k)) for m in reports.METRICS for k in reports.KS]


class RunCurves(QWidget):
    """Controls (metric, split, target op, x axis, smoothing) above one plot of the selected runs."""

    settingsChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._infos: list[RunInfo] = []
        self._frames: dict[int, pd.DataFrame] = {}
        self._losses: dict[int, pd.DataFrame] = {}
        self.items: dict[int, tuple[pg.PlotDataItem, pg.PlotDataItem, pg.ScatterPlotItem]] = {}

        self.metric = QComboBox(self)
        for label, key in metric_choices():
            self.metric.addItem(label, key)
        self.metric.addItem("training loss", LOSS)
        self.metric.setCurrentText("H@20")
        self.metric.setToolTip("H = hit rate, M = MRR, N = NDCG at K")
        self.split = QComboBox(self)
        for split, label in SPLIT_LABELS.items():
            self.split.addItem(label, split)
        self.target_op = QComboBox(self)
        self.target_op.addItem("oracle operation", "oracle")
        self.target_op.addItem("unknown operation", "unknown")
        self.target_op.setToolTip("Oracle: the model is told which operation the user does next; "
                                  "unknown: it is not (the harder, realistic setting)")
        self.x_axis = QComboBox(self)
        for key, label in X_AXES:
            self.x_axis.addItem(label, key)
        self.smoothing = QSlider(Qt.Orientation.Horizontal, self)
        self.smoothing.setRange(0, 95)
        self.smoothing.setValue(0)
        self.smoothing.setFixedWidth(120)
        self.smoothing.setToolTip("Debiased exponential moving average; the raw curve stays faint underneath")
        self.smoothing_label = QLabel(self)
        self.smoothing_label.setObjectName("Muted")
        self.smoothing_label.setMinimumWidth(32)

        controls = QHBoxLayout()
        controls.setSpacing(8)
        for text, widget in (("Metric", self.metric), ("Split", self.split), ("", self.target_op), ("X", self.x_axis)):
            if text:
                controls.addWidget(QLabel(text, self))
            controls.addWidget(widget)
        controls.addSpacing(8)
        controls.addWidget(QLabel("Smoothing", self))
        controls.addWidget(self.smoothing)
        controls.addWidget(self.smoothing_label)
        controls.addStretch(1)

        self.plot = pg.PlotWidget(self)
        item = self.plot.getPlotItem()
        item.setClipToView(True)
        item.setDownsampling(auto=True, mode="peak")
        item.addLegend(offset=(-10, -10))  # bottom right: metric curves rise towards the top right
        item.getAxis("left").enableAutoSIPrefix(False)
        self.empty_text = pg.TextItem("Select one or more runs in the table", anchor=(0.5, 0.5))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.plot, 1)

        for combo in (self.metric, self.split, self.target_op, self.x_axis):
            combo.currentIndexChanged.connect(self._on_setting_changed)
        self.smoothing.valueChanged.connect(self._on_setting_changed)
        theme_manager().changed.connect(self._on_theme_changed)
        self._on_theme_changed("")

    # public ----------------------------------------------------------------------------------------
    def set_runs(
        self, infos: list[RunInfo], frames: dict[int, pd.DataFrame], losses: dict[int, pd.DataFrame] | None = None
    ) -> None:
        """Show ``infos`` (one colour each) with their per-epoch metric frames and loss series."""
        self._infos = list(infos)
        self._frames = dict(frames)
        self._losses = dict(losses or {})
        splits = {s for f in frames.values() for s in f["split"].unique()} if frames else set()
        if self.split.currentData() not in splits and splits:
            self.split.setCurrentIndex(self.split.findData("valid" if "valid" in splits else "test"))
        self.redraw()

    def current_metric(self) -> tuple[str, int]:
        return self.metric.currentData()

    def series(self, run_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(x, raw y) currently drawn for ``run_id``: metrics in percent, the loss as stored."""
        raw = self.items[run_id][0]
        x, y = raw.getData()
        return (np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)) if x is not None else (
            np.zeros(0), np.zeros(0))

    # drawing ---------------------------------------------------------------------------------------
    @Slot()
    def _on_setting_changed(self, *_args: object) -> None:
        self.redraw()
        self.settingsChanged.emit()

    def redraw(self) -> None:
        item = self.plot.getPlotItem()
        item.clear()
        if item.legend is not None:
            item.legend.clear()
        self.items.clear()
        w = self.smoothing.value() / 100.0
        self.smoothing_label.setText(f"{w:.2f}")
        metric, k = self.current_metric()
        split, target_op, x_key = self.split.currentData(), self.target_op.currentData(), self.x_axis.currentData()
        is_loss = (metric, k) == LOSS
        self.split.setEnabled(not is_loss)
        self.target_op.setEnabled(not is_loss)
        palette = theme_manager().palette
        item.setLabel("bottom", dict(X_AXES)[x_key])
        item.setLabel("left", "training loss" if is_loss else (
            f"{reports.metric_label(metric, k)} % · {SPLIT_LABELS.get(split, split)} · {target_op}"))
        if not self._infos:
            item.addItem(self.empty_text)
            self.empty_text.setColor(palette.text_muted)
            self.empty_text.setPos(0.5, 0.5)
            item.setXRange(0, 1)
            item.setYRange(0, 1)
            return
        for i, info in enumerate(self._infos):
            frame = self._losses.get(info.id) if is_loss else self._frames.get(info.id)
            if frame is None or frame.empty:
                continue
            if is_loss:
                epochs, wall, values = reports.loss_curve(frame)
            else:
                epochs, wall, values = reports.curve(frame, metric, k, split, target_op)
                values = 100.0 * values  # percent, as the rest of the GUI
            x = wall if x_key == "wall" else epochs
            keep = np.isfinite(x)
            x, y, ep = x[keep], values[keep], epochs[keep]
            color = QColor(palette.series_color(i))
            faint = QColor(color)
            faint.setAlpha(RAW_ALPHA if w > 0 else 255)
            raw = item.plot(x, y, pen=pg.mkPen(faint, width=1 if w > 0 else 2))
            smooth = item.plot(
                x, ema_debiased(y, w) if y.size else y, pen=pg.mkPen(color, width=2),
                name=f"#{info.id} {info.display_name}",
            )
            smooth.setVisible(w > 0)
            if w == 0:  # the legend entry goes with the visible curve
                raw.opts["name"] = smooth.opts["name"]
                if item.legend is not None:
                    item.legend.removeItem(smooth)
                    item.legend.addItem(raw, smooth.opts["name"])
            best = pg.ScatterPlotItem(symbol="star", size=14, brush=pg.mkBrush(color), pen=pg.mkPen(palette.plot_bg))
            at = np.flatnonzero(ep == info.best_epoch) if info.best_epoch is not None else np.zeros(0, dtype=int)
            if at.size:
                best.setData([x[at[0]]], [y[at[0]]])
                best.setToolTip(f"best epoch {info.best_epoch}")
            item.addItem(best)
            self.items[info.id] = (raw, smooth, best)
        item.enableAutoRange()

    @Slot(str)
    def _on_theme_changed(self, _name: str) -> None:
        style_plot(self.plot, theme_manager().palette)
        self.redraw()
