"""Every text a user can read on a widget (labels, buttons, tooltips, placeholders, combo items,
table headers), to check it speaks to an analyst rather than to the command line."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QComboBox, QLineEdit, QWidget

CLI_SPEAK = re.compile(r"(^|[\s(`'\"])--[a-z]|\bembsr [a-z]+\b|`")


def visible_texts(root: QWidget) -> list[str]:
    texts: list[str] = []
    for widget in [root, *root.findChildren(QWidget)]:
        for getter in ("text", "toolTip", "placeholderText", "windowTitle"):
            value = getattr(widget, getter, None)
            if callable(value):
                try:
                    text = value()
                except TypeError:  # text(int) of some item views
                    continue
                if isinstance(text, str) and text:
                    texts.append(text)
        if isinstance(widget, QComboBox):
            texts += [widget.itemText(i) for i in range(widget.count())]
            texts += [str(widget.itemData(i, Qt.ItemDataRole.ToolTipRole) or "") for i in range(widget.count())]
        if isinstance(widget, QAbstractItemView) and widget.model() is not None:
            model = widget.model()
            texts += [str(model.headerData(c, Qt.Orientation.Horizontal) or "") for c in range(model.columnCount())]
        if isinstance(widget, QLineEdit):
            texts.append(widget.placeholderText())
    return [t for t in texts if t]


def cli_speak(root: QWidget) -> list[str]:
    """Texts that name command-line flags or commands (``--name``, ``embsr datasets delete``, backticks)."""
    return [t for t in visible_texts(root) if CLI_SPEAK.search(t)]
