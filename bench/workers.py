#!/usr/bin/env python3
"""Two processes against two threads, and how the load spreads over them (called by
`bench/run --workers`). In one run, on the same 1 KiB file:

  pagi-serve `workers: 2` (`threads: 1` each)   a supervisor and 2 workers accepting from the same
                                                inherited listening socket (one accept queue)
  pagi-serve `workers: 1`, `threads: 2`         one process, two event loops
  nginx `worker_processes 2`                    one listening socket shared by both workers
                                                (`accept_mutex off`, its default: EPOLLEXCLUSIVE)
  nginx `worker_processes 2`, `listen … reuseport`   one SO_REUSEPORT socket per worker: the
                                                kernel picks the worker by a hash of the connection

No CPU pinning: the two cores are the point, and wrk (-t2 -c64) shares them with the server. The
servers run side by side on their own ports (idle when not measured) and the rounds are
interleaved (each round measures every server once), so a slow minute of this shared machine hits
all of them; 3 rounds × 10 s, median req/s with its p50/p99.

Spread, per worker process (per event-loop thread for the single process):
  * connections: `ss -tnp` in the middle of the first round, established connections by owner pid
    (wrk's 64 keep-alive connections are made once, at its start: where they land is the spread);
  * bytes written: /proc/PID/io `wchar` over the three rounds (sendfile counts too), i.e. answers;
  * CPU: utime+stime from /proc/PID/stat (/proc/PID/task/TID/stat for the threads);
  * new connection per request: a further 4 s with `Connection: close`, where every request is a
    new accept, the share of bytes written by each worker.
"""
import datetime
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance"))
from serverprocess import free_port, serving_as_invoker  # noqa: E402

import harness  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")

SERVERS = [
    ("pagi-serve `workers: 2`, `threads: 1`", "pagi-w2"),
    ("pagi-serve `workers: 1`, `threads: 2`", "pagi-t2"),
    ("nginx `worker_processes 2`", "nginx"),
    ("nginx `worker_processes 2`, `reuseport`", "nginx-reuseport"),
]


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def pagi_config(port, www, workers, threads):
    return f"""server:
  listen: ["127.0.0.1:{port}"]
  workers: {workers}
  threads: {threads}
{harness.PAGI_SERVER_SETTINGS}hosts:
  - names: ["*"]
    routes:
      - path: /
        static: {www}
"""


def nginx_config(port, work, www, name, reuseport):
    return harness.nginx_head(work, name, worker_processes=2) + f"""\
  server {{
    listen 127.0.0.1:{port}{' reuseport' if reuseport else ''};
    root {www};
  }}
}}
"""


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def latency(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")


def wrk(url, seconds, extra=()):
    return parse_wrk(subprocess.run(["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", *extra, url],
                                    capture_output=True, text=True).stdout)


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return sorted(out)


def cpu_ticks(path):
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def wchar(pid):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    return 0


class Server:
    def __init__(self, label, key, command, port):
        self.label, self.key, self.command, self.port = label, key, command, port
        self.process = None
        self.units = []  # (name, kind, id): worker processes, or the event-loop threads of one process
        self.results = []
        self.connections = []  # per round: {worker name: established connections}
        self.before, self.after = {}, {}
        self.churn = None
        self.light = None

    def start(self, work):
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL,
                                        stderr=open(os.path.join(work, f"{self.key}.log"), "w"), start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/1k.bin", timeout=1).read()
                break
            except Exception:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"{self.label} did not start")
        # Worker processes: the master's / supervisor's children (2 wanted). The single process:
        # its SwiftNIO event-loop threads.
        for _ in range(100):
            workers = children(self.process.pid)
            if self.key == "pagi-t2" or len(workers) >= 2:
                break
            time.sleep(0.1)
        if self.key == "pagi-t2":
            pid = self.process.pid
            for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    if f.read().startswith("NIO-ELT"):
                        self.units.append((f"thread {len(self.units) + 1}", "thread", (pid, int(tid))))
        else:
            self.units = [(f"worker {i + 1}", "process", pid) for i, pid in enumerate(workers)]

    def sample(self):
        out = {}
        for name, kind, ident in self.units:
            if kind == "thread":
                pid, tid = ident
                out[name] = {"cpu": cpu_ticks(f"/proc/{pid}/task/{tid}/stat"), "wchar": None}
            else:
                out[name] = {"cpu": cpu_ticks(f"/proc/{ident}/stat"), "wchar": wchar(ident)}
        return out

    def owners(self):
        """Established connections on the port by owning worker."""
        out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{self.port} )"],
                             capture_output=True, text=True).stdout
        counts = {}
        pids = {ident: name for name, kind, ident in self.units if kind == "process"}
        for line in out.splitlines():
            found = {int(p) for p in re.findall(r"pid=(\d+)", line)}
            names = [pids[p] for p in found if p in pids]
            key = names[0] if len(names) == 1 else ("shared" if names else "other")
            counts[key] = counts.get(key, 0) + 1
        return counts

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def shares(before, after, field):
    deltas = {n: after[n][field] - before[n][field] for n in after if after[n][field] is not None}
    total = sum(deltas.values())
    if not deltas or total <= 0:
        return None
    return {n: d / total for n, d in deltas.items()}


def share_text(values):
    if not values:
        return "—"
    return " / ".join(f"{v:.0%}" for _, v in sorted(values.items()))


def main():
    args = harness.report_arguments(__doc__, "workers", quick_help="1 round of 2 s: a smoke run, figures not meaningful")
    seconds, rounds, churn_seconds, light_seconds = (2, 1, 1, 1) if args.quick else (10, 3, 4, 3)

    work = tempfile.mkdtemp(prefix="pagi-workers-")
    os.chmod(work, 0o755)  # nginx workers run as an unprivileged user
    www = os.path.join(work, "www")
    os.makedirs(www)
    with open(os.path.join(www, "1k.bin"), "wb") as f:
        f.write(random.Random(42).randbytes(1024))
    os.chmod(os.path.join(www, "1k.bin"), 0o644)
    past = time.time() - 3600
    os.utime(os.path.join(www, "1k.bin"), (past, past))

    # A copy: the binary may be rebuilt while this runs.
    binary = os.path.join(work, "pagi-serve")
    subprocess.run(["cp", args.binary, binary], check=True)
    servers = []
    for label, key in SERVERS:
        port = free_port()
        if key.startswith("pagi"):
            workers, threads = (2, 1) if key == "pagi-w2" else (1, 2)
            config = os.path.join(work, f"{key}.yaml")
            write(config, pagi_config(port, www, workers, threads))
            command = [binary, config] + serving_as_invoker(binary)
        else:
            config = os.path.join(work, f"{key}.conf")
            write(config, nginx_config(port, work, www, key, key == "nginx-reuseport"))
            command = ["nginx", "-c", config]
        servers.append(Server(label, key, command, port))

    failures = []
    try:
        for server in servers:
            server.start(work)
            if len(server.units) < 2:
                failures.append(f"{server.label}: found {len(server.units)} workers/event loops, not 2")
        for server in servers:
            wrk(f"http://127.0.0.1:{server.port}/1k.bin", 1)  # warm-up
        for server in servers:
            server.before = server.sample()
        for round_number in range(rounds):
            for server in servers:
                print(f"{time.strftime('%H:%M:%S')} round {round_number + 1}: {server.key}", file=sys.stderr)
                command = ["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{server.port}/1k.bin"]
                # wrk opens its 64 connections anew each round: a snapshot in the middle of each.
                load = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
                time.sleep(seconds / 2)
                server.connections.append(server.owners())
                result = parse_wrk(load.communicate()[0])
                if result["errors"] or result["non2xx"]:
                    failures.append(f"{server.label}: {result['errors']} socket errors, {result['non2xx']} non-2xx")
                server.results.append(result)
        for server in servers:
            server.after = server.sample()
        for server in servers:
            if server.key == "pagi-t2":
                continue
            before = server.sample()
            result = wrk(f"http://127.0.0.1:{server.port}/1k.bin", churn_seconds, ["-H", "Connection: close"])
            after = server.sample()
            server.churn = {"rps": result["rps"], "bytes": shares(before, after, "wchar"), "cpu": shares(before, after, "cpu")}
            # Light load: 4 connections, a new one per request; a worker is nearly always idle, so
            # which one the kernel hands each connection to shows plainly.
            before = server.sample()
            result = parse_wrk(subprocess.run(["wrk", "-t1", "-c4", f"-d{light_seconds}s", "--latency", "-H", "Connection: close",
                                               f"http://127.0.0.1:{server.port}/1k.bin"], capture_output=True, text=True).stdout)
            server.light = {"rps": result["rps"], "bytes": shares(before, server.sample(), "wchar")}
    finally:
        for server in servers:
            server.stop()

    stamp = datetime.datetime.now(datetime.timezone.utc)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    kernel = os.uname().release.split("-")[0]
    lines = [
        "# Two workers against two threads, and how the load spreads"
        + (" (QUICK smoke run, figures not meaningful)" if args.quick else ""),
        "",
        f"{stamp:%Y-%m-%d %H:%M} UTC · {cpu} · {os.cpu_count()} CPUs, no pinning (wrk shares them) · Linux {kernel} · "
        f"`bench/run --workers`: `wrk -t2 -c64 -d{seconds}s --latency` on a 1 KiB file, {rounds} rounds interleaved "
        "across the servers, median · access logs off",
        "",
        "| server | req/s (median) | p50 / p99 ms | each round: req/s (p99 ms) |",
        "|---|---|---|---|",
    ]
    for server in servers:
        if not server.results:
            continue
        median = sorted(server.results, key=lambda r: r["rps"])[len(server.results) // 2]
        lines.append(f"| {server.label} | {median['rps']:,.0f} | {median['p50']:.2f} / {median['p99']:.2f} | "
                     + ", ".join(f"{r['rps']:,.0f} ({r['p99']:.1f})" for r in server.results) + " |")
    lines += [
        "",
        "Spread over the two workers (the single process: over its two event-loop threads):",
        "",
        "| server | keep-alive connections per worker (`ss`, mid-round, each round) | bytes written per worker (answers) | CPU per worker "
        "| new connection per request, 64 at a time: req/s, bytes written per worker "
        "| the same, 4 at a time |",
        "|---|---|---|---|---|---|",
    ]
    for server in servers:
        per_process = server.units and server.units[0][1] == "process"
        rounds_text = []
        for snapshot in server.connections:
            if per_process:
                text = " / ".join(f"{snapshot.get(name, 0)}" for name, _, _ in server.units)
                extra = {k: v for k, v in snapshot.items() if k not in {n for n, _, _ in server.units}}
                if extra:
                    text += " (" + ", ".join(f"{k} {v}" for k, v in extra.items()) + ")"
            else:
                text = f"{sum(snapshot.values())}"
            rounds_text.append(text)
        connections = ", ".join(rounds_text) + ("" if per_process else " in the one process (per thread: not visible)")
        churn = "—" if not server.churn else f"{server.churn['rps']:,.0f}, {share_text(server.churn['bytes'])}"
        light = "—" if not server.light else f"{server.light['rps']:,.0f}, {share_text(server.light['bytes'])}"
        lines.append(f"| {server.label} | {connections} | {share_text(shares(server.before, server.after, 'wchar'))} | "
                     f"{share_text(shares(server.before, server.after, 'cpu'))} | {churn} | {light} |")
    lines += [
        "",
        "Connections: wrk's 64 connections by the worker process holding them, in the middle of each round. Bytes "
        "written: /proc/PID/io `wchar` over all rounds (nginx's sendfile counts as written). CPU: utime + stime "
        "from /proc/PID/stat (for the single process, of its two `NIO-ELT` threads). New connection per request: "
        f"{churn_seconds} s of `wrk -t2 -c64 -H 'Connection: close'` after the rounds, every request a new accept; "
        f"then {light_seconds} s of `wrk -t1 -c4` the same way (light load: a worker is nearly always idle).",
    ]
    if failures:
        lines += ["", "Failures: " + "; ".join(failures)]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    out = args.out if not args.quick else args.out.replace(".md", "-quick.md")
    write(out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    subprocess.run(["rm", "-rf", work])
    if failures:
        sys.exit(1)


def parse_wrk(out):
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        # The latency distribution's lines ("    50%    1.02ms"), not the thread stats' "90.50%".
        "p50": latency(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)) if rps else float("nan"),
        "p99": latency(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)) if rps else float("nan"),
        "errors": sum(map(int, errors.groups())) if errors else 0,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
    }


if __name__ == "__main__":
    main()
