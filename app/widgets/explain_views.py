"""Views of a model's explanation of one session: attention heatmaps and star-node / fusion gates.

Plain renderers: they receive numpy arrays and step labels and draw them with pyqtgraph (ImageItem
for the T×T maps, BarGraphItem for per-step gates). No model code here.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from app.theme import SteadyPlotWidget, style_plot, theme_manager


def _ticks(labels: list[str], max_ticks: int = 16) -> list[tuple[float, str]]:
    step = max(1, int(np.ceil(len(labels) / max(1, max_ticks))))
    return [(i + 0.5, labels[i]) for i in range(0, len(labels), step)]


def fitting_ticks(length_px: float, label_px: float) -> int:
    """How many labels of ``label_px`` (plus a gap) fit along an axis of ``length_px`` without overlapping."""
    return max(1, int(length_px // (label_px + 10)))


UNIFORM_SPREAD = 0.25  # attention whose max-min is under a quarter of its max reads as "nearly uniform"


class Heatmap(SteadyPlotWidget):
    """A T×T matrix (rows = queries, columns = keys) with step labels on both axes and a colour bar."""

    def __init__(self, parent: QWidget | None = None, *, title: str = "", diverging: bool = False) -> None:
        super().__init__(parent)
        self.diverging = diverging
        self.title = title
        self.note = ""  # e.g. "nearly uniform": said in the title, since equal colours say little
        self.row_labels: list[str] = []
        self.col_labels: list[str] = []
        self.image = pg.ImageItem(axisOrder="row-major")
        item = self.getPlotItem()
        item.addItem(self.image)
        item.invertY(True)
        item.setAspectLocked(False)
        item.hideButtons()
        item.setMenuEnabled(False)
        item.setMouseEnabled(x=False, y=False)
        if title:
            item.setTitle(title)
        item.getAxis("left").setWidth(84)
        cmap = pg.colormap.get("CET-D1" if diverging else "viridis")
        self.bar = pg.ColorBarItem(colorMap=cmap, interactive=False, width=12)
        self.bar.setImageItem(self.image, insert_in=item)
        self.matrix = np.zeros((0, 0))
        self.levels = (0.0, 1.0)
        self.setMinimumHeight(150)
        theme_manager().changed.connect(self._restyle)
        self._restyle("")

    def set_matrix(self, matrix: np.ndarray, row_labels: list[str], col_labels: list[str]) -> None:
        """Draw R×C values. Diverging maps are symmetric around 0; others start at 0 (an absolute scale,
        so 0.061 vs 0.064 does not look like black vs white) and say when the values are nearly equal."""
        m = np.asarray(matrix, dtype=np.float64)  # R×C
        self.matrix = m
        self.row_labels, self.col_labels = list(row_labels), list(col_labels)
        self.note = ""
        if m.size == 0:
            self.image.clear()
            self._show_title()
            return
        finite = m[np.isfinite(m)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if self.diverging:
            span = max(abs(lo), abs(hi), 1e-9)
            levels = (-span, span)
        else:
            if hi > 0 and lo >= 0 and (hi - lo) < UNIFORM_SPREAD * hi:
                self.note = f"nearly uniform: every value between {lo:.3f} and {hi:.3f}"
            levels = (min(0.0, lo), max(hi, 1e-9))
        self.levels = levels
        self.image.setImage(np.nan_to_num(m, nan=levels[0]), levels=levels)
        self.bar.setLevels(levels)
        item = self.getPlotItem()
        item.setXRange(0, m.shape[1], padding=0)
        item.setYRange(0, m.shape[0], padding=0)
        self._show_title()
        self._fit_ticks()

    def _show_title(self) -> None:
        text = self.title + (f"<br><span style='font-size:9pt'>{self.note}</span>" if self.note else "")
        self.getPlotItem().setTitle(text, color=theme_manager().palette.plot_fg)

    def _fit_ticks(self) -> None:
        """As many step labels as fit without overlapping (15 steps on a narrow plot: every other one)."""
        item = self.getPlotItem()
        metrics = self.fontMetrics()
        view = item.getViewBox().sceneBoundingRect()
        widest = max((metrics.horizontalAdvance(t) for t in self.col_labels), default=0)
        item.getAxis("bottom").setTicks([_ticks(self.col_labels, fitting_ticks(view.width(), widest))])
        item.getAxis("left").setTicks([_ticks(self.row_labels, fitting_ticks(view.height(), metrics.height()))])

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        matrix = self.__dict__.get("matrix")  # resized once while pyqtgraph builds the widget
        if matrix is not None and matrix.size:
            self._fit_ticks()

    def _restyle(self, _name: str) -> None:
        style_plot(self, theme_manager().palette)
        self.getPlotItem().showGrid(x=False, y=False)
        if hasattr(self, "title"):
            self._show_title()


class GateBars(SteadyPlotWidget):
    """One bar per session step (e.g. the star-node gate α of the item at that step)."""

    def __init__(self, parent: QWidget | None = None, *, title: str = "", y_label: str = "") -> None:
        super().__init__(parent)
        item = self.getPlotItem()
        item.hideButtons()
        item.setMenuEnabled(False)
        item.setMouseEnabled(x=False, y=False)
        if title:
            item.setTitle(title)
        if y_label:
            item.setLabel("left", y_label)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7)
        item.addItem(self.bars)
        self.values = np.zeros(0)
        self.setMinimumHeight(120)
        theme_manager().changed.connect(self._restyle)
        self._restyle("")

    def set_values(self, values: np.ndarray, labels: list[str]) -> None:
        v = np.asarray(values, dtype=np.float64)  # T
        self.values = v
        palette = theme_manager().palette
        self.bars.setOpts(x=np.arange(v.size), height=np.nan_to_num(v), width=0.7,
                          brush=pg.mkBrush(palette.series_color(0)), pen=pg.mkPen(None))
        item = self.getPlotItem()
        widest = max((self.fontMetrics().horizontalAdvance(t) for t in labels), default=0)
        fit = fitting_ticks(item.getViewBox().sceneBoundingRect().width() or self.width() - 60, widest)
        item.getAxis("bottom").setTicks([[(t - 0.5, s) for t, s in _ticks(labels, fit)]])
        if v.size:
            item.setXRange(-0.6, v.size - 0.4, padding=0)
            top = float(np.nanmax(v)) if np.isfinite(v).any() else 1.0
            item.setYRange(min(0.0, float(np.nanmin(v))), max(top, 1e-9) * 1.1, padding=0)

    def _restyle(self, _name: str) -> None:
        style_plot(self, theme_manager().palette)
