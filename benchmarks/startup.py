"""Start-up times: `embsr --help`, `embsr datasets list`, `embsr runs list` and the window's first show.

Each figure is the median (and the minimum, the least disturbed by other programs) of ``--repeats``
(default 3) fresh processes, measured from before the
process is started until it has finished (CLI) or until the main window has been shown, its first
event-loop turn ran and it was painted (window, offscreen; the device in the status bar is filled in
after that, as the app does). The processes use a throw-away store and user folders, so
nothing of the user's is read or written. Targets (issue 16): CLI ≤ 0.5 s, window ≤ 3 s, on a quiet
machine: the load average is printed beside the figures because a busy machine inflates them.

    python benchmarks/startup.py [--repeats 3] [--no-window]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI_TARGET_S = 0.5
WINDOW_TARGET_S = 3.0
CLI_COMMANDS = (["--help"], ["datasets", "list"], ["runs", "list"])

# Runs in the child: build the application and the main window as `python -m app` does, show it, and
# print the seconds since the parent started the process once the first event-loop turn has run.
WINDOW_CHILD = r"""
import os, resource, sys, time
from PySide6.QtCore import QTimer
from app.application import create_context, ensure_application
from app.main_window import DEFAULT_SIZE, MainWindow
app = ensure_application()
context = create_context(None, None)
window = MainWindow(context, persist=False)
window.resize(DEFAULT_SIZE)
window.show()
def shown():
    window.repaint()  # painted, not just mapped
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"shown {time.time() - float(os.environ['EMBSR_T0']):.3f} {usage.ru_utime + usage.ru_stime:.3f}", flush=True)
    window.close()
    context.runner.shutdown()
    app.quit()
QTimer.singleShot(0, shown)
app.exec()
"""


def isolated_env(folder: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        EMBSR_DB_URL=f"sqlite:///{folder / 'startup.db'}",
        HOME=str(folder),
        XDG_CONFIG_HOME=str(folder / "config"),
        XDG_DATA_HOME=str(folder / "data"),
        XDG_CACHE_HOME=str(folder / "cache"),
        QT_QPA_PLATFORM="offscreen",
    )
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_cli(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one ``embsr ARGS`` process. A start is single-threaded, so its CPU
    time is about what the wall time is on a quiet machine; on a busy one the wall time is inflated."""
    start, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run([sys.executable, "-m", "embsr_core.cli", *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"embsr {' '.join(args)} failed: {done.stderr.strip()[-400:]}")
    return seconds, _children_cpu() - cpu


def time_window(env: dict[str, str]) -> tuple[float, float]:
    """(seconds until the window was shown and painted, CPU seconds the process had used by then)."""
    env = {**env, "EMBSR_T0": repr(time.time())}
    done = subprocess.run([sys.executable, "-c", WINDOW_CHILD], env=env, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("shown ")]
    if not lines:
        raise RuntimeError(f"the window did not show: {done.stderr.strip()[-600:]}")
    _, seconds, cpu = lines[-1].split()
    return float(seconds), float(cpu)


def verdict(value: float, target: float) -> str:
    return f"{value / target:.2f}× target ({'met' if value <= target else 'NOT met'})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-window", action="store_true", help="time the command line only")
    args = parser.parse_args(argv)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"machine: {os.cpu_count()} logical CPUs, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
          f"(1 / 5 / 15 min); python {sys.version.split()[0]}; median of {args.repeats}")
    with tempfile.TemporaryDirectory(prefix="embsr-startup-") as tmp:
        env = isolated_env(Path(tmp))
        time_cli(["db", "info"], env)  # creates the store once (its migrations are not start-up time)
        for command in CLI_COMMANDS:
            runs = [time_cli(list(command), env) for _ in range(args.repeats)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            print(f"embsr {' '.join(command):<14} wall {wall:5.2f} s, min {min(r[0] for r in runs):4.2f} s "
                  f"(runs {', '.join(f'{r[0]:.2f}' for r in runs)}), CPU {cpu:4.2f} s; target ≤ {CLI_TARGET_S} s: "
                  f"wall {verdict(wall, CLI_TARGET_S)}, CPU {verdict(cpu, CLI_TARGET_S)}", flush=True)
        if not args.no_window:
            shows = [time_window(env) for _ in range(args.repeats)]
            median = statistics.median(s[0] for s in shows)
            cpu = statistics.median(s[1] for s in shows)
            print(f"window first shown {median:5.2f} s, min {min(s[0] for s in shows):4.2f} s "
                  f"(runs {', '.join(f'{s[0]:.2f}' for s in shows)}), CPU {cpu:4.2f} s; "
                  f"target ≤ {WINDOW_TARGET_S} s: {verdict(median, WINDOW_TARGET_S)}")


if __name__ == "__main__":
    main()
