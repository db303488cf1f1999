#!/usr/bin/env bash
# Concurrent recorded calls through earshotd, measured the way issue 4 asks
# (docs/PERFORMANCE.md): a sipp UAC (a registered user) places calls to an
# outside number and streams speech as PCMU; each call leaves through the
# trunk to a sipp UAS that answers and echoes RTP. 30 s calls, -l N -r N/10
# -m 2N. The service's CPU (utime + stime from /proc) is sampled over the
# steady window, when N calls are up.
#
#   crates/service/benches/calls.sh [N ...]          default: 50 100 200 400
#   RECORD=off crates/service/benches/calls.sh 200   recording off
#   PERF=/tmp/calls.perf crates/service/benches/calls.sh 100
#                                 also records a perf profile of the window
#   EARSHOTD=/tmp/a/earshotd crates/service/benches/calls.sh 200
#                                 measures that binary (no build), to compare
#                                 two builds in turns in one session
#   PEER_SCHED=-b crates/service/benches/calls.sh 200
#                                 runs the sipp peers under chrt -b (SCHED_BATCH),
#                                 so a woken peer does not preempt the relay
#   KEEP=1 crates/service/benches/calls.sh 200    keeps the recordings, database and logs
#   PIN=1 crates/service/benches/calls.sh 200        earshotd on CPU 0, the sipp
#                                 peers on CPU 1 (taskset), so they do not preempt it
#
# Prints, per N: % of one core per concurrent call, resident memory, calls
# and recordings written vs expected, and packets lost: those missing from
# the recordings (20 ms runs of exact silence on either channel, the
# caller's or its echo, between the channel's first and last sample; the
# source has none) and those the echo peer's kernel dropped on its full
# receive buffer, which never came back to us (the relay sent them in
# bursts it could not take). With recording on, a packet the peer dropped
# is also missing from its recording's echo channel, so the two counts
# overlap; with recording off the peer's drops are the only loss seen.
# Also: datagrams our own sockets dropped.
set -euo pipefail
cd "$(dirname "$0")/../../.."
TALK_MS=${TALK_MS:-30000}
RECORD=${RECORD:-on}
# With PIN=1 the service and the peers get a core each.
ON_SERVICE=() ON_PEERS=()
if [ "${PIN:-}" = 1 ]; then ON_SERVICE=(taskset -c 0) ON_PEERS=(taskset -c 1); fi
if [ -n "${PEER_SCHED:-}" ]; then ON_PEERS=(chrt "$PEER_SCHED" 0 "${ON_PEERS[@]}"); fi
LEVELS=("$@")
[ ${#LEVELS[@]} -gt 0 ] || LEVELS=(50 100 200 400)
if [ -n "${EARSHOTD:-}" ]; then
  BIN=$EARSHOTD
else
  BIN=${CARGO_TARGET_DIR:-target}/release/earshotd
  cargo build --release --locked -p earshot-service --bin earshotd >&2
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d /tmp/earshot-calls.XXXXXX)
# Each level leaves a few hundred MB of recordings: removed at the end unless
# KEEP=1 (to look at the WAVs and logs; the directory is printed).
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "${KEEP:-}" = 1 ]; then echo "kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
# Speech with a faint hum under it, so no 20 ms of the source is exact silence.
espeak-ng -v en-gb -s 160 -w "$WORK/speech.wav" \
  "Thank you for calling Acme. Your call may be recorded. How can I help you today? I would like to check the status of my order." 2>/dev/null
sox "$WORK/speech.wav" -r 8000 -c 1 -b 16 "$WORK/speech8k.wav"
LEN=$(soxi -D "$WORK/speech8k.wav")
sox -n -r 8000 -c 1 -b 16 "$WORK/hum.wav" synth "$LEN" sine 150 vol 0.02
sox -m "$WORK/speech8k.wav" "$WORK/hum.wav" -t ul "$WORK/speech.raw"

HTTP=127.0.0.1:18480 SIP_PORT=15460 TRUNK_PORT=15470
printf 'SEQUENTIAL\n' > "$WORK/unused.csv"

run_level() {
  local n=$1 dir="$WORK/n$1"
  mkdir -p "$dir"
  "$BIN" init --data-dir "$dir" --company Bench --admin-email admin@bench.test --admin-password bench-password 2>/dev/null
  EARSHOT_LOG=warn "${ON_SERVICE[@]}" "$BIN" serve --data-dir "$dir" --http $HTTP --sip 127.0.0.1:$SIP_PORT \
    --rtp-ports 20000-29999 --trunk sip:127.0.0.1:$TRUNK_PORT 2>"$dir/earshotd.log" &
  local pid=$!
  for _ in $(seq 100); do curl -sf "http://$HTTP/healthz" >/dev/null && break; sleep 0.1; done
  local token
  token=$(curl -sf -X POST "http://$HTTP/api/v1/session" -H 'content-type: application/json' \
    -d '{"email":"admin@bench.test","password":"bench-password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  local record=False; [ "$RECORD" = on ] && record=True
  curl -sf -X PUT "http://$HTTP/api/v1/settings" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d "$(curl -sf "http://$HTTP/api/v1/settings" -H "authorization: Bearer $token" | python3 -c "import json,sys; s=json.load(sys.stdin); s['record_outbound']=$record; print(json.dumps(s))")" >/dev/null
  curl -sf -X POST "http://$HTTP/api/v1/numbers" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"e164":"+15550100","name":"Main","flow":[{"type":"voicemail"}]}' >/dev/null
  curl -sf -X POST "http://$HTTP/api/v1/users" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"name":"Load","email":"load@bench.test","role":"agent","extension":"101","password":"load-password","sip_password":"load-sip-secret"}' >/dev/null

  (cd "$dir" && exec "${ON_PEERS[@]}" sipp -sn uas -rtp_echo -i 127.0.0.1 -p $TRUNK_PORT -mp 16000 -nostdin >/dev/null 2>&1) &
  local uas=$!
  sed "s|@RAW@|$WORK/speech.raw|; s|@TALK_MS@|$TALK_MS|; s|@FROM@|101|g" tests/sipp/uac_stream.xml > "$dir/uac.xml"
  local rate=$(( n / 10 )) started
  started=$(date +%s.%N)
  (cd "$dir" && "${ON_PEERS[@]}" sipp 127.0.0.1:$SIP_PORT -sf uac.xml -s +447700900123 -au load@bench.test -ap load-sip-secret \
    -i 127.0.0.1 -p 15490 -mp 17000 -l "$n" -r "$rate" -m $(( 2 * n )) -nostdin -trace_stat -fd 1 \
    -timeout 300s >/dev/null 2>&1) &
  local uac=$!
  # Steady window: all N calls are up from 10 s; the first end at 30 s.
  sleep 12
  if [ -n "${PERF:-}" ]; then
    perf record -g -p "$pid" -o "$PERF" -- sleep 8 >/dev/null 2>&1 &
  fi
  local t0 c0 t1 c1 rss
  read -r t0 c0 < <(cpu "$pid")
  sleep 16
  read -r t1 c1 < <(cpu "$pid")
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  # Datagrams the kernel dropped for want of room in the receiver's buffer:
  # on our RTP sockets (alive now, the first wave of calls), and on the echo
  # peer's one socket (over the whole level, read just before it stops).
  local our_drops peer_drops
  our_drops=$(udp_drops 20000 29999)
  wait $uac || true
  sleep 2
  peer_drops=$(udp_drops 16000 16000)
  kill "$uas" 2>/dev/null || true
  local per_call
  per_call=$(python3 -c "print(f'{($c1-$c0)/($t1-$t0)/$n*100:.4f}')")
  local failed
  failed=$(tail -1 "$dir"/uac_*_.csv 2>/dev/null | awk -F';' '{print $16}' || echo '?')
  python3 - "$dir" "$n" "$per_call" "$rss" "$RECORD" "$our_drops" "$peer_drops" <<'PY'
import sqlite3, sys, wave, array, os, glob
d, n, per_call, rss, record, ours, echo = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), *sys.argv[5:]
db = sqlite3.connect(os.path.join(d, "earshot.db"))
calls = db.execute("select count(*) from calls where status='answered'").fetchone()[0]
recs = db.execute("select file_name from recordings").fetchall()
lost = []
for (name,) in recs:
    with wave.open(os.path.join(d, "recordings", name)) as w:
        frames = array.array("h", w.readframes(w.getnframes()))
    # Both channels: the caller's (left) and the echo of it (right), each
    # from its first sample to its last: before it the stream had not
    # started (sipp starts it after its ACK), after it the call ended.
    packets = 0
    for channel in (frames[0::2], frames[1::2]):
        heard = [i for i, s in enumerate(channel) if s != 0]
        body = channel[heard[0]:heard[-1] + 1] if heard else channel
        run = 0
        for s in body:
            if s == 0:
                run += 1
            else:
                packets += run // 160
                run = 0
        packets += run // 160
    lost.append(packets)
worst = max(lost) if lost else 0
total = sum(lost)
print(f"N={n:<4} recording={record:<3}  {per_call}% of a core per call  RSS {rss/1024:.0f} MB  "
      f"calls answered {calls}/{2*n}  recordings {len(recs)}/{2*n if record=='on' else 0}  "
      f"lost packets: in recordings {total} (worst recording {worst}), dropped at the echo peer {echo}  "
      f"dropped at our sockets {ours}")
PY
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Datagrams dropped on full receive buffers, summed over the IPv4 UDP
# sockets bound to 127.0.0.1 ports LOW..HIGH (/proc/net/udp's last column).
udp_drops() {
  python3 -c '
import sys
low, high = int(sys.argv[1]), int(sys.argv[2])
rows = open("/proc/net/udp").read().splitlines()[1:]
print(sum(int(r.split()[-1]) for r in rows if low <= int(r.split()[1].split(":")[1], 16) <= high))' "$1" "$2"
}

# Clock ticks of CPU (user + system) and the time they were read.
cpu() {
  local now ticks
  now=$(date +%s.%N)
  ticks=$(awk '{print $14 + $15}' "/proc/$1/stat")
  python3 -c "print($now, $ticks / $(getconf CLK_TCK))"
}

for n in "${LEVELS[@]}"; do run_level "$n"; done
