#!/usr/bin/env python3
"""Soak test of the worker model (driven by bench/soak): bounded in time, loopback only.

One pagi-serve supervisor with `workers: 2`, `max_requests: 1000` and a `pid_file` serves a small
`respond` route, an `sse` ticker and a WebSocket echo route while

  * `wrk` sends a paced load (its Lua `delay()` keeps it to a few hundred requests/s, so with the
    Python clients each worker is recycled about every 2 s, not many times a second),
  * 50 keep-alive HTTP/1.1 clients (threads, one persistent connection each) send a request every
    ~125 ms and check status and body,
  * 10 SSE streams and 10 WebSockets (echo every ~200 ms) stay open,

and, spread over the run, the script performs 20 reloads (SIGHUP, alternating a valid file whose
body text changed and an invalid one, restored after the refusal), 5 `kill -9` of a random worker,
and one hot binary upgrade (SIGUSR2, after replacing the executable the server was started from
with a fresh copy, as a package upgrade does).

What counts:

  * a **failed request**: connect refused, reset or EOF in the middle of a response, no answer
    within 5 s, a wrong status or body, a body older than the last valid reload 2 s after it; an
    SSE request or a WebSocket handshake that gets no answer counts here too;
  * a **dropped stream**: an open SSE stream that ends without the chunked terminator (or is silent
    for 5 s), an open WebSocket that ends without a close frame (or does not echo within 5 s);
  * a stream that ENDS CLEANLY (SSE terminator, WebSocket close 1001: a draining worker) is counted
    as a clean end, and the client reconnects;
  * a request that meets the close of an idle keep-alive connection (EOF or reset before any byte
    of the answer, on a connection that had served a request before) is retried once on a new
    connection, as HTTP clients do for idempotent requests (RFC 9112, 9.3.1): listed apart as
    "keep-alive close races"; the retry's own failure is a failure;
  * failures and drops on connections the killed worker held (by an `ss -tnp` snapshot taken just
    before each kill), within 1 s of a kill, are that kill's and are listed apart; a connection the
    snapshot cannot place (opened after it, or still queued) is attributed by the time window;
  * respawn time: from the kill until the replacement worker has answered a request (probe
    connections are opened until `ss -tnp` shows one of them held by the new worker's pid; if the
    replacement fails too, the next one);
  * longest stall: the longest gap between two successes of any client (HTTP answer, SSE event,
    WebSocket echo), the end of the run included.

The kill picks a random worker that serves and is not on its way out; when the only worker left is
one that reached max_requests (its replacement held back), that one. The report also lists what the
server log shows that no client may see: workers the script did not kill that died (a worker that
loads the refused file at its start, a worker killed by a reload's SIGHUP), replacements delayed by
the crash-loop backoff, recycled workers retired before their replacement was ready.

Writes bench/results/soak.md (or --out) and exits 1 when the goal is not met: no failed request and
no dropped stream outside the killed workers' own, every respawn under 1 s, 10 reloads applied and
10 refused, the hot upgrade done.
"""
import argparse
import base64
import ctypes
import datetime
import faulthandler
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance"))
from serverprocess import free_port, serving_as_invoker  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 5.0          # an answer, an echo, an SSE event (or keepalive) must come within this
KILL_WINDOW = 1.0      # failures this long after a kill -9 may be the killed worker's
STALE_GRACE = 2.0      # after a valid reload, the old body is a failure after this long
RESPAWN_GOAL = 1.0

CONFIG = """\
server:
  listen: ["127.0.0.1:{port}"]
  workers: 2
  threads: 1
  max_requests: {max_requests}
  pid_file: {pid_file}
  access_log: {{to: "off"}}
  log_level: info
  timeouts: {{idle: 75s, shutdown: 10s}}
hosts:
  - names: ["*"]
    routes:
      - path: /
        # The supervisor's pid, which a worker finds in its environment: tells which generation
        # answered (before or after the hot upgrade). "none" where it is not set (the supervisor).
        middleware: [{{headers: {{set: {{X-Soak-Supervisor: "${{PAGI_SUPERVISOR_PID:-none}}"}}}}}}]
        {respond_key}: {{body: "soak v{version}"}}
      - path: /ws
        websocket: {{echo: true, ping_interval: 5s, compression: false}}
      - path: /events
        sse: {{ticker: {{every: 200ms, data: "tick {{{{count}}}}"}}, keepalive: 1s, replay: 0}}
"""

WRK_SCRIPT = """\
-- paced load: each connection waits this many ms between its requests
function delay()
  return {delay}
end
"""


def now():
    return time.monotonic()


# --------------------------------------------------------------------------------------------
# Server log


class ServerLog:
    """Reads the server's merged stdout/stderr (supervisors and workers: the successor of a hot
    upgrade inherits the same pipe), stamps every line on arrival and lets the script wait for one."""

    def __init__(self, stream, path, t0):
        self.lines = []  # (t, text)
        self.cond = threading.Condition()
        self.t0 = t0
        self.file = open(path, "w")
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for raw in iter(stream.readline, b""):
            text = raw.decode("utf-8", "replace").rstrip("\n")
            t = now()
            self.file.write(f"{t - self.t0:9.3f} {text}\n")
            self.file.flush()
            with self.cond:
                self.lines.append((t, text))
                self.cond.notify_all()

    def wait_for(self, pattern, since, timeout):
        """The first line at or after `since` matching `pattern` (a compiled regex): (t, match)."""
        deadline = now() + timeout
        index = 0
        with self.cond:
            while True:
                while index < len(self.lines):
                    t, text = self.lines[index]
                    index += 1
                    if t >= since:
                        m = pattern.search(text)
                        if m:
                            return t, m
                remaining = deadline - now()
                if remaining <= 0:
                    return None, None
                self.cond.wait(remaining)

    def snapshot(self):
        with self.cond:
            return list(self.lines)


# --------------------------------------------------------------------------------------------
# Processes and sockets


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
        except (OSError, IndexError, ValueError):
            pass
    return out


def is_pagi(pid):
    """Workers run as /proc/self/exe: their executable, not their command line, says what they are."""
    try:
        return "pagi-serve" in os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False


def socket_owners(port):
    """Client port → pid of the server process holding the accepted connection (None: queued)."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True).stdout
    owners = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        peer = fields[3]
        try:
            client_port = int(peer.rsplit(":", 1)[1])
        except ValueError:
            continue
        m = re.search(r"pid=(\d+)", line)
        owners[client_port] = int(m.group(1)) if m else None
    return owners


def set_child_subreaper():
    """The hot upgrade's successor outlives its parent (our server process): as a subreaper this
    script inherits it, so it can wait for it and nothing is left to init."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except Exception:
        pass


class Reader:
    """Buffered reads from a socket with a deadline per call."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.got_any = False

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("EOF")
        self.got_any = True
        self.buf += data

    def until(self, marker):
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out, self.buf = self.buf[:i + len(marker)], self.buf[i + len(marker):]
                return out
            self._fill()

    def exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers


def classify(error):
    if isinstance(error, socket.timeout):
        return "timeout"
    if isinstance(error, ConnectionRefusedError):
        return "connect refused"
    if isinstance(error, ConnectionResetError):
        return "reset"
    if isinstance(error, BrokenPipeError):
        return "broken pipe"
    if isinstance(error, EOFError):
        return "EOF"
    return type(error).__name__


# --------------------------------------------------------------------------------------------
# Clients


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.failures = []     # dict(t, kind, cause, port, detail)
        self.drops = []        # dict(t, kind, cause, port, detail)
        self.clean_ends = []   # (t, kind, detail)
        self.races = []        # dict(t, cause, port, retry_ok)
        self.idle_closes = []  # (t, how, port): the server closed an idle keep-alive connection
        self.server_closes = 0  # answers with Connection: close
        self.connects = {"http": 0, "sse": 0, "ws": 0}
        self.success_times = []  # per-thread lists, merged at the end
        self.http_answers = []   # per-thread lists of (t, version, supervisor)
        self.sse_events = 0
        self.ws_echoes = 0

    def fail(self, **record):
        with self.lock:
            self.failures.append(record)

    def drop(self, **record):
        with self.lock:
            self.drops.append(record)


class Run:
    def __init__(self, port, stop):
        self.port = port
        self.stop = stop
        self.stats = Stats()
        self.stopped_at = None  # failures after this are the script's own shutdown

    def active(self):
        return not self.stop.is_set()


REQUEST = b"GET / HTTP/1.1\r\nHost: soak\r\nUser-Agent: soak\r\n\r\n"
BODY = re.compile(rb"^soak v(\d+)$")


def http_client(run, index, period):
    stats = run.stats
    successes, answers = [], []
    with stats.lock:
        stats.success_times.append(successes)
        stats.http_answers.append(answers)
    rng = random.Random(index)
    sock, reused, port = None, False, None
    next_at = now() + rng.random() * period

    def connect():
        nonlocal sock, reused, port
        sock = socket.create_connection(("127.0.0.1", run.port), timeout=TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        port = sock.getsockname()[1]
        reused = False
        with stats.lock:
            stats.connects["http"] += 1

    def close():
        nonlocal sock
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
        sock = None

    def exchange():
        """One request on `sock`: returns (status, headers, body); raises with reader.got_any."""
        sock.sendall(REQUEST)
        reader = Reader(sock)
        try:
            status, headers = parse_head(reader.until(b"\r\n\r\n"))
            body = reader.exactly(int(headers.get("content-length", "0")))
        except BaseException as error:
            error.got_any = reader.got_any
            raise
        return status, headers, body

    while run.active():
        delay = next_at - now()
        if delay > 0:
            time.sleep(delay)
        next_at += period * (0.8 + 0.4 * rng.random())
        if not run.active():
            break
        # An idle connection the server closed (a draining worker closes its idle keep-alive
        # connections): seen before sending, a clean close.
        if sock is not None:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                try:
                    data = sock.recv(1, socket.MSG_PEEK)
                    how = "FIN" if data == b"" else None
                except OSError as error:
                    how = classify(error)
                    data = b""
                t = now()
                if data:
                    stats.fail(t=t, kind="http", cause="bytes on an idle connection", port=port, detail=repr(data))
                else:
                    with stats.lock:
                        stats.idle_closes.append((t, how, port))
                close()
        t_start = now()
        retried = False
        while True:
            if sock is None:
                try:
                    connect()
                except OSError as error:
                    stats.fail(t=now(), kind="http", cause="connect: " + classify(error), port=None, detail=str(error))
                    break
            try:
                status, headers, body = exchange()
            except (OSError, EOFError) as error:
                t = now()
                got_any = getattr(error, "got_any", False)
                cause = classify(error)
                if reused and not got_any and not retried and cause != "timeout":
                    # The keep-alive close race: retried once on a new connection.
                    race = {"t": t, "cause": cause, "port": port}
                    with stats.lock:
                        stats.races.append(race)
                    retried = True
                    close()
                    continue
                stats.fail(t=t, kind="http", cause=(cause if not got_any else f"{cause} mid-response")
                           + (" (retry)" if retried else ""), port=port, detail=str(error))
                close()
                break
            t = now()
            m = BODY.match(body)
            if status != 200 or not m:
                stats.fail(t=t, kind="http", cause=f"wrong answer: {status}", port=port, detail=repr(body[:80]))
            else:
                successes.append(t)
                answers.append((t, int(m.group(1)), headers.get("x-soak-supervisor", "?")))
            if retried:
                race["retry_ok"] = status == 200
            reused = True
            if headers.get("connection", "").lower() == "close":
                with stats.lock:
                    stats.server_closes += 1
                close()
            break
        if now() - t_start > period:
            next_at = max(next_at, now())
    close()


def sse_client(run, index):
    stats = run.stats
    successes = []
    with stats.lock:
        stats.success_times.append(successes)
    request = b"GET /events HTTP/1.1\r\nHost: soak\r\nAccept: text/event-stream\r\n\r\n"
    while run.active():
        port = None
        try:
            sock = socket.create_connection(("127.0.0.1", run.port), timeout=TIMEOUT)
            port = sock.getsockname()[1]
            with stats.lock:
                stats.connects["sse"] += 1
        except OSError as error:
            stats.fail(t=now(), kind="sse", cause="connect: " + classify(error), port=None, detail=str(error))
            time.sleep(0.2)
            continue
        reader = Reader(sock)
        opened = False  # before the answer's head, a failure is a failed request, not a dropped stream
        try:
            sock.sendall(request)
            status, headers = parse_head(reader.until(b"\r\n\r\n"))
            opened = True
            if status != 200 or "chunked" not in headers.get("transfer-encoding", ""):
                stats.fail(t=now(), kind="sse", cause=f"wrong answer: {status}", port=port, detail=str(headers))
                sock.close()
                time.sleep(0.2)
                continue
            text = b""
            events = 0
            while run.active():
                size_line = reader.until(b"\r\n")
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    reader.until(b"\r\n")
                    with stats.lock:
                        stats.clean_ends.append((now(), "sse", f"terminator after {events} events"))
                    break
                text += reader.exactly(size + 2)[:-2]
                while b"\n\n" in text:
                    event, text = text.split(b"\n\n", 1)
                    if b"data:" in event:
                        events += 1
                        successes.append(now())
                        with stats.lock:
                            stats.sse_events += 1
        except (OSError, EOFError, ValueError) as error:
            if run.active() and not opened:
                stats.fail(t=now(), kind="sse", cause=classify(error) + " (no answer)", port=port, detail=str(error))
            elif run.active():
                cause = "silent for 5 s" if isinstance(error, socket.timeout) else classify(error)
                stats.drop(t=now(), kind="sse", cause=cause, port=port, detail=str(error))
        finally:
            sock.close()


def ws_frame(opcode, payload):
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    else:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def ws_read(reader):
    b0, b1 = reader.exactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(reader.exactly(2), "big")
    elif n == 127:
        n = int.from_bytes(reader.exactly(8), "big")
    mask = reader.exactly(4) if b1 & 0x80 else None
    payload = reader.exactly(n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return b0 & 0x0F, payload


def ws_client(run, index, period):
    stats = run.stats
    successes = []
    with stats.lock:
        stats.success_times.append(successes)
    seq = 0
    while run.active():
        port = None
        try:
            sock = socket.create_connection(("127.0.0.1", run.port), timeout=TIMEOUT)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            port = sock.getsockname()[1]
            with stats.lock:
                stats.connects["ws"] += 1
        except OSError as error:
            stats.fail(t=now(), kind="ws", cause="connect: " + classify(error), port=None, detail=str(error))
            time.sleep(0.2)
            continue
        reader = Reader(sock)
        key = base64.b64encode(os.urandom(16))
        opened = False
        try:
            sock.sendall(b"GET /ws HTTP/1.1\r\nHost: soak\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
            status, headers = parse_head(reader.until(b"\r\n\r\n"))
            opened = True
            if status != 101:
                stats.fail(t=now(), kind="ws", cause=f"handshake: {status}", port=port, detail=str(headers))
                sock.close()
                time.sleep(0.2)
                continue
            while run.active():
                seq += 1
                message = f"{index}:{seq}".encode()
                sock.sendall(ws_frame(0x1, message))
                closed = False
                while True:
                    opcode, payload = ws_read(reader)
                    if opcode == 0x1:
                        if payload == message:
                            successes.append(now())
                            with stats.lock:
                                stats.ws_echoes += 1
                            break
                        stats.fail(t=now(), kind="ws", cause="wrong echo", port=port, detail=repr(payload[:40]))
                    elif opcode == 0x9:
                        sock.sendall(ws_frame(0xA, payload))
                    elif opcode == 0x8:
                        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                        closed = True
                        try:
                            sock.sendall(ws_frame(0x8, payload[:2]))
                        except OSError:
                            pass
                        break
                if closed:
                    with stats.lock:
                        stats.clean_ends.append((now(), "ws", f"close {code}"))
                    break
                time.sleep(period)
        except (OSError, EOFError, ValueError) as error:
            if run.active() and not opened:
                stats.fail(t=now(), kind="ws", cause=classify(error) + " (no handshake answer)", port=port, detail=str(error))
            elif run.active():
                cause = "no echo within 5 s" if isinstance(error, socket.timeout) else classify(error)
                stats.drop(t=now(), kind="ws", cause=cause, port=port, detail=str(error))
        finally:
            sock.close()


# --------------------------------------------------------------------------------------------
# The soak


class Soak:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="pagi-soak-")
        os.chmod(self.work, 0o755)
        self.bin_dir = os.path.join(self.work, "bin")
        os.makedirs(self.bin_dir)
        # One copy of the binary taken now (it may be rebuilt under us): the server runs from
        # bin/pagi-serve, and the upgrade installs a fresh copy of the same file there.
        self.pristine = os.path.join(self.work, "pagi-serve.pristine")
        shutil.copy2(args.binary, self.pristine)
        self.installed = os.path.join(self.bin_dir, "pagi-serve")
        shutil.copy2(self.pristine, self.installed)
        self.config = os.path.join(self.work, "config.yaml")
        self.pid_file = os.path.join(self.work, "pagi-serve.pid")
        self.port = free_port()
        self.version = 0
        self.events = []  # (t, what, detail)
        self.kills = []   # dict(t, victim, age, owners, respawn...)
        self.reloads = []  # dict(t, valid, outcome, seconds)
        self.upgrade = {}
        self.all_pids = set()
        self.probe_successes = []

    def sanitize(self, text):
        return text.replace(self.work, "<work>")

    def write_config(self, valid=True):
        text = CONFIG.format(port=self.port, max_requests=self.args.max_requests, pid_file=self.pid_file,
                             version=self.version, respond_key="respond" if valid else "respnd")
        temp = self.config + ".new"
        with open(temp, "w") as f:
            f.write(text)
        os.replace(temp, self.config)

    def supervisor(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def workers(self):
        sup = self.supervisor()
        return [p for p in children(sup) if is_pagi(p)] if sup else []

    def event(self, what, detail=""):
        self.events.append((now(), what, detail))
        print(f"{now() - self.t0:7.2f}s {what} {detail}", file=sys.stderr, flush=True)

    # ---- actions

    def reload(self, valid):
        sup = self.supervisor()
        if valid:
            self.version += 1
        self.write_config(valid)
        t = now()
        os.kill(sup, signal.SIGHUP)
        pattern = re.compile(r"^(?:info: configuration reloaded|error: reload refused.*|error: reload failed.*)$")
        t_done, m = self.log.wait_for(pattern, t, 10)
        outcome = "no answer" if not m else ("applied" if "reloaded" in m.group(0) else "refused")
        record = {"t": t, "valid": valid, "outcome": outcome, "seconds": (t_done - t) if t_done else None,
                  "version": self.version}
        self.reloads.append(record)
        self.event("reload", f"{'valid v' + str(self.version) if valid else 'invalid'}: {outcome}")
        if not valid:
            # Leave the refused file in place a moment, as an operator would, then put back the
            # file in force.
            time.sleep(self.args.invalid_hold)
            self.write_config(True)
            record["restored"] = now()

    def kill_worker(self):
        sup = self.supervisor()
        lines = self.log.snapshot()
        # Not a worker on its way out (recycled, retiring) nor one still starting: one that serves.
        leaving = set()
        for _, text in lines:
            m = re.search(r"retiring worker (\d+)|worker (\d+) reached max_requests", text)
            if m:
                leaving.add(int(m.group(1) or m.group(2)))
        started = {int(m.group(1)): t for t, text in lines for m in [re.search(r"^info: worker (\d+) started$", text)] if m}
        owners = socket_owners(self.port)
        everyone = self.workers()
        workers = [p for p in everyone if p not in leaving]
        serving = [p for p in workers if p in owners.values()]
        # When every worker is on its way out (a recycled one whose replacement is held back), any.
        candidates = serving or workers or everyone
        if not candidates:
            self.event("kill -9", "no worker to kill")
            return
        victim = self.rng.choice(candidates)
        t = now()
        os.kill(victim, signal.SIGKILL)
        record = {"t": t, "victim": victim, "supervisor": sup, "age": t - started[victim] if victim in started else None,
                  "owners": owners, "held": sum(1 for p in owners.values() if p == victim),
                  "alive": len(everyone), "recycled": victim in leaving}
        self.kills.append(record)
        self.event("kill -9", f"worker {victim} (age {record['age'] or 0:.1f} s, {record['held']} connections)")
        thread = threading.Thread(target=self.measure_respawn, args=(record,), daemon=True)
        thread.start()
        record["thread"] = thread

    def measure_respawn(self, record):
        """Kill → first answer from a worker started after the kill (the replacement, or if that one
        failed, whichever came next): probe connections are opened until `ss` shows one of them held
        by such a worker."""
        victim, t = record["victim"], record["t"]
        deadline = self.load_start + self.args.seconds + 3
        # Either an unexpected death, or — when the kill met the worker just as it was recycled
        # or retired — the end of a worker on its way out (replaced already).
        died = re.compile(rf"^(?:error: worker {victim} (.*) after ([\d.]+) s: (.*)|info: worker {victim} stopped \((.*)\))$")
        t_seen, m = self.log.wait_for(died, t, 10)
        if not m:
            record["plan"] = "no log line"
            return
        record["plan"] = m.group(3) or "(it was being retired: its replacement was under way)"
        record["how"] = m.group(1) or m.group(4)
        # The replacement: the next worker started after the death was seen (for a worker that
        # was being retired, the replacement started just before the kill counts too).
        since = t_seen if m.group(3) else t - 0.05
        started = re.compile(r"^info: worker (\d+) started$")
        t_spawn, m = self.log.wait_for(started, since, max(0.0, deadline - now()))
        if not m:
            return
        record["spawned"] = t_spawn - t
        probes = []  # (sock, client port, t answered)
        last_ss = 0
        try:
            while now() < deadline and "ready" not in record:
                try:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
                    sock.sendall(REQUEST)
                    reader = Reader(sock)
                    _, headers = parse_head(reader.until(b"\r\n\r\n"))
                    reader.exactly(int(headers.get("content-length", "0")))
                    t_answer = now()
                    self.probe_successes.append(t_answer)
                    probes.append((sock, sock.getsockname()[1], t_answer))
                except (OSError, EOFError):
                    pass
                if now() - last_ss > 0.05:
                    last_ss = now()
                    new = {int(m.group(1)) for at, text in self.log.snapshot() if at >= since
                           for m in [started.search(text)] if m}
                    owners = socket_owners(self.port)
                    served = [(a, owners.get(p)) for _, p, a in probes if owners.get(p) in new]
                    if served:
                        record["ready"] = min(served)[0] - t
                        record["new"] = min(served)[1]
                    for sock, _, _ in probes:
                        sock.close()
                    probes = []
                time.sleep(0.02)
        finally:
            for sock, _, _ in probes:
                sock.close()

    def hot_upgrade(self):
        old = self.supervisor()
        # What a package upgrade does: a new file renamed over the installed one.
        temp = os.path.join(self.bin_dir, ".pagi-serve.new")
        shutil.copy2(self.pristine, temp)
        os.replace(temp, self.installed)
        t = now()
        os.kill(old, signal.SIGUSR2)
        pattern = re.compile(r"^(?:info: hot upgrade: process (\d+) serves now.*|error: hot upgrade failed.*)$")
        t_done, m = self.log.wait_for(pattern, t, 70)
        self.upgrade = {"t": t, "old": old, "done": bool(m and m.group(1)),
                        "line": m.group(0) if m else "no answer", "seconds": (t_done - t) if t_done else None}
        if self.upgrade["done"]:
            new = int(m.group(1))
            self.upgrade["new"] = new
            self.all_pids.add(new)
            for _ in range(100):
                if self.supervisor() == new:
                    break
                time.sleep(0.02)
            self.upgrade["pid_file"] = self.supervisor() == new
            try:
                self.upgrade["new_exe"] = os.readlink(f"/proc/{new}/exe")
            except OSError:
                self.upgrade["new_exe"] = "?"
            threading.Thread(target=self._old_exit, args=(t,), daemon=True).start()
        self.event("hot upgrade", self.upgrade["line"])

    def _old_exit(self, t):
        try:
            code = self.process.wait(timeout=40)
            self.upgrade["old_exit"] = code
            self.upgrade["old_gone"] = now() - t
        except subprocess.TimeoutExpired:
            self.upgrade["old_exit"] = "still running after 40 s"

    # ---- running

    def schedule(self, seconds):
        """The events evenly spread between a 3 s warm-up and the last 5 s: the kills evenly among
        them, the upgrade in the middle, reloads (valid and invalid in turn) in the other slots."""
        start, end = 3.0, seconds - 5.0
        n = self.args.reloads + self.args.kills + 1
        step = (end - start) / n
        kinds = [None] * n
        kinds[n // 2] = "upgrade"
        for i in range(self.args.kills):
            want = int((i + 0.5) * n / self.args.kills)
            free = sorted((c for c in range(n) if kinds[c] is None), key=lambda c: (abs(c - want), -c))
            kinds[free[0]] = "kill"
        plan, valid = [], True
        for i, kind in enumerate(kinds):
            if kind is None:
                plan.append((start + i * step, "reload", valid))
                valid = not valid
            else:
                plan.append((start + i * step, kind, None))
        return plan

    def run(self):
        args = self.args
        self.rng = random.Random(args.seed)
        set_child_subreaper()
        self.write_config(True)
        check = subprocess.run([self.installed, "check", self.config], capture_output=True, text=True)
        if check.returncode != 0:
            sys.exit("config refused by `check`:\n" + check.stdout + check.stderr)
        self.write_config(False)
        bad = subprocess.run([self.installed, "check", self.config], capture_output=True, text=True)
        if bad.returncode == 0:
            sys.exit("the invalid config is accepted by `check`")
        self.write_config(True)

        self.t0 = now()
        self.process = subprocess.Popen([self.installed, self.config] + serving_as_invoker(self.installed),
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self.all_pids.add(self.process.pid)
        self.log = ServerLog(self.process.stdout, os.path.join(self.work, "server.log"), self.t0)
        try:
            return self._run_load()
        finally:
            self.shutdown()

    def _run_load(self):
        args = self.args
        deadline = now() + 20
        while now() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(REQUEST)
                    if Reader(s).until(b"\r\n\r\n").startswith(b"HTTP/1.1 200"):
                        break
            except (OSError, EOFError):
                time.sleep(0.05)
        else:
            sys.exit("pagi-serve did not answer")
        while len(self.workers()) < 2 and now() < deadline:
            time.sleep(0.05)

        stop = threading.Event()
        self.runner = Run(self.port, stop)
        threads = [threading.Thread(target=http_client, args=(self.runner, i, args.http_period), daemon=True)
                   for i in range(args.http_clients)]
        threads += [threading.Thread(target=sse_client, args=(self.runner, i), daemon=True) for i in range(args.sse)]
        threads += [threading.Thread(target=ws_client, args=(self.runner, i, args.ws_period), daemon=True)
                    for i in range(args.ws)]
        script = os.path.join(self.work, "paced.lua")
        with open(script, "w") as f:
            f.write(WRK_SCRIPT.format(delay=args.wrk_delay))
        self.load_start = now()
        for thread in threads:
            thread.start()
        wrk = subprocess.Popen(["wrk", "-t1", f"-c{args.wrk_connections}", f"-d{args.seconds}s", "--timeout", "5s",
                                "--latency", "-s", script, f"http://127.0.0.1:{self.port}/"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.event("load", f"wrk -c{args.wrk_connections} (delay {args.wrk_delay} ms), {args.http_clients} keep-alive "
                   f"clients, {args.sse} SSE, {args.ws} WebSockets")

        for at, kind, valid in self.schedule(args.seconds):
            wait = self.load_start + at - now()
            if wait > 0:
                time.sleep(wait)
            try:
                if kind == "reload":
                    self.reload(valid)
                elif kind == "kill":
                    self.kill_worker()
                else:
                    self.hot_upgrade()
            except Exception as error:  # keep the soak going; the report shows what is missing
                self.event(f"{kind} failed", repr(error))
        wait = self.load_start + args.seconds - now()
        if wait > 0:
            time.sleep(wait)
        self.load_end = now()
        stop.set()
        self.wrk_output = wrk.communicate(timeout=30)[0]
        # Every client ends its current exchange (at most TIMEOUT) and stops.
        join_by = now() + TIMEOUT + 2
        for thread in threads:
            thread.join(timeout=max(0.0, join_by - now()))
        for record in self.kills:
            record["thread"].join(timeout=20)
        return self.report()

    def shutdown(self):
        sup = self.supervisor()
        pids = {sup} if sup else set()
        if sup and is_pagi(sup):
            pids |= set(children(sup))
            os.kill(sup, signal.SIGTERM)
            for _ in range(300):
                try:
                    if os.waitpid(sup, os.WNOHANG)[0] == sup:
                        break
                except ChildProcessError:
                    if not os.path.exists(f"/proc/{sup}"):
                        break
                time.sleep(0.05)
        # Anything of ours still alive (by pid, checked to be pagi-serve): stopped hard.
        for line in self.log.snapshot():
            m = re.search(r"worker (\d+) started", line[1])
            if m:
                pids.add(int(m.group(1)))
        pids |= self.all_pids
        for pid in pids:
            if pid and is_pagi(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        # reap whatever was reparented to us
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break

    # ---- report

    def attributed(self, record):
        """The kill whose worker this failure or drop belongs to, or None."""
        if record.get("cause", "").startswith(("connect", "stale")):
            return None  # the listening socket is shared: a kill refuses no connection
        for kill in self.kills:
            if kill["t"] <= record["t"] <= kill["t"] + KILL_WINDOW:
                owner = kill["owners"].get(record.get("port"), None) if record.get("port") else None
                if owner == kill["victim"] or owner is None:
                    return kill
        return None

    def report(self):
        args, stats = self.args, self.runner.stats
        t0, end = self.load_start, self.load_end
        lines_log = self.log.snapshot()
        in_run = lambda t: t0 <= t <= end  # noqa: E731

        failures = [f for f in stats.failures if in_run(f["t"])]
        drops = [d for d in stats.drops if in_run(d["t"])]
        # Stale bodies: an answer with an older version than a valid reload applied STALE_GRACE ago.
        applied = [(r["t"] + (r["seconds"] or 0), r["version"]) for r in self.reloads if r["valid"] and r["outcome"] == "applied"]
        stale = []
        http_ok = 0
        by_supervisor = {}
        for answers in stats.http_answers:
            for t, version, sup in answers:
                http_ok += 1
                by_supervisor[sup] = by_supervisor.get(sup, 0) + 1
                expected = max((v for at, v in applied if at + STALE_GRACE <= t), default=0)
                if version < expected:
                    stale.append({"t": t, "kind": "http", "cause": f"stale body v{version} (v{expected} in force)", "port": None, "detail": ""})
        failures += stale
        killed_failures = [f for f in failures if self.attributed(f)]
        other_failures = [f for f in failures if not self.attributed(f)]
        killed_drops = [d for d in drops if self.attributed(d)]
        other_drops = [d for d in drops if not self.attributed(d)]
        races = [r for r in stats.races if in_run(r["t"])]
        races_killed = [r for r in races if self.attributed(r)]
        race_causes = {}
        for r in races:
            race_causes[r["cause"]] = race_causes.get(r["cause"], 0) + 1

        # Longest stall: no success of any client (HTTP, SSE event, WebSocket echo, respawn probe).
        # The run's first second and its end bound the gaps: a stall that lasts to the end counts.
        times = [t0 + 1] + sorted([t for lst in stats.success_times for t in lst if t0 + 1 <= t <= end]
                                  + [t for t in self.probe_successes if t0 + 1 <= t <= end]) + [end]
        stall, stall_at = 0.0, None
        for a, b in zip(times, times[1:]):
            if b - a > stall:
                stall, stall_at = b - a, a
        http_times = [t0 + 1] + sorted(t for lst in stats.http_answers for t, _, _ in lst if t0 + 1 <= t <= end) + [end]
        http_stall = max((b - a for a, b in zip(http_times, http_times[1:])), default=0.0)

        def count(pattern):
            rx = re.compile(pattern)
            return sum(1 for t, text in lines_log if rx.search(text))

        recycles = count(r"reached max_requests")
        # Workers that logged each valid reload (within 2 s of the supervisor applying it).
        per_reload = []
        for r in self.reloads:
            if r["valid"] and r["outcome"] == "applied":
                done = r["t"] + (r["seconds"] or 0)
                per_reload.append(sum(1 for t, text in lines_log
                                      if done - 0.05 <= t <= done + 2 and "configuration reloaded worker=" in text))
        # Recycling: how long after its replacement was started each recycled worker was retired.
        # (The replacement needs ~0.1 s to be ready; a retirement within 20 ms came before that.)
        retire_gaps = []
        last_start = None
        recycled = set()
        for t, text in lines_log:
            m = re.search(r"^info: worker (\d+) reached max_requests", text)
            if m:
                recycled.add(int(m.group(1)))
            m = re.search(r"^info: worker (\d+) started$", text)
            if m:
                last_start = t
            m = re.search(r"^info: retiring worker (\d+): max_requests reached", text)
            if m and last_start is not None and int(m.group(1)) in recycled:
                retire_gaps.append(t - last_start)
        # A worker process takes ~10-20 ms to be ready; a retirement within 5 ms of the replacement's
        # start cannot have waited for it.
        early_retirements = sum(1 for g in retire_gaps if g < 0.005)
        hup_deaths = [(t, text) for t, text in lines_log if re.search(r"^error: worker \d+ was killed by signal 1 ", text)]
        failed_starts = [(t, text) for t, text in lines_log if re.search(r"^error: worker \d+ exited with status [1-9]", text)]
        slowed_respawns = [k for k in self.kills if "keeps dying" in k.get("plan", "")]
        worker_refusals = count(r"reload (refused|failed).*worker=")
        unexpected_deaths = [(t, text) for t, text in lines_log
                             if re.search(r"^error: worker \d+ (.*) after", text)
                             and not any(f"worker {k['victim']} " in text for k in self.kills)]
        wrk = parse_wrk(self.wrk_output)
        applied_n = sum(1 for r in self.reloads if r["valid"] and r["outcome"] == "applied")
        refused_n = sum(1 for r in self.reloads if not r["valid"] and r["outcome"] == "refused")
        wrong_reloads = [r for r in self.reloads if (r["outcome"] == "applied") != r["valid"]]
        # A replacement that had not answered by the end: at least until the end.
        for k in self.kills:
            if k.get("ready") is None and k.get("plan") and "retired" not in k["plan"]:
                k["not_by"] = end - k["t"]
        respawns = [k.get("ready") for k in self.kills]
        max_respawn = max([r for r in respawns if r is not None] + [k["not_by"] for k in self.kills if "not_by" in k],
                          default=None)
        clean_sse = sum(1 for _, kind, _ in stats.clean_ends if kind == "sse")
        clean_ws = [d for _, kind, d in stats.clean_ends if kind == "ws"]
        ws_codes = {}
        for d in clean_ws:
            ws_codes[d] = ws_codes.get(d, 0) + 1

        problems = []
        if other_failures:
            problems.append(f"{len(other_failures)} failed requests outside the killed workers")
        if other_drops:
            problems.append(f"{len(other_drops)} dropped streams outside the killed workers")
        if len(self.kills) != args.kills:
            problems.append(f"{len(self.kills)} of {args.kills} kills done")
        if None in respawns or (max_respawn is not None and max_respawn >= RESPAWN_GOAL):
            problems.append("a respawn took 1 s or more (or was not seen)")
        if applied_n != args.reloads // 2 or refused_n != args.reloads - args.reloads // 2 or wrong_reloads:
            problems.append(f"reloads: {applied_n} applied, {refused_n} refused")
        if not self.upgrade.get("done") or self.upgrade.get("old_exit") != 0 or not self.upgrade.get("pid_file"):
            problems.append("hot upgrade not done cleanly")
        if wrk.get("connect", 0) or wrk.get("timeout", 0) or wrk.get("non2xx", 0):
            problems.append("wrk saw connect errors, timeouts or non-2xx answers")
        if unexpected_deaths:
            problems.append(f"{len(unexpected_deaths)} worker deaths the script did not cause")

        def by_cause(items):
            causes = {}
            for f in items:
                key = f"{f['kind']}: {f['cause']}"
                causes[key] = causes.get(key, 0) + 1
            return ", ".join(f"{k} ×{v}" for k, v in sorted(causes.items())) or "none"

        stamp = datetime.datetime.now(datetime.timezone.utc)
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        binary = os.path.relpath(args.binary, ROOT) if os.path.abspath(args.binary).startswith(ROOT + os.sep) else "<binary>"
        fmt = lambda x: "—" if x is None else f"{x * 1000:.0f} ms"  # noqa: E731
        rel = lambda t: f"{t - t0:.2f} s"  # noqa: E731
        out = [
            "# Soak: workers, reloads, kill -9, max_requests, hot upgrade",
            "",
            f"{stamp:%Y-%m-%d %H:%M} UTC · {cpu} · {os.cpu_count()} CPUs (shared with the load) · "
            f"`bench/soak --seconds {args.seconds}`" + (f" (`--binary {binary}`)" if binary != ".build/release/pagi-serve" else "")
            + f" · seed {args.seed}",
            "",
            f"Server: `workers: 2`, `threads: 1`, `max_requests: {args.max_requests}`, `pid_file`; a `respond` route, an "
            f"`sse` ticker (200 ms, keepalive 1 s), a WebSocket echo route. Load for {args.seconds} s: `wrk -t1 "
            f"-c{args.wrk_connections}` paced by `delay()` = {args.wrk_delay} ms, {args.http_clients} keep-alive clients "
            f"(a request every ~{args.http_period * 1000:.0f} ms each), {args.sse} SSE streams, {args.ws} WebSockets "
            f"(an echo every ~{args.ws_period * 1000:.0f} ms).",
            "",
            f"**Goal {'met' if not problems else 'NOT met'}**" + ("" if not problems else ": " + "; ".join(problems)),
            "",
            "| | |",
            "|---|---|",
            f"| keep-alive clients: requests ok | {http_ok:,} ({stats.connects['http']:,} connections) |",
            f"| failed requests (not the killed workers') | **{len(other_failures)}** — {by_cause(other_failures)} |",
            f"| failed requests of the killed workers (≤ {KILL_WINDOW:.0f} s after a kill, on its connections) | {len(killed_failures)} — {by_cause(killed_failures)} |",
            f"| keep-alive close races (EOF/reset before any byte on a reused connection; retried once) | {len(races)} "
            f"({len(races_killed)} on killed workers; {', '.join(f'{c} ×{n}' for c, n in sorted(race_causes.items())) or '—'}; "
            f"retries ok: {sum(1 for r in races if r.get('retry_ok'))}) |",
            f"| idle keep-alive connections closed by the server (seen before sending) | {len(stats.idle_closes)} "
            f"(FIN {sum(1 for c in stats.idle_closes if c[1] == 'FIN')}, other {sum(1 for c in stats.idle_closes if c[1] != 'FIN')}) |",
            f"| answers with `Connection: close` | {stats.server_closes} |",
            f"| stale bodies (older than a reload applied {STALE_GRACE:.0f} s before) | {len(stale)} |",
            f"| wrk: requests, req/s | {wrk.get('requests', 0):,}, {wrk.get('rps', 0):,.0f} (p99 {wrk.get('p99', '?')}, max {wrk.get('max', '?')}) |",
            f"| wrk: errors | connect {wrk.get('connect', 0)}, read {wrk.get('read', 0)}, write {wrk.get('write', 0)}, "
            f"timeout {wrk.get('timeout', 0)}, non-2xx {wrk.get('non2xx', 0)} |",
            f"| SSE: events received | {stats.sse_events:,} ({stats.connects['sse']} streams opened) |",
            f"| SSE: clean ends (chunked terminator) → reconnects | {clean_sse} |",
            f"| WebSocket: echoes | {stats.ws_echoes:,} ({stats.connects['ws']} opened) |",
            f"| WebSocket: clean ends (close frame) → reconnects | {len(clean_ws)} ({', '.join(f'{k} ×{v}' for k, v in sorted(ws_codes.items())) or '—'}) |",
            f"| dropped streams (not the killed workers') | **{len(other_drops)}** — {by_cause(other_drops)} |",
            f"| dropped streams of the killed workers | {len(killed_drops)} — {by_cause(killed_drops)} |",
            f"| reloads: valid applied / invalid refused | {applied_n} / {refused_n} (of {args.reloads}; "
            f"workers that logged each valid reload: {', '.join(map(str, per_reload))}; {worker_refusals} refused by a worker) |",
            f"| recycles (`reached max_requests` lines) | {recycles}; recycled worker retired < 5 ms after its replacement "
            f"was started (too soon for it to be ready): {early_retirements} of {len(retire_gaps)} |",
            f"| worker deaths the script did not cause | {len(unexpected_deaths)}: started while the refused file was on disk "
            f"(exit 1) {len(failed_starts)}, killed by the reload's SIGHUP before it handled signals {len(hup_deaths)} |",
            "| kill -9: respawn (kill → replacement answered a request) | "
            + ", ".join(fmt(k.get("ready")) if "not_by" not in k else f"none by the end (> {k['not_by']:.1f} s)"
                        for k in self.kills) + f"; **max {fmt(max_respawn)}**"
            + (" or more" if any("not_by" in k for k in self.kills) else "") + " |",
            f"| hot upgrade done | {'yes' if self.upgrade.get('done') else 'no'}"
            + (f" — successor serving after {self.upgrade['seconds']:.2f} s, running the new file: "
               f"{'yes' if not self.upgrade.get('new_exe', '').endswith('(deleted)') else 'no'}, pid_file rewritten: "
               f"{'yes' if self.upgrade.get('pid_file') else 'no'}, old supervisor exit {self.upgrade.get('old_exit')}"
               f" after {self.upgrade.get('old_gone', 0):.2f} s" if self.upgrade.get('done') else f" ({self.upgrade.get('line', 'not tried')})")
            + " |",
            "| answers per supervisor generation (`X-Soak-Supervisor`) | "
            + ", ".join(f"{'old' if s == str(self.upgrade.get('old')) else 'new' if s == str(self.upgrade.get('new')) else s}: {n:,}"
                        for s, n in sorted(by_supervisor.items(), key=lambda x: -x[1])) + " |",
            f"| longest stall (no success of any client) | **{fmt(stall)}**"
            + (f" from {rel(stall_at)} to {rel(stall_at + stall)}" if stall_at else "") + f"; HTTP answers only: {fmt(http_stall)} |",
            "",
            "Kills:",
            "",
            "| at | worker age | its connections | workers alive | supervisor's plan | replacement started | answered |",
            "|---|---|---|---|---|---|---|",
        ]
        for k in self.kills:
            alive = f"{k['alive']}" + (" (the victim had reached max_requests: no other to pick)" if k["recycled"] else "")
            answered = fmt(k.get("ready")) if "not_by" not in k else f"not by the end (> {k['not_by']:.1f} s)"
            out.append(f"| {rel(k['t'])} | {k['age'] or 0:.1f} s | {k['held']} | {alive} | {k.get('plan', '?')} | "
                       f"{fmt(k.get('spawned'))} | {answered} |")
        out += ["", "Events (s from the start of the load):", ""]
        out.append(", ".join(f"{rel(t)} {what}" + (f" ({d})" if what != "load" else "")
                             for t, what, d in self.events if what != "load"))
        notes = []
        findings = []
        if slowed_respawns:
            findings.append(f"{len(slowed_respawns)} of {len(self.kills)} kill -9 replacements were delayed by the crash-loop "
                            "backoff (`" + "`, `".join(k["plan"] for k in slowed_respawns) + "`): the killed worker had run "
                            "less than 5 s (`max_requests` keeps every worker young) and/or earlier failed starts raised "
                            "the count, which only an unexpected death after 5 s resets")
        if failed_starts:
            findings.append(f"{len(failed_starts)} workers started (recycling, respawn) while the refused file was on disk "
                            "loaded that file themselves and exited 1: e.g. `" + self.sanitize(failed_starts[0][1]) + "`")
        if hup_deaths:
            findings.append(f"{len(hup_deaths)} workers were killed by the reload's SIGHUP, sent before the new process handled "
                            "signals: `" + "`, `".join(self.sanitize(text) for _, text in hup_deaths) + "`")
        if early_retirements:
            gaps = sorted(retire_gaps)
            findings.append(f"{early_retirements} of {len(retire_gaps)} recycled workers were retired {gaps[0] * 1000:.1f}–"
                            f"{gaps[early_retirements - 1] * 1000:.1f} ms after their replacement was started, not once it "
                            "was ready: meanwhile one worker serves")
        if findings:
            notes += ["", "## Server behaviour seen", ""] + [f"- {f}" for f in findings]
        if other_failures or other_drops or unexpected_deaths:
            notes += ["", "## Unexplained", ""]
            # Failures and drops in clusters (less than a second apart), by cause.
            groups = []
            for item in sorted(other_failures + other_drops, key=lambda x: x["t"]):
                if groups and item["t"] - groups[-1]["last"] <= 1.0:
                    groups[-1]["items"].append(item)
                    groups[-1]["last"] = item["t"]
                else:
                    groups.append({"t": item["t"], "last": item["t"], "items": [item]})
            for g in groups[:20]:
                span = f"{rel(g['t'])}" + (f"–{rel(g['last'])}" if g["last"] - g["t"] >= 0.01 else "")
                notes.append(f"- {span}: {by_cause(g['items'])}")
            if len(groups) > 20:
                notes.append(f"- … {len(groups) - 20} more")
            for t, text in unexpected_deaths:
                notes.append(f"- {rel(t)} server: `{self.sanitize(text)}`")
            # Server log excerpts: before the first client-visible failure (a request times out 5 s
            # after it was sent), and around the first death of each kind. A worker's config
            # diagnostics (the refused file) are left out: `reload refused` / `exited with status 1` say it.
            windows = []
            if groups:
                windows.append(("the first failures", groups[0]["t"] - 6.0, groups[0]["t"] + 0.1))
            for label, deaths in (("a worker that loaded the refused file", failed_starts),
                                  ("a worker killed by a reload's SIGHUP", hup_deaths)):
                if deaths:
                    windows.append((label, deaths[0][0] - 0.6, deaths[0][0] + 0.02))
            diagnostic = re.compile(r"^\s*(\d+\s*)?[|^]|^\s+\^|^(error: |warn: )?\S+\.yaml:\d+:\d+: |^\d+ errors? in configuration")
            for label, start, stop in windows:
                notes += ["", f"Server log before {label} (s from the start of the load):", "", "```text"]
                for t, text in lines_log:
                    if start <= t <= stop and not diagnostic.match(text):
                        notes.append(f"{t - t0:8.3f} {self.sanitize(text)}")
                notes.append("```")
        out += notes
        out += ["", "How to read it: a worker that drains (recycled by `max_requests`, or the old generation after the "
                "hot upgrade) ends its SSE streams with the chunked terminator and closes its WebSockets with 1001: "
                "those are clean ends, the clients reconnect. wrk counts every idle keep-alive connection a draining "
                "worker closes as a read error (it has no request on it), so wrk's read errors are not failed requests; "
                "its connect errors, timeouts and non-2xx answers would be."]
        text = "\n".join(out) + "\n"
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text)
        print(text)
        print(f"server log: {os.path.join(self.work, 'server.log')}", file=sys.stderr)
        return 1 if problems else 0


def parse_wrk(text):
    out = {}
    m = re.search(r"(\d+) requests in", text or "")
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", text or "")
    if m:
        out["rps"] = float(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text or "")
    if m:
        out.update(zip(["connect", "read", "write", "timeout"], map(int, m.groups())))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text or "")
    if m:
        out["non2xx"] = int(m.group(1))
    m = re.search(r"99%\s+(\S+)", text or "")
    if m:
        out["p99"] = m.group(1)
    m = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", text or "")
    if m:
        out["max"] = m.group(1)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "soak.md"))
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    parser.add_argument("--max-requests", type=int, default=1000)
    parser.add_argument("--reloads", type=int, default=20)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--invalid-hold", type=float, default=1.0,
                        help="seconds the refused file stays in place before the valid one is put back")
    parser.add_argument("--http-clients", type=int, default=50)
    parser.add_argument("--http-period", type=float, default=0.125)
    parser.add_argument("--sse", type=int, default=10)
    parser.add_argument("--ws", type=int, default=10)
    parser.add_argument("--ws-period", type=float, default=0.2)
    parser.add_argument("--wrk-connections", type=int, default=10)
    parser.add_argument("--wrk-delay", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (config, server log)")
    args = parser.parse_args()
    if args.seconds < 30:
        sys.exit("--seconds: at least 30 (26 events are spread over the run)")
    args.binary = os.path.abspath(args.binary)
    # If the script itself hangs, say where (every thread's stack on stderr).
    faulthandler.dump_traceback_later(args.seconds + 60, exit=False)
    faulthandler.register(signal.SIGUSR1)
    soak = Soak(args)
    status = 1
    try:
        status = soak.run()
    finally:
        if args.keep or status:
            print(f"work folder kept: {soak.work}", file=sys.stderr)
        else:
            shutil.rmtree(soak.work, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
