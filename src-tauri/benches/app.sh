#!/usr/bin/env bash
# The desktop app's figures for docs/PERFORMANCE.md, measured as issue 5 asks:
# under Xvfb (no GPU), fresh HOME, release builds, against `earshotd demo`
# with 100,000 more calls imported and one 60-minute recording.
#
#   1. play to first audio (60-minute recording, loopback), RUNS times
#      (crates/client/examples/first_audio.rs);
#   2. the app signs in once as the admin (who sees every call) and, with
#      FILL=1 (default), pages through the whole history so the local cache
#      holds 100,000+ calls;
#   3. one warm-up start, then RUNS starts, each resuming from the keyring
#      and the cache: exec → first window mapped (its X MapNotify event), exec →
#      first history rows on screen (the app's own "shown" log line), and
#      PSS summed over the app and its WebKit processes 10 s after start;
#   4. when the hello-world Tauri 2 app is built (window-baseline.sh builds
#      it), the same window measurement for it, in the same conditions.
#
#   src-tauri/benches/app.sh [RUNS]          (default 5)
# Needs: cargo build --release -p earshot-service --bin earshotd
#        -p earshot-desktop --bin earshot -p earshot-client --example first_audio
#        and x11-utils (xev), xdotool, Xvfb, sox, sqlite3, keyutils, dbus
set -euo pipefail
cd "$(dirname "$0")/../.."
# The app keeps its token in the OS keyring: run in a D-Bus session and a
# fresh kernel session keyring, as a desktop session would provide.
if [ -z "${EARSHOT_BENCH_SESSION:-}" ]; then
  EARSHOT_BENCH_SESSION=1 exec dbus-run-session -- keyctl session - "$0" "$@"
fi
RUNS=${1:-5}
TARGET=${CARGO_TARGET_DIR:-target}/release
BIN=${BIN:-$TARGET/earshot}
SERVICE=${SERVICE:-$TARGET/earshotd}
FIRST_AUDIO=${FIRST_AUDIO:-$TARGET/examples/first_audio}
FILL=${FILL:-1}
PORT=18282
DISPLAY_NO=:93
work=$(mktemp -d /tmp/earshot-app-bench.XXXXXX)
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

token=$(curl -sf -X POST "$EARSHOT_SERVER/api/v1/session" -H 'content-type: application/json' \
  -d '{"email":"admin@acme.demo","password":"demo-admin"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
import_json() {
  curl -sf -X POST "$EARSHOT_SERVER/api/v1/calls/import" -H "authorization: Bearer $token" \
    -H 'content-type: application/json' --data-binary @"$1" >/dev/null
}
echo "importing 100,000 calls and a 60-minute recording…"
python3 - "$work" <<'PY'
import json, sys, random
work = sys.argv[1]
random.seed(5)
agents = ["ada", "bo", "cy", "di", "ed", "flo"]
now = 1_795_000_000_000
for chunk in range(10):
    calls = []
    for i in range(10_000):
        start = now - random.randrange(365 * 86_400_000)
        agent = f"{random.choice(agents)}@acme.demo"
        answered = random.random() < 0.7
        call = {"direction": random.choice(["inbound", "outbound"]), "started_at": start,
                "external_number": f"+1555{random.randrange(10**7):07d}", "number": "+442071230000"}
        if answered:
            call.update(status="answered", answered_at=start + 8_000, ended_at=start + 8_000 + random.randrange(600_000),
                        parties=[agent], rang=[agent])
        else:
            call.update(status="missed" if call["direction"] == "inbound" else "unanswered", ended_at=start + 30_000,
                        parties=[] if call["direction"] == "inbound" else [agent], rang=[agent])
        calls.append(call)
    json.dump({"calls": calls}, open(f"{work}/import-{chunk}.json", "w"))
PY
for chunk in $(seq 0 9); do import_json "$work/import-$chunk.json"; rm "$work/import-$chunk.json"; done
sox -q -n -r 8000 -c 2 -b 16 "$work/long.wav" synth 3600 sine 300-3000 sine 440 gain -12
python3 - "$work" <<'PY'
import base64, json, sys, time
work = sys.argv[1]
start = int(time.time() * 1000) - 7_200_000
wav = base64.b64encode(open(f"{work}/long.wav", "rb").read()).decode()
call = {"direction": "inbound", "status": "answered", "started_at": start, "answered_at": start + 5_000,
        "ended_at": start + 3_605_000, "number": "+442071230000", "external_number": "+15550060060",
        "parties": ["ada@acme.demo"], "rang": ["ada@acme.demo"], "decided_by": "company",
        "recording": {"wav_base64": wav}}
json.dump({"calls": [call]}, open(f"{work}/long.json", "w"))
PY
import_json "$work/long.json"
rm "$work/long.json" "$work/long.wav"

echo "== play to first audio (60-minute recording, loopback)"
"$FIRST_AUDIO" "$EARSHOT_SERVER" admin@acme.demo demo-admin "$RUNS"

pss_of_tree() { # PSS in kB of a process and all its descendants
  local total=0 pid
  for pid in $(pstree -p -T "$1" | grep -o '([0-9]*)' | tr -d '()'); do
    total=$((total + $(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

# exec → window mapped comes from X events (window-watch.sh).
. src-tauri/benches/window-watch.sh

start() { # runs the app once; prints "window_ms history_ms pss_mb"
  local t0 t1 app mode=${1:-} bin=${2:-$BIN} title=${3:-Earshot}
  start_watching "$work/maps"
  t0=$(date +%s%N)
  EARSHOT_LOG=info,earshot::timing=info "$bin" >"$work/app.log" 2>&1 &
  app=$!
  if ! t1=$(window_mapped_at "$app" "$title" "$work/maps"); then
    echo "$title exited before its window was shown:" >&2
    tail -n 5 "$work/app.log" >&2
    return 1
  fi
  if [ "$mode" = login ]; then
    sleep 3
    xdotool mousemove 550 382 click 1; sleep 0.3
    xdotool key ctrl+a; xdotool type admin@acme.demo; xdotool key Tab; xdotool type demo-admin; xdotool key Return
    sleep 4
    if [ "$FILL" = 1 ]; then
      # End goes to the last loaded row; each press loads the next page.
      xdotool mousemove 300 400 click 1
      local filled
      filled=$(date +%s)
      xdotool key --repeat 560 --delay 120 End
      sleep 5
      echo "   (filled the cache by paging through the history in $(( $(date +%s) - filled )) s)" >&2
    fi
  else
    sleep 10
  fi
  local pss history
  pss=$(pss_of_tree "$app")
  history=$(grep -o 'what=history since_start_ms=[0-9]*' "$work/app.log" | grep -o '[0-9]*$' | head -n 1 || true)
  kill "$app"; wait "$app" 2>/dev/null || true
  cp "$work/app.log" "/tmp/earshot-app-bench-last.log"
  echo "$(( (t1 - t0) / 1000000 )) ${history:-?} $((pss / 1024))"
}

# Now and then (about one start in 20 here) GTK can't initialise under
# Xvfb, the hello-world app's as well as ours: such a start is retried once.
measured() {
  start "$@" || { echo "   (the app did not start; retried)" >&2; start "$@"; }
}

echo "== window, history and memory"
measured login >/dev/null
cached=$(sqlite3 "$XDG_DATA_HOME/app.earshot.desktop/cache.db" 'SELECT COUNT(*) FROM calls' 2>/dev/null || echo '?')
echo "calls in the app's cache: $cached"
measured >/dev/null # warm-up
windows=() histories=() pss=()
for i in $(seq "$RUNS"); do
  read -r w h p < <(measured)
  windows+=("$w"); histories+=("$h"); pss+=("$p")
  echo "run $i: window ${w} ms, history rendered ${h} ms, PSS ${p} MB"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median over $RUNS runs: window $(median "${windows[@]}") ms, history $(median "${histories[@]}") ms, PSS $(median "${pss[@]}") MB"

# This machine's floor in the same conditions (earshotd and its 100,000 calls
# on the same cores): a hello-world Tauri 2 app (src-tauri/benches/hello-tauri,
# built by window-baseline.sh), started, measured and stopped the same way.
HELLO=${HELLO:-$TARGET/hello-tauri}
if [ -x "$HELLO" ]; then
  echo "== the floor: a hello-world Tauri 2 app, the same way"
  measured "" "$HELLO" Hello >/dev/null # warm-up
  hellos=()
  for i in $(seq "$RUNS"); do
    read -r w _ _ < <(measured "" "$HELLO" Hello)
    hellos+=("$w")
    echo "run $i: window ${w} ms"
  done
  echo "median over $RUNS runs: hello-world window $(median "${hellos[@]}") ms"
fi
