# Sourced by app.sh and window-baseline.sh: "exec → first window mapped",
# seen through X events rather than by polling.
#
# One `xev` listens on the root window for MapNotify, and a Python line
# reader stamps each top-level map with the wall clock; both sit blocked in
# read() until X speaks, so the watcher takes no CPU from the app it times.
# Polling `xdotool search` every 5 ms, as these scripts first did, started a
# process per look, and on two cores that took about 100 ms from the app
# being timed: a hello-world Tauri 2 app measured 217–243 ms that way and
# 110–139 ms this way (docs/PERFORMANCE.md).
#
# Needs xev (x11-utils), xdotool and python3.

# watch_maps FILE: appends "ns window-id" per top-level map until killed.
watch_maps() {
  xev -root -event substructure | python3 -u -c '
import re, sys, time
lines = iter(sys.stdin)
for line in lines:
    if line.startswith("MapNotify"):
        detail = next(lines, "")
        found = re.search(r"window (0x[0-9a-f]+), override NO", detail)
        if found:
            print(time.time_ns(), int(found.group(1), 16), flush=True)
' >>"$1"
}

# start_watching FILE: starts watch_maps in the background, returns once
# xev listens; the watcher's pid is in $WATCHER.
start_watching() {
  : >"$1"
  watch_maps "$1" 2>/dev/null &
  WATCHER=$!
  sleep 0.3
}

# window_mapped_at APP_PID TITLE FILE: waits for a visible window titled
# TITLE that was mapped since start_watching (looking every 100 ms; the time
# comes from the map event, not from this loop: a window of an app still
# going away is not taken for the new one), stops the watcher and prints when
# it was mapped, in ns since the epoch. Fails if the app exits first, or
# after 60 s.
window_mapped_at() {
  local window t tries=0
  while [ "$tries" -lt 600 ]; do
    for window in $(xdotool search --onlyvisible --name "^$2\$" 2>/dev/null); do
      t=$(awk -v w="$window" '$2 == w {print $1; exit}' "$3")
      if [ -n "$t" ]; then
        pkill -P "$WATCHER" 2>/dev/null || true
        echo "$t"
        return 0
      fi
    done
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
    tries=$((tries + 1))
  done
  pkill -P "$WATCHER" 2>/dev/null || true
  return 1
}
