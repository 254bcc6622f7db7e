"""Live curves that stay cheap while a run streams thousands of points.

Slots only append to a ``SeriesBuffer``; a GUI ``QTimer`` (~10 Hz) calls ``setData`` once per dirty
series per tick (Orange caps partial results at 10 Hz). Buffers are float64 arrays grown by doubling
(pyqtgraph's scrollingPlots example); plots clip to the view and downsample by peak. Each series is
drawn twice: the raw values faint underneath and a debiased EMA (TensorBoard's smoothing) on top.
"""

from __future__ import annotations

import math
from itertools import accumulate

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget

from app.theme import Palette, SteadyPlotWidget, style_plot, theme_manager

RAW_ALPHA = 70  # 0..255: the raw curve stays visible but does not compete with the smoothed one


class SeriesBuffer:
    """Append-only (x, y) float64 storage with amortised O(1) appends."""

    def __init__(self, capacity: int = 256) -> None:
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def capacity(self) -> int:
        return self._x.shape[0]

    def _reserve(self, extra: int) -> None:
        need = self._n + extra
        if need <= self.capacity:
            return
        new_cap = max(self.capacity, 1)
        while new_cap < need:
            new_cap *= 2
        for name in ("_x", "_y"):
            grown = np.empty(new_cap, dtype=np.float64)
            grown[: self._n] = getattr(self, name)[: self._n]
            setattr(self, name, grown)

    def append(self, x: float, y: float) -> None:
        self._reserve(1)
        self._x[self._n] = x
        self._y[self._n] = y
        self._n += 1

    def extend(self, xs: np.ndarray | list[float], ys: np.ndarray | list[float]) -> None:
        xs_arr = np.asarray(xs, dtype=np.float64).ravel()  # (k,)
        ys_arr = np.asarray(ys, dtype=np.float64).ravel()  # (k,)
        if xs_arr.shape != ys_arr.shape:
            raise ValueError(f"x and y lengths differ: {xs_arr.shape[0]} vs {ys_arr.shape[0]}")
        self._reserve(xs_arr.shape[0])
        self._x[self._n : self._n + xs_arr.shape[0]] = xs_arr
        self._y[self._n : self._n + ys_arr.shape[0]] = ys_arr
        self._n += xs_arr.shape[0]

    @property
    def x(self) -> np.ndarray:
        return self._x[: self._n]  # (n,) view, no copy

    @property
    def y(self) -> np.ndarray:
        return self._y[: self._n]  # (n,) view, no copy

    def clear(self) -> None:
        self._n = 0


def ema_debiased(values: np.ndarray, smoothing: float, last: float = 0.0, start: int = 0) -> np.ndarray:
    """Debiased exponential moving average, as TensorBoard draws it.

    ``ema_t = w·ema_{t-1} + (1-w)·v_t`` from ``ema_{-1} = 0``, divided by ``1 - w^(t+1)`` so early points
    are not pulled towards zero. ``last``/``start`` continue a previous call: ``last`` is the *biased*
    EMA after ``start`` points. Non-finite values do not move the average (they get the previous value).
    Returns the debiased values, shape (len(values),).
    """
    w = float(smoothing)
    if not 0.0 <= w < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    v = np.asarray(values, dtype=np.float64)
    if w == 0.0:
        return v.copy()
    biased = _biased_ema(v, w, last)
    steps = np.arange(start + 1, start + v.shape[0] + 1, dtype=np.float64)
    return biased / (1.0 - np.power(w, steps))


def _biased_ema(v: np.ndarray, w: float, last: float) -> np.ndarray:
    # A C-level accumulate (~15 ms per 100k points) instead of scipy.signal.lfilter, whose import
    # alone costs seconds at start-up; per 10 Hz tick only the new points are smoothed anyway.
    def step(acc: float, value: float) -> float:
        return w * acc + (1.0 - w) * value if math.isfinite(value) else acc

    out = np.fromiter(accumulate(v.tolist(), step, initial=last), dtype=np.float64, count=v.shape[0] + 1)
    return out[1:]


class _Series:
    """One named curve: raw buffer, incremental smoothed buffer and the two plot items."""

    def __init__(self, raw: pg.PlotDataItem, smooth: pg.PlotDataItem, color_index: int) -> None:
        self.data = SeriesBuffer()
        self.smoothed = SeriesBuffer()  # x = index, y = debiased EMA; rebuilt when smoothing changes
        self.biased_last = 0.0
        self.raw = raw
        self.smooth = smooth
        self.color_index = color_index
        self.dirty = False


class LivePlot(SteadyPlotWidget):
    """A themed plot whose series are fed from slots and redrawn at most ``1000/interval_ms`` Hz.

    Use ``add_series(key, label)``, then ``append(key, x, y)`` / ``extend(key, xs, ys)`` from a slot;
    ``set_smoothing(w)`` (0 ≤ w < 1, 0 = off) re-smooths everything; ``set_marker(x)`` draws a
    vertical line (e.g. the best epoch).
    """

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        title: str = "",
        x_label: str = "step",
        y_label: str = "",
        smoothing: float = 0.6,
        interval_ms: int = 100,
    ) -> None:
        super().__init__(parent)
        self._series: dict[str, _Series] = {}
        self._smoothing = 0.0
        self._marker: pg.InfiniteLine | None = None
        self._marker_label = ""
        item = self.getPlotItem()
        item.setClipToView(True)
        item.setDownsampling(auto=True, mode="peak")
        item.addLegend(offset=(-10, 10))
        if title:
            item.setTitle(title)
        item.setLabel("bottom", x_label)
        if y_label:
            item.setLabel("left", y_label)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.flush)
        self.set_smoothing(smoothing)
        manager = theme_manager()
        manager.changed.connect(self._on_theme_changed)
        self._following_theme = True
        self._apply_palette(manager.palette)

    # feeding ----------------------------------------------------------------------------------------
    def add_series(self, key: str, label: str | None = None) -> None:
        if key in self._series:
            raise ValueError(f"series {key!r} already exists")
        index = len(self._series)
        item = self.getPlotItem()
        raw = item.plot([], [], name=None)
        smooth = item.plot([], [], name=label or key)
        series = _Series(raw, smooth, index)
        self._series[key] = series
        self._style_series(series, theme_manager().palette)

    def series_keys(self) -> list[str]:
        return list(self._series)

    def append(self, key: str, x: float, y: float) -> None:
        series = self._series[key]
        series.data.append(x, y)
        self._mark_dirty(series)

    def extend(self, key: str, xs: np.ndarray | list[float], ys: np.ndarray | list[float]) -> None:
        series = self._series[key]
        series.data.extend(xs, ys)
        self._mark_dirty(series)

    def data(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) views of the raw values received so far."""
        series = self._series[key]
        return series.data.x, series.data.y

    def smoothed(self, key: str) -> np.ndarray:
        """Debiased EMA of the values drawn so far (call ``flush`` first for the latest)."""
        return self._series[key].smoothed.y

    def reset(self) -> None:
        """Empty every series but keep the curves. (Not ``clear``: pyqtgraph's PlotWidget forwards
        ``clear`` to PlotItem.clear on each instance, which removes the curves altogether.)"""
        for series in self._series.values():
            series.data.clear()
            series.smoothed.clear()
            series.biased_last = 0.0
            series.raw.setData([], [])
            series.smooth.setData([], [])
        self.set_marker(None)

    def set_smoothing(self, smoothing: float) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self._smoothing = float(smoothing)
        for series in self._series.values():
            series.smoothed.clear()
            series.biased_last = 0.0
            series.raw.setVisible(self._smoothing > 0.0)
            self._mark_dirty(series)

    def smoothing(self) -> float:
        return self._smoothing

    def set_marker(self, x: float | None, label: str = "best") -> None:
        item = self.getPlotItem()
        if self._marker is not None:
            item.removeItem(self._marker)
            self._marker = None
        if x is None:
            return
        palette = theme_manager().palette
        self._marker_label = label
        self._marker = pg.InfiniteLine(
            pos=x,
            angle=90,
            pen=pg.mkPen(palette.text_muted, width=1, style=pg.QtCore.Qt.PenStyle.DashLine),
            label=label,
            labelOpts={"position": 0.92, "color": palette.text_muted},
        )
        item.addItem(self._marker)

    # drawing ----------------------------------------------------------------------------------------
    def _mark_dirty(self, series: _Series) -> None:
        series.dirty = True
        if not self._timer.isActive():
            self._timer.start()

    @Slot()
    def flush(self) -> None:
        """Push buffered points to the plot items; the timer calls it, tests may call it directly."""
        any_dirty = False
        for series in self._series.values():
            if not series.dirty:
                continue
            any_dirty = True
            series.dirty = False
            x, y = series.data.x, series.data.y
            done = len(series.smoothed)
            if done < len(x):
                new = y[done:]
                smooth_new = ema_debiased(new, self._smoothing, series.biased_last, done)
                if self._smoothing > 0.0:
                    # keep the biased state to continue next tick: biased = debiased·(1 - w^(t+1))
                    series.biased_last = float(smooth_new[-1] * (1.0 - self._smoothing ** len(x)))
                series.smoothed.extend(x[done:], smooth_new)
            series.raw.setData(x, y)
            series.smooth.setData(x, series.smoothed.y)
        if not any_dirty:
            self._timer.stop()

    def close(self) -> bool:
        """pyqtgraph drops the PlotItem on close; stop following the theme before that."""
        if self._following_theme:
            theme_manager().changed.disconnect(self._on_theme_changed)
            self._following_theme = False
        self._timer.stop()
        return super().close()

    @Slot(str)
    def _on_theme_changed(self, _name: str) -> None:
        if self.plotItem is not None:
            self._apply_palette(theme_manager().palette)

    def _apply_palette(self, palette: Palette) -> None:
        style_plot(self, palette)
        for series in self._series.values():
            self._style_series(series, palette)
        if self._marker is not None:
            self.set_marker(self._marker.value(), self._marker_label)

    def _style_series(self, series: _Series, palette: Palette) -> None:
        color = QColor(palette.series_color(series.color_index))
        faint = QColor(color)
        faint.setAlpha(RAW_ALPHA)
        series.raw.setPen(pg.mkPen(faint, width=1))
        series.smooth.setPen(pg.mkPen(color, width=2))
        series.raw.setVisible(self._smoothing > 0.0)
