"""Playground page (placeholder until the Playground of issue 7 lands)."""

from app.pages.base import PlaceholderPage


class PlaygroundPage(PlaceholderPage):
    page_id = "playground"
    title = "Playground"
    subtitle = "Build a session by hand and see what a trained model recommends, and why."
    icon_name = "playground"
    arrives_with = "the Playground (issue 7)"
    planned = (
        "Compose a session of items and operations",
        "Top-K recommendations from a checkpoint with explanations",
    )
