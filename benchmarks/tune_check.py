"""Does `embsr tune` find a configuration at least as good as the defaults on validation?

    .venv/bin/python benchmarks/tune_check.py                         # EMBSR, 5,000 planted sessions, 15 min
    .venv/bin/python benchmarks/tune_check.py --budget 4m --sessions 1500 --max-epochs 8   # a short run

Generates planted synthetic data (the generator's default signal, never changed here), prepares it
with the ``synthetic`` preset, and tunes MODEL with :func:`embsr_core.training.tuning.tune` under a
time budget, exactly as ``embsr tune --budget`` does. The defaults run is the study's trial 0 (the
tuner always enqueues the default configuration first and never prunes or cuts it), so the target
"tuned ≥ defaults on validation" holds by construction for the tuner's objective (H@20 + M@20 at
the best validation epoch); this script measures by how much, per metric, and prints test H@20 /
M@20 of both runs for information (test is never used to choose). Timings on a shared machine are
noisy; the metric values are seeded.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from table3 import add_dataset_row  # noqa: E402

from embsr_core.data.preprocess import prepare, preset  # noqa: E402
from embsr_core.data.synthetic import generate_synthetic  # noqa: E402
from embsr_core.store import open_store, runs_repo  # noqa: E402
from embsr_core.training import TrainConfig  # noqa: E402
from embsr_core.training.leaderboard import trial_line  # noqa: E402
from embsr_core.training.tuning import TuneProgress, parse_duration, search_space, tune  # noqa: E402

METRICS = (("H@20", "hit@20"), ("M@20", "mrr@20"))
TARGET = 1.0  # tuned / defaults on validation


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="EMBSR")
    parser.add_argument("--budget", default="15m", help="tuning time, e.g. 4m, 15m (default 15m)")
    parser.add_argument("--sessions", type=int, default=5_000)
    parser.add_argument("--items", type=int, default=800)
    parser.add_argument("--max-epochs", type=int, default=TrainConfig().max_epochs)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = the trainer's automatic choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    budget_s = parse_duration(args.budget)

    started = time.perf_counter()
    frame = generate_synthetic(n_sessions=args.sessions, n_items=args.items, n_categories=20, seed=0)
    prepared = prepare(frame, preset("synthetic"), dataset_name=f"planted {args.sessions}")
    with tempfile.TemporaryDirectory(prefix="embsr-tune-check-") as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'store.db'}")
        dataset_id = add_dataset_row(store, prepared)
        config = TrainConfig(max_epochs=args.max_epochs, device=args.device, threads=args.threads)
        print(f"{args.model} on {prepared.dataset_name}: {len(prepared.train):,} train samples, "
              f"{len(prepared.valid):,} valid / {len(prepared.test):,} test sessions; budget {budget_s / 60:.1f} min, "
              f"max {args.max_epochs} epochs, {torch.get_num_threads()} torch thread(s)")
        print("search space: " + ", ".join(f"{k} ∈ {list(v)}" for k, v in search_space(args.model).items()))

        def show(p: TuneProgress) -> None:
            if not p.trial.duplicate and p.trial.state != "running":
                print(f"  [{p.elapsed_s / 60:5.1f} min] {trial_line(p)}", flush=True)

        result = tune(store, prepared, args.model, budget_s=budget_s, train_config=config, dataset_id=dataset_id,
                      checkpoint_root=Path(folder) / "ckpt", on_progress=show)
        default, best = result.default, result.best
        if default is None or best is None or not default.valid or not best.valid:
            print("FAIL: the defaults trial did not finish")
            return 1
        n = {s: sum(t.state == s and not t.duplicate for t in result.trials) for s in ("complete", "pruned", "failed")}
        print(f"\n{sum(n.values())} trials ({n['complete']} complete, {n['pruned']} pruned, {n['failed']} failed) "
              f"in {result.elapsed_s / 60:.1f} min; stopped by: {result.stop_reason}")
        print(f"defaults (trial 0, run {default.run_id}): {default.label}")
        print(f"tuned    (trial {best.number}, run {best.run_id}): {best.label}")
        tests = {name: runs_repo.final_metrics(store, t.run_id, "test").get("oracle", {})  # type: ignore[arg-type]
                 for name, t in (("defaults", default), ("tuned", best))}
        print(f"\n{'metric':<12}{'defaults':>10}{'tuned':>10}{'ratio':>8}{'target':>8}")
        for label, key in METRICS:
            d, b = 100 * default.valid[key], 100 * best.valid[key]
            ratio = b / d if d else float("inf")
            print(f"valid {label:<6}{d:10.2f}{b:10.2f}{ratio:8.3f}{'≥ 1.0':>8}")
        objective_ratio = (best.value or 0.0) / (default.value or 1.0)
        ok = objective_ratio >= TARGET
        print(f"valid H+M   {100 * (default.value or 0):10.2f}{100 * (best.value or 0):10.2f}{objective_ratio:8.3f}"
              f"{'≥ 1.0':>8}   (the tuner's objective)")
        for label, key in METRICS:
            print(f"test  {label:<6}{100 * tests['defaults'].get(key, float('nan')):10.2f}"
                  f"{100 * tests['tuned'].get(key, float('nan')):10.2f}   (information only)")
        store.dispose()
    verdict = "PASS" if ok else "FAIL"
    print(f"\n{verdict}: tuned ≥ defaults on validation; whole check {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
