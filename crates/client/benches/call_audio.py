#!/usr/bin/env python3
"""The phone's call audio, measured as issue 16 asks (docs/PERFORMANCE.md).

In one run, through one `earshotd demo`, each endpoint on its own PulseAudio
null sinks (a private PulseAudio: caller `a_mic`/`a_spk`, callee
`b_mic`/`b_spk`; an endpoint's microphone is the monitor of its mic sink),
for four pairs, one call each:

  app         two headless apps (crates/client/examples/softphone.rs: the
              app's own App, SoftPhone and call audio), Ada (101) calls Bo
              (102), with the audio processing as shipped (echo canceller,
              noise suppressor, gain control);
  app_off     the same with the processing off;
  baresip     two baresip 1.0 (alsa through the PulseAudio plugin, G.711
              µ-law), Cy (103) calls Di (104), as it comes: no processing
              (no echo canceller: Debian's baresip has none);
  baresip_pp  the same with its speex_pp module (libspeexdsp's noise
              suppression and gain control, its defaults): the peer with
              what processing it has.
So like meets like: the app with its processing off against plain
baresip, and with it on against baresip's speex_pp.

Both register with device credentials from POST /api/v1/devices. The callee
is on loudspeakers for the whole call (its speaker fed back into its
microphone by module-loopback, −6 dB, a fixed 40 ms: adjust_time=0); the
caller wears a headset (no echo). Every monitor is recorded by its own
parec, each tied to the wall clock (see Recorder), all four running through
the whole run. For each pair:

  set-up    dial → the callee's phone rings (the app's "incoming"; baresip's
            CALL_REMOTE_SDP: it answers at once); answer → the callee's first
            sound (tone bursts into its microphone) at the caller's speaker,
            which includes the mouth-to-ear latency;
  latency   mouth to ear, one way: 20 chirps played into the caller's
            microphone sink, found by cross-correlation on its monitor (what
            the caller's phone captures) and on the callee's speaker monitor;
            the same for PulseAudio's own loop-back (module-loopback, 20 ms,
            the caller's microphone straight to the callee's speaker) is the
            baseline, subtracted;
  PESQ      narrow-band (PyPI pesq) of 16 s of speech, caller → callee,
            played three times, the mean of the three scores;
            then the same speech in an office's noise (pink noise 30 dB
            below it, at the caller's microphone), scored against the
            clean speech;
  echo      ERLE = the echo's power at the callee's microphone over what
            reaches the caller's speaker, while only the caller speaks: over
            all 16 s, and its worst second; then the same again with the
            callee's machine hiccuping (its process stopped for 30 ms every
            1.5 s: its sound late, the sound server playing silence in its
            place);
  cost      CPU of the caller's process (its threads' time on a CPU) in 10 s idle
            (registered) and 10 s in the call (speech both ways), and PSS.

Then the app's sound chain alone (crates/client/examples/chain.rs, no sound
card, no network): the same speech through the phone's resamplers, its
processing and G.711, stage by stage, each scored with PESQ against what
went in, with each stage's time per 10 ms piece: what the chain itself
costs a call's quality, apart from the network and the sound server.

Reproduce:  ./x bench-call     (builds, installs pesq, runs this)
  KEEP=1             keeps the recordings of the four monitors (aligned.npz:
                     the four on one time line, with when the speech was
                     played) and the logs
  PROCESSING=aec,ns  the app pair's audio processing (of aec, ns, agc; app_off
                     keeps none)
  PERF=/tmp/app.perf perf profile of the calling app during the call (the
                     app pair's, as shipped)
  PAIRS=app,baresip  the pairs to call (of app, app_off, baresip,
                     baresip_pp; all four unless given)
  STRACE=/tmp/app.strace  the calling app's system calls, every thread, for 4 s
                     of the call (the app pair's, as shipped; strace -f -tt:
                     what wakes its threads; it slows the app, so the cost
                     measured with it is not its own; needs ptrace rights)
  APP_ONLY=1         the app's call only (PAIRS=app: quicker, for trying
                     a change)
  EARSHOT_LOG=...    the apps' log filter (their logs are kept with KEEP=1)
  or:       python3 crates/client/benches/call_audio.py  with EARSHOTD and
            SOFTPHONE pointing at release binaries.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import wave

import numpy as np
from pesq import pesq

RATE = 8000
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
EARSHOTD = os.environ.get("EARSHOTD", os.path.join(TARGET, "release", "earshotd"))
SOFTPHONE = os.environ.get("SOFTPHONE", os.path.join(TARGET, "release", "examples", "softphone"))
CHAIN = os.environ.get("CHAIN", os.path.join(os.path.dirname(SOFTPHONE), "chain"))
SPEECH = os.path.join(ROOT, "crates", "service", "assets", "speech")
HTTP, SIP = "127.0.0.1:18580", 18581
SERVER = f"http://{HTTP}"

work = tempfile.mkdtemp(prefix="earshot-call-audio.")
env = dict(os.environ, XDG_RUNTIME_DIR=os.path.join(work, "pulse"), HOME=os.path.join(work, "home"))
os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700)
os.makedirs(env["HOME"])
started = []


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def spawn(args, extra=None, **kw):
    p = subprocess.Popen(args, env=dict(env, **(extra or {})), **kw)
    started.append(p)
    return p


def pactl(*args):
    return subprocess.run(["pactl", *args], env=env, check=True, capture_output=True, text=True).stdout.strip()


# ---------------------------------------------------------------- signals

def read_wav(path):
    with wave.open(path) as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768


def write_wav(path, x):
    with wave.open(path, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(RATE)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


def chirp(ms=40):
    t = np.arange(int(RATE * ms / 1000)) / RATE
    f0, f1 = 300, 3400
    x = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * t[-1])))
    return 0.5 * x * np.hanning(len(x))


CHIRP = chirp()
SPEECH_PLAYS = 3
CHIRPS_AT = [1.0 + k for k in range(20)]  # seconds into the chirp file
clips = ["agent-greeting", "caller-hello", "agent-account", "caller-problem"]
gap = np.zeros(RATE // 2)
SPEECH_SIGNAL = np.concatenate(sum(([read_wav(os.path.join(SPEECH, c + ".wav")), gap] for c in clips), []))


def pink(n, dbfs, seed=1):
    """Pink noise (power falling 3 dB an octave, as a room's hum and fans)
    from 100 Hz up, at an RMS of `dbfs`: all of it in the band a headset
    microphone and a call carry (pink noise down to DC would put two
    thirds of its power below 100 Hz, where the call's high-pass filter
    takes it out before anyone hears it)."""
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    spectrum = np.where(f >= 100, spectrum / np.sqrt(np.maximum(f, 1)), 0)
    x = np.fft.irfft(spectrum, n)
    return x / np.sqrt(np.mean(x ** 2)) * 10 ** (dbfs / 20)


# An office heard through a headset microphone: pink noise 30 dB below the
# speech (its active level is about −20 dBFS), there from NOISE_LEAD
# seconds before the first word, as a room's noise is there before anyone
# speaks. PESQ is taken against the clean speech: what the far end would
# have heard in a silent room. The speech of the PESQ row above arrives in
# digital silence, which no microphone gives.
OFFICE_DBFS = -50
NOISE_LEAD = 2.0
NOISY_SIGNAL = np.concatenate([np.zeros(int(RATE * NOISE_LEAD)), SPEECH_SIGNAL])
NOISY_SIGNAL = NOISY_SIGNAL + pink(len(NOISY_SIGNAL), OFFICE_DBFS)
# The callee's hiccups in the echo's second stage: its process stopped this
# long, this often.
HICCUP_MS = 30
HICCUP_EVERY_S = 1.5


def files():
    chirps = np.zeros(int(RATE * (CHIRPS_AT[-1] + 1.5)))
    for at in CHIRPS_AT:
        chirps[int(at * RATE):int(at * RATE) + len(CHIRP)] += CHIRP
    write_wav(f"{work}/chirps.wav", chirps)
    write_wav(f"{work}/speech.wav", np.concatenate([np.zeros(RATE // 2), SPEECH_SIGNAL]))
    write_wav(f"{work}/office.wav", np.concatenate([np.zeros(RATE // 2), NOISY_SIGNAL]))
    t = np.arange(RATE // 10) / RATE
    burst = np.where(t < 0.04, 0.3 * np.sin(2 * np.pi * 1000 * t), 0.0)
    write_wav(f"{work}/bursts.wav", np.tile(burst, 100))


# ---------------------------------------------------------------- recording

SOURCES = ["a_mic.monitor", "a_spk.monitor", "b_mic.monitor", "b_spk.monitor"]


class Recorder:
    """A parec of each monitor (8 kHz, one channel), each tied to wall-clock
    time by watching its file grow: a sample cannot be on disk before it
    was captured, so the earliest `wall - samples / RATE` seen is when its
    sample 0 was (parec writes every 10 ms; the file is read every 2 ms)."""

    def __init__(self):
        self.zero = {}
        for source in SOURCES:
            out = open(f"{work}/{source}.raw", "wb")
            spawn(["parec", f"--device={source}", "--channels=1", f"--rate={RATE}", "--format=s16le",
                   "--latency-msec=10"], stdout=out)
            self.zero[source] = float("inf")
        self.watching = True
        threading.Thread(target=self.watch, daemon=True).start()

    def watch(self):
        while self.watching:
            for source in SOURCES:
                wall = time.time()
                try:
                    frames = os.path.getsize(f"{work}/{source}.raw") // 2
                except OSError:
                    frames = 0
                if frames:
                    self.zero[source] = min(self.zero[source], wall - frames / RATE)
            time.sleep(0.002)

    def channels(self):
        """What has been recorded so far, one array per source, each
        starting at the same wall-clock instant."""
        common = max(self.zero.values())
        out = {}
        for source in SOURCES:
            x = np.fromfile(f"{work}/{source}.raw", dtype="<i2").astype(np.float64) / 32768
            out[source] = x[int(round((common - self.zero[source]) * RATE)):]
        return out

    def at(self, wall):
        """The sample index of a wall-clock time, in `channels()`."""
        return int((wall - max(self.zero.values())) * RATE)

    def stop(self):
        self.watching = False


def play(sink, name):
    """Plays a file into a sink; returns (process, wall-clock start)."""
    at = time.time()
    return spawn(["paplay", f"--device={sink}", f"{work}/{name}.wav"]), at


def chain_ceiling():
    """The phone's sound chain alone (crates/client/examples/chain.rs): the
    bench's speech through each stage without a sound card or a network,
    PESQ against what went in (the clean speech), and each stage's time per
    10 ms piece."""
    write_wav(f"{work}/chain-in.wav", SPEECH_SIGNAL)
    write_wav(f"{work}/chain-office.wav", NOISY_SIGNAL)
    # The office's noise after 30 s of digital silence (a headset's mute
    # button, which sends zeros): the noise suppressor must start afresh.
    muted = int(RATE * 30)
    write_wav(f"{work}/chain-unmuted.wav", np.concatenate([np.zeros(muted), NOISY_SIGNAL]))
    variants = [
        ("G.711 µ-law alone", ["--no-resampling", "--no-processing"], "in"),
        ("resamplers (48 kHz ↔ 8 kHz, both ways) alone", ["--no-codec", "--no-processing"], "in"),
        ("resamplers and µ-law", ["--no-processing"], "in"),
        ("and the echo canceller", ["--processing", "aec"], "in"),
        ("and the noise suppressor", ["--processing", "aec,ns"], "in"),
        ("and gain control (as shipped)", ["--processing", "aec,ns,agc"], "in"),
        ("office noise: resamplers and µ-law (no processing)", ["--no-processing"], "office"),
        ("office noise: as shipped", ["--processing", "aec,ns,agc"], "office"),
        # (its time per piece is over the 30 s of silence too)
        ("office noise after 30 s of digital silence: as shipped", ["--processing", "aec,ns,agc"], "unmuted"),
    ]
    leads = {"in": 0, "office": int(RATE * NOISE_LEAD), "unmuted": muted + int(RATE * NOISE_LEAD)}
    rows = []
    for label, args, name in variants:
        out = f"{work}/chain-out.wav"
        timing = subprocess.run([CHAIN, f"{work}/chain-{name}.wav", out, *args], check=True,
                                capture_output=True, text=True).stdout.strip()
        got = read_wav(out)
        lead = leads[name]
        lag = int(np.argmax(correlate(got[lead:], SPEECH_SIGNAL)[:RATE]))
        deg = got[lead + lag:lead + lag + len(SPEECH_SIGNAL)]
        score = pesq(RATE, SPEECH_SIGNAL.astype(np.float32), deg.astype(np.float32), "nb")
        rows.append((label, score, lag * 1000 / RATE, timing))
    return rows


def correlate(x, template):
    n = 1 << int(np.ceil(np.log2(len(x) + len(template))))
    return np.fft.irfft(np.fft.rfft(x, n) * np.conj(np.fft.rfft(template, n)), n)[:len(x)]


def arrivals(x, start, end):
    """Where each chirp is in x[start:end], as sample indexes into x."""
    c = correlate(x[start:end], CHIRP)
    found, floor = [], 0.1 * np.dot(CHIRP, CHIRP)
    i = 0
    while i < len(c):
        if c[i] > floor:
            j = i + int(np.argmax(c[i:i + RATE // 4]))
            found.append(start + j)
            i = j + RATE // 2
        else:
            i += 1
    return found


def chirp_delays(rec, source, sink_monitor, played_at):
    """Per chirp, ms from the caller's microphone to `sink_monitor`."""
    ch = rec.channels()
    start = max(rec.at(played_at) - RATE // 2, 0)
    end = start + int(RATE * (CHIRPS_AT[-1] + 4))
    sent = arrivals(ch[source], start, end)
    came = arrivals(ch[sink_monitor], start, end + RATE)
    delays = []
    for s in sent:
        later = [c for c in came if 0 <= c - s < RATE // 2]
        if later:
            delays.append((later[0] - s) / RATE * 1000)
    return delays


def run_seconds(pid, tid):
    """A thread's time on a CPU, in ns as the scheduler counts it (utime
    and stime come in 10 ms clock ticks: a thread at 0.4 % of a core over
    10 s was 3, 4 or 5 of them)."""
    with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def cpu_seconds(pid):
    total = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            total += run_seconds(pid, tid)
        except OSError:
            continue  # a thread that ended meanwhile
    return total


def pss_mb(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def threads(pid):
    """Each thread's name, CPU seconds and context switches (wake-ups)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                head = f.read().rsplit(")", 1)[0]
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
            cpu = run_seconds(pid, tid)
        except OSError:
            continue
        switches = int(status["voluntary_ctxt_switches"]) + int(status["nonvoluntary_ctxt_switches"])
        out[tid] = (head.split("(", 1)[1], cpu, switches)
    return out


def cpu_percent(pid, seconds):
    """The process's CPU over `seconds`; logs each thread's share and wake-ups."""
    c0, t0, th0 = cpu_seconds(pid), time.monotonic(), threads(pid)
    time.sleep(seconds)
    elapsed, th1 = time.monotonic() - t0, threads(pid)
    rows = []
    for tid, (name, cpu, switches) in th1.items():
        _, cpu0, switches0 = th0.get(tid, (name, 0.0, 0))
        rows.append((name, tid, (cpu - cpu0) / elapsed * 100, (switches - switches0) / elapsed))
    for name, tid, cpu, wakes in sorted(rows, key=lambda row: -row[3]):
        if wakes >= 1:
            log(f"  thread {name} ({tid}): {cpu:.1f} % CPU, {wakes:.0f} switches/s")
    return (cpu_seconds(pid) - c0) / elapsed * 100


def db(x):
    return 10 * np.log10(max(x, 1e-20))


# Below this a 16-bit recording is digital silence (its least step is −90 dBFS).
SILENT_DBFS = -120


def residual(dbfs):
    return "digital silence" if dbfs < SILENT_DBFS else f"{dbfs:.1f} dBFS"


def erle(value_db):
    """ERLE as printed: past 90 dB the residual was digital silence."""
    return "> 90 dB (silence)" if value_db > 90 else f"{value_db:.1f} dB"


def power(x):
    return float(np.mean(x * x)) if len(x) else 0.0


# ---------------------------------------------------------------- endpoints

def api(method, path, token=None, body=None):
    req = urllib.request.Request(SERVER + "/api/v1" + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req) as r:
        return json.load(r)


class Events:
    """Lines `<ms> <event>` of an endpoint, timestamped, kept."""

    def __init__(self):
        self.lines, self.cond = [], threading.Condition()

    def add(self, wall, text):
        with self.cond:
            self.lines.append((wall, text))
            self.cond.notify_all()

    def wait(self, prefix, timeout=20):
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for wall, text in self.lines:
                    if text.startswith(prefix):
                        return wall
                if not self.cond.wait(max(deadline - time.time(), 0)) and time.time() >= deadline:
                    raise RuntimeError(f"no {prefix!r}: {self.lines}")


class App:
    """The headless app (the softphone example)."""

    def __init__(self, side, email, password, processing=None):
        self.events = Events()
        processing = processing or os.environ.get("PROCESSING")
        self.proc = spawn(["keyctl", "session", "-", SOFTPHONE, SERVER, email, password, "--auto-answer", "0",
                           *(["--processing", processing] if processing else []),
                           "--microphone", f"pulseaudio:{side}_mic.monitor", "--speaker", f"pulseaudio:{side}_spk"],
                          {"PULSE_SOURCE": f"{side}_mic.monitor", "PULSE_SINK": f"{side}_spk",
                           "EARSHOT_LOG": os.environ.get("EARSHOT_LOG", "info")},
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=open(f"{work}/{email}-{processing or 'default'}.log", "w"),
                          text=True)
        threading.Thread(target=self.read, daemon=True).start()
        self.events.wait("ready")
        # keyctl session runs the phone as its child: measure the phone.
        self.pid = int(subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
                       .stdout.split()[0]) if self.child_of_keyctl() else self.proc.pid

    def child_of_keyctl(self):
        return subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True).returncode == 0

    def read(self):
        for line in self.proc.stdout:
            ms, _, text = line.strip().partition(" ")
            self.events.add(int(ms) / 1000, text)

    def send(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def dial(self, number):
        self.send(f"dial {number}")

    def hang_up(self):
        self.send("hangup")

    def stop(self):
        self.send("quit")
        self.proc.wait(timeout=10)


class Baresip:
    """baresip registered with a device credential, driven over ctrl_tcp."""

    def __init__(self, side, email, password, port, preprocess=False):
        token = api("POST", "/session", body={"email": email, "password": password})["token"]
        cred = api("POST", "/devices", token, {"name": "baresip (benchmark)"})
        d = f"{work}/baresip-{side}-{port}"
        os.makedirs(d)
        ctrl = port + 5  # (baresip takes port + 1 for TLS)
        with open(f"{d}/config", "w") as f:
            f.write(f"poll_method epoll\nsip_listen 127.0.0.1:{port}\nmodule_path /usr/lib/baresip/modules\n"
                    "module g711.so\nmodule alsa.so\nmodule_app account.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\n"
                    f"ctrl_tcp_listen 127.0.0.1:{ctrl}\naudio_player alsa,default\naudio_source alsa,default\n"
                    "audio_alert alsa,default\naudio_buffer 20-160\n"
                    # speex_pp: libspeexdsp's preprocessor on what the microphone
                    # sends (noise suppression, gain control; its defaults)
                    + ("module speex_pp.so\n" if preprocess else ""))
        with open(f"{d}/accounts", "w") as f:
            f.write(f"<sip:{cred['extension']}@127.0.0.1:{cred['sip_port']}>;auth_user={cred['sip_user']};"
                    f"auth_pass={cred['password']};answermode=auto;regint=300;audio_codecs=PCMU\n")
        self.events = Events()
        self.proc = spawn(["baresip", "-f", d], {"PULSE_SOURCE": f"{side}_mic.monitor", "PULSE_SINK": f"{side}_spk"},
                          stdin=subprocess.DEVNULL, stdout=open(f"{d}/log", "w"), stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        for _ in range(100):
            try:
                self.sock = socket.create_connection(("127.0.0.1", ctrl))
                break
            except OSError:
                time.sleep(0.05)
        threading.Thread(target=self.read, daemon=True).start()
        for _ in range(200):  # (registered before ctrl_tcp's client connected: read the log)
            if "200 OK" in open(f"{d}/log").read():
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"baresip did not register: {open(f'{d}/log').read()}")

    def read(self):
        buf = b""
        while True:
            data = self.sock.recv(65536)
            if not data:
                return
            buf += data
            while b":" in buf:
                size, _, rest = buf.partition(b":")
                if len(rest) < int(size) + 1:
                    break
                msg, buf = json.loads(rest[:int(size)]), rest[int(size) + 1:]
                if msg.get("event"):
                    self.events.add(time.time(), msg.get("type", ""))

    def send(self, command, params=""):
        body = json.dumps({"command": command, "params": params, "token": "b"}).encode()
        self.sock.sendall(str(len(body)).encode() + b":" + body + b",")

    def dial(self, number):
        self.send("dial", number)

    def hang_up(self):
        self.send("hangup")

    def stop(self):
        self.send("quit")
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ---------------------------------------------------------------- the run

def baseline(rec):
    """PulseAudio's own loop-back, the caller's microphone straight to the
    callee's speaker (module-loopback, 20 ms), measured like a call."""
    module = pactl("load-module", "module-loopback", "source=a_mic.monitor", "sink=b_spk", "latency_msec=20",
                   "source_dont_move=true", "sink_dont_move=true")
    time.sleep(2)
    p, at = play("a_mic", "chirps")
    p.wait()
    time.sleep(1)
    pactl("unload-module", module)
    return chirp_delays(rec, "a_mic.monitor", "b_spk.monitor", at)


def measure(rec, caller, callee, callee_number, ringing_event, answer_event, connected_event, r, profile=False):
    """Fills `r` with the pair's figures (as far as it got, should a stage
    fail), and r["played"] with when each stage's sound was played."""
    r["played"] = {}
    time.sleep(2)
    r["cpu_idle"] = cpu_percent(caller.pid, 10)
    r["idle_pss"] = pss_mb(caller.pid)
    # The callee is on loudspeakers for the whole call: its speaker is fed
    # back into its microphone, −6 dB, 40 ms later (the caller wears a headset).
    # A fixed 40 ms: module-loopback otherwise resamples every 10 s to hold
    # its latency (adjust_time), an echo path whose delay slides, which no
    # room has; the echo canceller's ERLE with it spread over 15–54 dB.
    module = pactl("load-module", "module-loopback", "source=b_spk.monitor", "sink=b_mic", "latency_msec=40",
                   "adjust_time=0", "source_dont_move=true", "sink_dont_move=true")
    for line in pactl("list", "sink-inputs").split("Sink Input #")[1:]:
        if f"Owner Module: {module}" in line:
            pactl("set-sink-input-volume", line.split()[0], "-6dB")
    bursts, _ = play("b_mic", "bursts")
    time.sleep(0.5)
    dialled = time.time()
    caller.dial(callee_number)
    ringing = callee.events.wait(ringing_event)
    answered = callee.events.wait(answer_event)
    caller.events.wait(connected_event)
    time.sleep(2)
    bursts.terminate()
    r["dial_to_ringing_ms"] = (ringing - dialled) * 1000
    # The callee's first sound at the caller's speaker.
    a = rec.channels()["a_spk.monitor"]
    start = rec.at(answered)
    level = np.sqrt(np.convolve(a[start:] ** 2, np.ones(80) / 80, mode="valid"))
    loud = np.nonzero(level > 0.01)[0]
    r["answer_to_audio_ms"] = loud[0] / RATE * 1000 if len(loud) else float("nan")
    time.sleep(0.5)
    # Speech both ways for the cost window, with the chirps.
    talk_b, _ = play("b_mic", "speech")
    p, chirps_at = play("a_mic", "chirps")
    r["played"]["chirps"] = chirps_at
    if os.environ.get("PERF") and profile:
        spawn(["perf", "record", "-g", "-p", str(caller.pid), "-o", os.environ["PERF"], "--", "sleep", "8"],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if os.environ.get("STRACE") and profile:
        # (attaching needs ptrace rights over the app: root, or
        # kernel.yama.ptrace_scope 0; strace says so on stderr if not)
        spawn(["timeout", "-s", "INT", "4", "strace", "-f", "-tt", "-p", str(caller.pid), "-o", os.environ["STRACE"]],
              stdout=subprocess.DEVNULL)
    r["cpu_call"] = cpu_percent(caller.pid, 10)
    r["call_pss"] = pss_mb(caller.pid)
    p.wait()
    talk_b.terminate()
    time.sleep(1)
    r["latency"] = chirp_delays(rec, "a_mic.monitor", "b_spk.monitor", chirps_at)
    # PESQ of G.711 alone moves by ±0.015 with a fraction of a dB or of a
    # sample (docs/PERFORMANCE.md), and one play's score with it: the
    # speech is played SPEECH_PLAYS times, and the mean is what the table
    # gives (with the range).
    r["pesq_all"] = []
    for k in range(SPEECH_PLAYS):
        p, speech_at = play("a_mic", "speech")
        p.wait()
        time.sleep(1.5)
        r["pesq_all"].append(speech_quality(rec, speech_at, 0))
        r["played"]["speech" if k == 0 else f"speech{k + 1}"] = speech_at
    r["pesq"] = float(np.mean(r["pesq_all"]))
    p, office_at = play("a_mic", "office")
    p.wait()
    time.sleep(1.5)
    r["pesq_office"] = speech_quality(rec, office_at, NOISE_LEAD)
    r["played"]["office"] = office_at
    # Echo: far-end single talk, the caller alone speaking into the callee's echo.
    p, echo_at = play("a_mic", "speech")
    r["played"]["echo"] = echo_at
    p.wait()
    time.sleep(1)
    # The same, the callee's machine hiccuping: its process stopped for
    # HICCUP_MS every HICCUP_EVERY_S (a busy PC: its sound is late, the
    # sound server plays silence in its place).
    p, hiccups_at = play("a_mic", "speech")
    r["played"]["hiccups"] = hiccups_at
    hiccups(callee.pid, p)
    time.sleep(1)
    pactl("unload-module", module)
    caller.hang_up()
    time.sleep(1)
    ch = rec.channels()
    r["erle_db"], r["erle_worst_db"], r["echo_dbfs"], r["residual_dbfs"] = erle_over(rec, ch, echo_at)
    r["erle_hiccups_db"], r["erle_hiccups_worst_db"], _, _ = erle_over(rec, ch, hiccups_at)


def hiccups(pid, player):
    """Stops `pid` for HICCUP_MS every HICCUP_EVERY_S until `player` ends."""
    next_at = time.time() + HICCUP_EVERY_S / 2
    while player.poll() is None:
        time.sleep(max(next_at - time.time(), 0))
        if player.poll() is not None:
            break
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(HICCUP_MS / 1000)
        finally:
            os.kill(pid, signal.SIGCONT)
        next_at += HICCUP_EVERY_S


def erle_over(rec, ch, played_at):
    """ERLE over the far-end speech played at `played_at`: all of it, and
    its worst second; with the echo at the callee's microphone and what
    reached the caller's speaker (dBFS)."""
    e0 = rec.at(played_at) + RATE // 2
    n = len(SPEECH_SIGNAL)
    mic, heard = ch["b_mic.monitor"][e0:e0 + n], ch["a_spk.monitor"][e0:e0 + n + RATE // 5]
    echo, residual = db(power(mic)), db(power(heard))
    seconds = [(power(mic[i:i + RATE]), power(heard[i:i + RATE + RATE // 5])) for i in range(0, n - RATE, RATE)]
    worst = min(db(e) - db(h) for e, h in seconds if db(e) > -60)
    return echo - residual, worst, echo, residual


def speech_quality(rec, played_at, lead_s):
    """PESQ of the clean speech against what reached the callee's speaker
    of the speech played into the caller's microphone at `played_at`, its
    first word `lead_s` seconds after the file's half second of silence."""
    ch = rec.channels()
    sent, got = ch["a_mic.monitor"], ch["b_spk.monitor"]
    s0 = max(rec.at(played_at) + int(lead_s * RATE) - RATE // 2, 0)
    c = correlate(sent[s0:s0 + 3 * RATE], SPEECH_SIGNAL[:2 * RATE])
    origin = s0 + int(np.argmax(c[:2 * RATE]))
    seg = got[origin:origin + len(SPEECH_SIGNAL) + RATE]
    lag = int(np.argmax(correlate(seg, SPEECH_SIGNAL)[:RATE]))
    deg = seg[lag:lag + len(SPEECH_SIGNAL)]
    try:
        return pesq(RATE, SPEECH_SIGNAL.astype(np.float32), deg.astype(np.float32), "nb")
    except Exception as e:  # nothing like speech arrived
        log(f"no PESQ: {e}")
        return float("nan")


def pct(values, q):
    return float(np.percentile(values, q)) if values else float("nan")


# What a run keeps with KEEP=1, even when it fails: see save_aligned.
kept = {"results": {}}


# The calls a run makes, in this order: the app as shipped and with its
# processing off, against baresip as it comes and with its preprocessor
# (noise suppression and gain control, the nearest it has to the app's
# processing: Debian's baresip has no echo canceller). Like against like:
# processing off against plain baresip, on against baresip's speex_pp.
PAIR_KINDS = {
    "app": ("app → app", lambda: (App("a", "ada@acme.demo", "demo-ada"),
                                  App("b", "bo@acme.demo", "demo-bo"), "102")),
    "app_off": ("app, processing off", lambda: (App("a", "ada@acme.demo", "demo-ada", "none"),
                                                App("b", "bo@acme.demo", "demo-bo", "none"), "102")),
    "baresip": ("baresip → baresip", lambda: (Baresip("a", "cy@acme.demo", "demo-cy", 18640),
                                              Baresip("b", "di@acme.demo", "demo-di", 18650), "104")),
    "baresip_pp": ("baresip + speex_pp", lambda: (Baresip("a", "cy@acme.demo", "demo-cy", 18660, True),
                                                  Baresip("b", "di@acme.demo", "demo-di", 18670, True), "104")),
}
PAIRS = (["app"] if os.environ.get("APP_ONLY") == "1"
         else os.environ.get("PAIRS", ",".join(PAIR_KINDS)).split(","))
for _pair in PAIRS:
    if _pair not in PAIR_KINDS:
        sys.exit(f"PAIRS: {_pair!r} is not one of {', '.join(PAIR_KINDS)}")


def save_aligned():
    """With KEEP=1: the four monitors on one time line (sample 0 at the
    same instant) in aligned.npz, with the sample at which each stage's
    sound was played (`played_app_speech`, …), for looking into a run."""
    rec = kept.get("rec")
    if rec is None or float("inf") in rec.zero.values():  # a recorder never wrote
        return
    played = {f"played_{pair}_{stage}": rec.at(at)
              for pair, r in kept["results"].items() for stage, at in r.get("played", {}).items()}
    np.savez(f"{work}/aligned.npz", **rec.channels(), **played)


def main():
    for tool in ["pulseaudio", "pactl", "paplay", "parec", "baresip", "keyctl"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing (./x bench-call installs what it needs)")
    files()
    subprocess.run(["pulseaudio", "-D", "--exit-idle-time=-1", "--system=false"], env=env, check=True)
    for _ in range(50):
        if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0:
            break
        time.sleep(0.1)
    # Sinks that never sleep, so the recording runs on a steady clock.
    pactl("unload-module", "module-suspend-on-idle")
    for sink in ["a_mic", "a_spk", "b_mic", "b_spk"]:
        pactl("load-module", "module-null-sink", f"sink_name={sink}", "rate=48000")
        spawn(["pacat", "--playback", f"--device={sink}", "/dev/zero"])
    rec = Recorder()
    kept["rec"] = rec
    spawn([EARSHOTD, "demo", "--data-dir", f"{work}/data", "--http", HTTP, "--sip", f"127.0.0.1:{SIP}",
           "--rtp-ports", "18600-18699"], {"EARSHOT_LOG": "warn"},
          stdout=subprocess.DEVNULL, stderr=open(f"{work}/earshotd.log", "w"))
    for _ in range(300):
        try:
            urllib.request.urlopen(SERVER + "/healthz")
            break
        except OSError:
            time.sleep(0.1)
    time.sleep(1)
    base = baseline(rec)
    log(f"loop-back baseline: median {np.median(base):.1f} ms over {len(base)} chirps")
    results = kept["results"]
    for pair in PAIRS:
        title, start = PAIR_KINDS[pair]
        log(f"{title} …")
        caller, callee, number = start()
        if isinstance(caller, App):
            measure(rec, caller, callee, number, "incoming", "answering", "connected", results.setdefault(pair, {}),
                    profile=pair == "app")
        else:
            measure(rec, caller, callee, number, "CALL_REMOTE_SDP", "CALL_ESTABLISHED", "CALL_ESTABLISHED",
                    results.setdefault(pair, {}))
        caller.stop(), callee.stop()

    rec.stop()
    chain = chain_ceiling() if os.path.exists(CHAIN) else []
    b = float(np.median(base))
    print(f"loop-back baseline (module-loopback, caller's mic → callee's speaker): "
          f"median {b:.1f} ms, p95 {pct(base, 95):.1f} ms, {len(base)} / {len(CHIRPS_AT)} chirps")
    print("| | " + " | ".join(PAIR_KINDS[pair][0] for pair in PAIRS) + " |")
    print("| --- |" + " --- |" * len(PAIRS))
    rows = [
        ("mouth-to-ear, median (minus baseline)", lambda r: f"{np.median(r['latency']) - b:.0f} ms"),
        ("mouth-to-ear, p95 (minus baseline)", lambda r: f"{pct(r['latency'], 95) - b:.0f} ms"),
        ("chirps found", lambda r: f"{len(r['latency'])} / {len(CHIRPS_AT)}"),
        (f"PESQ narrow-band (mean of {SPEECH_PLAYS} plays; their range)",
         lambda r: f"{r['pesq']:.3f} ({min(r['pesq_all']):.2f}–{max(r['pesq_all']):.2f})"),
        ("PESQ, office noise at the caller's microphone", lambda r: f"{r['pesq_office']:.2f}"),
        ("echo at the callee's mic", lambda r: f"{r['echo_dbfs']:.1f} dBFS"),
        ("residual echo at the caller", lambda r: residual(r['residual_dbfs'])),
        ("ERLE, over the far-end speech", lambda r: erle(r['erle_db'])),
        ("ERLE, its worst second", lambda r: erle(r['erle_worst_db'])),
        (f"ERLE, the callee's process stopped {HICCUP_MS} ms every {HICCUP_EVERY_S} s (its worst second)",
         lambda r: f"{erle(r['erle_hiccups_db'])} ({erle(r['erle_hiccups_worst_db'])})"),
        ("CPU idle (caller process)", lambda r: f"{r['cpu_idle']:.2f} %"),
        ("CPU in call (caller process)", lambda r: f"{r['cpu_call']:.2f} %"),
        ("PSS idle → in call", lambda r: f"{r['idle_pss']:.1f} → {r['call_pss']:.1f} MB"),
        ("dial → ringing at the callee", lambda r: f"{r['dial_to_ringing_ms']:.0f} ms"),
        ("answer → first sound at the caller", lambda r: f"{r['answer_to_audio_ms']:.0f} ms"),
    ]
    for label, cell in rows:
        print(f"| {label} | " + " | ".join(cell(results[pair]) for pair in PAIRS) + " |")
    if chain:
        print()
        print("the app's sound chain alone, caller's microphone → callee's speaker (examples/chain.rs):")
        print("| stages | PESQ | delay | time per 10 ms piece |")
        print("| --- | --- | --- | --- |")
        for label, score, delay_ms, timing in chain:
            print(f"| {label} | {score:.2f} | {delay_ms:.1f} ms | {timing.removeprefix('µs per 10 ms piece: ')} µs |")


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in reversed(started):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
        subprocess.run(["pulseaudio", "--kill"], env=env, capture_output=True)
        if os.environ.get("KEEP") == "1":
            save_aligned()
            log(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
