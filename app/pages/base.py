"""The page plug-in contract: a QWidget subclass with an id, a title, an icon and three hooks."""

from __future__ import annotations

from typing import ClassVar

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from app.context import AppContext


class Page(QWidget):
    """Base class of every sidebar page.

    Subclasses set ``page_id`` (stable: stored in QSettings as the last page), ``title``,
    ``icon_name`` (``resources/icons/<icon_name>.svg``) and ``subtitle``, then add their widgets to
    ``self.body`` (a QVBoxLayout under the header). Hooks: ``on_shown()`` each time the page becomes
    current, ``refresh()`` when store contents changed elsewhere, ``can_close()`` before the window
    closes (return False to keep it open, e.g. while a run is active).
    """

    page_id: ClassVar[str] = ""
    title: ClassVar[str] = ""
    subtitle: ClassVar[str] = ""
    icon_name: ClassVar[str] = ""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setObjectName(f"Page_{self.page_id}")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(32, 26, 32, 24)
        outer.setSpacing(6)
        title = QLabel(self.title, self)
        title.setObjectName("PageTitle")
        outer.addWidget(title)
        if self.subtitle:
            sub = QLabel(self.subtitle, self)
            sub.setObjectName("PageSubtitle")
            sub.setWordWrap(True)
            outer.addWidget(sub)
        outer.addSpacing(14)
        self.body = QVBoxLayout()
        self.body.setSpacing(14)
        outer.addLayout(self.body, 1)

    def on_shown(self) -> None:
        """Called each time the page becomes the current one."""

    def refresh(self) -> None:
        """Called when the store changed elsewhere (e.g. the demo dataset was generated)."""

    def can_close(self) -> bool:
        return True


def card(parent: QWidget, title: str = "") -> tuple[QFrame, QVBoxLayout]:
    """A rounded panel (``#Card`` in the style sheet) with an optional title; returns (frame, layout)."""
    frame = QFrame(parent)
    frame.setObjectName("Card")
    layout = QVBoxLayout(frame)
    layout.setContentsMargins(18, 14, 18, 16)
    layout.setSpacing(8)
    if title:
        label = QLabel(title, frame)
        label.setObjectName("CardTitle")
        layout.addWidget(label)
    return frame, layout


class PlaceholderPage(Page):
    """A page whose real content arrives with a later issue; says so instead of looking broken."""

    arrives_with: ClassVar[str] = ""
    planned: ClassVar[tuple[str, ...]] = ()

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        frame, layout = card(self, "Coming soon")
        note = QLabel(f"The full {self.title} page arrives with {self.arrives_with}. Planned:", frame)
        note.setObjectName("PlaceholderNote")
        note.setWordWrap(True)
        layout.addWidget(note)
        if self.planned:
            items = "".join(f"<li style='margin-bottom:5px'>{line}</li>" for line in self.planned)
            planned = QLabel(f"<ul style='margin-left:-20px'>{items}</ul>", frame)
            planned.setObjectName("Muted")
            planned.setTextFormat(Qt.TextFormat.RichText)
            planned.setWordWrap(True)
            layout.addWidget(planned)
        self.body.addWidget(frame)
        self.body.addStretch(1)
