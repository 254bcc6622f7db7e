"""How high can *any* model score on the planted test sessions? The Bayes-optimal ranking.

    .venv/bin/python benchmarks/planted_ceiling.py                       # 5,000 sessions, default signal
    .venv/bin/python benchmarks/planted_ceiling.py --sessions 20000 --signal 0

The planted generator is a hidden Markov model whose next item follows from a per-item intent
(shown by the operations with probability ``signal``), the category relations and a pending
*anchor*; ``embsr_core.data.planted_law`` knows it exactly (the catalogue rebuilt from the same
seed) and gives every test session's exact predictive law. Ranking by that probability maximises
the expected H@K and M@K, so the printed numbers are the ceiling of every model on these test
sessions; a model only knows what 5,000 sessions teach it. The test sessions, their targets and the
metric (pessimistic ties, all items ranked) are the project's, from the same ``prepare`` call as
``planted.py``.

The filter reads each session's *raw* history (the generator's frame, before items of support < 5
are dropped), which holds at least what the model sees; the ranking is restricted to the items the
models rank. With ``--models`` the script also trains those models (CLI defaults) and prints their
H@20 · M@20 beside the ceiling per group of sessions (the intent the last item's operations show;
the target new or already in the session): where a model loses against the best possible. Nothing
here feeds a default or a model.

    .venv/bin/python benchmarks/planted_ceiling.py --split valid --data-seed 1 --models EMBSR SGNN-Self
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import add_dataset_row, throwaway_store  # noqa: E402
from default_choice import parse_candidate  # noqa: E402

from embsr_core.data import synthetic as gen  # noqa: E402
from embsr_core.data.planted_law import NextItemLaw, planted_catalogue, raw_macros  # noqa: E402
from embsr_core.data.prepared import PreparedDataset, SplitArrays  # noqa: E402
from embsr_core.data.preprocess import prepare, preset  # noqa: E402
from embsr_core.data.synthetic import DEFAULT_SIGNAL, generate_synthetic  # noqa: E402
from embsr_core.store import runs_repo  # noqa: E402
from embsr_core.training.checkpoints import model_from_checkpoint  # noqa: E402
from embsr_core.training.config import TrainConfig  # noqa: E402
from embsr_core.training.metrics import compute_ranks, metrics_from_ranks, target_ranks  # noqa: E402
from embsr_core.training.runner import run_training  # noqa: E402

N_ITEMS, N_CATEGORIES = 2_000, 40  # generate_synthetic's defaults, which planted.py uses
TEMPLATE_INTENT = {t: k for k, group in enumerate(gen.TEMPLATES) for t in group}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=5_000)
    p.add_argument("--signal", type=float, default=DEFAULT_SIGNAL)
    p.add_argument("--data-seed", type=int, default=0, help="generator seed (planted.py's tables use 0)")
    p.add_argument("--split", default="test", choices=["valid", "test"])
    p.add_argument("--models", nargs="*", default=[], metavar="MODEL",
                   help="also train these (CLI defaults, seed --seed) and compare them with the ceiling, by group")
    p.add_argument("--seed", type=int, default=0, help="training seed of --models")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def ceiling(prepared: PreparedDataset, split: SplitArrays, events, law: NextItemLaw) -> tuple[np.ndarray, list[str]]:
    """The law's probabilities (N×(n_items+1), column 0 padding) and each session's group.

    The group names what decides the target: the intent the last macro-item's operations show
    (browse, study, cart, impulse, order) and whether the target is already in the session.
    """
    sessions = raw_macros(events)
    raw_of_dense = np.array([int(x) - 1 for x in prepared.vocab.item_ids[1:]])  # dense id 1..n → raw index
    known_items = set(raw_of_dense.tolist())
    scores = np.zeros((len(split), prepared.n_items + 1), dtype=np.float64)
    groups = []
    for row, sid in enumerate(split.session_ids):
        macros = sessions[str(sid)]
        # the prepared target: the last run of known macro-items of one item (dropped items between merge)
        known = [k for k, (v, _) in enumerate(macros) if v in known_items]
        last = len(known) - 1
        while last > 0 and macros[known[last - 1]][0] == macros[known[last]][0]:
            last -= 1
        cut = known[last]
        if macros[cut][0] != raw_of_dense[split.targets[row] - 1]:
            raise AssertionError(f"session {sid}: the prepared target is not its last known macro-item")
        scores[row, 1:] = law.predict(macros[:cut])[raw_of_dense]
        shown = gen.INTENT_NAMES[TEMPLATE_INTENT[macros[cut - 1][1]]]
        repeat = any(v == macros[cut][0] for v, _ in macros[:cut])
        groups.append(f"{shown}, {'target in the session' if repeat else 'new item'}")
    return scores, groups


def trained_ranks(prepared: PreparedDataset, split_name: str, model: str, args: argparse.Namespace) -> np.ndarray:
    """Target ranks of ``model`` trained with the CLI defaults, at its best epoch (target op given)."""
    name, train, overrides = parse_candidate(model)  # "EMBSR lr=0.003 repeat=off", as default_choice.py reads it
    cfg = TrainConfig.from_dict({"max_epochs": args.epochs, "patience": args.patience, "seed": args.seed,
                                 "threads": args.threads, **train})
    with throwaway_store("embsr-ceiling-") as (store, ckpt):
        outcome = run_training(store, prepared, name, overrides or None, cfg,
                               dataset_id=add_dataset_row(store, prepared),
                               checkpoint_root=ckpt, run_name=f"ceiling: {model}")
        _, path, sha = runs_repo.run_checkpoint(store, outcome.run_id)
        net, _ = model_from_checkpoint(path, sha)
        return compute_ranks(net, prepared.split(split_name), "oracle", device=torch.device("cpu"))


def _cells(ranks: np.ndarray) -> str:
    m = metrics_from_ranks(ranks, ks=(20,))
    return f"{100 * m['hit@20']:.1f} · {100 * m['mrr@20']:.1f}"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    events = generate_synthetic(n_sessions=args.sessions, signal=args.signal, seed=args.data_seed)
    prepared = prepare(events, preset("synthetic"), dataset_name=f"planted seed {args.data_seed}")
    split = prepared.split(args.split)
    law = NextItemLaw(planted_catalogue(N_ITEMS, N_CATEGORIES, args.data_seed), args.signal)
    scores, groups = ceiling(prepared, split, events, law)
    with np.errstate(divide="ignore"):
        log_scores = torch.from_numpy(np.log(scores))  # log: float32 keeps tiny probabilities apart
    ranks = {"ceiling": target_ranks(log_scores, torch.from_numpy(split.targets)).numpy()}
    m = metrics_from_ranks(ranks["ceiling"], ks=(10, 20))
    print(f"# planted {args.sessions} sessions, signal {args.signal}, generator seed {args.data_seed}: "
          f"{len(split)} {args.split} sessions")
    # self-check: if the law is the generator's, the H@20 it expects of itself is the one it measures
    expected = float(np.sort(scores[:, 1:], axis=1)[:, -20:].sum(axis=1).mean())
    print(f"# the law's own expectation of its H@20: {100 * expected:.2f} (they agree within sampling noise, "
          f"± {100 * 2 * np.sqrt(expected * (1 - expected) / len(split)):.2f}, if the law is exact)")
    print("| ranking | H@20 | M@20 | H@10 | M@10 |")
    print("|---|---|---|---|---|")
    print("| Bayes-optimal (the generator known) | "
          + " | ".join(f"{100 * m[k]:.2f}" for k in ("hit@20", "mrr@20", "hit@10", "mrr@10")) + " |", flush=True)
    for model in args.models:
        ranks[model] = trained_ranks(prepared, args.split, model, args)
    if not args.models:
        return
    print(f"\n# by group, H@20 · M@20 (training seed {args.seed}); the group is the intent the last item's "
          "operations show")
    print("| group | sessions | " + " | ".join(ranks) + " |")
    print("|---|---|" + "---|" * len(ranks))
    g = np.array(groups)
    for key in ["all", *sorted(set(groups), key=lambda k: -int((g == k).sum()))]:
        sel = np.ones(len(g), bool) if key == "all" else g == key
        print(f"| {key} | {int(sel.sum())} | " + " | ".join(_cells(r[sel]) for r in ranks.values()) + " |")


if __name__ == "__main__":
    main()
