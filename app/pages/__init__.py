"""Sidebar pages, in sidebar order (Ctrl+1 … Ctrl+7 follow this order).

Plug-in convention: one module per page, each defining one ``Page`` subclass (see ``base.Page``)
with a stable ``page_id``. To add a page, add a :class:`PageEntry` to ``PAGES``; its id, title and
icon must be the class's own (tests/test_startup.py checks them).

The entries let the main window draw the sidebar without importing the pages: a page module pulls
in pandas, pyqtgraph, optuna or PyTorch, so each is imported and built the first time it is shown
(the window then opens in a fraction of the time). ``PAGE_CLASSES`` and the class names below still
work; reading them imports every page.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.pages.base import Page, PlaceholderPage, card


@dataclass(frozen=True)
class PageEntry:
    """What the sidebar and the menus show of a page before it is loaded, and where its class lives."""

    page_id: str
    title: str
    icon_name: str
    module: str
    class_name: str
    loads_torch: bool = False  # building it imports PyTorch: restored after the window is on screen

    def load(self) -> type[Page]:
        cls = getattr(importlib.import_module(self.module), self.class_name)
        if not (isinstance(cls, type) and issubclass(cls, Page)) or cls.page_id != self.page_id:
            raise TypeError(f"{self.module}.{self.class_name} is not the Page with id {self.page_id!r}")
        return cls


PAGES: tuple[PageEntry, ...] = (
    PageEntry("datasets", "Datasets", "datasets", "app.pages.datasets", "DatasetsPage"),
    PageEntry("train", "Train", "train", "app.pages.train", "TrainPage", loads_torch=True),
    PageEntry("runs", "Runs", "runs", "app.pages.runs", "RunsPage"),
    PageEntry("leaderboard", "Leaderboard", "leaderboard", "app.pages.leaderboard", "LeaderboardPage",
              loads_torch=True),
    PageEntry("playground", "Playground", "playground", "app.pages.playground", "PlaygroundPage"),
    PageEntry("settings", "Settings", "settings", "app.pages.settings", "SettingsPage", loads_torch=True),
    PageEntry("help", "Help", "info", "app.pages.help", "HelpPage"),
)
_BY_CLASS_NAME = {entry.class_name: entry for entry in PAGES}


def __getattr__(name: str) -> Any:  # PEP 562: the page classes load on first use
    if name == "PAGE_CLASSES":
        return tuple(entry.load() for entry in PAGES)
    entry = _BY_CLASS_NAME.get(name)
    if entry is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return entry.load()


if TYPE_CHECKING:
    from app.pages.datasets import DatasetsPage
    from app.pages.help import HelpPage
    from app.pages.leaderboard import LeaderboardPage
    from app.pages.playground import PlaygroundPage
    from app.pages.runs import RunsPage
    from app.pages.settings import SettingsPage
    from app.pages.train import TrainPage

    PAGE_CLASSES: tuple[type[Page], ...]

__all__ = [
    "PAGES",
    "PAGE_CLASSES",
    "DatasetsPage",
    "HelpPage",
    "LeaderboardPage",
    "Page",
    "PageEntry",
    "PlaceholderPage",
    "PlaygroundPage",
    "RunsPage",
    "SettingsPage",
    "TrainPage",
    "card",
]
