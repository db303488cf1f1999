#!/usr/bin/env bash
# One earshotd answering SIP directly, against two earshotd behind Kamailio
# (deploy/kamailio/kamailio.cfg), on the same machine and one PostgreSQL
# (issue 17's Measure, docs/PERFORMANCE.md). The relay benchmark's method
# (calls.sh): registered users place recorded calls to an outside number,
# stream speech as PCMU for 30 s, and the trunk (a sipp UAS) echoes it.
# Forty users place the calls, so the edge (which hashes each caller to one
# instance) spreads them over both instances.
#
#   crates/service/benches/edge.sh                 levels 100 200, rates 10 20 40 80
#   LEVELS="100" RATES="20 40" crates/service/benches/edge.sh
#   EARSHOTD=/tmp/a/earshotd crates/service/benches/edge.sh   that binary, no build
#
# Prints, per arrangement:
# - at N concurrent calls (-l N -r N/10 -m 2N): the CPU per call of the
#   instances and of Kamailio (% of one core, over the steady window while N
#   calls are up), resident memory, and failed calls;
# - for each set-up rate R (-r R, 10 s of new calls, -m 10R, each talking
#   30 s): failed calls, the time from INVITE to 200 (sipp's response
#   time, mean), and the CPU each call cost over its whole life, the
#   instances' and Kamailio's (the edge sees only signalling: its share is
#   what it costs per call); the highest R with no failure is what that
#   arrangement sustains.
set -euo pipefail
cd "$(dirname "$0")/../../.."
read -r -a LEVELS <<<"${LEVELS-100 200}"
read -r -a RATES <<<"${RATES-10 20 40 80}"
TALK_MS=${TALK_MS:-30000}
USERS=40
if [ -n "${EARSHOTD:-}" ]; then
  BIN=$EARSHOTD
else
  BIN=${CARGO_TARGET_DIR:-target}/release/earshotd
  cargo build --release --locked -p earshot-service --bin earshotd >&2
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
command -v kamailio >/dev/null || { echo "kamailio is not installed (./x test installs it)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/earshot-edge.XXXXXX)
chmod 755 "$WORK"
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
AS_POSTGRES=(runuser -u postgres --)
[ "$(id -u)" -eq 0 ] || AS_POSTGRES=(sudo -u postgres)
PG_PORT=55477
PIDS=()
cleanup() {
  kill "${PIDS[@]}" $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  "${AS_POSTGRES[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -m immediate stop >/dev/null 2>&1 || true
  if [ "${KEEP:-}" = 1 ]; then echo "kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

mkdir -p "$WORK/pg" && chown postgres "$WORK/pg"
"${AS_POSTGRES[@]}" "$PG_BIN/initdb" -D "$WORK/pg/data" -A trust -U postgres >/dev/null
"${AS_POSTGRES[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/log" -w \
  -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null

espeak-ng -v en-gb -s 160 -w "$WORK/speech.wav" \
  "Thank you for calling Acme. Your call may be recorded. How can I help you today? I would like to check the status of my order." 2>/dev/null
sox "$WORK/speech.wav" -r 8000 -c 1 -b 16 "$WORK/speech8k.wav"
LEN=$(soxi -D "$WORK/speech8k.wav")
sox -n -r 8000 -c 1 -b 16 "$WORK/hum.wav" synth "$LEN" sine 150 vol 0.02
sox -m "$WORK/speech8k.wav" "$WORK/hum.wav" -t ul "$WORK/speech.raw"
# The calls come from USERS users, one per line of sipp's injection file.
{
  echo SEQUENTIAL
  # sipp 3.6 expands the authentication keyword in an injected field, not
  # fields inside the keyword.
  for i in $(seq 1 $USERS); do echo "$((100 + i));[authentication username=load$i@bench.test password=sip-secret-$i]"; done
} >"$WORK/users.csv"
# Its response time (sipp's rtd 1): from the authenticated INVITE to the 200.
sed "s|@RAW@|$WORK/speech.raw|; s|@TALK_MS@|$TALK_MS|; s|@FROM@|[field0]|g; s|\[authentication\]|[field1]|" \
  tests/sipp/uac_stream.xml | python3 -c '
import sys
text = sys.stdin.read()
first = text.index("<send retrans=\"500\">")
second = text.index("<send retrans=\"500\">", first + 1)
text = text[:second] + "<send retrans=\"500\" start_rtd=\"1\">" + text[second + len("<send retrans=\"500\">"):]
text = text.replace("<recv response=\"200\" rrs=\"true\"/>", "<recv response=\"200\" rrs=\"true\" rtd=\"1\"/>", 1)
sys.stdout.write(text)' >"$WORK/uac.xml"

TRUNK_PORT=15570
HTTP=(127.0.0.1:18581 127.0.0.1:18582)
SIP=(15571 15572)
EDGE=15560

# CPU seconds (user + system) of the processes in "$@", and when read.
cpu() {
  local now ticks=0 pid
  now=$(date +%s.%N)
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] && ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  python3 -c "print($now, $ticks / $(getconf CLK_TCK))"
}

# Resident memory of the processes in "$@", MB.
rss() {
  local kb=0 pid
  for pid in "$@"; do kb=$((kb + $(awk '/VmRSS/ {print $2}' "/proc/$pid/status"))); done
  echo $((kb / 1024))
}

# Starts the arrangement $1 (direct or edge) on a fresh database: sets
# INSTANCES (pids), KAMAILIO (pids), TARGET (where the calls go).
start() {
  local arrangement=$1 db="bench_$1_$RANDOM"
  "${AS_POSTGRES[@]}" psql -q -h 127.0.0.1 -p $PG_PORT -U postgres -c "CREATE DATABASE $db" >/dev/null
  local url="postgres://postgres@127.0.0.1:$PG_PORT/$db" count=1 i
  [ "$arrangement" = edge ] && count=2
  "$BIN" init --data-dir "$WORK/$db-0" --database-url "$url" --company Bench \
    --admin-email admin@bench.test --admin-password bench-password 2>/dev/null
  INSTANCES=()
  for i in $(seq 0 $((count - 1))); do
    # The same RTP ports in all (a call takes two even ones): one instance
    # gets the whole range, two halve it.
    local ports=20000-39999
    [ "$count" = 2 ] && ports="$((20000 + i * 10000))-$((29999 + i * 10000))"
    local public=()
    [ "$arrangement" = edge ] && public=(--sip-public "127.0.0.1:$EDGE" --sip-trusted-proxy 127.0.0.1)
    EARSHOT_LOG=warn "$BIN" serve --data-dir "$WORK/$db-$i" --database-url "$url" --http "${HTTP[$i]}" \
      --sip "127.0.0.1:${SIP[$i]}" "${public[@]}" --rtp-ports "$ports" \
      --trunk "sip:127.0.0.1:$TRUNK_PORT" 2>"$WORK/$db-$i.log" &
    INSTANCES+=($!)
    for _ in $(seq 100); do curl -sf "http://${HTTP[$i]}/healthz" >/dev/null && break; sleep 0.1; done
  done
  local token
  token=$(curl -sf -X POST "http://${HTTP[0]}/api/v1/session" -H 'content-type: application/json' \
    -d '{"email":"admin@bench.test","password":"bench-password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  curl -sf -X PUT "http://${HTTP[0]}/api/v1/settings" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d "$(curl -sf "http://${HTTP[0]}/api/v1/settings" -H "authorization: Bearer $token" | python3 -c "import json,sys; s=json.load(sys.stdin); s['record_outbound']=True; print(json.dumps(s))")" >/dev/null
  for i in $(seq 1 $USERS); do
    curl -sf -X POST "http://${HTTP[0]}/api/v1/users" -H "authorization: Bearer $token" -H 'content-type: application/json' \
      -d "{\"name\":\"Load $i\",\"email\":\"load$i@bench.test\",\"role\":\"agent\",\"extension\":\"$((100 + i))\",\"password\":\"load-password-$i\",\"sip_password\":\"sip-secret-$i\"}" >/dev/null
  done
  KAMAILIO=()
  TARGET=${SIP[0]}
  if [ "$arrangement" = edge ]; then
    printf '1 sip:127.0.0.1:%s\n1 sip:127.0.0.1:%s\n' "${SIP[0]}" "${SIP[1]}" >"$WORK/dispatcher.list"
    kamailio -f deploy/kamailio/kamailio.cfg -DD -E -A "LISTEN=udp:127.0.0.1:$EDGE" -A "TCP_LISTEN=tcp:127.0.0.1:$EDGE" \
      -A "DS_LIST=\"$WORK/dispatcher.list\"" 2>"$WORK/kamailio-$db.log" &
    local main=$!
    sleep 3
    KAMAILIO=("$main" $(pgrep -P "$main" || true))
    TARGET=$EDGE
  fi
  (cd "$WORK" && exec sipp -sn uas -rtp_echo -i 127.0.0.1 -p $TRUNK_PORT -mp 16000 -nostdin >/dev/null 2>&1) &
  UAS=$!
  PIDS+=("${INSTANCES[@]}" "${KAMAILIO[@]}" "$UAS")
}

stop() {
  kill "${INSTANCES[@]}" "${KAMAILIO[@]}" "$UAS" 2>/dev/null || true
  wait "${INSTANCES[@]}" "${KAMAILIO[@]}" "$UAS" 2>/dev/null || true
  sleep 1
}

# Runs sipp: -l $1 -r $2 -m $3 into $4 (a directory); waits for it.
calls() {
  mkdir -p "$4"
  (cd "$4" && sipp "127.0.0.1:$TARGET" -sf "$WORK/uac.xml" -inf "$WORK/users.csv" -s +447700900123 \
    -i 127.0.0.1 -p 15590 -mp 42000 -l "$1" -r "$2" -m "$3" -nostdin -trace_stat -trace_err -fd 1 \
    -timeout 300s >/dev/null 2>&1) &
  SIPP=$!
}

# Failed calls and the mean INVITE-to-200 time (ms) of the sipp run in $1,
# from the last line of its statistics.
outcome() {
  python3 - "$1" <<'PY'
import csv, glob, sys
files = glob.glob(sys.argv[1] + "/uac_*_.csv")
if not files:
    print("? ?")
    sys.exit()
rows = list(csv.reader(open(files[0]), delimiter=";"))
head, last = rows[0], rows[-1]
failed = last[head.index("FailedCall(C)")]
h, m, s_, us = (int(x) for x in last[head.index("ResponseTime1(C)")].split(":"))
print(failed, round((h * 3600 + m * 60 + s_) * 1000 + us / 1000))
PY
}

for arrangement in direct edge; do
  for n in "${LEVELS[@]}"; do
    start "$arrangement"
    calls "$n" "$((n / 10))" "$((2 * n))" "$WORK/$arrangement-n$n"
    sleep 12
    read -r t0 i0 < <(cpu "${INSTANCES[@]}")
    read -r _ k0 < <(cpu "${KAMAILIO[@]}")
    sleep 16
    read -r t1 i1 < <(cpu "${INSTANCES[@]}")
    read -r _ k1 < <(cpu "${KAMAILIO[@]}")
    memory=$(rss "${INSTANCES[@]}" "${KAMAILIO[@]}")
    wait "$SIPP" || true
    read -r failed rtt < <(outcome "$WORK/$arrangement-n$n")
    python3 -c "
t = $t1 - $t0
print(f'$arrangement N=$n: instances {($i1 - $i0) / t / $n * 100:.4f}% of a core per call, '
      f'Kamailio {($k1 - $k0) / t / $n * 100:.4f}%, RSS $memory MB, failed calls $failed of $((2 * n)), INVITE to 200 ${rtt} ms')"
    stop
  done
  for rate in "${RATES[@]}"; do
    start "$arrangement"
    read -r _ i0 < <(cpu "${INSTANCES[@]}")
    read -r _ k0 < <(cpu "${KAMAILIO[@]}")
    calls "$((rate * 40))" "$rate" "$((rate * 10))" "$WORK/$arrangement-r$rate"
    wait "$SIPP" || true
    read -r _ i1 < <(cpu "${INSTANCES[@]}")
    read -r _ k1 < <(cpu "${KAMAILIO[@]}")
    read -r failed rtt < <(outcome "$WORK/$arrangement-r$rate")
    # CPU over the whole run (set-up, 30 s of relaying and recording, tear-down), per call.
    python3 -c "
calls = $rate * 10
print(f'$arrangement -r $rate: {calls} calls set up over 10 s, failed $failed, INVITE to 200 ${rtt} ms (mean); '
      f'CPU per call, all of it: instances {($i1 - $i0) / calls * 1000:.1f} ms, Kamailio {($k1 - $k0) / calls * 1000:.2f} ms')"
    stop
  done
done
