"""packaging/linux/qt-system-libs.sh: the one list of Qt's system libraries, used by `make run`, `.ci/run`
and the README; `ensure` installs them as root with apt-get, else stops with the exact command.

The script runs for real with fake ``ldconfig``, ``id`` and ``apt-get`` first on PATH, so the tests
never touch the machine's packages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "packaging" / "linux" / "qt-system-libs.sh"
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the check is for Linux only")


def _packages() -> list[str]:
    return subprocess.run(["bash", str(SCRIPT), "list"], capture_output=True, text=True, check=True).stdout.split()


def _library_files() -> dict[str, str]:
    """package -> library file, read from the script's own table."""
    table = {}
    for line in SCRIPT.read_text().splitlines():
        parts = line.strip().strip('"').split()
        if len(parts) == 2 and ".so." in parts[0]:
            table[parts[1]] = parts[0]
    return table


def _fake_system(tmp_path: Path, uid: int, absent: set[str]) -> dict[str, str]:
    """PATH with fake ldconfig (knows every library but ``absent``), id and apt-get (records its calls and
    'installs' by adding the packages' files to the linker cache)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cache = tmp_path / "ld.so.cache.txt"
    files = _library_files()
    cache.write_text("".join(f"\t{f} (libc6,x86-64) => /lib/x86_64-linux-gnu/{f}\n"
                             for pkg, f in files.items() if pkg not in absent))
    calls = tmp_path / "apt-calls.txt"
    table = "\n".join(f"{pkg} {f}" for pkg, f in files.items())
    scripts = {
        "ldconfig": f'#!/bin/sh\necho "{len(files)} libs found in cache"\ncat "{cache}"\n',
        "id": f"#!/bin/sh\necho {uid}\n",
        "apt-get": (
            f'#!/bin/bash\necho "$*" >> "{calls}"\n'
            f'[ "$1" = install ] || exit 0\n'
            f'for pkg in "$@"; do\n'
            f'  f=$(printf "%s\\n" "{table}" | awk -v p="$pkg" \'$1 == p {{print $2}}\')\n'
            f'  [ -n "$f" ] && printf "\\t%s (libc6,x86-64) => /lib/%s\\n" "$f" "$f" >> "{cache}"\n'
            f"done\nexit 0\n"
        ),
    }
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    env.pop("EMBSR_SKIP_QT_LIBS_CHECK", None)
    return env


def _run(env: dict[str, str], mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), mode], capture_output=True, text=True, env=env, timeout=30)


def test_the_list_holds_the_libraries_qt_aborts_without():
    packages = _packages()
    assert len(packages) == len(set(packages)) == len(_library_files())
    for needed in ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxkbcommon-x11-0", "libegl1", "libgl1",
                   "libfontconfig1", "libdbus-1-3", "libglib2.0-0"):
        assert needed in packages


def test_nothing_missing_passes_silently(tmp_path):
    env = _fake_system(tmp_path, uid=1000, absent=set())
    assert _run(env, "missing").stdout == ""
    done = _run(env, "ensure")
    assert done.returncode == 0 and done.stdout == done.stderr == ""


def test_a_user_without_root_gets_the_exact_command_and_make_stops(tmp_path):
    env = _fake_system(tmp_path, uid=1000, absent={"libxcb-icccm4", "libxcb-keysyms1"})
    assert _run(env, "missing").stdout.split() == ["libxcb-icccm4", "libxcb-keysyms1"]
    done = _run(env, "ensure")
    assert done.returncode == 1
    assert "sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1\n" in done.stderr
    assert not (tmp_path / "apt-calls.txt").exists()  # never tries to install without root


def test_root_with_apt_get_installs_what_is_missing(tmp_path):
    env = _fake_system(tmp_path, uid=0, absent={"libxcb-cursor0"})
    done = _run(env, "ensure")
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "apt-calls.txt").read_text().splitlines()
    assert calls == ["update -qq", "install -y -qq --no-install-recommends libxcb-cursor0"]
    assert _run(env, "missing").stdout == ""


def test_make_run_ci_and_readme_use_the_same_list():
    makefile = (REPO / "Makefile").read_text()
    assert "run: $(STAMP) qt-libs" in makefile and "$(QT_SYSTEM_LIBS) ensure" in makefile
    assert "packaging/linux/qt-system-libs.sh ensure" in (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert f"sudo apt-get install -y {' '.join(_packages())}" in readme


def test_no_desktop_is_said_before_qt_prints_its_misleading_message(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = _run(env, "display")
    assert done.returncode == 1 and "neither DISPLAY nor WAYLAND_DISPLAY" in done.stderr
    assert _run(dict(env, DISPLAY=":0"), "display").returncode == 0
    assert _run(dict(env, QT_QPA_PLATFORM="offscreen"), "display").returncode == 0
