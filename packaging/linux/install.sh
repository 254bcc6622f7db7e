#!/usr/bin/env bash
# Install (or remove) EMBSR Workbench for the current user; no root, no Python needed.
#
#   bash install.sh              install from this extracted tarball
#   bash install.sh --uninstall  remove the app, launcher and icons (your data is kept)
#
# Installs:  the app        ~/.local/opt/embsr-workbench/
#            the launcher   ${XDG_DATA_HOME:-~/.local/share}/applications/embsr-workbench.desktop
#            the icons      ${XDG_DATA_HOME:-~/.local/share}/icons/hicolor/{scalable,NxN}/apps/
#            a command      ~/.local/bin/embsr-workbench (symlink)
# Your data (database, checkpoints, caches) lives in ${XDG_DATA_HOME:-~/.local/share}/embsr-workbench
# and your settings in ${XDG_CONFIG_HOME:-~/.config}/; neither is touched by install or uninstall.
set -euo pipefail

NAME=embsr-workbench
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OPT_DIR="$HOME/.local/opt/$NAME"
SHARE_DIR="${XDG_DATA_HOME:-$HOME/.local/share}"
APPS_DIR="$SHARE_DIR/applications"
ICONS_DIR="$SHARE_DIR/icons/hicolor"
BIN_LINK="$HOME/.local/bin/$NAME"

usage() { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

refresh_caches() {
    # Optional helpers: menus pick the launcher up without them, only later.
    command -v update-desktop-database >/dev/null && update-desktop-database -q "$APPS_DIR" || true
    command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$ICONS_DIR" 2>/dev/null || true
}

uninstall() {
    rm -rf "$OPT_DIR"
    rm -f "$APPS_DIR/$NAME.desktop"
    rm -f "$ICONS_DIR"/*/apps/"$NAME".png "$ICONS_DIR/scalable/apps/$NAME.svg"
    if [ -L "$BIN_LINK" ]; then rm -f "$BIN_LINK"; fi
    refresh_caches
    echo "EMBSR Workbench removed."
    echo "Kept your data: $SHARE_DIR/$NAME (database, checkpoints, caches) and settings in ${XDG_CONFIG_HOME:-$HOME/.config}/."
    echo "Delete those folders yourself if you want them gone."
}

install() {
    local bundle="$HERE/$NAME"
    if [ ! -x "$bundle/$NAME" ]; then
        echo "install.sh: no app bundle at $bundle/$NAME; run this script from the extracted tarball" >&2
        exit 1
    fi
    mkdir -p "$(dirname "$OPT_DIR")" "$APPS_DIR" "$ICONS_DIR" "$(dirname "$BIN_LINK")"

    # Copy next to the target, then swap: a failed copy never leaves half an app behind.
    local staging="$OPT_DIR.new.$$"
    rm -rf "$staging"
    cp -a "$bundle" "$staging"
    cp "$HERE/install.sh" "$staging/install.sh"  # so `~/.local/opt/embsr-workbench/install.sh --uninstall` works
    rm -rf "$OPT_DIR"
    mv "$staging" "$OPT_DIR"

    # The launcher runs the app by absolute path: ~/.local/bin is not on every desktop session's PATH.
    sed -e "s|^Exec=.*|Exec=$OPT_DIR/$NAME|" "$HERE/share/applications/$NAME.desktop" >"$APPS_DIR/$NAME.desktop"
    chmod 644 "$APPS_DIR/$NAME.desktop"

    (cd "$HERE/share/icons/hicolor" && find . -type f -name "$NAME.*" | while read -r icon; do
        mkdir -p "$ICONS_DIR/$(dirname "$icon")"
        cp "$icon" "$ICONS_DIR/$icon"
    done)

    ln -sfn "$OPT_DIR/$NAME" "$BIN_LINK"
    refresh_caches
    echo "EMBSR Workbench installed in $OPT_DIR"
    echo "Start it from your applications menu, or run: $BIN_LINK"
    echo "Remove it with: bash $OPT_DIR/install.sh --uninstall"
}

case "${1:-}" in
    "") install ;;
    --uninstall) uninstall ;;
    -h | --help) usage ;;
    *) echo "install.sh: unknown option '$1' (expected --uninstall or --help)" >&2; exit 2 ;;
esac
