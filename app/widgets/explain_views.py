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
    step = max(1, int(np.ceil(len(labels) / max_ticks)))
    return [(i + 0.5, labels[i]) for i in range(0, len(labels), step)]


class Heatmap(SteadyPlotWidget):
    """A T×T matrix (rows = queries, columns = keys) with step labels on both axes and a colour bar."""

    def __init__(self, parent: QWidget | None = None, *, title: str = "", diverging: bool = False) -> None:
        super().__init__(parent)
        self.diverging = diverging
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
        item.getAxis("left").setWidth(64)
        cmap = pg.colormap.get("CET-D1" if diverging else "viridis")
        self.bar = pg.ColorBarItem(colorMap=cmap, interactive=False, width=12)
        self.bar.setImageItem(self.image, insert_in=item)
        self.matrix = np.zeros((0, 0))
        self.setMinimumHeight(150)
        theme_manager().changed.connect(self._restyle)
        self._restyle("")

    def set_matrix(self, matrix: np.ndarray, row_labels: list[str], col_labels: list[str]) -> None:
        m = np.asarray(matrix, dtype=np.float64)  # R×C
        self.matrix = m
        if m.size == 0:
            self.image.clear()
            return
        finite = m[np.isfinite(m)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if self.diverging:
            span = max(abs(lo), abs(hi), 1e-9)
            lo, hi = -span, span
        elif hi <= lo:
            hi = lo + 1e-9
        self.image.setImage(np.nan_to_num(m, nan=lo), levels=(lo, hi))
        self.bar.setLevels((lo, hi))
        item = self.getPlotItem()
        item.getAxis("left").setTicks([_ticks(row_labels)])
        item.getAxis("bottom").setTicks([_ticks(col_labels)])
        item.setXRange(0, m.shape[1], padding=0)
        item.setYRange(0, m.shape[0], padding=0)

    def _restyle(self, _name: str) -> None:
        style_plot(self, theme_manager().palette)
        self.getPlotItem().showGrid(x=False, y=False)


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
        item.getAxis("bottom").setTicks([[(t - 0.5, s) for t, s in _ticks(labels)]])
        if v.size:
            item.setXRange(-0.6, v.size - 0.4, padding=0)
            top = float(np.nanmax(v)) if np.isfinite(v).any() else 1.0
            item.setYRange(min(0.0, float(np.nanmin(v))), max(top, 1e-9) * 1.1, padding=0)

    def _restyle(self, _name: str) -> None:
        style_plot(self, theme_manager().palette)
