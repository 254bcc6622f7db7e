"""Render the app's SVG icon to hicolor PNG sizes with Qt offscreen (no Inkscape/rsvg needed).

Usage: python packaging/linux/render_icons.py SVG OUT_DIR  ->  OUT_DIR/<N>x<N>/apps/embsr-workbench.png
Run at build time so the PNGs never drift from the SVG (resources/icons/embsr.svg).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SIZES = (32, 48, 64, 128, 256)
ICON_NAME = "embsr-workbench"


def render(svg: Path, out_dir: Path, sizes: tuple[int, ...] = SIZES) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841  (QPainter needs one)
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not a valid SVG (Qt could not parse it)")
    written = []
    for size in sizes:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter, QRectF(0, 0, size, size))
        painter.end()
        target = out_dir / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(target), "PNG"):
            raise SystemExit(f"{target}: Qt could not write the PNG")
        written.append(target)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    for path in render(Path(sys.argv[1]), Path(sys.argv[2])):
        print(f"icon: {path}")
