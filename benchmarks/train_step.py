"""Training-step speed and peak memory of EMBSR and its variants on synthetic arrays (issue 4).

    .venv/bin/python benchmarks/train_step.py                 # all EMBSR names, batch 512, L = 50
    .venv/bin/python benchmarks/train_step.py --models EMBSR --steps 20 --amp
    .venv/bin/python benchmarks/train_step.py --models EMBSR --threads 1 2 --precision fp32 bf16 --compare-with 9a1867d
    .venv/bin/python benchmarks/train_step.py --models EMBSR --op-counts 10 50 200   # issue 18 row
    .venv/bin/python benchmarks/train_step.py --dyadic-forms --op-counts 4 6 10 20 50 200

Each step is forward + backward + Adam on one pre-collated batch (collation is timed apart: it
runs in the data loader, off the critical path). Peak memory is the process's peak RSS during the
model's steps (Linux: reset per model via /proc/self/clear_refs) or, on CUDA, the peak allocated;
"(+steps)" is that peak minus the memory held just before the steps (torch, data, model, batches).
Numbers on a shared machine are noisy: read the median, and compare runs made side by side; "cpu s"
(the process's CPU time per step, median) is less hit by other processes than the wall clock.

``--threads`` and ``--precision`` take several values: every (model, threads, precision) runs in a
fresh process. ``--precision bf16`` is the targeted form (issue 16): the star GNN and op-GRU under
bf16 autocast and the loss's three B×n products in bf16, with float32 master weights, logits,
softmax, LayerNorm and loss (``--amp`` is the blanket autocast of the whole loss: what the trainer's
*Mixed precision* runs on CUDA and on CPUs with AMX, see ``training/precision.py``). ``--compare-with
REV`` also runs *that commit's* copy of this script and of ``embsr_core`` (``git archive`` into a
temporary folder) at each thread count, fp32 and (with bf16 asked for) ``--amp``, right after the
current rows of the same cell, and prints the ratios. ``--compile`` wraps the graph layers in
``torch.compile`` (dynamic shapes) to measure what a compiler would add; the trainer does not
compile (it needs a C++ toolchain at run time and tens of seconds per process).

``--op-counts`` repeats each model at every operation-vocabulary size |O| (a fresh process each)
and prints the cost at the largest |O| relative to the smallest, against the target of issue 18
(≤ 1.3×: the dyadic attention must not grow with |O|²). ``--dyadic-forms`` times the attention
layer alone (forward + backward) in both exact forms of its dyadic term, star row only (training,
evaluation) and all rows (explanations, ``attn_layers`` > 1), with the form the size rule picks.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import PeakMemory  # noqa: E402

from embsr_core.data.prepared import SplitArrays  # noqa: E402
from embsr_core.models.base import batch_to  # noqa: E402
from embsr_core.models.layers.op_attention import OpAwareAttentionLayer, dyadic_form  # noqa: E402
from embsr_core.models.registry import build_model, get_spec, list_specs  # noqa: E402

OPS_RATIO_TARGET = 1.3  # issue 18: s/step at the largest |O| ≤ 1.3 × at the smallest
STEP_TARGET_S = 0.30  # issue 16: EMBSR fp32 at one thread, batch 512, L = 50, 14,000 items
BF16_SPEEDUP_TARGET = 1.3  # issue 16: the bf16 step at least 1.3× faster than fp32
LABEL = 24  # width of a row's label


def synthetic_split(n: int, max_len: int, n_items: int, n_ops: int, full: bool, seed: int = 0) -> SplitArrays:
    """Random sessions: runs of micro-behaviors on one item (p = 0.5 to stay), revisits, random ops."""
    rng = np.random.default_rng(seed)
    lengths = np.full(n, max_len) if full else rng.integers(1, max_len + 1, n)
    items = rng.integers(1, n_items + 1, (n, max_len))
    stay = rng.random((n, max_len)) < 0.5
    for j in range(1, max_len):
        items[:, j] = np.where(stay[:, j], items[:, j - 1], items[:, j])
    ops = rng.integers(1, n_ops + 1, (n, max_len))
    valid = np.arange(max_len)[None, :] < lengths[:, None]
    return SplitArrays(
        items=(items * valid).astype(np.int32), ops=(ops * valid).astype(np.int32),
        lengths=lengths.astype(np.int32), targets=rng.integers(1, n_items + 1, n).astype(np.int64),
        target_ops=rng.integers(1, n_ops + 1, n).astype(np.int32),
        session_ids=np.arange(n).astype(str), end_times=np.zeros(n),
    )


def _current_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def targeted_bf16(model: torch.nn.Module, device: torch.device) -> None:
    """bf16 matmuls where the FLOPs are (graph layers, scoring products), float32 everywhere else."""
    for part in ("gnn", "op_gru"):
        module = getattr(model, part, None)
        if module is not None:
            module.forward = _bf16_forward(module.forward, device)
    scorer = getattr(model, "scorer", None)
    if scorer is not None:
        scorer.matmul_dtype = torch.bfloat16


def _bf16_forward(forward, device: torch.device):
    def as_fp32(t):
        return t.float() if isinstance(t, torch.Tensor) and t.is_floating_point() else t

    def run(*args, **kwargs):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = forward(*args, **kwargs)
        return tuple(as_fp32(t) for t in out) if isinstance(out, tuple) else as_fp32(out)
    return run


def bench(name: str, split: SplitArrays, args: argparse.Namespace, device: torch.device) -> dict:
    torch.manual_seed(0)
    model = build_model(name, args.items, args.ops, {"embedding_dim": args.dim}).to(device).train()
    if args.precision[0] == "bf16":
        targeted_bf16(model, device)
    if args.compile and getattr(model, "gnn", None) is not None:
        model.gnn.forward = torch.compile(model.gnn.forward, dynamic=True)  # the elementwise-heavy part
    opt = torch.optim.Adam(model.parameters(), lr=1e-3,  # as the trainer builds it
                           fused=device.type in ("cpu", "cuda") or None)
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    batches = [model.collate(split, rng.choice(len(split), args.batch, replace=False))
               for _ in range(args.warmup + args.steps)]
    collate_s = (time.perf_counter() - t0) / len(batches)
    batches = [batch_to(b, device) for b in batches]  # as the trainer moves them (loop offsets stay on the host)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp)
    memory = PeakMemory(device)
    memory.reset()
    before = _current_mb(device)
    times, cpu, first = [], [], 0.0
    for i, batch in enumerate(batches):
        _sync(device)
        t, c = time.perf_counter(), time.process_time()
        with amp:
            loss = model.loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        if i == 0:
            first = time.perf_counter() - t  # includes --compile's compilation
        if i >= args.warmup:
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    step = statistics.median(times)
    peak = memory.peak_cuda_mb() if device.type == "cuda" else memory.peak_rss_mb()
    return {"name": name, "step": step, "min": min(times), "cpu": statistics.median(cpu), "first": first,
            "sps": args.batch / step, "collate": collate_s, "peak": peak, "before": before,
            "loss": float(loss.detach())}


def bench_dyadic_forms(args: argparse.Namespace) -> None:
    """Forward + backward of one attention layer per |O|, form and query set (see the docstring)."""
    B, K, d = args.batch, args.max_len + 1, args.dim
    print(f"attention layer only: batch={B} K={K} d={d} threads={torch.get_num_threads()} "
          f"steps={args.steps} (median ms, forward + backward)")
    print(f"{'|O|':>5} {'|R|':>7} {'queries':>8} {'gather ms':>10} {'table ms':>9} {'rule picks':>11}")
    for n_ops in args.op_counts:
        rows = n_ops + 2
        torch.manual_seed(0)
        layer = OpAwareAttentionLayer(d, n_op_rows=rows).train()
        x = torch.randn(B, K, d, requires_grad=True)
        pos = torch.randn(B, K, d)
        ops = torch.randint(1, rows, (B, K))
        mask = torch.ones(B, K, dtype=torch.bool)
        for label, query in (("star", torch.tensor([K - 1])), ("all", None)):
            ms = {}
            for form in ("gather", "table"):
                if form == "table" and query is None and B * K * rows * rows * 4 * 3 > 2**32:
                    ms[form] = float("nan")  # > 4 GiB of H×BQ×|R| buffers: not run
                    continue
                layer.dyadic = form
                times = []
                for _ in range(args.warmup + args.steps):
                    t = time.perf_counter()
                    out, _ = layer(x, mask, pos, ops, query_index=query)
                    out.sum().backward()
                    times.append(time.perf_counter() - t)
                    layer.zero_grad(set_to_none=True)
                    x.grad = None
                ms[form] = 1000 * statistics.median(times[args.warmup:])
            print(f"{n_ops:5d} {rows * rows:7d} {label:>8} {ms['gather']:10.1f} {ms['table']:9.1f} "
                  f"{dyadic_form(rows * rows, K):>11}", flush=True)


def _child_args(argv: list[str], drop: tuple[str, ...]) -> list[str]:
    """``argv`` without the given multi-value options (each child gets one value instead)."""
    rest = list(argv)
    for opt in drop:
        if opt in rest:
            i = rest.index(opt)
            j = i + 1
            while j < len(rest) and not rest[j].startswith("--"):
                j += 1
            rest = rest[:i] + rest[j:]
    return rest


def _print_header(first: str) -> None:
    print(f"{first:<{LABEL}} {'s/step':>7} {'min':>7} {'cpu s':>7} {'sessions/s':>11} {'collate s':>10} "
          f"{'peak MB':>8} {'(+steps)':>8}", flush=True)


def _print_row(r: dict, label: str) -> None:
    cpu = f"{r['cpu']:7.3f}" if "cpu" in r else f"{'—':>7}"  # (rows of older copies have no CPU time)
    print(f"{label:<{LABEL}} {r['step']:7.3f} {r['min']:7.3f} {cpu} {r['sps']:11.0f} {r['collate']:10.4f} "
          f"{r['peak']:8.0f} {r['peak'] - r['before']:8.0f}", flush=True)


def main(argv: list[str] | None = None) -> None:
    names = [s.name for s in list_specs() if s.family in ("embsr", "ablation", "variant")]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=names, help="registered names (default: EMBSR + variants)")
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--len", dest="max_len", type=int, default=50)
    p.add_argument("--items", type=int, default=14_000)
    p.add_argument("--ops", type=int, default=6)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--uniform-lengths", action="store_true",
                   help="session lengths uniform in 1..L (default: every session has L micro-behaviors)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    p.add_argument("--amp", action="store_true", help="bf16 autocast (scoring stays fp32)")
    p.add_argument("--threads", type=int, nargs="+", default=[0],
                   help="torch CPU threads, one or more counts (0 = torch default)")
    p.add_argument("--precision", nargs="+", choices=("fp32", "bf16"), default=["fp32"],
                   help="fp32 and/or bf16 (targeted: graph layers and scoring products in bf16)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the graph layers (needs a C++ compiler; the first warm-up step compiles)")
    p.add_argument("--compare-with", metavar="REV", default=None,
                   help="also time this git revision's code (e.g. the commit before a speed change)")
    p.add_argument("--same-process", action="store_true",
                   help="run every model in this process (default: one fresh process per model, so each "
                        "model's peak memory is its own)")
    p.add_argument("--op-counts", nargs="+", type=int, default=None,
                   help="operation-vocabulary sizes |O| to compare (replaces --ops; e.g. 10 50 200)")
    p.add_argument("--dyadic-forms", action="store_true",
                   help="time the attention layer's two dyadic forms at each of --op-counts")
    p.add_argument("--row-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--result-file", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    argv = list(argv if argv is not None else sys.argv[1:])
    if len(args.threads) > 1 or len(args.precision) > 1 or args.compare_with:
        run_matrix(args, argv)
        return
    if args.threads[0]:
        torch.set_num_threads(args.threads[0])
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    device = torch.device(args.device)
    if args.dyadic_forms:
        args.op_counts = args.op_counts or [4, 6, 10, 20, 50, 200]
        bench_dyadic_forms(args)
        return
    for name in args.models:
        get_spec(name)  # fail early on a typo
    if args.op_counts:
        sweep_op_counts(args, argv)
        return
    split = synthetic_split(max(4 * args.batch, 2048), args.max_len, args.items, args.ops,
                            full=not args.uniform_lengths)
    if not args.row_only:
        print(f"device={device} threads={torch.get_num_threads()} batch={args.batch} L={args.max_len} "
              f"|O|={args.ops} items={args.items} d={args.dim} amp={args.amp} precision={args.precision[0]} "
              f"lengths={'uniform 1..L' if args.uniform_lengths else 'all L'} steps={args.steps} (median)")
        _print_header("model")
    if len(args.models) > 1 and not args.same_process:
        rest = _child_args(argv, ("--models",))
        for name in args.models:
            subprocess.run([sys.executable, __file__, *rest, "--models", name, "--row-only"], check=True)
        return
    for name in args.models:
        r = bench(name, split, args, device)
        if args.result_file is not None:
            args.result_file.write_text(json.dumps(r))
        _print_row(r, r["name"])
        if args.compile:
            print(f"first step (compiles): {r['first']:.1f} s", flush=True)


def sweep_op_counts(args: argparse.Namespace, argv: list[str]) -> None:
    """Each model at each |O| in a fresh process; the largest |O| against the smallest."""
    rest = _child_args(argv, ("--models", "--op-counts", "--ops"))
    print(f"device={args.device} threads={args.threads[0] or 'default'} batch={args.batch} L={args.max_len} "
          f"items={args.items} d={args.dim} |O| ∈ {args.op_counts} steps={args.steps} (median)")
    _print_header("model @ |O|")
    lo, hi = min(args.op_counts), max(args.op_counts)
    for name in args.models:
        res = {}
        for n_ops in args.op_counts:
            with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
                subprocess.run([sys.executable, __file__, *rest, "--models", name, "--ops", str(n_ops),
                                "--row-only", "--result-file", tmp.name], check=True, stdout=subprocess.DEVNULL)
                res[n_ops] = json.loads(Path(tmp.name).read_text())
            _print_row(res[n_ops], f"{name} @ {n_ops}")
        ratio = res[hi]["step"] / res[lo]["step"]
        mem = res[hi]["peak"] / res[lo]["peak"]
        verdict = "meets" if ratio <= OPS_RATIO_TARGET else "MISSES"
        print(f"{name}: s/step at |O| = {hi} is {ratio:.2f}× that at |O| = {lo} (target ≤ {OPS_RATIO_TARGET}×: "
              f"{verdict}); peak memory {mem:.2f}×", flush=True)

def _run_row(script: Path, argv: list[str], cwd: Path | None = None) -> dict:
    """One row in a fresh process (``script`` may be another commit's copy); its result dict."""
    with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
        subprocess.run([sys.executable, str(script), *argv, "--row-only", "--result-file", tmp.name],
                       check=True, stdout=subprocess.DEVNULL, cwd=cwd)
        return json.loads(Path(tmp.name).read_text())


def _archive(rev: str, into: Path) -> Path:
    """``embsr_core`` and ``benchmarks`` of ``rev`` unpacked under ``into``; returns that copy of this script."""
    root = Path(__file__).resolve().parents[1]
    tar = subprocess.run(["git", "-C", str(root), "archive", rev, "embsr_core", "benchmarks"],
                         check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(into, filter="data")
    return into / "benchmarks" / "train_step.py"


def run_matrix(args: argparse.Namespace, argv: list[str]) -> None:
    """Every model × threads × precision in a fresh process, each cell followed by ``--compare-with``'s."""
    rest = [a for a in _child_args(argv, ("--models", "--threads", "--precision", "--compare-with")) if a != "--amp"]
    print(f"device={args.device} batch={args.batch} L={args.max_len} |O|={args.ops} items={args.items} "
          f"d={args.dim} steps={args.steps} warmup={args.warmup}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    _print_header("model precision threads")
    with tempfile.TemporaryDirectory() as tmp:
        old = _archive(args.compare_with, Path(tmp)) if args.compare_with else None
        rev = (args.compare_with or "")[:10]
        for name in args.models:
            res: dict[tuple[str, int], dict] = {}
            for threads in args.threads:
                cell = ["--models", name, "--threads", str(threads)]
                for precision in args.precision:
                    res[precision, threads] = _run_row(Path(__file__), [*rest, *cell, "--precision", precision])
                    _print_row(res[precision, threads], f"{name} {precision} {threads}t")
                if old is not None:  # that commit's code, same cell, right after the current rows
                    res["old", threads] = _run_row(old, [*rest, *cell], cwd=Path(tmp))
                    _print_row(res["old", threads], f"{name} @{rev} {threads}t")
                    if "bf16" in args.precision:
                        res["old amp", threads] = _run_row(old, [*rest, *cell, "--amp"], cwd=Path(tmp))
                        _print_row(res["old amp", threads], f"{name} @{rev} --amp {threads}t")
            for threads in args.threads:
                _print_verdicts(name, threads, res, rev)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)


def _print_verdicts(name: str, threads: int, res: dict[tuple[str, int], dict], rev: str) -> None:
    fp32, bf16, old = res.get(("fp32", threads)), res.get(("bf16", threads)), res.get(("old", threads))
    line = []
    if fp32 and old:
        line.append(f"fp32 {old['step'] / fp32['step']:.2f}× the speed of @{rev} (median; min "
                    f"{old['min'] / fp32['min']:.2f}×)")
    if fp32 and threads == 1 and name == "EMBSR":
        line.append(f"fp32 {fp32['step']:.3f} s/step, target ≤ {STEP_TARGET_S}: "
                    f"{'meets' if fp32['step'] <= STEP_TARGET_S else 'MISSES'}")
    if fp32 and bf16:
        speedup = fp32["step"] / bf16["step"]
        line.append(f"bf16 {speedup:.2f}× the fp32 speed, target ≥ {BF16_SPEEDUP_TARGET}: "
                    f"{'meets' if speedup >= BF16_SPEEDUP_TARGET else 'MISSES'}")
    if line:
        print(f"{name} {threads}t: " + "; ".join(line), flush=True)


if __name__ == "__main__":
    main()
