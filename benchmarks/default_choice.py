"""How a default was chosen: candidate settings compared on *validation* of planted data that no
reported table uses (generator seed 1; ``planted.py`` and the README's tables use seed 0), or on the
validation split of a real sample (``--dataset Diginetica``: that a default chosen on planted data
does not hurt real data).

    .venv/bin/python benchmarks/default_choice.py --candidates \
        "EMBSR" "EMBSR lr=0.003" "EMBSR amsgrad=true" "GC-SAN lr=0.003"

A candidate is a model name followed by ``key=value`` settings; a key of the training settings
(``lr``, ``amsgrad``, ``weight_decay``, …) goes to the trainer, any other key to the model. Every
candidate is trained with the CLI defaults otherwise (prefix training, the batch rule, up to
``--epochs`` epochs with the paper's early stopping) and scored on the validation split at its best
epoch, in the selection mode (target operation given), as the store keeps them. The trainer still
scores the test split at the end of each run; this script never reads or prints it: the choice must
not see it.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from table3 import DATASETS, add_dataset_row, load_dataset  # noqa: E402

from embsr_core import run_summary  # noqa: E402
from embsr_core.data.prepared import PreparedDataset, SplitArrays  # noqa: E402
from embsr_core.data.preprocess import prepare, preset  # noqa: E402
from embsr_core.data.synthetic import DEFAULT_SIGNAL, generate_synthetic  # noqa: E402
from embsr_core.models.registry import get_spec  # noqa: E402
from embsr_core.store import Store, open_store  # noqa: E402
from embsr_core.training.config import TrainConfig  # noqa: E402
from embsr_core.training.runner import run_training  # noqa: E402

TRAIN_KEYS = {f.name for f in fields(TrainConfig)}


def parse_candidate(text: str) -> tuple[str, dict[str, str], dict[str, str]]:
    model, *pairs = text.split()
    get_spec(model)  # an unknown model name fails here, before any training
    settings = dict(p.split("=", 1) for p in pairs)
    train = {k: v for k, v in settings.items() if k in TRAIN_KEYS}
    return model, train, {k: v for k, v in settings.items() if k not in TRAIN_KEYS}


def single_run_share(split: SplitArrays) -> float:
    """Share of sessions whose last macro-item has a single micro-behavior: there the whole run of the
    last item (``recent="run"``) tells no more than its last operation."""
    rows = np.arange(len(split.lengths))
    last = split.items[rows, split.lengths - 1]
    before = split.items[rows, np.maximum(split.lengths - 2, 0)]
    return float(np.mean((split.lengths == 1) | (before != last)))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--candidates", nargs="+", required=True)
    p.add_argument("--dataset", default="planted", choices=["planted", *(d for d in DATASETS if d != "Synthetic")],
                   help="planted data (generator seed --data-seed) or a real sample's validation split")
    p.add_argument("--sessions", type=int, default=5_000)
    p.add_argument("--signal", type=float, default=DEFAULT_SIGNAL)
    p.add_argument("--data-seed", type=int, default=1, help="generator seed (the reported tables use 0)")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    candidates = [parse_candidate(c) for c in args.candidates]
    if args.dataset == "planted":
        events = generate_synthetic(n_sessions=args.sessions, signal=args.signal, seed=args.data_seed)
        prepared = prepare(events, preset("synthetic"), dataset_name=f"planted seed {args.data_seed}")
        about = f"planted data seed {args.data_seed}, signal {args.signal}"
    else:
        prepared, about = load_dataset(args.dataset, 0), f"the {args.dataset} sample"
    print(f"# {about}: {len(prepared.train)} training samples, "
          f"{len(prepared.valid)} validation sessions ({100 * single_run_share(prepared.valid):.1f} % end with "
          f"one micro-behavior on the last item); up to {args.epochs} epochs, patience {args.patience}, "
          f"{args.threads} thread(s)", flush=True)
    print("| candidate | valid H@20 | valid M@20 | next op unknown: H@20 · M@20 | best epoch / epochs | minutes |")
    print("|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory(prefix="embsr-defaults-") as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'store.db'}")
        dataset_id = add_dataset_row(store, prepared)
        for text, (model, train, model_set) in zip(args.candidates, candidates, strict=True):
            _train_one(store, dataset_id, prepared, text, model, train, model_set, args, Path(tmp) / "ckpt")
        store.engine.dispose()


def _train_one(store: Store, dataset_id: int, prepared: PreparedDataset, text: str, model: str,
               train: dict[str, str], model_set: dict[str, str], args: argparse.Namespace, ckpt: Path) -> None:
    """Train one candidate and print its validation row (the stored metrics at its best epoch)."""
    cfg = TrainConfig.from_dict({"max_epochs": args.epochs, "patience": args.patience, "seed": args.seed,
                                 "threads": args.threads, **train})
    start = time.perf_counter()
    outcome = run_training(store, prepared, model, model_set or None, cfg, dataset_id=dataset_id,
                           checkpoint_root=ckpt, run_name=f"default choice: {text}")
    minutes = (time.perf_counter() - start) / 60
    if outcome.status != "finished" or outcome.best_epoch is None:
        print(f"| {text} | {outcome.status}: {outcome.error} | | | | {minutes:.1f} |", flush=True)
        return
    infos = run_summary.run_infos(store, [outcome.run_id])
    columns = [("hit", 20), ("mrr", 20)]
    ((hit, mrr),), _ = run_summary.summary_rows(store, infos, columns, "best", split="valid",
                                              target_op=cfg.train_target_op)  # the selection mode
    # the same best epoch read with the next operation hidden (what a model without the oracle serves)
    ((u_hit, u_mrr),), _ = run_summary.summary_rows(store, infos, columns, "best", split="valid",
                                                  target_op="unknown")
    unknown = "n/a" if math.isnan(u_hit) else f"{100 * u_hit:.2f} · {100 * u_mrr:.2f}"  # NaN: not evaluated
    print(f"| {text} | {100 * hit:.2f} | {100 * mrr:.2f} | {unknown} | {outcome.best_epoch} / "
          f"{outcome.epochs_done} | {minutes:.1f} |", flush=True)

if __name__ == "__main__":
    main()
