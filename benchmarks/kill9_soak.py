"""A longer kill -9 soak than `make test` runs: tests/test_kill9.py with many kills and several seeds.

Each round kills imports (SQLite, and PostgreSQL when EMBSR_TEST_PG_URL is set) and training runs at
random moments and checks integrity, nothing partial, and exact resume. Prints what was run and the
time it took; exits non-zero on the first failure.

    .venv/bin/python benchmarks/kill9_soak.py                 # 3 seeds x 12 kills
    .venv/bin/python benchmarks/kill9_soak.py --seeds 1 --rounds 30
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="how many random seeds (default 3)")
    parser.add_argument("--rounds", type=int, default=12, help="import kills per seed (a third as many training "
                        "kills; default 12)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    for seed in range(args.seeds):
        env = {**os.environ, "EMBSR_KILL9_ROUNDS": str(args.rounds), "EMBSR_KILL9_SEED": str(100 + seed)}
        t0 = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                                 str(ROOT / "tests" / "test_kill9.py")], cwd=ROOT, env=env)
        print(f"seed {100 + seed}: {args.rounds} import kills, {max(1, args.rounds // 3)} training kills: "
              f"{'passed' if result.returncode == 0 else 'FAILED'} in {time.perf_counter() - t0:.0f} s", flush=True)
        if result.returncode != 0:
            return result.returncode
    print(f"soak passed: {args.seeds} seeds in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
