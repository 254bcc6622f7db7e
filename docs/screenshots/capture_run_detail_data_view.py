"""Capture docs/screenshots/run_detail.png, datasets.png and data_view.png (1280×800) from a store with runs.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshots/capture_run_detail_data_view.py \
        --db sqlite:///runs.db --run 1 --dataset "Demo (synthetic)" --tab 0

run_detail.png: the run detail window of ``--run`` (``--tab``: 0 settings, 1 training log, …).
datasets.png and data_view.png: the Datasets page on ``--dataset``, its charts and its
micro-behavior view. ``--theme dark`` captures the dark theme (``*_dark.png``). The status bar
names only the store's file, so no folder of this machine shows in the pictures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _shots import isolate_home, open_window, settle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True, help="store URL holding runs and datasets")
    parser.add_argument("--run", type=int, required=True, help="run shown in run_detail.png")
    parser.add_argument("--dataset", required=True, help="dataset shown in data_view.png")
    parser.add_argument("--tab", type=int, default=1, help="run detail tab (0 settings, 1 log, 2 curves, …)")
    parser.add_argument("--theme", choices=("light", "dark"), default="light")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    isolate_home()
    from app.main_window import DEFAULT_SIZE
    from embsr_core.store.repository import get_dataset

    window = open_window(args.db, args.theme)
    context = window.context

    suffix = "" if args.theme == "light" else "_dark"
    window.show_page("runs")
    runs = window.page("runs")
    runs.select_runs([args.run])
    detail = runs.open_details(args.run)
    detail.resize(DEFAULT_SIZE)
    detail.tabs.setCurrentIndex(args.tab)
    settle()
    detail.grab().save(str(args.out / f"run_detail{suffix}.png"))
    detail.close()

    window.show_page("datasets")
    datasets = window.page("datasets")
    datasets.select(get_dataset(context.store, args.dataset).id)
    settle(lambda: datasets.overview() is not None)
    window.grab().save(str(args.out / f"datasets{suffix}.png"))
    datasets.views.setCurrentIndex(1)
    settle(lambda: datasets.browser.page is not None)
    window.grab().save(str(args.out / f"data_view{suffix}.png"))
    print("saved to", args.out)


if __name__ == "__main__":
    main()
