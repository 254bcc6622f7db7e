#!/usr/bin/env bash
# Build the EMBSR Workbench desktop bundle (PyInstaller --onedir) and the Linux tarball, then prove
# they work: the frozen app's --smoke run on an empty home must exit 0 and create + migrate a fresh
# store in the user data dir (not in the bundle), and the tarball must install into a throwaway HOME.
#
#   bash packaging/build.sh          (or: make package)
#
# Environment: VENV (default .venv), PYI_CLEAN=0 to reuse PyInstaller's analysis cache,
# SKIP_INSTALL_CHECK=1 to skip the tarball install check. Outputs (git-ignored): build/, dist/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-.venv}"
PY="$ROOT/$VENV/bin/python"
NAME=embsr-workbench
BUNDLE="dist/$NAME"
APP_SVG="resources/icons/embsr.svg"

log() { printf '\n== %s\n' "$*"; }
fail() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

[ -x "$PY" ] || fail "no Python at $PY; run 'make install' first (or set VENV)"

# --- preconditions --------------------------------------------------------------------------------
VERSION="$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
ARCH="$(uname -m)"
"$PY" - <<'EOF' || fail "torch in $VENV is a CUDA build; install the CPU wheel (see packaging/README.md)"
import torch
print(f"torch {torch.__version__} (cuda: {torch.version.cuda})")
raise SystemExit(0 if torch.version.cuda is None else 1)
EOF

if ! "$PY" -c 'import PyInstaller' 2>/dev/null; then
    # The requirement is declared once, in pyproject.toml's `packaging` extra.
    REQ="$("$PY" -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["packaging"])')"
    log "installing $REQ into $VENV"
    "$PY" -m pip install -q $REQ
fi
"$PY" -m PyInstaller --version | sed 's/^/pyinstaller /'

# --- build ----------------------------------------------------------------------------------------
log "building $BUNDLE (PyInstaller --onedir; takes minutes)"
CLEAN_FLAG=--clean
[ "${PYI_CLEAN:-1}" = 0 ] && CLEAN_FLAG=
t0="$(now)"
"$PY" -m PyInstaller --noconfirm $CLEAN_FLAG --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/$NAME.spec
BUILD_S="$(elapsed "$t0" "$(now)")"
[ -x "$BUNDLE/$NAME" ] || fail "PyInstaller produced no executable at $BUNDLE/$NAME"

# --- smoke run on an empty home -------------------------------------------------------------------
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# Run a command with a fresh empty HOME/XDG set under $1 (no store URL from the caller's environment).
with_empty_home() {
    local home="$1"; shift
    mkdir -p "$home"/{home,config,data,cache,state}
    env -u EMBSR_DB_URL HOME="$home/home" XDG_CONFIG_HOME="$home/config" XDG_DATA_HOME="$home/data" \
        XDG_CACHE_HOME="$home/cache" XDG_STATE_HOME="$home/state" QT_QPA_PLATFORM=offscreen "$@"
}

# Fails unless the smoke run created a store migrated to the head revision of the source tree.
check_store() {
    local db="$1/data/$NAME/embsr.db"
    [ -f "$db" ] || fail "the frozen app created no store at $db"
    "$PY" - "$db" <<'EOF' || fail "the frozen app did not migrate the store at $db"
import sqlite3, sys
from embsr_core.store.migrate import head_revision
rows = sqlite3.connect(sys.argv[1]).execute("SELECT version_num FROM alembic_version").fetchall()
print(f"store: {sys.argv[1]} at revision {rows} (head {head_revision()})")
raise SystemExit(0 if rows == [(head_revision(),)] else 1)
EOF
}

log "smoke: first start on an empty home"
touch "$TMP/marker"
sleep 1  # so anything the run writes is strictly newer than the marker
t0="$(now)"
with_empty_home "$TMP/first" "$BUNDLE/$NAME" --smoke || fail "frozen --smoke exited $? (first start)"
FIRST_S="$(elapsed "$t0" "$(now)")"
check_store "$TMP/first"
WRITTEN="$(find "$BUNDLE" -newer "$TMP/marker" -print | head -5)"
[ -z "$WRITTEN" ] || fail "the frozen app wrote inside its bundle: $WRITTEN"

log "smoke: second start (warm file cache, existing store)"
t0="$(now)"
with_empty_home "$TMP/first" "$BUNDLE/$NAME" --smoke >/dev/null || fail "frozen --smoke exited $? (second start)"
WARM_S="$(elapsed "$t0" "$(now)")"

# --- tarball --------------------------------------------------------------------------------------
STAGE_NAME="$NAME-$VERSION-linux-$ARCH"
STAGE="dist/$STAGE_NAME"
TARBALL="dist/$STAGE_NAME.tar.gz"
log "packing $TARBALL"
rm -rf "$STAGE" "$TARBALL"
mkdir -p "$STAGE/share/applications" "$STAGE/share/icons/hicolor/scalable/apps"
cp -al "$BUNDLE" "$STAGE/$NAME" 2>/dev/null || cp -a "$BUNDLE" "$STAGE/$NAME"
cp packaging/linux/install.sh "$STAGE/install.sh"
chmod 755 "$STAGE/install.sh"
cp packaging/linux/$NAME.desktop "$STAGE/share/applications/"
cp "$APP_SVG" "$STAGE/share/icons/hicolor/scalable/apps/$NAME.svg"
QT_QPA_PLATFORM=offscreen "$PY" packaging/linux/render_icons.py "$APP_SVG" "$STAGE/share/icons/hicolor"
tar -C dist -czf "$TARBALL" "$STAGE_NAME"
rm -rf "$STAGE"

# --- install check --------------------------------------------------------------------------------
if [ "${SKIP_INSTALL_CHECK:-0}" != 1 ]; then
    log "install check: tarball -> install.sh into an empty HOME -> --smoke"
    mkdir -p "$TMP/unpack"
    tar -C "$TMP/unpack" -xzf "$TARBALL"
    IH="$TMP/installed"
    with_empty_home "$IH" bash "$TMP/unpack/$STAGE_NAME/install.sh"
    DESKTOP="$IH/data/applications/$NAME.desktop"
    APP="$IH/home/.local/opt/$NAME/$NAME"
    [ -f "$DESKTOP" ] || fail "install.sh wrote no launcher at $DESKTOP"
    grep -qx "Exec=$APP" "$DESKTOP" || fail "launcher $DESKTOP does not run $APP"
    [ -f "$IH/data/icons/hicolor/scalable/apps/$NAME.svg" ] || fail "install.sh installed no SVG icon"
    [ -f "$IH/data/icons/hicolor/256x256/apps/$NAME.png" ] || fail "install.sh installed no PNG icon"
    [ -L "$IH/home/.local/bin/$NAME" ] || fail "install.sh made no ~/.local/bin/$NAME link"
    if command -v desktop-file-validate >/dev/null; then desktop-file-validate "$DESKTOP"; fi
    with_empty_home "$IH" "$APP" --smoke >/dev/null || fail "installed app's --smoke exited $?"
    check_store "$IH"
    with_empty_home "$IH" bash "$IH/home/.local/opt/$NAME/install.sh" --uninstall >/dev/null
    [ ! -e "$APP" ] && [ ! -e "$DESKTOP" ] || fail "install.sh --uninstall left files behind"
    [ -f "$IH/data/$NAME/embsr.db" ] || fail "install.sh --uninstall removed the user's data"
    echo "install check: OK (installed, launcher + icons present, --smoke exit 0, uninstalled, data kept)"
fi

# --- summary --------------------------------------------------------------------------------------
log "summary"
echo "bundle:         $BUNDLE ($(du -sh "$BUNDLE" | cut -f1), $(find "$BUNDLE" -type f | wc -l) files)"
echo "tarball:        $TARBALL ($(du -sh "$TARBALL" | cut -f1))"
echo "build time:     ${BUILD_S} s"
echo "start-up time:  ${FIRST_S} s first start on an empty home (start, create + migrate store, render every page, exit)"
echo "                ${WARM_S} s second start (warm file cache, existing store)"
