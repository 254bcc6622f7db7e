"""Training and evaluation throughput (sessions/s) and peak memory of EMBSR on the real Trivago sample.

    .venv/bin/python benchmarks/train_epoch.py                              # EMBSR, 1 epoch, preset trivago
    .venv/bin/python benchmarks/train_epoch.py --epochs 3 --models EMBSR EMBSR-NS EMBSR-NG EMBSR-NF
    .venv/bin/python benchmarks/train_epoch.py --preset sample --device cpu

The paper's settings: d = 100, batch 512, Adam lr 0.001, the Trivago preset (min item support 5,
L = 50, split by time); ``--preset sample`` (support 2, random split) keeps about twice the sessions
of this small sample. The preset and its Table II row are printed first. Each model is trained by
the project's trainer (``run_training``) in a throw-away store; times come from its events:

- train sessions/s: training sessions of an epoch / (epoch start → its last batch), i.e. forward,
  backward, Adam, collation and per-batch bookkeeping;
- eval sessions/s: sessions ranked against every item / seconds, over the validation split after
  each epoch and the test split at the end, in every target-op mode (oracle and unknown), including
  the store writes of the metrics and ranks (and, for the test split, loading the best checkpoint);
- peak RSS: see ``_common.PeakMemory`` (the method used is printed); peak CUDA allocation on CUDA.

The sample has only ~650 training sessions (2 batches per epoch), so epoch 1 includes warm-up;
with ``--epochs`` > 1 the later epochs are also shown on their own. Numbers measured while other
work shares the machine are noisy.
"""

from __future__ import annotations

import argparse
import time

from _common import (
    PeakMemory,
    add_dataset_row,
    default_preset,
    machine_line,
    markdown_table,
    paper_overrides,
    prepare_sample,
    table2_row,
    throwaway_store,
)

from embsr_core.data.prepared import PreparedDataset
from embsr_core.models.registry import list_specs
from embsr_core.store.engine import Store
from embsr_core.training import (
    BatchEnd,
    CheckpointSaved,
    EpochStarted,
    EvaluationEnd,
    RunStarted,
    TrainConfig,
    resolve_device,
    run_training,
)
from embsr_core.training.threads import resolve_threads

DATASET = "Trivago"


class Throughput:
    """Seconds and sessions per phase, from the trainer's events (see the module docstring)."""

    def __init__(self) -> None:
        self.n_split: dict[str, int] = {}
        self.train_s: list[float] = []  # per epoch
        self.train_sessions = 0
        self.eval_s = 0.0
        self.eval_sessions = 0
        self._mark: float | None = None
        self._block: tuple[int, str] | None = None  # (epoch, split) of the evaluation being timed

    def __call__(self, event: object) -> None:
        now = time.perf_counter()
        if isinstance(event, RunStarted):
            self.n_split = {"train": event.n_train, "valid": event.n_valid, "test": event.n_test}
        elif isinstance(event, EpochStarted | CheckpointSaved):
            self._mark = now  # an epoch's training, or the test evaluation after the last save, starts
        elif isinstance(event, BatchEnd) and event.batch == event.n_batches and self._mark is not None:
            self.train_s.append(now - self._mark)
            self.train_sessions = self.n_split["train"]
            self._mark = now
        elif isinstance(event, EvaluationEnd):
            if self._mark is not None:  # validation emits every mode at once: time it at the first
                self.eval_s += now - self._mark
                self._mark = now if event.split == "test" else None
                self._block = (event.epoch, event.split)
            if (event.epoch, event.split) == self._block:  # sessions of timed evaluations only
                self.eval_sessions += self.n_split[event.split]

    def train_rate(self, skip_first: bool = False) -> float | None:
        seconds = self.train_s[1:] if skip_first else self.train_s
        return len(seconds) * self.train_sessions / sum(seconds) if seconds else None


def measure(store: Store, dataset_id: int, prepared: PreparedDataset, model: str, args: argparse.Namespace,
            memory: PeakMemory, ckpt: object) -> list[str]:
    """Train ``model`` for ``args.epochs`` epochs and return its table row."""
    meter = Throughput()
    cfg = TrainConfig(max_epochs=args.epochs, patience=args.epochs, batch_size=args.batch_size, lr=0.001,
                      seed=args.seed, device=args.device, threads=args.threads, amp=args.amp)
    memory.reset()
    start = time.perf_counter()
    outcome = run_training(store, prepared, model, paper_overrides(model), cfg, callback=meter,
                           dataset_id=dataset_id, checkpoint_root=ckpt, run_name=f"train_epoch {model}")
    wall = time.perf_counter() - start
    if outcome.status != "finished":
        raise RuntimeError(f"{model}: {outcome.status}: {outcome.error}")
    rss, cuda = memory.peak_rss_mb(), memory.peak_cuda_mb()
    fmt = lambda v: f"{v:,.0f}" if v is not None else "–"
    row = [model, str(len(meter.train_s)), fmt(meter.train_rate()), fmt(meter.train_rate(skip_first=True)),
           f"{sum(meter.train_s) / max(len(meter.train_s), 1):.2f}",
           fmt(meter.eval_sessions / meter.eval_s if meter.eval_s else None), f"{wall:.1f}", fmt(rss)]
    if memory.device.type == "cuda":
        row.append(fmt(cuda))
    print(f"  {model}: done in {wall:.1f} s (test H@20 oracle "
          f"{100 * outcome.test_metrics.get('oracle', {}).get('hit@20', float('nan')):.2f})", flush=True)
    return row


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    names = [spec.name for spec in list_specs()]
    parser.add_argument("--models", nargs="+", default=["EMBSR"], choices=names, metavar="MODEL",
                        help="registered model names (default: EMBSR; e.g. EMBSR-NS EMBSR-NG EMBSR-NF)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per model (default 1)")
    parser.add_argument("--device", default="auto", help="auto (CUDA → MPS → CPU), cpu, cuda, cuda:1, mps")
    parser.add_argument("--dataset", default=DATASET, choices=["Trivago", "Synthetic"],
                        help="Trivago (the shared sample) or Synthetic (generated: for machines without the samples)")
    parser.add_argument("--amp", action="store_true", help="mixed precision where it pays (CUDA; CPUs with AMX)")
    parser.add_argument("--preset", default=None, choices=["trivago", "sample"],
                        help="preprocessing preset (default: trivago, the paper's: support 5, L = 50)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0 = the trainer's automatic choice)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = resolve_device(args.device)
    args.preset = args.preset or default_preset(args.dataset)
    prepared = prepare_sample(args.dataset, args.preset)
    print(machine_line())
    print(f"Table II row: {table2_row(prepared, args.preset)}")
    print(f"Settings: d = 100, batch {args.batch_size}, lr 0.001, {args.epochs} epoch(s), device {device}, "
          f"amp {args.amp}, "
          f"{resolve_threads(args.threads)} CPU threads", flush=True)
    memory = PeakMemory(device)
    rows = []
    with throwaway_store("embsr-train-epoch-") as (store, ckpt):
        dataset_id = add_dataset_row(store, prepared)
        rows = [measure(store, dataset_id, prepared, model, args, memory, ckpt) for model in args.models]
    header = ["Model", "Epochs", "Train sess/s", "Train sess/s (epochs ≥ 2)", "Train s/epoch", "Eval sess/s",
              "Wall s", "Peak RSS MB"] + (["Peak CUDA MB"] if device.type == "cuda" else [])
    print()
    print(f"Peak memory: {memory.method}.")
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
