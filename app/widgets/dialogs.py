"""Small dialogs shared by pages."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget


def error_box(parent: QWidget | None, title: str, text: str, details: str | None = None) -> QMessageBox:
    """A non-blocking error box; ``details`` (e.g. a worker traceback) goes behind 'Show Details…'."""
    box = QMessageBox(QMessageBox.Icon.Critical, title, text, QMessageBox.StandardButton.Ok, parent)
    if details:
        box.setDetailedText(details)
    box.setModal(True)
    box.open()
    return box
