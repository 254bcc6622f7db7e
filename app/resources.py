"""Locate files under ``resources/`` from a source checkout, an installed wheel or a PyInstaller bundle.

PyInstaller unpacks data files under ``sys._MEIPASS``; the packaging spec must add the folder as
``("resources", "resources")``. Everywhere else the folder sits next to the ``app`` package.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QIcon, QImage, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer


def resources_dir() -> Path:
    """The folder holding icons/ and style/ (frozen: inside the bundle; source: the repo root)."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root is not None:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    """Path of a resource file; raises FileNotFoundError naming the full path when it is missing."""
    path = resources_dir().joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"missing resource file: {path}")
    return path


def read_text(*parts: str) -> str:
    return resource_path(*parts).read_text(encoding="utf-8")


@lru_cache(maxsize=128)
def _svg_bytes(name: str, color: str) -> bytes:
    # Qt's SVG renderer ignores CSS currentColor, so the icons use it as a placeholder we fill per theme.
    text = read_text("icons", f"{name}.svg").replace("currentColor", color)
    return text.encode("utf-8")


def svg_pixmap(name: str, size: int, color: str = "#000000", device_pixel_ratio: float = 1.0) -> QPixmap:
    """Render ``resources/icons/<name>.svg`` at ``size`` logical pixels in ``color``."""
    renderer = QSvgRenderer(QByteArray(_svg_bytes(name, color)))
    if not renderer.isValid():
        raise ValueError(f"invalid SVG: {resource_path('icons', name + '.svg')}")
    px = max(1, round(size * device_pixel_ratio))
    image = QImage(px, px, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, px, px))
    painter.end()
    pixmap = QPixmap.fromImage(image)
    pixmap.setDevicePixelRatio(device_pixel_ratio)
    return pixmap


def icon(name: str, color: str = "#000000", active_color: str | None = None) -> QIcon:
    """A themed icon; ``active_color`` is used for the selected/active state (e.g. the sidebar)."""
    result = QIcon()
    for size in (16, 20, 24, 32, 48):
        result.addPixmap(svg_pixmap(name, size, color), QIcon.Mode.Normal, QIcon.State.Off)
        if active_color is not None:
            selected = svg_pixmap(name, size, active_color)
            result.addPixmap(selected, QIcon.Mode.Selected, QIcon.State.Off)
            result.addPixmap(selected, QIcon.Mode.Active, QIcon.State.Off)
    return result


def app_icon() -> QIcon:
    """The application icon, from the original multi-colour SVG."""
    return QIcon(str(resource_path("icons", "embsr.svg")))
