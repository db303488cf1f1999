#!/usr/bin/env bash
# Measures the desktop app's start the way docs/PERFORMANCE.md describes:
# under Xvfb (no GPU) with a fresh HOME, signed in to `earshotd demo` (the
# first, unmeasured start logs in; every measured start resumes from the
# keyring and the local cache), RUNS starts after one warm-up:
#   - window: from exec to the first window mapped (xdotool --sync);
#   - PSS: summed over the app and its WebKit processes, 10 s after start.
# (Time to the history rendered is measured by the end-to-end run instead.)
# Prints one line per run and the medians.
#
#   src-tauri/benches/window.sh [RUNS]     (default 5; needs a debug or
#   release build: BIN=target/release/earshot)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-5}
BIN=${BIN:-target/release/earshot}
SERVICE=${SERVICE:-target/release/earshotd}
PORT=18282
DISPLAY_NO=:93
work=$(mktemp -d /tmp/earshot-window.XXXXXX)
export HOME="$work/home" XDG_DATA_HOME="$work/home/.local/share" XDG_CONFIG_HOME="$work/home/.config"
mkdir -p "$HOME"
"$SERVICE" demo --data-dir "$work/data" --http "127.0.0.1:$PORT" >"$work/service.log" 2>&1 &
service=$!
Xvfb "$DISPLAY_NO" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
cleanup() { kill "$service" "$xvfb" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
export DISPLAY=$DISPLAY_NO EARSHOT_SERVER="http://127.0.0.1:$PORT"
for _ in $(seq 300); do curl -sf "$EARSHOT_SERVER/healthz" >/dev/null && break; sleep 0.2; done

pss_of_tree() { # PSS in kB of a process and all its descendants
  local total=0 pid
  for pid in $(pstree -p "$1" | grep -o '([0-9]*)' | tr -d '()'); do
    total=$((total + $(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

start() { # runs the app once; prints "window_ms pss_mb"
  local t0 t1 app
  t0=$(date +%s%N)
  "$BIN" >"$work/app.log" 2>&1 &
  app=$!
  xdotool search --sync --onlyvisible --name '^Earshot$' >/dev/null
  t1=$(date +%s%N)
  if [ "${1:-}" = login ]; then
    sleep 3
    xdotool mousemove 550 382 click 1; sleep 0.3
    xdotool key ctrl+a; xdotool type sam@acme.demo; xdotool key Tab; xdotool type demo-sam; xdotool key Return
    sleep 4
  else
    sleep 10
  fi
  local pss
  pss=$(pss_of_tree "$app")
  kill "$app"; wait "$app" 2>/dev/null || true
  echo "$(( (t1 - t0) / 1000000 )) $((pss / 1024))"
}

start login >/dev/null
start >/dev/null # warm-up
windows=() pss=()
for i in $(seq "$RUNS"); do
  read -r w p < <(start)
  windows+=("$w"); pss+=("$p")
  echo "run $i: window ${w} ms, PSS ${p} MB (signed in, history shown)"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median: window $(median "${windows[@]}") ms, PSS $(median "${pss[@]}") MB over $RUNS runs"
