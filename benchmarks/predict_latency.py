"""Playground prediction latency: a 50-step session, 100,000 items, on this CPU (issue 7: < 50 ms).

    .venv/bin/python benchmarks/predict_latency.py
    .venv/bin/python benchmarks/predict_latency.py --items 100000 --steps 50 --repeats 50 --models EMBSR SGNN-Self

Times what the Playground does on every change, through the core ``Predictor`` (encode the external
ids, collate, score every item, top-K): ``predict`` alone, ``explain`` alone and both together. The
model has the paper's default hyperparameters and random weights (latency does not depend on what
was learned). Numbers on a shared machine are noisy: the median is the figure to quote, p95 shows
the noise; rerun side by side before comparing.

``predict (cached+topk)`` is a prototype of two changes proposed to the scorer/Predictor owners and
measured here only: the L2-normalised item table is computed once per loaded model (it is the same
for every query in eval mode; re-normalising 100,000×d floats is most of a query), and the top-K is
taken with ``argpartition`` instead of a full ``argsort``. It returns the same items and scores.
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


def fast_predict(predictor: Predictor, cache: dict, sess: list[tuple[str, str]], k: int) -> list[tuple[str, float]]:
    """Prototype: cached normalised item table + argpartition top-K (same result as ``predict``)."""
    model = predictor.model
    batch, _items = predictor._batch(sess, "unknown", False)
    with torch.no_grad():
        m = model._encode(batch)["m"]  # 1×d
        if "table" not in cache:
            cache["table"] = torch.nn.functional.normalize(model.item_emb.weight[1:].float(), dim=-1)  # n×d
        scores = model.scorer.w_k * (torch.nn.functional.normalize(m.float(), dim=-1) @ cache["table"].t())[0]
    s = scores.numpy()  # n, item id = index + 1
    top = np.argpartition(-s, k)[:k]
    top = top[np.lexsort((top, -s[top]))]  # best first, ties: lower id first (as Predictor.predict)
    return [(predictor.vocab.item_ids[i + 1], float(s[i])) for i in top]


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
        cache: dict = {}
        if hasattr(predictor.model, "scorer"):
            ref = [(r.item_id, r.score) for r in predictor.predict(sess, k=args.k)]
            got = fast_predict(predictor, cache, sess, args.k)
            same = [a for a, _ in ref] == [a for a, _ in got] and np.allclose([b for _, b in ref], [b for _, b in got],
                                                                                rtol=1e-5, atol=1e-5)
            print(f"{name:<12}prototype returns the same top-{args.k} as Predictor.predict: {same}")
        calls = {
            "predict": lambda p=predictor: p.predict(sess, k=args.k, target_op="unknown"),
            "explain": lambda p=predictor: p.explain(sess, target_op="unknown"),
            "predict+explain": lambda p=predictor: (p.predict(sess, k=args.k), p.explain(sess)),
        }
        if cache or hasattr(predictor.model, "scorer"):
            calls["predict (cached+topk)"] = lambda p=predictor, c=cache: fast_predict(p, c, sess, args.k)
        for label, fn in calls.items():
            t = sorted(timed(fn, args.repeats))
            p95 = t[min(len(t) - 1, int(round(0.95 * (len(t) - 1))))]
            print(f"{name:<12}{label:<24}{statistics.median(t):>9.1f}{p95:>9.1f}{t[0]:>9.1f}")


if __name__ == "__main__":
    main()
