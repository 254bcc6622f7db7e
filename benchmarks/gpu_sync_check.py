"""Count the host synchronisations of the trainer's training steps on CUDA (issue 16, GPU-ready path).

Trains EMBSR for one epoch on generated data with ``torch.cuda.set_sync_debug_mode("warn")`` on during
the batches only (evaluation reads results back by design) and prints how many synchronising calls
the batches made, per step, with the first places they came from. The target is far below one per
step: the losses are read once per stored loss point, nothing else waits for the GPU.

    python benchmarks/gpu_sync_check.py [--sessions 3000] [--amp]
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from embsr_core.data.preprocess import prepare, preset  # noqa: E402
from embsr_core.data.synthetic import generate_synthetic  # noqa: E402
from embsr_core.training import BatchEnd, TrainConfig, Trainer  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=3000)
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA: nothing to check")
        return 0
    prepared = prepare(generate_synthetic(n_sessions=args.sessions), preset("synthetic"), dataset_name="sync check")
    config = TrainConfig(max_epochs=1, batch_size=args.batch, device="cuda", amp=args.amp, loss_points_per_epoch=5)
    seen: collections.Counter[str] = collections.Counter()
    steps = 0

    def count(event: object) -> None:
        nonlocal steps
        steps += isinstance(event, BatchEnd)

    original = Trainer._run_batches

    def watched(self: Trainer, *a: object, **k: object) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                original(self, *a, **k)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        for w in caught:
            if "synchroniz" in str(w.message):
                seen[f"{Path(w.filename).name}:{w.lineno}"] += 1

    Trainer._run_batches = watched  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="embsr-sync-") as tmp:
        start = time.perf_counter()
        outcome = Trainer(prepared, "EMBSR", {"embedding_dim": 100}, config, recorders=[count],
                          checkpoint_dir=Path(tmp)).run()
        wall = time.perf_counter() - start
    total = sum(seen.values())
    print(f"EMBSR, {len(prepared.train):,} training samples, batch {args.batch}, amp {args.amp}: {outcome.status} "
          f"in {wall:.1f} s; {steps} steps, {total} synchronising calls in the batches "
          f"({total / max(steps, 1):.2f} per step; target < 1)")
    for place, n in seen.most_common(8):
        print(f"  {n:5d}  {place}")
    return 0 if outcome.status == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
