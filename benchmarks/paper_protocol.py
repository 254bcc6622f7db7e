"""The paper's protocol: EMBSR, its ablations and variants, best-validation-epoch test metrics.

    .venv/bin/python benchmarks/paper_protocol.py --json paper_protocol.json     # the full run
    .venv/bin/python benchmarks/paper_protocol.py --seeds 1 --epochs 1 --datasets Trivago --models EMBSR  # smoke
    .venv/bin/python benchmarks/paper_protocol.py --datasets Synthetic --synthetic-sessions 5000 \\
        --models EMBSR EMBSR:star_gate=sigmoid SGNN-Self SGNN-Self:tokens=micro     # variants on planted data

A model may be given as ``NAME:key=value,key=value`` (a registered model with those hyperparameters),
so fidelity switches and default changes are measured by the same protocol. Every run also reports
its *validation* H@20 / M@20 at the best epoch: changes to defaults are decided on validation, not
on test. Prefix training and the data-size batch rule are on (the CLI defaults) unless
``--no-augment`` / ``--batch-size`` are given.

For each dataset (``Appliances`` = the JD Appliances sample, preset ``sample``; ``Trivago`` = the
100k-row Trivago sample, preset ``trivago``: the same as ``table3.py``), each model (EMBSR and the
ablations EMBSR-NS, EMBSR-NG, EMBSR-NF) and each seed 0..n-1, the project's trainer trains with the
paper's settings (d = 100, Adam lr 0.001, batch 512, the authors' early-stopping rule, patience 10)
up to ``--epochs`` epochs in a throw-away store; the test split is then scored with the weights of
the best validation epoch (model selection in the oracle mode, as in the paper). The table gives
H@{5,10,20} and M@{5,10,20} (%) as mean ± sample std over seeds in both target-operation modes,
one row each: "oracle" = the operation of the predicted micro-behavior is given (the paper's
protocol), "unknown" = it is not (the live setting). Wall time is per run (training, every
validation, checkpoints, test). No grid search (``embsr search`` does that), no thresholds.
The default ``--epochs`` (20) keeps the full run (24 runs) at about 15-25 minutes on a quiet 2-core
CPU, estimated from ~3 CPU-seconds per run-epoch measured in smoke runs (the ``cpu_s`` of each run
is in the JSON); numbers measured while other work shares the machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import (
    DATASETS,
    METRICS,
    add_dataset_row,
    default_preset,
    machine_line,
    markdown_table,
    mean_std,
    paper_overrides,
    prepare_sample,
    table2_row,
    throwaway_store,
)

from embsr_core.data.prepared import PreparedDataset
from embsr_core.models.registry import list_specs
from embsr_core.store.engine import Store
from embsr_core.training import TrainConfig, evaluate_checkpoint, run_training

MODELS = ["EMBSR", "EMBSR-NS", "EMBSR-NG", "EMBSR-NF"]
REAL = [name for name, (path, _, _) in DATASETS.items() if path is not None]
CHOICES = [*REAL, "Synthetic"]
MODES = [("oracle", "oracle (op given, paper)"), ("unknown", "unknown (live)")]


def model_spec(text: str) -> tuple[str, dict[str, str]]:
    """``NAME`` or ``NAME:key=value,key=value`` → (registered name, hyperparameter overrides)."""
    name, _, rest = text.partition(":")
    pairs = dict(kv.split("=", 1) for kv in rest.split(",") if kv) if rest else {}
    if name not in {s.name for s in list_specs()}:
        raise SystemExit(f"unknown model {name!r}")
    return name, pairs


def run_one(store: Store, dataset_id: int, prepared: PreparedDataset, model: str, seed: int, args: argparse.Namespace,
            ckpt: Path) -> dict[str, Any]:
    name, extra = model_spec(model)
    cfg = TrainConfig(max_epochs=args.epochs, patience=args.patience, batch_size=args.batch_size, lr=0.001,
                      seed=seed, device=args.device, threads=args.threads)
    start, cpu_start = time.perf_counter(), time.process_time()
    outcome = run_training(store, prepared, name, {**paper_overrides(name), **extra}, cfg, dataset_id=dataset_id,
                           checkpoint_root=ckpt, run_name=f"paper_protocol {prepared.dataset_name} {model} seed={seed}")
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if outcome.status != "finished":
        raise RuntimeError(f"{model} on {prepared.dataset_name} (seed {seed}): {outcome.status}: {outcome.error}")
    valid = evaluate_checkpoint(store, outcome.run_id, "valid", "oracle", prepared=prepared, device=args.device)
    return {"dataset": prepared.dataset_name, "model": model, "seed": seed, "metrics": outcome.test_metrics,
            "valid": valid.metrics, "best_epoch": outcome.best_epoch, "epochs_done": outcome.epochs_done,
            "wall_s": wall,
            "cpu_s": cpu}  # process CPU time, all threads: less disturbed than wall time on a shared machine


def table_rows(runs: list[dict[str, Any]], datasets: list[str], models: list[str]) -> list[list[str]]:
    rows = []
    for dataset in datasets:
        for model in models:
            mine = [r for r in runs if r["dataset"] == dataset and r["model"] == model]
            if not mine:
                continue
            for i, (mode, label) in enumerate(MODES):
                cells = [mean_std([r["metrics"].get(mode, {}).get(key, np.nan) for r in mine], scale=100)
                         for _, key in METRICS]
                extra = ([mean_std([r["valid"]["hit@20"] for r in mine], scale=100),
                          mean_std([r["valid"]["mrr@20"] for r in mine], scale=100),
                          mean_std([r["best_epoch"] for r in mine], digits=1),
                          mean_std([r["wall_s"] for r in mine], digits=1)] if i == 0 else ["″"] * 4)
                rows.append([dataset, model, label, *cells, *extra])
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["Appliances", "Trivago"], choices=CHOICES)
    parser.add_argument("--synthetic-sessions", type=int, default=5_000)
    parser.add_argument("--models", nargs="+", default=MODELS, metavar="MODEL",
                        help=f"registered names, optionally NAME:key=value,... (default: {' '.join(MODELS)})")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (0, 1, ...); default 3")
    parser.add_argument("--epochs", type=int, default=20,
                        help="maximum epochs per run (default 20: ~15-25 min in all on a quiet 2-core CPU; paper: 50)")
    parser.add_argument("--patience", type=int, default=10, help="early-stopping patience (the paper's 10)")
    parser.add_argument("--batch-size", type=int, default=0, help="0 = the data-size rule (the CLI default)")
    parser.add_argument("--no-augment", dest="augment", action="store_false",
                        help="one target per training session (the paper's protocol) instead of prefix training")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is robust on a shared CPU)")
    parser.add_argument("--device", default="auto", help="auto (CUDA → MPS → CPU), cpu, cuda, cuda:1, mps")
    parser.add_argument("--json", type=Path, help="also write the per-seed results (and the header) here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    for model in args.models:
        model_spec(model)  # fail before any training
    header = machine_line()
    runs: list[dict[str, Any]] = []
    table2: dict[str, str] = {}
    started = time.perf_counter()
    with throwaway_store("embsr-paper-protocol-") as (store, ckpt):
        for dataset in args.datasets:
            prepared = prepare_sample(dataset, synthetic_sessions=args.synthetic_sessions, augment=args.augment)
            table2[dataset] = table2_row(prepared, default_preset(dataset))
            print(f"# {table2[dataset]}", flush=True)
            dataset_id = add_dataset_row(store, prepared)
            for model in args.models:
                for seed in range(args.seeds):
                    run = run_one(store, dataset_id, prepared, model, seed, args, ckpt)
                    runs.append(run)
                    oracle = run["metrics"].get("oracle", {})
                    print(f"  {model} seed {seed}: H@20 {100 * oracle.get('hit@20', np.nan):.2f} "
                          f"M@20 {100 * oracle.get('mrr@20', np.nan):.2f} (oracle), best epoch "
                          f"{run['best_epoch']}/{run['epochs_done']}, valid H@20 {100 * run['valid']['hit@20']:.2f} "
                          f"M@20 {100 * run['valid']['mrr@20']:.2f}, {run['wall_s']:.1f} s wall, "
                          f"{run['cpu_s']:.1f} s CPU", flush=True)
    total = time.perf_counter() - started
    batch = "the data-size rule" if args.batch_size == 0 else str(args.batch_size)
    training = "prefix training" if args.augment else "one target per session"
    protocol = (f"Protocol: d = 100, Adam lr 0.001, batch {batch}, {training}, up to {args.epochs} epochs, "
                f"patience {args.patience}, seeds 0–{args.seeds - 1}, device {args.device}; "
                f"test metrics (%) at the best validation epoch, mean ± std over seeds; total {total / 60:.1f} min")
    columns = ["Dataset", "Model", "Target op", *(label for label, _ in METRICS), "Valid H@20", "Valid M@20",
               "Best epoch", "Wall s/run"]
    print()
    print(f"_{header}_  ")
    print(f"_{protocol}_  ")
    for row in table2.values():
        print(f"_{row}_  ")
    print()
    print(markdown_table(columns, table_rows(runs, args.datasets, args.models)))
    if args.json:
        args.json.write_text(json.dumps({"machine": header, "protocol": protocol, "table2": table2,
                                         "args": {k: str(v) for k, v in vars(args).items()}, "runs": runs},
                                        indent=1))
        print(f"\nWrote {args.json}")


if __name__ == "__main__":
    main()
