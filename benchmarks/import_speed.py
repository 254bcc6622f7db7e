"""Import speed: a generated N-row micro-behavior CSV into a temp SQLite store, then read it back.

Targets (issue 3): ≥ 300,000 rows/s end to end and peak RSS < 1.5 GB for 5,000,000 rows; read-back
≥ 1,000,000 rows/s. On a shared machine the numbers are noisy: run twice and report both.

    .venv/bin/python benchmarks/import_speed.py            # 5,000,000 rows
    .venv/bin/python benchmarks/import_speed.py --rows 500000
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from embsr_core.data.events import JD_OPERATIONS
from embsr_core.data.store_io import import_into_store, load_events
from embsr_core.store import open_store


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def write_csv(path: Path, rows: int, *, seed: int = 0, block: int = 500_000) -> None:
    """Sessions of 5-50 micro-behaviors over 100k Zipf-popular items, written block by block."""
    rng = np.random.default_rng(seed)
    ops = np.asarray(JD_OPERATIONS)
    n_items = 100_000
    popularity = 1.0 / np.arange(1, n_items + 1) ** 1.1
    popularity /= popularity.sum()
    written, session, clock = 0, 0, 1_600_000_000.0
    with path.open("w") as out:
        out.write("session_id,item_id,operation,timestamp,dwell\n")
        while written < rows:
            n = min(block, rows - written)
            lengths = rng.integers(5, 51, size=n // 5 + 1)
            lengths = lengths[: np.searchsorted(np.cumsum(lengths), n) + 1]
            lengths[-1] -= lengths.sum() - n
            sess = np.repeat(np.arange(session, session + len(lengths)), lengths)
            gaps = rng.exponential(30.0, size=n).round(1)
            frame = pd.DataFrame(
                {
                    "session_id": sess,
                    "item_id": rng.choice(n_items, size=n, p=popularity) + 1_000_000,
                    "operation": ops[rng.integers(0, len(ops), size=n)],
                    "timestamp": clock + np.cumsum(gaps),
                    "dwell": rng.integers(1, 300, size=n),
                }
            )
            frame.to_csv(out, header=False, index=False, float_format="%.1f")
            written += n
            session += len(lengths)
            clock += float(gaps.sum())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows in the generated CSV (default 5,000,000)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="embsr-bench-") as tmp:
        csv_path = Path(tmp) / "events.csv"
        t0 = time.perf_counter()
        write_csv(csv_path, args.rows)
        size_mb = csv_path.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows ({size_mb:,.0f} MB) in {time.perf_counter() - t0:.1f} s; "
              f"peak RSS so far {peak_rss_mb():,.0f} MB")
        store = open_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        t0, c0 = time.perf_counter(), time.process_time()
        report = import_into_store(store, csv_path, "generic", "bench")
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        import_rss = peak_rss_mb()
        print(f"import:    {report.rows_kept:,} rows, {report.n_sessions:,} sessions, {report.n_items:,} items "
              f"in {seconds:.1f} s = {report.rows_kept / seconds:,.0f} rows/s end to end "
              f"(target ≥ 300,000); {cpu:.1f} CPU-s = {report.rows_kept / cpu:,.0f} rows per CPU-second; "
              f"peak RSS {import_rss:,.0f} MB (target < 1,500)")
        t0, c0 = time.perf_counter(), time.process_time()
        frame = load_events(store, "bench")
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"read-back: {len(frame):,} rows in {seconds:.2f} s = {len(frame) / seconds:,.0f} rows/s "
              f"(target ≥ 1,000,000); {cpu:.1f} CPU-s = {len(frame) / cpu:,.0f} rows per CPU-second; "
              f"peak RSS {peak_rss_mb():,.0f} MB")
        print(f"note: the 2-core machine is shared with other engineers (load average {os.getloadavg()[0]:.1f}); "
              "wall-clock rates are noisy, rows per CPU-second are what the code costs.")
        store.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
