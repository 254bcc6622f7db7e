"""Themed pyqtgraph charts of one dataset: operation distribution, session lengths, session timelines.

Each chart keeps the data it was given and redraws itself when the theme changes, so colours follow
light / dark. Operation colours are stable per operation name within a chart (hue circle).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QWidget

from app.theme import Palette, style_plot, theme_manager


def operation_colors(names: list[str], palette: Palette) -> dict[str, QColor]:
    """One distinguishable colour per operation (hue circle; brighter on the dark theme)."""
    n = max(len(names), 1)
    value = 235 if palette.name == "dark" else 200
    saturation = 150 if palette.name == "dark" else 190
    return {name: QColor.fromHsv(int(360 * k / n + 210) % 360, saturation, value) for k, name in enumerate(names)}


class ThemedChart(pg.PlotWidget):
    """A plot that restyles itself and calls ``redraw()`` on theme changes; no mouse zoom by default."""

    def __init__(self, parent: QWidget | None = None, *, title: str = "") -> None:
        super().__init__(parent)
        self._title = title
        item = self.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        self.setMouseEnabled(x=False, y=False)
        self.setMinimumHeight(130)
        manager = theme_manager()
        manager.changed.connect(self._on_theme_changed)
        self._apply()

    @property
    def palette_(self) -> Palette:
        return theme_manager().palette

    def _apply(self) -> None:
        palette = self.palette_
        if self._title:
            self.getPlotItem().setTitle(self._title, color=palette.plot_fg, size="10pt")
        style_plot(self, palette)

    @Slot(str)
    def _on_theme_changed(self, _name: str) -> None:
        if self.getPlotItem() is None:  # pyqtgraph drops the PlotItem when the widget is closed
            return
        self._apply()
        self.redraw()

    def redraw(self) -> None:
        """Draw the current data with the current palette (subclasses)."""

    def show_message(self, text: str) -> None:
        item = self.getPlotItem()
        item.clear()
        label = pg.TextItem(text, color=self.palette_.text_muted, anchor=(0.5, 0.5))
        item.addItem(label)
        label.setPos(0.5, 0.5)
        item.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
        for axis in ("left", "bottom"):
            item.getAxis(axis).setTicks([[]])


class OperationChart(ThemedChart):
    """Horizontal bars: micro-behaviors per operation, most frequent on top, with percentages."""

    def __init__(self, parent: QWidget | None = None) -> None:
        self._counts: dict[str, int] = {}
        super().__init__(parent, title="Operations")
        self.getPlotItem().showGrid(x=True, y=False, alpha=self.palette_.plot_grid_alpha)

    def set_counts(self, counts: dict[str, int]) -> None:
        self._counts = dict(counts)
        self.redraw()

    def bars(self) -> list[tuple[str, int]]:
        return sorted(self._counts.items(), key=lambda kv: kv[1])

    def redraw(self) -> None:
        item = self.getPlotItem()
        item.clear()
        bars = self.bars()
        if not bars:
            self.show_message("No data")
            return
        palette = self.palette_
        colors = operation_colors(sorted(self._counts), palette)
        total = max(sum(self._counts.values()), 1)
        y = np.arange(len(bars), dtype=np.float64)
        widths = np.array([c for _, c in bars], dtype=np.float64)
        item.addItem(pg.BarGraphItem(x0=np.zeros_like(y), y=y, height=0.7, width=widths,
                                     brushes=[colors[n] for n, _ in bars], pens=[pg.mkPen(None)] * len(bars)))
        for k, (_name, count) in enumerate(bars):
            text = pg.TextItem(f" {100 * count / total:.1f}%", color=palette.text_muted, anchor=(0, 0.5))
            text.setPos(float(count), float(k))
            item.addItem(text)
        item.getAxis("left").setTicks([[(float(k), name) for k, (name, _) in enumerate(bars)]])
        item.getAxis("bottom").setStyle(showValues=False)  # the bars carry their share as text
        item.setLabel("bottom", "share")
        item.setRange(xRange=(0, widths.max() * 1.6), yRange=(-0.6, len(bars) - 0.4), padding=0)


class LengthHistogram(ThemedChart):
    """Sessions per length bin (micro-behaviors per session), bins as :func:`dataset_stats` makes them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        self._hist: dict[str, int] = {}
        self._mean: float | None = None
        super().__init__(parent, title="Session length")
        self.getPlotItem().showGrid(x=False, y=True, alpha=self.palette_.plot_grid_alpha)

    def set_histogram(self, hist: dict[str, int], mean: float | None = None) -> None:
        self._hist = dict(hist)
        self._mean = mean
        self.redraw()

    def redraw(self) -> None:
        item = self.getPlotItem()
        item.clear()
        if not self._hist or not any(self._hist.values()):
            self.show_message("No data")
            return
        palette = self.palette_
        labels = list(self._hist)
        heights = np.array(list(self._hist.values()), dtype=np.float64)
        x = np.arange(len(labels), dtype=np.float64)
        color = QColor(palette.series_color(0))
        item.addItem(pg.BarGraphItem(x=x, height=heights, width=0.75, brush=color, pen=pg.mkPen(None)))
        # bins such as "10-19": the lower bound alone keeps narrow charts readable
        starts = [lab.split("-")[0] for lab in labels]
        item.getAxis("bottom").setTicks([[(float(k), lab) for k, lab in enumerate(starts)]])
        item.getAxis("left").setTicks(None)
        mean = f" · mean {self._mean:.1f}" if self._mean is not None else ""
        item.setTitle(f"Session length{mean}", color=palette.plot_fg, size="10pt")
        item.setLabel("bottom", "micro-behaviors per session (bin start)")
        item.setLabel("left", "sessions")
        item.setRange(xRange=(-0.6, len(labels) - 0.4), yRange=(0, heights.max() * 1.08), padding=0)


class SessionTimeline(ThemedChart):
    """A few sessions, one row each: a dot per micro-behavior coloured by operation, on shaded spans of
    the same macro-item (consecutive micro-behaviors on one item), labelled with the item id."""

    MAX_LABELS = 60
    legendChanged = Signal(str)  # rich text: a coloured dot and the name of each operation  # noqa: N815

    def __init__(self, parent: QWidget | None = None) -> None:
        self._events = pd.DataFrame()
        self._operations: list[str] = []
        self.legend_html = ""
        self._label_font = QFont()
        self._label_font.setPointSizeF(7.5)
        super().__init__(parent, title="First sessions: spans = items, dots = operations")
        self.setMinimumHeight(150)
        self.setMouseEnabled(x=True, y=False)

    def set_events(self, events: pd.DataFrame, operations: list[str] | None = None) -> None:
        """``events``: rows of ``session, position, item, operation`` (``session_preview``); ``operations``:
        every operation of the dataset, so dots get the same colours as in :class:`OperationChart`."""
        self._events = events.reset_index(drop=True)
        self._operations = list(operations or [])
        self.redraw()

    def operation_names(self) -> list[str]:
        seen = set(self._events["operation"].astype(str).unique()) if len(self._events) else set()
        return sorted(seen | set(self._operations))

    def redraw(self) -> None:
        item = self.getPlotItem()
        item.clear()
        if self._events.empty:
            self.show_message("No sessions")
            self._set_legend({})
            return
        palette = self.palette_
        ev = self._events
        sessions = list(dict.fromkeys(ev["session"].astype(str)))
        row_of = {s: k for k, s in enumerate(sessions)}
        y = ev["session"].astype(str).map(row_of).to_numpy(dtype=np.float64)
        x = ev["position"].to_numpy(dtype=np.float64)
        items = ev["item"].astype(str).to_numpy()
        ops = ev["operation"].astype(str).to_numpy()
        colors = operation_colors(self.operation_names(), palette)
        self._draw_macro_spans(item, x, y, items, palette)
        tips = [f"{o} on item {i}" for o, i in zip(ops, items, strict=True)]
        item.addItem(pg.ScatterPlotItem(x=x, y=y, size=10, pen=pg.mkPen(palette.plot_bg, width=1),
                                        brush=[pg.mkBrush(colors[o]) for o in ops], data=tips, hoverable=True,
                                        tip=lambda x, y, data: data))
        item.getAxis("left").setTicks([[(float(k), f"#{s}") for k, s in enumerate(sessions)]])
        item.getAxis("bottom").setTicks(None)
        item.setLabel("bottom", "position in session (micro-behavior)")
        item.invertY(True)
        item.setRange(xRange=(-1, float(x.max()) + 1), yRange=(-0.95, len(sessions) - 0.4), padding=0)
        self._set_legend(colors)

    def _draw_macro_spans(self, item: Any, x: np.ndarray, y: np.ndarray, items: np.ndarray, palette: Palette) -> None:
        new = np.r_[True, (items[1:] != items[:-1]) | (y[1:] != y[:-1])]
        starts = np.flatnonzero(new)
        ends = np.r_[starts[1:], len(x)] - 1
        shade = QColor(palette.text_muted)
        shade.setAlpha(40)
        alt = QColor(palette.text_muted)
        alt.setAlpha(18)
        brushes = [shade if k % 2 == 0 else alt for k in range(len(starts))]
        item.addItem(pg.BarGraphItem(x0=x[starts] - 0.45, x1=x[ends] + 0.45, y=y[starts], height=0.5,
                                     brushes=brushes, pens=[pg.mkPen(None)] * len(starts)))
        widths = ends - starts + 1
        for k in np.argsort(-widths, kind="stable")[: self.MAX_LABELS]:
            if widths[k] < 3:
                break
            label = pg.TextItem(items[starts[k]], color=palette.text_muted, anchor=(0.5, 1.0))
            label.setFont(self._label_font)
            label.setPos(float((x[starts[k]] + x[ends[k]]) / 2), float(y[starts[k]]) - 0.26)
            item.addItem(label)

    def _set_legend(self, colors: dict[str, QColor]) -> None:
        self.legend_html = "&nbsp;&nbsp; ".join(
            f"<span style='color:{c.name()}; font-size:15px'>●</span>&nbsp;{name}" for name, c in colors.items()
        )
        self.legendChanged.emit(self.legend_html)


__all__ = ["LengthHistogram", "OperationChart", "SessionTimeline", "ThemedChart", "operation_colors"]
