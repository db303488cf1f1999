#!/usr/bin/env bash
# Earshot's AppImage, made from the Debian package's tree (`./x bundle`
# builds that first, from tauri.conf.json and icons/), and checked: it is
# started under Xvfb and must show its window.
#
# Tauri's own AppImage bundler downloads linuxdeploy, its GTK plugin and the
# AppImage runtime from GitHub, which this machine cannot reach. What an
# AppImage is, though, is small: the AppImage runtime (an ELF that mounts the
# SquashFS image appended to it with FUSE, or extracts it, and runs its
# AppRun) followed by a SquashFS of the AppDir. The runtime used here is
# AppImageKit's type-2 runtime as published on crates.io inside the
# `appimage` crate 0.4.0 (MIT / Apache-2.0), checked against a pinned
# SHA-256; the SquashFS comes from Debian's squashfs-tools.
#
# Like the .deb, the AppImage uses the system's WebKitGTK 4.1 and ALSA
# (libwebkit2gtk-4.1-0, libasound2) rather than carrying them; the runtime
# mounts with libfuse2, or runs with --appimage-extract-and-run without it.
#
#   src-tauri/appimage.sh        (after: cd src-tauri && tauri build --bundles deb)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
BUNDLE=$TARGET/release/bundle
RUNTIME_CRATE=appimage-0.4.0.crate
RUNTIME_CRATE_SHA256=567a4da6b94a2ac20a27620933c80fc14cf475b5fe7d7b137d20eb237d6b1920
RUNTIME_SHA256=328e0d745c5c6817048c27bc3e8314871703f8f47ffa81a37cb06cd95a94b323

deb_data=$(find "$BUNDLE/deb" -mindepth 2 -maxdepth 2 -type d -name data | head -n 1)
[ -n "$deb_data" ] || { echo "no Debian package tree in $BUNDLE/deb: build the .deb first" >&2; exit 1; }
version=$(python3 -c 'import json; print(json.load(open("tauri.conf.json"))["version"])')
work=$BUNDLE/appimage
mkdir -p "$work"

# The runtime, from crates.io.
runtime=$work/runtime-x86_64
if ! echo "$RUNTIME_SHA256  $runtime" | sha256sum -c --quiet >/dev/null 2>&1; then
  curl -sfL -o "$work/$RUNTIME_CRATE" "https://static.crates.io/crates/appimage/$RUNTIME_CRATE"
  echo "$RUNTIME_CRATE_SHA256  $work/$RUNTIME_CRATE" | sha256sum -c --quiet
  tar -xzf "$work/$RUNTIME_CRATE" -C "$work" --strip-components=2 appimage-0.4.0/assets/runtime-x86_64
  echo "$RUNTIME_SHA256  $runtime" | sha256sum -c --quiet
  rm "$work/$RUNTIME_CRATE"
fi

# The AppDir: the .deb's tree, plus what the AppImage format asks for at its
# top: AppRun, the desktop entry, its icon and .DirIcon.
appdir=$work/Earshot.AppDir
rm -rf "$appdir"
cp -a "$deb_data" "$appdir"
desktop=$(find "$appdir/usr/share/applications" -name '*.desktop' | head -n 1)
cp "$desktop" "$appdir/"
icon=$(sed -n 's/^Icon=//p' "$desktop")
cp "$appdir/usr/share/icons/hicolor/128x128/apps/$icon.png" "$appdir/$icon.png"
ln -s "$icon.png" "$appdir/.DirIcon"
binary=$(sed -n 's/^Exec=\([^ ]*\).*/\1/p' "$desktop")
cat >"$appdir/AppRun" <<EOF
#!/bin/sh
# Earshot, from inside the AppImage.
here=\$(dirname "\$(readlink -f "\$0")")
exec "\$here/usr/bin/$binary" "\$@"
EOF
chmod +x "$appdir/AppRun"

image=$BUNDLE/appimage/Earshot_${version}_amd64.AppImage
mksquashfs "$appdir" "$work/earshot.squashfs" -root-owned -noappend -comp gzip -quiet >/dev/null
cat "$runtime" "$work/earshot.squashfs" >"$image"
chmod +x "$image"
rm -r "$work/earshot.squashfs" "$appdir"

# The check: the AppImage starts (FUSE-mounted when it can be, else
# extracted) and shows Earshot's window.
check() {
  local display=:97 app found=
  Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
  local xvfb=$!
  local home
  home=$(mktemp -d)
  sleep 1
  if [ -e /dev/fuse ] && ldconfig -p | grep -q 'libfuse.so.2'; then
    HOME=$home DISPLAY=$display dbus-run-session -- "$image" >"$home/log" 2>&1 &
  else
    HOME=$home DISPLAY=$display dbus-run-session -- "$image" --appimage-extract-and-run >"$home/log" 2>&1 &
  fi
  app=$!
  for _ in $(seq 300); do
    if DISPLAY=$display xdotool search --onlyvisible --name '^Earshot$' >/dev/null 2>&1; then found=1; break; fi
    kill -0 "$app" 2>/dev/null || break
    sleep 0.1
  done
  pkill -P "$app" 2>/dev/null || true
  kill "$app" 2>/dev/null || true
  wait "$app" 2>/dev/null || true
  kill "$xvfb" 2>/dev/null || true
  # The session's document portal may have mounted its FUSE file system there.
  fusermount -u -z "$home/.cache/doc" 2>/dev/null || true
  if [ -z "$found" ]; then
    echo "the AppImage did not show Earshot's window:" >&2
    tail -n 20 "$home/log" >&2
  fi
  rm -rf "$home" 2>/dev/null || true
  [ -n "$found" ]
}
# GTK now and then fails to initialise under Xvfb: a second start is allowed.
check || check
echo "$image ($(du -h "$image" | cut -f1)): starts and shows its window"
