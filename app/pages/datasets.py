"""Datasets page (placeholder until the Datasets page of issue 6 lands)."""

from app.pages.base import PlaceholderPage


class DatasetsPage(PlaceholderPage):
    page_id = "datasets"
    title = "Datasets"
    subtitle = "Import micro-behavior logs, generate synthetic data and inspect what is in the store."
    icon_name = "datasets"
    arrives_with = "issue 6 (workbench, part 1)"
    planned = (
        "Table of datasets with sessions, items, operations and micro-behaviors",
        "Import wizard with format detection, column mapping and a live preview",
        "Statistics: operation distribution and session-length histogram",
    )
