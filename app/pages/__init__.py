"""Sidebar pages, in sidebar order (Ctrl+1 … Ctrl+6 follow this order).

Plug-in convention: one module per page, each defining one ``Page`` subclass (see ``base.Page``)
with a stable ``page_id``. To replace a placeholder, rewrite its module keeping the class name and
``page_id``; to add a page, add its class to ``PAGE_CLASSES``. The main window builds every page
once with the shared ``AppContext`` and never reaches into a page's widgets.
"""

from app.pages.base import Page, PlaceholderPage, card
from app.pages.datasets import DatasetsPage
from app.pages.help import HelpPage
from app.pages.leaderboard import LeaderboardPage
from app.pages.playground import PlaygroundPage
from app.pages.runs import RunsPage
from app.pages.settings import SettingsPage
from app.pages.train import TrainPage

PAGE_CLASSES: tuple[type[Page], ...] = (
    DatasetsPage, TrainPage, RunsPage, LeaderboardPage, PlaygroundPage, SettingsPage, HelpPage,
)

__all__ = [
    "PAGE_CLASSES",
    "DatasetsPage",
    "HelpPage",
    "LeaderboardPage",
    "Page",
    "PlaceholderPage",
    "PlaygroundPage",
    "RunsPage",
    "SettingsPage",
    "TrainPage",
    "card",
]
