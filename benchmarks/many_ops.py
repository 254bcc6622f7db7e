"""One EMBSR epoch on 200 operation types against the same data with 10 (issue 18), with the targets.

    .venv/bin/python benchmarks/many_ops.py                  # 30,000 sessions, 10 vs 200 operations
    .venv/bin/python benchmarks/many_ops.py --sessions 3000  # a quick look

The data: ``generate_synthetic(n_sessions, seed)`` with its defaults (10 JD operations). The
200-operation dataset is the *same* events with each operation renamed at random to one of 20
variants of itself ("Cart" → "Cart#0" … "Cart#19"): the same sessions, items, times and planted
pattern, only the vocabulary is 20× larger (|R| = 202² relations instead of 12²). Both are prepared
with the ``synthetic`` preset and trained for one epoch by ``run_training`` with the defaults
(registered EMBSR settings, ``TrainConfig()`` with ``max_epochs=1``), each in a fresh process so each
peak is its own.

Printed per dataset: training samples/s (samples of the epoch / seconds from the epoch's start to
its last batch: forward, backward, Adam, collation, bookkeeping), the process's peak RSS over the
whole run (training, validation and test evaluation; see ``_common.PeakMemory``), and the memory
estimate made before training. Then the ratio of the two speeds against the target (≥ 0.70) and the
200-operation peak against 3 GB. Numbers on a shared machine are noisy; the load is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _common import PeakMemory, add_dataset_row, machine_line, throwaway_store
from train_epoch import Throughput

from embsr_core.data.preprocess import prepare, preset
from embsr_core.data.synthetic import generate_synthetic
from embsr_core.training import TrainConfig, resolve_device, run_training
from embsr_core.training.memory_estimate import estimate_for_prepared

SPEED_TARGET = 0.70  # samples/s at 200 operations ≥ 70 % of that at 10
PEAK_TARGET_GB = 3.0
VARIANTS = 20  # 10 operations × 20 variants = 200


def events(n_sessions: int, many: bool, seed: int) -> pd.DataFrame:
    """The generator's events; with ``many`` every operation renamed to one of its VARIANTS."""
    frame = generate_synthetic(n_sessions=n_sessions, seed=seed)
    if many:
        rng = np.random.default_rng(seed + 1)
        variant = rng.integers(0, VARIANTS, len(frame)).astype(str)
        frame = frame.assign(operation=frame["operation"].astype(str) + "#" + pd.Series(variant, index=frame.index))
    return frame


def one_run(n_sessions: int, many: bool, seed: int, device: str) -> dict:
    """Prepare, estimate, train one epoch; the figures as a dict."""
    prepared = prepare(events(n_sessions, many, seed), preset("synthetic"),
                       dataset_name=f"synthetic {'200' if many else '10'} ops")
    config = TrainConfig(max_epochs=1, patience=1, device=device, seed=seed)
    dev = resolve_device(device)
    memory = PeakMemory(dev)
    estimate = estimate_for_prepared(prepared, "EMBSR", None, config)
    meter = Throughput()
    with throwaway_store("many_ops_") as (store, ckpt):
        dataset_id = add_dataset_row(store, prepared)
        memory.reset()
        before_mb = _rss_mb()
        start = time.perf_counter()
        outcome = run_training(store, prepared, "EMBSR", None, config, callback=meter, dataset_id=dataset_id,
                               checkpoint_root=ckpt, run_name="many_ops")
        wall = time.perf_counter() - start
    if outcome.status != "finished":
        raise RuntimeError(f"{prepared.dataset_name}: {outcome.status}: {outcome.error}")
    return {
        "name": prepared.dataset_name, "n_ops": prepared.n_ops, "n_items": prepared.n_items,
        "samples": meter.train_sessions, "rate": meter.train_rate(), "train_s": sum(meter.train_s),
        "wall_s": wall, "peak_mb": memory.peak_rss_mb(), "before_mb": before_mb, "cuda_mb": memory.peak_cuda_mb(),
        "method": memory.method, "estimate": estimate.summary(),
        "estimate_gb": max(estimate.train_bytes(), estimate.eval_bytes()) / 1e9,
        "hit20": outcome.test_metrics.get("oracle", {}).get("hit@20", float("nan")),
    }


def _rss_mb() -> float:
    """Resident memory now (the estimate speaks of what a run adds to it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=30_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: robust on a shared machine)")
    p.add_argument("--only", choices=("10", "200"), help=argparse.SUPPRESS)
    p.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.only:
        result = one_run(args.sessions, args.only == "200", args.seed, args.device)
        args.result_file.write_text(json.dumps(result))
        return
    print(machine_line())
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; {args.sessions:,} sessions, "
          f"device {args.device}, threads {args.threads}, EMBSR defaults, one epoch", flush=True)
    results = {}
    for which in ("10", "200"):
        with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
            cmd = [sys.executable, __file__, "--sessions", str(args.sessions), "--seed", str(args.seed),
                   "--device", args.device, "--threads", str(args.threads), "--only", which,
                   "--result-file", tmp.name]
            subprocess.run(cmd, check=True)
            r = results[which] = json.loads(Path(tmp.name).read_text())
        print(f"{r['name']}: {r['n_ops']} operations, {r['n_items']:,} items, {r['samples']:,} training samples: "
              f"{r['rate']:,.0f} samples/s ({r['train_s']:.1f} s training, {r['wall_s']:.1f} s with evaluation), "
              f"peak RSS {r['peak_mb']:,.0f} MB"
              + (f", peak CUDA {r['cuda_mb']:,.0f} MB" if r["cuda_mb"] else "")
              + f", test H@20 {100 * r['hit20']:.2f} %", flush=True)
        print(f"  estimate before training: {r['estimate']} Measured: the run added "
              f"{(r['peak_mb'] - r['before_mb']) * 2**20 / 1e9:.2f} GB to the {r['before_mb'] * 2**20 / 1e9:.2f} GB "
              "resident before it", flush=True)
    ratio = results["200"]["rate"] / results["10"]["rate"]
    peak_gb = results["200"]["peak_mb"] * 2**20 / 1e9
    print(f"speed at 200 operations / at 10: {ratio:.2f} (target ≥ {SPEED_TARGET:.2f}: "
          f"{'meets' if ratio >= SPEED_TARGET else 'MISSES'})")
    print(f"peak memory at 200 operations: {peak_gb:.2f} GB (target ≤ {PEAK_TARGET_GB:.1f} GB: "
          f"{'meets' if peak_gb <= PEAK_TARGET_GB else 'MISSES'}); of it the run added "
          f"{(results['200']['peak_mb'] - results['200']['before_mb']) * 2**20 / 1e9:.2f} GB, "
          f"estimated {results['200']['estimate_gb']:.2f} GB before it")
    print(f"peak memory method: {results['200']['method']}")
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
