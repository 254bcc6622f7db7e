"""Fast start: the command line loads PyTorch, pandas and optuna only in the commands that need them.

Checked in fresh interpreters (``sys.modules`` after the command), so an import added at module level of
any CLI module, or of a module the CLI imports at start, fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _cli_child import CHILD

HEAVY = ("torch", "pandas", "optuna", "pyarrow")


def _loaded_after(args: list[str], tmp_path: Path) -> tuple[int, list[str], str]:
    env = {"EMBSR_DB_URL": f"sqlite:///{tmp_path / 'startup.db'}", "HOME": str(tmp_path),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n" + CHILD, *args], env=env,
                          capture_output=True, text=True, timeout=120)
    line = next((x for x in done.stdout.splitlines() if x.startswith("MODULES ")), None)
    assert line is not None, done.stderr[-2000:]
    result = json.loads(line.removeprefix("MODULES "))
    return int(result["code"] or 0), result["loaded"], done.stdout


def test_importing_the_cli_loads_no_heavy_library(tmp_path: Path) -> None:
    code, loaded, _ = _loaded_after(["--version"], tmp_path)
    assert code == 0 and loaded == []


@pytest.mark.parametrize("args", [["--help"], ["datasets", "list"], ["db", "info"]])
def test_help_and_listing_start_without_torch_or_pandas(args: list[str], tmp_path: Path) -> None:
    code, loaded, out = _loaded_after(args, tmp_path)
    assert code == 0, out
    assert loaded == [], f"embsr {' '.join(args)} loaded {loaded}"


def test_a_commands_own_help_loads_what_its_choices_need_but_not_torch(tmp_path: Path) -> None:
    code, loaded, out = _loaded_after(["train", "--help"], tmp_path)
    assert code == 0 and "--threads" in out and "--preset [" in out  # the preset names come from preprocess
    assert "torch" not in loaded and "optuna" not in loaded


def test_runs_list_needs_no_torch(tmp_path: Path) -> None:
    code, loaded, out = _loaded_after(["runs", "list"], tmp_path)
    assert code == 0, out
    assert "torch" not in loaded and "optuna" not in loaded


def test_lazy_choices_and_defaults_still_validate(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from embsr_core.cli import main

    result = CliRunner().invoke(main, ["train", "x", "--preset", "nonsense"])
    assert result.exit_code == 2 and "nonsense" in result.output and "trivago" in result.output
    result = CliRunner().invoke(main, ["generate", "--help"])
    assert result.exit_code == 0 and "default: 0.9" in result.output
    result = CliRunner().invoke(main, ["search", "--help"])
    assert "the paper's grid" in result.output and "0.003" in result.output
    result = CliRunner().invoke(main, ["tune", "--help"])
    assert "median|halving|none" in result.output
