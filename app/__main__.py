"""Entry point: ``python -m app`` / ``embsr-workbench`` (``--smoke`` for CI and packaging)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from PySide6.QtCore import QTimer

from app.main_window import DEFAULT_SIZE, MainWindow
from app.theme import THEMES


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="embsr-workbench", description="EMBSR Workbench (desktop app)")
    parser.add_argument(
        "--db",
        metavar="URL",
        help="store URL (default: $EMBSR_DB_URL, Settings, or the embedded SQLite file in the user data directory)",
    )
    parser.add_argument("--theme", choices=THEMES, help="theme for this session (not saved)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="open the window (offscreen if no platform is set), render every page, exit 0",
    )
    parser.add_argument(
        "--screenshots", metavar="DIR", type=Path, help="with --smoke: save a 1280x800 PNG of each page into DIR"
    )
    args = parser.parse_args(argv)
    if args.screenshots is not None and not args.smoke:
        parser.error("--screenshots needs --smoke")
    return args


def smoke(window: MainWindow, screenshots: Path | None) -> int:
    """Render every page; returns 0 when each grab produced an image, 1 otherwise."""
    from PySide6.QtWidgets import QApplication

    window.resize(DEFAULT_SIZE)
    window.show()
    failures = []
    if screenshots is not None:
        screenshots.mkdir(parents=True, exist_ok=True)
    for page_id in window.page_ids():
        window.show_page(page_id)
        QApplication.processEvents()
        pixmap = window.grab()
        if pixmap.isNull() or pixmap.width() == 0:
            failures.append(page_id)
            continue
        if screenshots is not None:
            target = screenshots / f"{page_id}.png"
            if not pixmap.save(str(target)):
                failures.append(page_id)
        print(f"smoke: rendered {page_id} ({pixmap.width()}x{pixmap.height()})")
    if failures:
        print(f"smoke: failed to render {', '.join(failures)}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.smoke:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from app.application import create_context, ensure_application

    app = ensure_application()
    context = create_context(args.db, args.theme)
    window = MainWindow(context, persist=not args.smoke)
    try:
        if args.smoke:
            code = smoke(window, args.screenshots)
            window.close()
            return code
        window.show()
        QTimer.singleShot(0, window.offer_demo_dataset_if_empty)
        return app.exec()
    finally:
        context.runner.shutdown()
        if context.store is not None:
            context.store.dispose()


if __name__ == "__main__":
    sys.exit(main())
