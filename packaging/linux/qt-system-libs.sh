#!/usr/bin/env bash
# The system libraries the workbench window needs on Linux, in one place for `make run`, `.ci/run` and
# the README. PySide6's wheels bundle Qt itself but not the X11/OpenGL/font libraries that Qt's xcb
# platform plugin (the window on an X11 desktop) and QtGui load at start-up; a fresh Debian or Ubuntu
# lacks some of them and Qt then aborts ("xcb-cursor0 or libxcb-cursor0 is needed ...").
# The list was read with `ldd` on PySide6/Qt/plugins/platforms/libqxcb.so and Qt6Gui/XcbQpa/Svg/OpenGL
# (PySide6 6.11), one Debian package per library file that is not part of every base system.
#
# Usage: qt-system-libs.sh list      the packages, one per line
#        qt-system-libs.sh missing   the packages whose library file the dynamic linker cannot find
#        qt-system-libs.sh ensure    nothing missing: exit 0; as root with apt-get: install the missing
#                                    packages; otherwise print the exact command to run and exit 1
#        qt-system-libs.sh display   exit 1 with an explanation when there is no desktop to open a
#                                    window on (Qt would print the same misleading xcb-cursor0 message)
# EMBSR_SKIP_QT_LIBS_CHECK=1 skips `ensure` (e.g. on a distribution whose linker cache lies).
set -euo pipefail

# library file the linker must find -> Debian/Ubuntu package that provides it
LIBS=(
  "libxcb-cursor.so.0 libxcb-cursor0"
  "libxcb-icccm.so.4 libxcb-icccm4"
  "libxcb-image.so.0 libxcb-image0"
  "libxcb-keysyms.so.1 libxcb-keysyms1"
  "libxcb-randr.so.0 libxcb-randr0"
  "libxcb-render-util.so.0 libxcb-render-util0"
  "libxcb-render.so.0 libxcb-render0"
  "libxcb-shape.so.0 libxcb-shape0"
  "libxcb-shm.so.0 libxcb-shm0"
  "libxcb-sync.so.1 libxcb-sync1"
  "libxcb-util.so.1 libxcb-util1"
  "libxcb-xfixes.so.0 libxcb-xfixes0"
  "libxcb-xkb.so.1 libxcb-xkb1"
  "libxcb-glx.so.0 libxcb-glx0"
  "libxcb.so.1 libxcb1"
  "libX11-xcb.so.1 libx11-xcb1"
  "libX11.so.6 libx11-6"
  "libxkbcommon-x11.so.0 libxkbcommon-x11-0"
  "libxkbcommon.so.0 libxkbcommon0"
  "libEGL.so.1 libegl1"
  "libGL.so.1 libgl1"
  "libfontconfig.so.1 libfontconfig1"
  "libfreetype.so.6 libfreetype6"
  "libdbus-1.so.3 libdbus-1-3"
  "libglib-2.0.so.0 libglib2.0-0"
)

linker_cache() {
  # The library files the dynamic linker knows (ldconfig lives in /sbin for non-root users too).
  local ldconfig
  ldconfig=$(command -v ldconfig || true)
  for candidate in /sbin/ldconfig /usr/sbin/ldconfig; do
    [ -n "$ldconfig" ] || { [ -x "$candidate" ] && ldconfig=$candidate; }
  done
  [ -n "$ldconfig" ] || { echo "qt-system-libs: ldconfig not found; cannot check the libraries" >&2; return 1; }
  "$ldconfig" -p
}

list() {
  local entry
  for entry in "${LIBS[@]}"; do echo "${entry#* }"; done
}

missing() {
  local cache entry file pkg
  cache=$(linker_cache)
  for entry in "${LIBS[@]}"; do
    file=${entry%% *}
    pkg=${entry#* }
    # ldconfig -p lines read "	libfoo.so.1 (libc6,x86-64) => /lib/.../libfoo.so.1"
    grep -qE "^[[:space:]]*${file//./\\.}[[:space:]]" <<<"$cache" || echo "$pkg"
  done
}

ensure() {
  [ "${EMBSR_SKIP_QT_LIBS_CHECK:-0}" = 1 ] && return 0
  [ "$(uname -s)" = Linux ] || return 0  # macOS and Windows wheels carry what Qt needs
  local need
  need=$(missing | tr '\n' ' ' | sed 's/ *$//')
  [ -z "$need" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing the system libraries the workbench window needs: $need"
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need; then
      need=$(missing | tr '\n' ' ' | sed 's/ *$//')
      [ -z "$need" ] && return 0
    fi
  fi
  {
    echo "The workbench window needs system libraries that are not installed: $need"
    if command -v apt-get >/dev/null; then
      echo "Install them with:"
      echo "  sudo apt-get install -y $need"
    else
      echo "Install the packages that provide them with your distribution's package manager"
      echo "(the names above are Debian/Ubuntu package names)."
    fi
    echo "then run the same command again."
  } >&2
  return 1
}

display() {
  [ "$(uname -s)" = Linux ] || return 0
  [ -n "${QT_QPA_PLATFORM:-}${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && return 0
  {
    echo "No desktop to open the workbench window on (neither DISPLAY nor WAYLAND_DISPLAY is set)."
    echo "Start it from a desktop session, or over SSH with X forwarding (ssh -X)."
  } >&2
  return 1
}

case "${1:-}" in
  list) list ;;
  missing) missing ;;
  ensure) ensure ;;
  display) display ;;
  *) echo "usage: $0 list|missing|ensure|display" >&2; exit 2 ;;
esac
