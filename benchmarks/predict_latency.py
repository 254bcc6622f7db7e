"""Playground prediction latency: a 50-step session, 100,000 items, on this CPU (issue 7: < 50 ms).

    .venv/bin/python benchmarks/predict_latency.py
    .venv/bin/python benchmarks/predict_latency.py --items 100000 --steps 50 --repeats 50 --models EMBSR SGNN-Self

Times what the Playground does on every change, through the core ``Predictor`` (encode the external
ids, collate, score every item, top-K): ``predict`` alone, ``explain`` alone and both together. The
model has the paper's default hyperparameters and random weights (latency does not depend on what
was learned). Numbers on a shared machine are noisy: the median is the figure to quote, p95 shows
the noise; rerun side by side before comparing.

The scorer caches the L2-normalised item table while the weights do not change (re-normalising
100,000×d floats was most of a query) and the Predictor takes the top-K with a partition instead of a
full sort; the script checks that the result equals a full stable sort of all scores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from embsr_core.data.prepared import Vocab  # noqa: E402
from embsr_core.inference import Predictor  # noqa: E402
from embsr_core.models.registry import build_model  # noqa: E402

OPS = ("view", "detail", "comments", "spec", "cart", "order", "search", "home", "sale", "bottom")


def make_predictor(model_name: str, n_items: int, max_len: int) -> Predictor:
    vocab = Vocab(
        item_ids=["<pad>"] + [f"i{i}" for i in range(1, n_items + 1)],
        item_categories=[None] + [f"c{i % 500}" for i in range(1, n_items + 1)],
        op_names=["<pad>", *OPS],
    )
    torch.manual_seed(0)
    model = build_model(model_name, n_items, len(OPS))
    return Predictor(model, vocab, max_len, device="cpu")


def session(n_steps: int, n_items: int, seed: int = 0) -> list[tuple[str, str]]:
    """Runs of micro-behaviors on one item with revisits, like a real JD session."""
    rng = np.random.default_rng(seed)
    out, item = [], int(rng.integers(1, n_items + 1))
    for _ in range(n_steps):
        if rng.random() < 0.4:
            item = int(rng.integers(1, n_items + 1))
        out.append((f"i{item}", OPS[int(rng.integers(len(OPS)))]))
    return out


def reference_top_k(predictor: Predictor, sess: list[tuple[str, str]], k: int) -> list[str]:
    """The top-K by a full stable sort of every item's score (what the fast path must equal)."""
    scores = predictor.scores(sess, "unknown")
    order = np.argsort(-scores[1:], kind="stable")[:k] + 1
    return [predictor.vocab.item_ids[i] for i in order]


def timed(fn, repeats: int) -> list[float]:
    for _ in range(3):  # warm-up (allocator, lazy init)
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--models", nargs="+", default=["EMBSR"])
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.items:,} items, "
          f"{args.steps}-step session, top-{args.k}, {args.repeats} repeats (ms)")
    print(f"{'model':<12}{'call':<24}{'median':>9}{'p95':>9}{'min':>9}")
    sess = session(args.steps, args.items)
    for name in args.models:
        predictor = make_predictor(name, args.items, args.steps)
        got = [r.item_id for r in predictor.predict(sess, k=args.k)]
        same = got == reference_top_k(predictor, sess, args.k)
        print(f"{name:<12}top-{args.k} equals a full sort of all scores: {same}")
        calls = {
            "predict": lambda p=predictor: p.predict(sess, k=args.k, target_op="unknown"),
            "explain": lambda p=predictor: p.explain(sess, target_op="unknown"),
            "predict+explain": lambda p=predictor: (p.predict(sess, k=args.k), p.explain(sess)),
        }
        for label, fn in calls.items():
            t = sorted(timed(fn, args.repeats))
            p95 = t[min(len(t) - 1, int(round(0.95 * (len(t) - 1))))]
            print(f"{name:<12}{label:<24}{statistics.median(t):>9.1f}{p95:>9.1f}{t[0]:>9.1f}")


if __name__ == "__main__":
    main()
