"""Runs page (placeholder until the Runs page of issue 7 lands)."""

from app.pages.base import PlaceholderPage


class RunsPage(PlaceholderPage):
    page_id = "runs"
    title = "Runs"
    subtitle = "Compare finished runs, test significance and export reports."
    icon_name = "runs"
    arrives_with = "the Runs page (issue 7)"
    planned = (
        "Run table with hyperparameters and best / last metrics",
        "Overlaid curves of several runs, significance tests",
        "CSV and HTML reports",
    )
