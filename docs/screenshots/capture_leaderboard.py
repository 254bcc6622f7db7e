"""Capture docs/screenshots/leaderboard.png: the Leaderboard page after a real, short comparison.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshots/capture_leaderboard.py [--size 1280x900]

Uses a throwaway store (the user's data and settings stay untouched): a planted synthetic dataset of
1,000 sessions and four models with half a minute of tuning each, so the progress table, Table III and
its p-values are real (a short budget: the numbers show the page, not the models' standing, which
the README's measured tables give).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _shots import isolate_home, open_window, settle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "leaderboard.png")
    parser.add_argument("--size", default="1280x900", help="window size, WIDTHxHEIGHT")
    parser.add_argument("--theme", default="light", choices=("light", "dark"))
    parser.add_argument("--models", default="S-POP,SKNN,STAMP,EMBSR")
    parser.add_argument("--minutes", type=int, default=2, help="tuning time of the whole comparison")
    args = parser.parse_args()
    home = isolate_home()
    width, height = (int(v) for v in args.size.lower().split("x"))
    from embsr_core.data.demo import import_synthetic

    def add_data(context) -> None:
        import_synthetic(context.store, "planted 1,000", n_sessions=1000, n_items=300, n_categories=12, seed=0)

    window = open_window(f"sqlite:///{home}/shots.db", args.theme, (width, height), before=add_data)
    window.show_page("leaderboard")
    page = window.page("leaderboard")
    page.reload_datasets()
    page.set_models(args.models.split(","))
    page.minutes.setValue(args.minutes)
    page.epochs.setValue(5)
    page.patience.setValue(2)
    task = page.start()
    settle(lambda: task is not None and task.is_done(), timeout=1800)
    window.grab().save(str(args.out))
    window.context.runner.shutdown()
    print("saved", args.out, "-", page.status.text())


if __name__ == "__main__":
    main()
