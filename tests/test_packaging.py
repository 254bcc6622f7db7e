"""Fast checks of the packaging files (the real build is `make package`, minutes long, not run here)."""

from __future__ import annotations

import ast
import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
SPEC = PACKAGING / "embsr-workbench.spec"
DESKTOP = PACKAGING / "linux" / "embsr-workbench.desktop"
INSTALL_SH = PACKAGING / "linux" / "install.sh"
ICON_NAME = "embsr-workbench"


def _spec_tree() -> ast.Module:
    return ast.parse(SPEC.read_text(encoding="utf-8"), str(SPEC))


def _strings(tree: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [
        n for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name
    ]


def _collected_packages(tree: ast.AST) -> set[str]:
    calls = _calls(tree, "collect_submodules")
    return {c.args[0].value for c in calls if isinstance(c.args[0], ast.Constant)}


def test_spec_names_the_entry_script_and_existing_data_folders() -> None:
    tree = _spec_tree()
    strings = _strings(tree)
    assert {"packaging", "entry.py"} <= strings
    entry = PACKAGING / "entry.py"
    assert "from app.__main__ import main" in entry.read_text(encoding="utf-8")
    # resources/ goes to <bundle>/resources, where app/resources.py looks for it under sys._MEIPASS
    assert "resources" in strings
    assert (ROOT / "resources" / "icons").is_dir() and (ROOT / "resources" / "style").is_dir()
    # Alembic loads env.py and versions/*.py from files at run time
    assert "migrations/**/*.py" in strings
    migrations = ROOT / "embsr_core" / "store" / "migrations"
    assert (migrations / "env.py").is_file()
    assert list((migrations / "versions").glob("*.py"))


def test_spec_is_one_folder_and_leaves_qt_to_the_stock_hooks() -> None:
    tree = _spec_tree()
    (exe,) = _calls(tree, "EXE")
    options = {k.arg: k.value for k in exe.keywords}
    assert isinstance(options["exclude_binaries"], ast.Constant) and options["exclude_binaries"].value is True
    assert len(_calls(tree, "COLLECT")) == 1
    assert not any(name.startswith("PySide6") for name in _collected_packages(tree))
    assert "tkinter" in _strings(tree)


def test_spec_collects_the_modules_imported_by_name() -> None:
    from embsr_core.data import importers
    from embsr_core.models import registry

    collected = _collected_packages(_spec_tree())
    assert "embsr_core" in collected and "app" in collected
    by_name = [*registry._PROVIDERS, *(f"embsr_core.data.importers.{f}" for f in importers.FORMATS)]
    assert all(module.startswith("embsr_core.") for module in by_name)


def test_desktop_file_is_valid() -> None:
    validator = shutil.which("desktop-file-validate")
    if validator is not None:
        result = subprocess.run([validator, str(DESKTOP)], capture_output=True, text=True, timeout=10)
        assert result.returncode == 0, result.stdout + result.stderr
    text = DESKTOP.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "[Desktop Entry]"
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(text)
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Name"] and entry["Exec"].split()[0] == ICON_NAME
    assert entry["Icon"] == ICON_NAME  # a theme name: no path, no extension
    assert entry["Terminal"] == "false"
    assert entry["Categories"].endswith(";")
    assert entry["StartupWMClass"] == ICON_NAME  # matches QGuiApplication.setDesktopFileName


def test_install_script_parses_and_knows_uninstall() -> None:
    bash = shutil.which("bash")
    assert bash is not None
    subprocess.run([bash, "-n", str(INSTALL_SH)], check=True, timeout=10)
    subprocess.run([bash, "-n", str(PACKAGING / "build.sh")], check=True, timeout=10)
    assert "--uninstall)" in INSTALL_SH.read_text(encoding="utf-8")


def test_resource_helper_resolves_every_icon_from_source(qapp) -> None:
    from app import resources

    icons = sorted((ROOT / "resources" / "icons").glob("*.svg"))
    assert icons
    assert resources.resources_dir() == ROOT / "resources"
    for svg in icons:
        assert resources.resource_path("icons", svg.name) == svg
        assert not resources.svg_pixmap(svg.stem, 24).isNull(), svg
    assert not resources.app_icon().isNull()
    with pytest.raises(FileNotFoundError, match="missing resource file"):
        resources.resource_path("icons", "no-such-icon.svg")


def test_resource_helper_uses_the_bundle_when_frozen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app import resources

    shutil.copytree(ROOT / "resources", tmp_path / "resources")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.resource_path("icons", "embsr.svg") == tmp_path / "resources" / "icons" / "embsr.svg"


def test_icon_render_writes_hicolor_pngs(qapp, tmp_path: Path) -> None:
    sys.path.insert(0, str(PACKAGING / "linux"))
    try:
        import render_icons
    finally:
        sys.path.remove(str(PACKAGING / "linux"))
    (png,) = render_icons.render(ROOT / "resources" / "icons" / "embsr.svg", tmp_path, sizes=(48,))
    assert png == tmp_path / "48x48" / "apps" / f"{ICON_NAME}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
