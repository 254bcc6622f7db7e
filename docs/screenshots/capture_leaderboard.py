"""Capture docs/screenshots/leaderboard.png: the Leaderboard page after a real, short comparison.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshots/capture_leaderboard.py [--size 1280x900]

Uses a throwaway store (the user's data and settings stay untouched): a planted synthetic dataset of
1,000 sessions and four models with half a minute of tuning each, so the progress table, Table III and
its p-values are real (a short budget: the numbers show the page, not the models' standing, which
the README's measured tables give).
"""

from __future__ import annotations

from _shots import open_on_synthetic, settle, shot_parser


def main() -> None:
    parser = shot_parser(__doc__, "leaderboard.png", "1280x900")
    parser.add_argument("--models", default="S-POP,SKNN,STAMP,EMBSR")
    parser.add_argument("--minutes", type=int, default=2, help="tuning time of the whole comparison")
    args = parser.parse_args()
    window = open_on_synthetic(args, "planted 1,000", n_sessions=1000, n_items=300, n_categories=12, seed=0)
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
