#!/usr/bin/env bash
# This machine's floor for "exec → first window mapped": a hello-world
# Tauri 2 app (src-tauri/benches/hello-tauri: one window, one static page,
# the same tauri version) against the release `earshot`, both started the
# same way as src-tauri/benches/app.sh does (Xvfb, fresh HOME, D-Bus session,
# the window's X map event, window-watch.sh), one warm-up then RUNS starts each.
#
#   src-tauri/benches/window-baseline.sh [RUNS]     (default 5)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-5}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
if [ -z "${EARSHOT_BENCH_SESSION:-}" ]; then
  (cd src-tauri/benches/hello-tauri && CARGO_TARGET_DIR=$TARGET cargo build --release --locked -q)
  EARSHOT_BENCH_SESSION=1 exec dbus-run-session -- keyctl session - "$0" "$@"
fi
export HOME=$(mktemp -d) && export XDG_DATA_HOME="$HOME/.local/share"
Xvfb :92 -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb 2>/dev/null; rm -rf "$HOME"' EXIT
export DISPLAY=:92
sleep 1
. src-tauri/benches/window-watch.sh
measure() { # BIN TITLE: prints the window times, ms
  local t0 t1 app
  for i in $(seq $((RUNS + 1))); do
    start_watching "$HOME/maps"
    t0=$(date +%s%N)
    "$1" >/dev/null 2>&1 &
    app=$!
    t1=$(window_mapped_at "$app" "$2" "$HOME/maps")
    sleep 2
    kill "$app"; wait "$app" 2>/dev/null || true
    [ "$i" -gt 1 ] && printf '%s ' "$(( (t1 - t0) / 1000000 ))"
  done
  echo
}
echo "hello-world Tauri 2: $(measure "$TARGET/release/hello-tauri" Hello)ms"
echo "earshot (logged out): $(measure "$TARGET/release/earshot" Earshot)ms"
