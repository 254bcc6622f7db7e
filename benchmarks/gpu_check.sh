#!/usr/bin/env bash
# GPU check of issue 16, in one go on a lent CUDA machine (about 5 minutes at most; each step has its own
# time limit and a failing step does not stop the others). Prints every figure; exits 0 without CUDA.
#
#   bash benchmarks/gpu_check.sh            (PYTHON=... to choose the interpreter)
#
# 1. train_step.py: EMBSR step time on CUDA, fp32 and AMP (bf16 autocast)
# 2. gpu_sync_check.py: host synchronisations per training step of the trainer, fp32 and AMP
# 3. train_epoch.py: one epoch through the real trainer on CUDA, fp32 and AMP (generated data)
# 4. DDP smoke with NCCL under torchrun: 2 processes on 2 GPUs (1 process when the machine has one GPU)
set -u
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3 || command -v python)"

if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "no CUDA: nothing to check on this machine (PyTorch sees no CUDA GPU)"
    exit 0
fi

status=0
step() {  # step SECONDS command...: run with a time limit, report a failure and go on
    local limit="$1"; shift
    echo
    echo "== $*"
    local t0=$SECONDS
    timeout "$limit" "$@"
    local rc=$?
    echo "-- exit $rc after $((SECONDS - t0)) s"
    [ $rc -eq 0 ] || status=1
}

"$PY" - <<'EOF'
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s): "
      + ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
      + f"; bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}; NCCL {torch.distributed.is_nccl_available()}")
EOF

step 60 "$PY" benchmarks/train_step.py --models EMBSR --device cuda --steps 20 --warmup 5
step 60 "$PY" benchmarks/train_step.py --models EMBSR --device cuda --steps 20 --warmup 5 --amp
step 45 "$PY" benchmarks/gpu_sync_check.py
step 45 "$PY" benchmarks/gpu_sync_check.py --amp
step 60 "$PY" benchmarks/train_epoch.py --dataset Synthetic --device cuda --epochs 2
step 60 "$PY" benchmarks/train_epoch.py --dataset Synthetic --device cuda --epochs 2 --amp

# DDP smoke: a throw-away store with a generated dataset, then `embsr train --distributed` under torchrun.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export EMBSR_DB_URL="sqlite:///$tmp/ddp.db"
gpus="$("$PY" -c "import torch; print(torch.cuda.device_count())")"
procs=$(( gpus >= 2 ? 2 : 1 ))
[ "$procs" -eq 2 ] || echo "(one GPU: the NCCL smoke runs 1 process; 2 processes need 2 GPUs)"
step 30 "$PY" -m embsr_core.cli generate --name ddp --sessions 3000 --items 500
step 90 "$PY" -m torch.distributed.run --standalone --nproc-per-node "$procs" -m embsr_core.cli train ddp \
    --distributed --device cuda --max-epochs 2 --batch-size 128 --param embedding_dim=32
step 15 "$PY" -m embsr_core.cli runs list

echo
[ $status -eq 0 ] && echo "gpu_check: every step passed" || echo "gpu_check: some step FAILED (see above)"
exit $status
