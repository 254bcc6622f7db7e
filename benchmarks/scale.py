"""Paper scale on one machine: time and peak memory of every stage at 10,000 / 100,000 / 600,000 sessions.

    .venv/bin/python benchmarks/scale.py                                   # 10k, 100k, 600k; full epochs
    .venv/bin/python benchmarks/scale.py --sessions 10000 100000 --epoch-steps 0
    .venv/bin/python benchmarks/scale.py --sessions 600000 --epoch-steps 200
    .venv/bin/python benchmarks/scale.py --epoch-steps 200 --full-epoch-max 100000  # 600k: 200 steps

The paper's JD Appliances has ~583,000 training sessions. For each size the planted synthetic data
(``embsr generate``'s defaults: 2,000 items, 40 categories) goes the way a user's data goes, each
size in fresh processes:

- process 1 (as ``embsr generate``): **generate** the events; **import** them into a temporary
  SQLite store (the CLI's path: a parquet file, then ``import_into_store``, one transaction);
- process 2 (as ``embsr train``): **read back** the events from the store, **preprocess** (the
  ``synthetic`` preset through ``prepare_dataset``, cache file included) of which **prefix samples**
  is the part that builds every split's sample views (timed inside ``prepare``), one training
  **epoch** of EMBSR with its defaults (``--threads``, default 1), and one full **evaluation** of the
  test split (ranks against every item, next operation given).

``--epoch-steps K`` times only the first K steps of the epoch and extrapolates the epoch from the
measured throughput (marked "extrapolated from K steps"); 0 = the whole epoch. Per stage the table
gives seconds, peak RSS (VmHWM, reset at the start of each stage, so each stage's peak includes what
the process still holds), seconds per 1,000 sessions and that figure relative to the smallest size
(1.00 = linear), the process's CPU seconds (user + system; system = mostly page faults) and their ratio
likewise (steadier than the wall clock on a shared machine), and the 1-minute load average when the
stage ended. Environment variables reach every stage's process (e.g. glibc's ``MALLOC_MMAP_THRESHOLD_``).
Target (issue 16): cost grows linearly, peak memory ≤ 8 GB at 600,000 sessions.

Progress goes to stderr (stage starts, import rows, epoch steps and evaluation with an ETA); Ctrl-C
stops the run and prints the sizes already measured.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZES = (10_000, 100_000, 600_000)
TARGET_PEAK_MB = 8 * 1024
STAGES = ("generate", "import", "read back", "preprocess", "prefix samples", "epoch", "evaluation")
PROGRESS_EVERY_S = 10.0


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def eta_text(done: float, total: float, elapsed: float) -> str:
    if done <= 0 or elapsed <= 0:
        return "ETA –"
    return f"ETA {max(total - done, 0) * elapsed / done / 60:.1f} min"


def cpu_seconds() -> tuple[float, float]:
    """(user + system, system) CPU seconds of this process so far: less sensitive to other processes than
    the wall clock; system time is mostly page faults of freshly mapped memory here."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_stime


class Stages:
    """Seconds and peak RSS per stage (VmHWM reset at each start), in one process."""

    def __init__(self, label: str) -> None:
        import torch
        from _common import PeakMemory

        self.label = label
        self.memory = PeakMemory(torch.device("cpu"))
        self.results: dict[str, dict[str, Any]] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[dict[str, Any]]:
        log(f"[{self.label}] {name} …")
        extra: dict[str, Any] = {}
        self.memory.reset()
        start, cpu = time.perf_counter(), cpu_seconds()
        yield extra
        seconds = time.perf_counter() - start
        used = cpu_seconds()
        self.record(name, seconds, self.memory.peak_rss_mb(), cpu_s=used[0] - cpu[0], sys_s=used[1] - cpu[1], **extra)

    def record(self, name: str, seconds: float, peak_mb: float, **extra: Any) -> None:
        self.results[name] = {"seconds": seconds, "peak_mb": peak_mb, "load": os.getloadavg()[0], **extra}
        log(f"[{self.label}] {name}: {seconds:,.1f} s, peak RSS {peak_mb:,.0f} MB, load {os.getloadavg()[0]:.2f}")


# -- process 1: generate + import ---------------------------------------------------------------------
def data_phase(n: int, db: Path, seed: int) -> dict[str, Any]:
    from embsr_core.data.demo import import_synthetic_events
    from embsr_core.data.synthetic import generate_synthetic
    from embsr_core.store import open_store

    stages = Stages(f"{n:,}")
    with stages.stage("generate") as extra:
        events = generate_synthetic(n_sessions=n, seed=seed)
        extra["rows"] = len(events)
    store = open_store(f"sqlite:///{db}")
    started = time.perf_counter()
    last = [started]

    def progress(rows: int, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            log(f"[{n:,}] import: {rows:,} rows, {eta_text(done, total, now - started)} (after the file is written)")

    with stages.stage("import") as extra:
        report = import_synthetic_events(store, "Scale", events, f"synthetic: sessions={n} seed={seed}",
                                         progress=progress)
        extra["rows"] = report.rows_kept
    store.engine.dispose()
    return {"stages": stages.results, "micro_behaviors": report.rows_kept, "sessions": report.n_sessions}


# -- process 2: read back, preprocess, train, evaluate ------------------------------------------------
@contextmanager
def timed_part(module: Any, name: str, stages: Stages) -> Iterator[dict[str, float]]:
    """Time the calls of ``module.name`` inside a stage (e.g. ``prepare``'s prefix-sample build)."""
    original = getattr(module, name)
    spent = {"seconds": 0.0, "peak_mb": 0.0, "cpu_s": 0.0, "sys_s": 0.0}

    def timed(*args: Any, **kwargs: Any) -> Any:
        start, cpu = time.perf_counter(), cpu_seconds()
        out = original(*args, **kwargs)
        spent["seconds"] += time.perf_counter() - start
        used = cpu_seconds()
        spent["cpu_s"] += used[0] - cpu[0]
        spent["sys_s"] += used[1] - cpu[1]
        spent["peak_mb"] = max(spent["peak_mb"], stages.memory.peak_rss_mb())  # the stage's peak so far
        return out

    setattr(module, name, timed)
    try:
        yield spent
    finally:
        setattr(module, name, original)


def train_phase(n: int, db: Path, cache: Path, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from embsr_core.data import from_store, preprocess
    from embsr_core.store import open_store
    from embsr_core.store.repository import get_dataset

    torch.set_num_threads(args.threads)
    stages = Stages(f"{n:,}")
    store = open_store(f"sqlite:///{db}")
    dataset = get_dataset(store, "Scale")
    with (stages.stage("preprocess"), timed_part(from_store, "load_events", stages) as read,
          timed_part(preprocess, "_sample_views", stages) as samples):
        prepared = from_store.prepare_dataset(store, dataset, None, cache=cache)  # as training: the default preset
    gc.collect()
    parts = {"read back": read, "prefix samples": samples}
    for key in ("seconds", "cpu_s", "sys_s"):  # the rest of the protocol, cache write included
        stages.results["preprocess"][key] -= read[key] + samples[key]
    for name, part in parts.items():
        stages.results[name] = {**part, "load": os.getloadavg()[0]}
        log(f"[{n:,}]   of which {name}: {part['seconds']:,.1f} s")
    store.engine.dispose()
    info = {"train_samples": len(prepared.train), "valid": len(prepared.valid), "test": len(prepared.test),
            "items": prepared.n_items, "train_sessions": prepared.stats["table2"]["train"]}
    log(f"[{n:,}] {info['train_sessions']:,} training sessions → {info['train_samples']:,} prefix samples, "
        f"{info['valid']:,} valid / {info['test']:,} test, {info['items']:,} items")
    info.update(epoch_stage(n, prepared, stages, args))
    evaluation_stage(n, prepared, stages, args, info.pop("_model"))
    return {"stages": stages.results, **info}


def epoch_stage(n: int, prepared: Any, stages: Stages, args: argparse.Namespace) -> dict[str, Any]:
    """One epoch of EMBSR (defaults) by the project's trainer; with ``--epoch-steps`` its first K steps."""
    from embsr_core.training import BatchEnd, ControlToken, EpochStarted, TrainConfig
    from embsr_core.training.events import cancel_on_sigint
    from embsr_core.training.trainer import Trainer

    control = ControlToken()
    clock: dict[str, Any] = {"start": None, "end": None, "steps": 0, "rate": 0.0, "n_batches": 0, "last_log": 0.0,
                             "reached": False}
    want = args.epoch_steps

    def on_event(event: object) -> None:
        now = time.perf_counter()
        if isinstance(event, EpochStarted):
            clock["start"], clock["n_batches"] = now, event.n_batches
        elif isinstance(event, BatchEnd) and event.epoch == 1:
            clock["steps"], clock["end"] = event.batch, now
            clock["rate"] = event.samples_per_s  # the trainer's own figure for this epoch so far
            goal = min(want, event.n_batches) if want else event.n_batches
            if now - clock["last_log"] >= PROGRESS_EVERY_S or event.batch == goal:
                clock["last_log"] = now
                log(f"[{n:,}] epoch: step {event.batch:,}/{goal:,} of {event.n_batches:,}, loss {event.loss:.3f}, "
                    f"{event.samples_per_s:,.0f} samples/s, {eta_text(event.batch, goal, now - clock['start'])}")
            if event.batch >= goal:
                clock["reached"] = True
                control.cancel()  # the epoch (or its first K steps) is measured; the run stops at the next check

    cfg = TrainConfig(max_epochs=1, device=args.device, threads=args.threads, loader_workers=args.workers)
    with tempfile.TemporaryDirectory(prefix="embsr-scale-ckpt-") as ckpt:
        trainer = Trainer(prepared, "EMBSR", None, cfg, control, [on_event], checkpoint_dir=Path(ckpt))
        stages.memory.reset()
        with cancel_on_sigint(control):
            outcome = trainer.run()
        peak = stages.memory.peak_rss_mb()
    if clock["start"] is None or clock["steps"] == 0:
        raise RuntimeError(f"the epoch did not start: {outcome.status} {outcome.error or ''}")
    if outcome.status == "failed":
        raise RuntimeError(f"training failed: {outcome.error}")
    measured = clock["end"] - clock["start"]
    full = clock["steps"] == clock["n_batches"]
    seconds = measured if full else measured * clock["n_batches"] / clock["steps"]
    note = "" if full else f"extrapolated from {clock['steps']:,} steps ({measured:,.1f} s measured)"
    if not clock["reached"]:  # Ctrl-C before the steps asked for
        raise KeyboardInterrupt
    stages.record("epoch", seconds, peak, note=note, steps=clock["steps"], n_batches=clock["n_batches"],
                  samples_per_s=clock["rate"],
                  batch_size=trainer.config.batch_size)
    return {"_model": trainer.model, "device": str(trainer.device)}


def evaluation_stage(n: int, prepared: Any, stages: Stages, args: argparse.Namespace, model: Any) -> None:
    """Ranks of every test session against every item (next operation given), in 20 chunks for the ETA."""
    import numpy as np

    from embsr_core.training import resolve_device
    from embsr_core.training.config import TrainConfig
    from embsr_core.training.metrics import compute_ranks, metrics_from_ranks

    cfg = TrainConfig()
    device = resolve_device(args.device)
    test = prepared.test
    chunks = np.array_split(np.arange(len(test)), 20)
    with stages.stage("evaluation") as extra:
        start = time.perf_counter()
        ranks = []
        for k, index in enumerate(chunks, 1):
            ranks.append(compute_ranks(model, test, "oracle", device=device, batch_size=cfg.eval_batch_size,
                                       memory_mb=cfg.eval_memory_mb, index=index))
            elapsed = time.perf_counter() - start
            if k in (1, len(chunks)) or k % 5 == 0:
                log(f"[{n:,}] evaluation: {k}/{len(chunks)} chunks, {eta_text(k, len(chunks), elapsed)}")
        metrics = metrics_from_ranks(np.concatenate(ranks))
        extra["sessions"] = len(test)
        extra["hit@20"] = metrics["hit@20"]


# -- the parent: one size at a time, a table at the end -----------------------------------------------
def steps_for(n: int, args: argparse.Namespace) -> int:
    """Steps of the epoch to time at ``n`` sessions (0 = all)."""
    return 0 if n <= args.full_epoch_max else args.epoch_steps


def run_child(phase: str, n: int, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    out = folder / f"{phase}.json"
    cmd = [sys.executable, __file__, "--child", phase, "--sessions", str(n), "--folder", str(folder),
           "--epoch-steps", str(steps_for(n, args)), "--threads", str(args.threads), "--device", args.device,
           "--workers", str(args.workers), "--seed", str(args.seed)]
    proc = subprocess.run(cmd, check=False)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"{phase} process for {n:,} sessions ended with code {proc.returncode}")
    return json.loads(out.read_text())


def measure_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="embsr-scale-") as tmp:
        folder = Path(tmp)
        data = run_child("data", n, folder, args)
        train = run_child("train", n, folder, args)
    return {"n": n, **data, **train, "stages": {**data["stages"], **train["stages"]}}


def table(rows: list[dict[str, Any]]) -> str:
    from _common import markdown_table

    base = rows[0]
    lines = []
    for r in rows:
        for name in STAGES:
            s = r["stages"].get(name)
            if s is None:
                continue
            per_k = 1000 * s["seconds"] / r["n"]
            b = base["stages"].get(name)
            ratio = per_k / (1000 * b["seconds"] / base["n"]) if b and b["seconds"] > 0 else float("nan")
            what = s.get("note") or ""
            if name == "epoch":
                what = (f"{s['steps']:,}/{s['n_batches']:,} steps of {s['batch_size']}, "
                        f"{s['samples_per_s']:,.0f} samples/s" + (f"; {what}" if what else ""))
            sec = f"{s['seconds']:,.2f}" if s['seconds'] < 10 else f"{s['seconds']:,.1f}"
            cpu = s.get("cpu_s")
            cpu_text = "–" if cpu is None else f"{cpu:,.2f} ({s['sys_s']:,.2f})"
            cpu_ratio = (f"{cpu / r['n'] / (b['cpu_s'] / base['n']):.2f}"
                         if cpu is not None and b and b.get("cpu_s") else "–")
            lines.append([f"{r['n']:,}", name, sec, cpu_text, f"{s['peak_mb']:,.0f}", f"{per_k:.3f}",
                          f"{ratio:.2f}", cpu_ratio, f"{s['load']:.2f}", what])
    header = ["Sessions", "Stage", "Seconds", "CPU s (sys)", "Peak RSS MB", "s / 1k sessions", f"vs {base['n']:,}",
              f"CPU vs {base['n']:,}", "Load (1 min)", "Notes"]
    return markdown_table(header, lines)


def summary(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for r in rows:
        peak = max(s["peak_mb"] for s in r["stages"].values())
        out.append(f"{r['n']:,} sessions: {r['micro_behaviors']:,} micro-behaviors, {r['train_sessions']:,} training "
                   f"sessions → {r['train_samples']:,} prefix samples, {r['test']:,} test; peak RSS {peak:,.0f} MB "
                   f"= {peak / TARGET_PEAK_MB:.2f} × the 8 GB target ({'met' if peak <= TARGET_PEAK_MB else 'MISSED'})")
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="+", default=list(SIZES), help="sizes (default 10k 100k 600k)")
    parser.add_argument("--epoch-steps", type=int, default=0,
                        help="time only the first K steps and extrapolate the epoch (0 = the whole epoch)")
    parser.add_argument("--full-epoch-max", type=int, default=0, metavar="N",
                        help="sizes up to N sessions train the whole epoch even with --epoch-steps")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads (default 1)")
    parser.add_argument("--device", default="cpu", help="training device (default cpu)")
    parser.add_argument("--workers", default="0", help="loader_workers for the epoch (default 0; auto, 1, 2, …)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=["data", "train"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def child_main(args: argparse.Namespace) -> None:
    n = args.sessions[0]
    db, cache = args.folder / "store.db", args.folder / "cache"
    try:
        result = data_phase(n, db, args.seed) if args.child == "data" else train_phase(n, db, cache, args)
    except KeyboardInterrupt:
        log(f"[{n:,}] cancelled")
        sys.exit(130)
    (args.folder / f"{args.child}.json").write_text(json.dumps(result))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.workers != "auto":
        args.workers = int(args.workers)
    if args.child:
        child_main(args)
        return
    from _common import machine_line

    print(machine_line().replace(" (threads", " (default threads"), flush=True)
    print(f"EMBSR defaults, batch size automatic, {args.threads} training thread(s), device {args.device}, "
          f"loader workers {args.workers}; epoch: "
          + ", ".join(f"{n:,}: " + (f"first {steps_for(n, args)} steps, extrapolated" if steps_for(n, args) else "full")
                      for n in sorted(args.sessions)), flush=True)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    try:
        for n in sorted(args.sessions):
            if rows:
                per_session = (time.perf_counter() - started) / sum(r["n"] for r in rows)
                log(f"[{n:,}] starting; ETA for this size ≈ {per_session * n / 60:.1f} min (linear in the sessions)")
            rows.append(measure_size(n, args))
    except (KeyboardInterrupt, RuntimeError) as exc:
        log(f"stopped: {exc or 'Ctrl-C'}; the sizes measured so far follow")
    if not rows:
        return
    print()
    print(table(rows))
    print()
    for line in summary(rows):
        print(line)
    print(f"Wall time {(time.perf_counter() - started) / 60:.1f} min; load average now "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs (shared machine: noisy).")


if __name__ == "__main__":
    main()
