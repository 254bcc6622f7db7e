"""Batch scoring speed: sessions per second of ``embsr score`` over a generated 100,000-session file.

    .venv/bin/python benchmarks/score_speed.py
    .venv/bin/python benchmarks/score_speed.py --sessions 100000 --items 20000 --time-limit 120 --threads 2

Generates a generic CSV (session,item,operation,timestamp; runs of micro-behaviors on one item with
revisits, mean ``--steps`` per session), then scores it through the same path as the CLI
(``embsr_core.sharing.scoring.score_file``: the importer's streaming reader, encoding, one forward
pass per batch, top-K, CSV rows). The model has the paper's default hyperparameters and random
weights (speed does not depend on what was learned). ``--time-limit`` bounds the run: scoring is
cancelled then and the rate of the sessions done so far is printed (``partial``). Numbers on a
shared machine are noisy; the file generation is not timed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import machine_line  # noqa: E402
from predict_latency import OPS, make_predictor  # noqa: E402

from embsr_core.sharing.scoring import ScoreProgress, ScoringCancelled, score_file  # noqa: E402


def write_sessions(path: Path, n_sessions: int, n_items: int, mean_steps: float, seed: int = 0) -> int:
    """A generic CSV of ``n_sessions`` sessions; returns the number of rows (micro-behaviors)."""
    rng = np.random.default_rng(seed)
    lengths = np.maximum(1, rng.poisson(mean_steps, n_sessions))
    n = int(lengths.sum())
    session = np.repeat(np.arange(n_sessions), lengths)
    new_item = rng.random(n) < 0.4
    new_item[np.concatenate([[0], np.cumsum(lengths)[:-1]])] = True
    draws = rng.integers(1, n_items + 1, n)
    item = draws[np.maximum.accumulate(np.where(new_item, np.arange(n), 0))]  # runs on one item
    op = rng.integers(len(OPS), size=n)
    step = np.arange(n) - np.repeat(np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    ops = np.asarray(OPS)[op]
    with open(path, "w") as handle:
        handle.write("session,item,operation,timestamp\n")
        block = 200_000
        for lo in range(0, n, block):
            hi = min(n, lo + block)
            lines = [f"s{s},i{i},{o},{t}" for s, i, o, t in zip(session[lo:hi], item[lo:hi], ops[lo:hi], step[lo:hi],
                                                                strict=True)]
            handle.write("\n".join(lines) + "\n")
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--steps", type=float, default=8.0, help="mean micro-behaviors per session")
    parser.add_argument("--max-len", type=int, default=50)
    parser.add_argument("--model", default="EMBSR")
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the shared machine has 2 cores)")
    parser.add_argument("--time-limit", type=float, default=180.0, help="seconds; scoring is cancelled after it")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as folder:
        src, out = Path(folder) / "sessions.csv", Path(folder) / "predictions.csv"
        rows = write_sessions(src, args.sessions, args.items, args.steps)
        predictor = make_predictor(args.model, args.items, args.max_len)
        print(machine_line())
        print(f"{args.model}, {args.items:,} items, {args.sessions:,} sessions, {rows:,} micro-behaviors "
              f"({src.stat().st_size / 2**20:.1f} MiB CSV), top-{args.top_k}, batch {args.batch_size}")
        cancel = threading.Event()
        timer = threading.Timer(args.time_limit, cancel.set)
        last: list[tuple[float, int, float]] = []
        started, cpu_started = time.perf_counter(), time.process_time()

        def progress(event: object) -> None:
            if isinstance(event, ScoreProgress):
                last.append((time.perf_counter() - started, event.sessions_scored, time.process_time() - cpu_started))

        timer.start()
        try:
            report = score_file(predictor, src, out, top_k=args.top_k, batch_size=args.batch_size,
                                progress=progress, cancel=cancel)
            seconds, done, note = report.seconds, report.sessions_read, ""
            cpu = time.process_time() - cpu_started
        except ScoringCancelled:
            seconds, done, cpu = last[-1] if last else (time.perf_counter() - started, 0, 0.0)
            note = f" (partial: cancelled at the {args.time_limit:.0f} s limit)"
        finally:
            timer.cancel()
    rate = done / seconds if seconds > 0 else 0.0
    print(f"scored {done:,} sessions in {seconds:.1f} s: {rate:,.0f} sessions/s{note}")
    # on a busy machine the wall rate mostly measures the neighbours: the CPU figure is this process's own
    print(f"process CPU {cpu:.1f} s ({done / cpu if cpu > 0 else 0.0:,.0f} sessions per CPU second, "
          f"{args.threads} thread(s)); load average {os.getloadavg()[0]:.1f}")
    if done >= args.sessions:
        print(f"100,000-session file: {seconds:.1f} s end to end")


if __name__ == "__main__":
    main()
