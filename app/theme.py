"""Light and dark themes: one QSS template filled from a palette, a QPalette, and pyqtgraph styling.

Pages and plots follow theme changes by connecting a bound slot to ``theme_manager().changed``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import pyqtgraph as pg
from PySide6.QtCore import QObject, QSize, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from app.resources import read_text, resource_path, resources_dir

THEMES = ("light", "dark")
QSS_FILE = ("style", "app.qss")


@dataclass(frozen=True)
class Palette:
    """Colours of one theme; every field is a ``@name`` token in resources/style/app.qss."""

    name: str
    window: str
    surface: str
    sidebar: str
    sidebar_text: str
    sidebar_hover: str
    sidebar_selected: str
    border: str
    text: str
    text_muted: str
    accent: str
    accent_text: str
    input_bg: str
    selection: str
    danger: str
    plot_bg: str
    plot_fg: str
    plot_grid_alpha: float
    series: tuple[str, ...]

    def series_color(self, index: int) -> str:
        return self.series[index % len(self.series)]


LIGHT = Palette(
    name="light",
    window="#f5f6f8",
    surface="#ffffff",
    sidebar="#eceef2",
    sidebar_text="#3b4250",
    sidebar_hover="#dfe3ea",
    sidebar_selected="#ffffff",
    border="#d5d9e0",
    text="#1d2330",
    text_muted="#677083",
    accent="#2f6fdf",
    accent_text="#ffffff",
    input_bg="#ffffff",
    selection="#cfe0fb",
    danger="#c8372d",
    plot_bg="#ffffff",
    plot_fg="#3b4250",
    plot_grid_alpha=0.25,
    series=("#2f6fdf", "#e0702f", "#2a9d6f", "#b0409b", "#8a6d1f", "#4c5bd4"),
)

DARK = Palette(
    name="dark",
    window="#1c1f26",
    surface="#23272f",
    sidebar="#16181d",
    sidebar_text="#b8bfcc",
    sidebar_hover="#262a33",
    sidebar_selected="#2d323d",
    border="#353a45",
    text="#e3e6ec",
    text_muted="#8d95a5",
    accent="#5b93f0",
    accent_text="#0f1217",
    input_bg="#1a1d23",
    selection="#2c4a7a",
    danger="#f06a5f",
    plot_bg="#1a1d23",
    plot_fg="#b8bfcc",
    plot_grid_alpha=0.2,
    series=("#6aa1ff", "#ff9b5c", "#4fd1a0", "#e07ad0", "#e6c35c", "#9aa5ff"),
)

PALETTES: dict[str, Palette] = {"light": LIGHT, "dark": DARK}

_TOKEN = re.compile(r"@([a-z_]+)")
_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)


def render_qss(template: str, palette: Palette, source: str = "app.qss") -> str:
    """Replace ``@token`` with palette values (``@name`` is the theme name, ``@icons`` the icon folder);
    an unknown token is an error naming line and column."""
    values = {k: v for k, v in asdict(palette).items() if isinstance(v, str)}
    values["icons"] = resources_dir().joinpath("icons").as_posix()
    # blank out comments but keep their newlines, so reported line numbers stay true
    template = _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), template)

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            line = template.count("\n", 0, match.start()) + 1
            column = match.start() - (template.rfind("\n", 0, match.start()) + 1) + 1
            raise ValueError(f"{source}:{line}:{column}: unknown colour token @{key}; expected one of {sorted(values)}")
        return values[key]

    return _TOKEN.sub(substitute, template)


def qpalette(p: Palette) -> QPalette:
    """A QPalette matching the style sheet, so widgets the QSS does not cover still fit the theme."""
    pal = QPalette()
    role = QPalette.ColorRole
    pairs = {
        role.Window: p.window,
        role.WindowText: p.text,
        role.Base: p.input_bg,
        role.AlternateBase: p.window,
        role.ToolTipBase: p.surface,
        role.ToolTipText: p.text,
        role.PlaceholderText: p.text_muted,
        role.Text: p.text,
        role.Button: p.surface,
        role.ButtonText: p.text,
        role.BrightText: p.danger,
        role.Highlight: p.accent,
        role.HighlightedText: p.accent_text,
        role.Link: p.accent,
        role.Mid: p.border,
        role.Midlight: p.border,
        role.Dark: p.border,
    }
    for r, color in pairs.items():
        pal.setColor(r, QColor(color))
    disabled = QPalette.ColorGroup.Disabled
    for r in (role.WindowText, role.Text, role.ButtonText):
        pal.setColor(disabled, r, QColor(p.text_muted))
    return pal


def style_plot(plot: pg.PlotWidget | pg.PlotItem, p: Palette) -> None:
    """Restyle an existing pyqtgraph plot (background, axes, grid, title/legend text)."""
    item = plot.getPlotItem() if isinstance(plot, pg.PlotWidget) else plot
    if isinstance(plot, pg.PlotWidget):
        plot.setBackground(p.plot_bg)
    pen = pg.mkPen(p.plot_fg)
    for name in ("left", "bottom", "right", "top"):
        axis = item.getAxis(name)
        axis.setPen(pen)
        axis.setTextPen(pen)
    item.showGrid(x=True, y=True, alpha=p.plot_grid_alpha)
    if item.titleLabel is not None and item.titleLabel.text:
        item.setTitle(item.titleLabel.text, color=p.plot_fg)
    if item.legend is not None:
        item.legend.setLabelTextColor(p.plot_fg)
        item.legend.setBrush(pg.mkBrush(QColor(p.plot_bg)))


class SteadyPlotWidget(pg.PlotWidget):
    """A PlotWidget whose size hint does not follow its current size.

    QGraphicsView's size hint is its scene rect, which pyqtgraph keeps equal to the widget's size. In a
    page whose height follows the preferred heights (a scroll area honouring height-for-width), every
    relayout — each theme change restyles every widget — made the plots, and so the page, taller
    (the Train page's queue and log ended below the window after two theme toggles).
    """

    SIZE_HINT = QSize(320, 160)  # plots stretch: the hint only has to be modest

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return self.SIZE_HINT


class ThemeManager(QObject):
    """Owns the current theme; ``changed`` carries the theme name after it was applied."""

    changed = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self._palette = LIGHT
        self._applied_to: QApplication | None = None

    @property
    def name(self) -> str:
        return self._palette.name

    @property
    def palette(self) -> Palette:
        return self._palette

    def apply(self, name: str) -> None:
        """Apply a theme to the running QApplication and to pyqtgraph defaults, then emit ``changed``."""
        if name not in PALETTES:
            raise ValueError(f"unknown theme {name!r}; expected one of {', '.join(THEMES)}")
        palette = PALETTES[name]
        app = QApplication.instance()
        if not isinstance(app, QApplication):
            raise RuntimeError("ThemeManager.apply needs a QApplication")
        if app is self._applied_to and palette is self._palette:
            return  # restyling every widget is not free; nothing would change
        template = read_text(*QSS_FILE)
        qss = render_qss(template, palette, str(resource_path(*QSS_FILE)))
        app.setStyle("Fusion")
        app.setPalette(qpalette(palette))
        app.setStyleSheet(qss)
        pg.setConfigOptions(background=palette.plot_bg, foreground=palette.plot_fg, antialias=True)
        self._palette = palette
        self._applied_to = app
        self.changed.emit(name)


_manager: ThemeManager | None = None


def theme_manager() -> ThemeManager:
    """The process-wide theme manager (created on first use, lives in the GUI thread)."""
    global _manager
    if _manager is None:
        _manager = ThemeManager()
    return _manager
