"""Capture docs/screenshots/runs.png, runs_compare.png and playground.png (1280×800) from a store with runs.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshots/capture_runs_playground.py --db sqlite:///runs.db

Selects every finished run on the Runs page (curves tab, then the Table III tab) and, on the
Playground, the first run compared with the second on a held-out test session.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _shots import isolate_home, open_window, settle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True, help="store URL holding finished runs")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--test-row", type=int, default=7)
    args = parser.parse_args()
    isolate_home()
    window = open_window(args.db, "light")

    window.show_page("runs")
    runs = window.page("runs")
    finished = [i.id for i in runs.model.infos() if i.status == "finished"]
    runs.select_runs(finished)
    runs.curves.smoothing.setValue(30)
    settle()
    window.grab().save(str(args.out / "runs.png"))
    runs.tabs.setCurrentIndex(1)
    settle()
    window.grab().save(str(args.out / "runs_compare.png"))

    window.show_page("playground")
    play = window.page("playground")
    first, second = sorted(finished)[:2]
    play.run_combo.setCurrentIndex(play.run_combo.findData(first))
    settle(lambda: play.predictor is not None and play.predictor.run_id == first)
    play.compare_combo.setCurrentIndex(play.compare_combo.findData(second))
    settle(lambda: play.other is not None and play.is_idle())
    play.sample_test(row=args.test_row)
    settle(lambda: play.is_idle() and bool(play.results))
    play.search_edit.setText(play.session[-1][0])
    play._run_search()  # the page debounces typing by 150 ms
    settle()
    window.grab().save(str(args.out / "playground.png"))
    play.why_tabs.setCurrentIndex(2)
    settle()
    window.grab().save(str(args.out / "playground_gates.png"))
    print("saved to", args.out)


if __name__ == "__main__":
    main()
