"""Live plot helper: doubling buffers, debiased EMA, 10 Hz coalesced drawing, theme following."""

from __future__ import annotations

import numpy as np
import pytest

from app.theme import DARK, LIGHT, theme_manager
from app.widgets.live_plot import LivePlot, SeriesBuffer, ema_debiased

pytestmark = pytest.mark.gui


def reference_ema(values: list[float], w: float) -> list[float]:
    """TensorBoard's smoothing loop, written out."""
    last, out = 0.0, []
    for i, v in enumerate(values):
        last = last * w + (1 - w) * v
        out.append(last / (1 - w ** (i + 1)))
    return out


def test_buffer_grows_by_doubling_and_keeps_float64():
    buf = SeriesBuffer(capacity=4)
    for i in range(1000):
        buf.append(i, i * 0.5)
    assert len(buf) == 1000 and buf.capacity == 1024
    assert buf.x.dtype == np.float64 and buf.y.dtype == np.float64
    np.testing.assert_array_equal(buf.y, np.arange(1000) * 0.5)
    buf.extend(np.arange(1000, 1100), np.zeros(100))
    assert len(buf) == 1100 and buf.capacity == 2048
    with pytest.raises(ValueError, match="lengths differ"):
        buf.extend([1, 2], [1])


def test_debiased_ema_matches_reference_and_continues_in_chunks():
    rng = np.random.default_rng(0)
    values = rng.normal(size=257)
    w = 0.8
    full = ema_debiased(values, w)
    np.testing.assert_allclose(full, reference_ema(list(values), w))
    assert full[0] == pytest.approx(values[0])  # debiased: the first point is not pulled to zero
    np.testing.assert_array_equal(ema_debiased(values, 0.0), values)
    with pytest.raises(ValueError, match="smoothing"):
        ema_debiased(values, 1.0)


def test_non_finite_values_do_not_poison_the_average():
    out = ema_debiased(np.array([1.0, np.nan, 1.0, np.inf, 1.0]), 0.5)
    assert np.all(np.isfinite(out))


def test_live_plot_coalesces_and_smooths_incrementally(qtbot):
    plot = LivePlot(smoothing=0.9)
    qtbot.addWidget(plot)
    plot.add_series("loss", "train loss")
    item = plot.getPlotItem()
    assert item.clipToViewMode() and item.downsampleMode()[1:] == (True, "peak")
    series = plot._series["loss"]
    rng = np.random.default_rng(1)
    values = rng.random(600)
    calls = {"n": 0}
    original = series.smooth.setData

    def counting_set_data(*args, **kwargs):
        calls["n"] += 1
        return original(*args, **kwargs)

    series.smooth.setData = counting_set_data
    for chunk in np.array_split(np.arange(600), 7):  # slots append; nothing is drawn yet
        for i in chunk:
            plot.append("loss", float(i), float(values[i]))
        if chunk[0] == 0:
            assert calls["n"] == 0
    qtbot.waitUntil(lambda: series.smooth.xData is not None and len(series.smooth.xData) == 600, timeout=2000)
    assert calls["n"] <= 2  # one setData per timer tick, not per point
    np.testing.assert_allclose(plot.smoothed("loss"), reference_ema(list(values), 0.9))
    # appending more continues the EMA exactly as a full recomputation would
    plot.extend("loss", np.arange(600, 650), np.ones(50))
    plot.flush()
    np.testing.assert_allclose(plot.smoothed("loss"), reference_ema([*values, *np.ones(50)], 0.9))
    # a new smoothing recomputes everything; 0 shows just the raw values
    plot.set_smoothing(0.0)
    plot.flush()
    np.testing.assert_allclose(plot.smoothed("loss"), [*values, *np.ones(50)])
    assert not series.raw.isVisible()


def test_live_plot_follows_the_theme(qtbot, qapp):
    manager = theme_manager()
    manager.apply("light")
    plot = LivePlot()
    qtbot.addWidget(plot)
    plot.add_series("a")
    plot.set_marker(3.0)
    assert plot.backgroundBrush().color().name() == LIGHT.plot_bg
    manager.apply("dark")
    try:
        assert plot.backgroundBrush().color().name() == DARK.plot_bg
        assert plot.getPlotItem().getAxis("left").pen().color().name() == DARK.plot_fg
        assert plot._series["a"].smooth.opts["pen"].color().name() == DARK.series[0]
        assert plot._marker is not None and plot._marker.value() == 3.0
    finally:
        manager.apply("light")
