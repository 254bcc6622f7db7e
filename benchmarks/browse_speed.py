"""Data view speed: pages of a large dataset's events and sessions, unfiltered and filtered.

Imports a generated N-row micro-behavior CSV (the import benchmark's generator: Zipf-popular items,
sessions of 5-50 events) into a temporary SQLite store, then times what the Datasets page's data
view asks for: the first and the last page, a page filtered by a popular item, by a rare item, by
an operation, by a session id, and the sessions view. Target: every page under 1 s at 2,000,000
events (the window stays usable while it waits: the page reads in a worker thread). Numbers on a
shared machine are noisy: run twice and report both.

    .venv/bin/python benchmarks/browse_speed.py                  # 2,000,000 rows
    .venv/bin/python benchmarks/browse_speed.py --rows 500000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_line, throwaway_store  # noqa: E402
from import_speed import write_csv  # noqa: E402

from embsr_core.data.browse import BrowseFilter, browse_events, browse_sessions  # noqa: E402
from embsr_core.data.store_io import import_into_store  # noqa: E402

TARGET_S = 1.0


def timed(label: str, call) -> float:  # noqa: ANN001 - a zero-argument callable returning a BrowsePage
    t0 = time.perf_counter()
    page = call()
    seconds = time.perf_counter() - t0
    print(f"  {label:<44} {seconds * 1000:8.1f} ms  ({page.describe()}; {seconds / TARGET_S:.2f} × target)")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    args = parser.parse_args()
    print(machine_line())
    with tempfile.TemporaryDirectory(prefix="embsr-browse-") as tmp, throwaway_store("embsr-browse-") as (store, _):
        csv_path = Path(tmp) / "events.csv"
        write_csv(csv_path, args.rows)
        t0 = time.perf_counter()
        report = import_into_store(store, csv_path, "generic", "bench")
        seconds = time.perf_counter() - t0
        print(f"imported {report.rows_kept:,} events, {report.n_sessions:,} sessions in {seconds:.1f} s")
        n = report.rows_kept
        last = (n - 1) // 100 * 100
        times = [
            timed("events, first page", lambda: browse_events(store, "bench")),
            timed("events, last page (deep offset)", lambda: browse_events(store, "bench", offset=last)),
            timed("events, popular item 1000001", lambda: browse_events(store, "bench", BrowseFilter(item="1000001"))),
            timed("events, rare item 1099999", lambda: browse_events(store, "bench", BrowseFilter(item="1099999"))),
            timed("events, operation Cart", lambda: browse_events(store, "bench", BrowseFilter(operation="Cart"))),
            timed("events, session 4242", lambda: browse_events(store, "bench", BrowseFilter(session="4242"))),
            timed("sessions, first page", lambda: browse_sessions(store, "bench")),
            timed("sessions with operation Order", lambda: browse_sessions(store, "bench",
                                                                           BrowseFilter(operation="Order"))),
        ]
        print(f"slowest page {max(times) * 1000:.0f} ms = {max(times) / TARGET_S:.2f} × the {TARGET_S:.0f} s target")


if __name__ == "__main__":
    main()
