"""Memory of prefix training: index views vs padded copies, at 100,000 planted sessions.

    .venv/bin/python benchmarks/prefix_memory.py                 # 100,000 sessions
    .venv/bin/python benchmarks/prefix_memory.py --sessions 5000 # a smoke run

Prefix training turns each training session into one sample per macro-item position. Padded copies
(what ``augment`` used to build) cost N_samples × L cells per column; the views store each kept
micro-behavior once plus an (end, length) pair per sample. The script prepares the planted data
with the ``synthetic`` preset (prefix training on, the default), prints the bytes held by each
split, then materialises the padded training arrays the old way and prints what they would hold,
with the process's peak RSS after each step. Target (issue 12): the views hold far less than the
copies (the issue sets no number; the ratio is printed).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import PeakMemory, machine_line  # noqa: E402

from embsr_core.data.preprocess import prepare, preset  # noqa: E402
from embsr_core.data.synthetic import generate_synthetic  # noqa: E402


def _mb(n: float) -> str:
    return f"{n / 2**20:,.1f} MB"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=100_000)
    args = parser.parse_args(argv)
    import torch

    peak = PeakMemory(torch.device("cpu"))
    print(machine_line(), flush=True)
    events = generate_synthetic(n_sessions=args.sessions, seed=0)
    peak.reset()
    base_rss = peak.peak_rss_mb()
    t = time.perf_counter()
    prepared = prepare(events, preset("synthetic"), dataset_name="planted")
    seconds = time.perf_counter() - t
    prep_peak = peak.peak_rss_mb()
    train = prepared.train
    n, width = len(train), train.max_len
    views = {name: prepared.split(name).nbytes() for name in ("train", "valid", "test")}
    seq_view = train.items.values.nbytes + train.ops.values.nbytes + train.items.ends.nbytes + train.lengths.nbytes
    if train.dwell is not None:
        seq_view += train.dwell.values.nbytes
    print(f"{args.sessions:,} sessions → {prepared.stats['table2']['train']:,} training sessions giving "
          f"{n:,} prefix samples (L = {width}), {len(prepared.valid):,} valid / {len(prepared.test):,} test; "
          f"prepare {seconds:.1f} s, peak RSS {prep_peak:,.0f} MB (events + prepare; {base_rss:,.0f} MB before)")
    for name, size in views.items():
        print(f"  {name}: {_mb(size)} held (views)")
    peak.reset()
    t = time.perf_counter()
    copies = [np.asarray(train.items), np.asarray(train.ops)] + ([np.asarray(train.dwell)] if train.dwell else [])
    copy_seconds = time.perf_counter() - t
    copy_bytes = sum(a.nbytes for a in copies)
    print(f"  padded copies of the training sequences (items, ops{', dwell' if train.dwell else ''}): "
          f"{_mb(copy_bytes)} ({copy_seconds:.1f} s to build), peak RSS now {peak.peak_rss_mb():,.0f} MB")
    print(f"\n| {args.sessions:,} sessions | training sequences as views | as padded copies | ratio |")
    print("|---|---|---|---|")
    print(f"| {n:,} prefix samples × L = {width} | {_mb(seq_view)} | {_mb(copy_bytes)} | "
          f"{copy_bytes / seq_view:.1f}× smaller |")


if __name__ == "__main__":
    main()
