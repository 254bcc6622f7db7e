"""Capture docs/screenshots/train.png: the Train page after a short real run on a synthetic dataset.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshots/capture_train.py [--size 1280x800] [--theme light]

Uses a throwaway store (the user's data and settings stay untouched) and trains a small EMBSR for a
few epochs, so the loss curve, the validation curves in percent and the log are real.
"""

from __future__ import annotations

from _shots import open_on_synthetic, settle, shot_parser


def main() -> None:
    parser = shot_parser(__doc__, "train.png", "1280x800")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    window = open_on_synthetic(args, "synthetic demo", n_sessions=600, n_items=80, n_categories=6, seed=3)
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
