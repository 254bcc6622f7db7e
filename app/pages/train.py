"""Train page (placeholder until the Train page of issue 6 lands)."""

from app.pages.base import PlaceholderPage


class TrainPage(PlaceholderPage):
    page_id = "train"
    title = "Train"
    subtitle = "Train EMBSR, its ablations and baselines on a dataset, with live curves."
    icon_name = "train"
    arrives_with = "issue 6 (workbench, part 1)"
    planned = (
        "Dataset, preprocessing preset, model and hyperparameter form from the model registry",
        "Start, Pause/Resume and Stop; queued runs, one at a time per device",
        "Live loss and validation H@K / M@K curves with smoothing",
    )
