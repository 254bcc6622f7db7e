"""Capture docs/screenshots/train.png: the Train page after a short real run on a synthetic dataset.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshots/capture_train.py [--size 1280x800] [--theme light]

Uses a throwaway store (the user's data and settings stay untouched) and trains a small EMBSR for a
few epochs, so the loss curve, the validation curves in percent and the log are real.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _shots import isolate_home, open_window, settle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "train.png")
    parser.add_argument("--size", default="1280x800", help="window size, WIDTHxHEIGHT")
    parser.add_argument("--theme", default="light", choices=("light", "dark"))
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    home = isolate_home()
    width, height = (int(v) for v in args.size.lower().split("x"))
    from embsr_core.data.demo import import_synthetic

    def add_data(context) -> None:
        import_synthetic(context.store, "synthetic demo", n_sessions=600, n_items=80, n_categories=6, seed=3)

    window = open_window(f"sqlite:///{home}/shots.db", args.theme, (width, height), before=add_data)
    context = window.context
    window.show_page("train")
    page = window.page("train")
    page.select_model("EMBSR")
    page.model_form.set_values({"embedding_dim": 32})
    page.train_form.set_values({"max_epochs": args.epochs, "batch_size": 32, "device": "cpu"})
    page.run_name.setText("first look")
    ended: list[object] = []
    page.runEnded.connect(ended.append)
    page.start()
    settle(lambda: bool(ended), timeout=600)
    window.grab().save(str(args.out))
    context.runner.shutdown()
    print("saved", args.out)


if __name__ == "__main__":
    main()
