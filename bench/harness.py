#!/usr/bin/env python3
"""Side-by-side benchmark of pagi-serve, nginx, lighttpd, Caddy and h2o (issue: speed is shown as
ratios measured in the same run on the same machine). Called by bench/run, which installs the tools
and builds pagi-serve in release mode. A server whose binary is missing is left out, with a note.

Every server is started pinned to CPU 0 with its access log off, warmed up, loaded from CPU 1 with
wrk (keep-alive), then stopped by PID. Results: a Markdown table and a PNG chart in bench/results/,
with two ratios per row: pagi-serve ÷ nginx, and pagi-serve ÷ the best peer (the fastest server other
than pagi-serve on that row, by req/s, named in the cell).

Workload sets (--only SET runs one; --only TEXT the rows whose name contains TEXT):
  static         1 KiB, 64 KiB, 1 MiB, 304, range, 404
  respond        fixed 13 B, templated JSON
  middleware     the fixed `respond` route with no middleware and with five (request_id, headers,
                 cors, ip_filter, rate_limit), an `Origin` header sent to both; the cost is reported
                 as five/none per server
  gzip           a 64 KiB text file compressed on the fly at level 5 (`compress` vs nginx `gzip on`,
                 lighttpd mod_deflate, Caddy `encode`, h2o `compress`), `Accept-Encoding: gzip` sent by wrk; every
                 server's answer is checked with curl (Content-Encoding and the decompressed bytes)
                 before it is measured
--baseline PATH adds a second pagi-serve binary ("before") as a column on the static and respond
rows, with an after/before ratio.

--cores 2: the static and respond sets on two cores (issue "Speed round four": pagi-serve ≥ the best
peer with `threads: 2` / `workers: 2` too). pagi-serve runs twice, `threads: 2` and `workers: 2`, each
with its own pagi ÷ best column; nginx `worker_processes 2`, lighttpd `server.max-worker = 2` (it has
no threads), h2o `num-threads: 2`, Caddy GOMAXPROCS=2. Nothing is pinned: the two cores are the point,
and `wrk -t2 -c64` shares them with the server. Same rows and checks; the report is two-cores*.md.

Every report's header gives the TCP congestion control and `lo`'s qdisc: the 1 MiB row depends on them
(docs/performance.md, "The 1 MiB file against lighttpd"). Its end gives each server's CPU while measured
and how many of its threads or processes were busy: on two cores, a server that did not spread its load
over two is a failure, not a figure.
"""
import argparse
import datetime
import gzip
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance"))
from serverprocess import serving_as_invoker  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORTS = {"pagi-serve": 18081, "baseline": 18085, "nginx": 18082, "lighttpd": 18083, "caddy": 18084, "h2o": 18086,
         "pagi-threads": 18087, "pagi-workers": 18088}
# Not peers of pagi-serve in the "pagi ÷ best" column: pagi-serve itself (each of its two-core
# variants), and its other build.
NOT_PEERS = ("pagi-serve", "pagi-threads", "pagi-workers", "baseline")
LABELS = {"baseline": "pagi-serve (baseline)", "pagi-threads": "pagi-serve `threads: 2`",
          "pagi-workers": "pagi-serve `workers: 2`"}
# What a pagi-serve variant is called in the ratio columns and on the chart.
SHORT = {"pagi-serve": "pagi", "pagi-threads": "pagi `threads: 2`", "pagi-workers": "pagi `workers: 2`"}
GZIP_FILE = "/gzip/64k.txt"
# The five middleware of the "middleware: five" row, in pagi-serve's configuration syntax.
FIVE_MIDDLEWARE = """\
          - request_id
          - {headers: {set: {X-Frame-Options: DENY}}}
          - {cors: {origins: ["*"]}}
          - {ip_filter: {allow: [127.0.0.0/8]}}
          - {rate_limit: {rate: 1000000/s, burst: 1000000}}"""
# Response headers the five middleware add: checked on every server before the row is measured.
FIVE_HEADERS = ["X-Request-ID", "X-Frame-Options", "Access-Control-Allow-Origin"]


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def nginx_head(work, name="nginx", worker_processes=1, types="application/octet-stream bin;"):
    """The start of every benchmark's nginx.conf, up to the `http` block's `types`: pid and error log
    in `work` (named after `name`), access log off, sendfile, keep-alive for as long as a run. The
    caller adds the rest of the `http` block and closes it."""
    return f"""worker_processes {worker_processes};
worker_rlimit_nofile 30000;
daemon off;
pid {work}/{name}.pid;
error_log {work}/{name}-error.log;
events {{ worker_connections 20000; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000000;
  keepalive_timeout 600s;
  types {{ {types} }}
"""


def server_commands(binary, work, pagi_text, nginx_text):
    """Writes pagi.yaml and nginx.conf into `work`: the commands that serve them, by server name."""
    write(os.path.join(work, "pagi.yaml"), pagi_text)
    write(os.path.join(work, "nginx.conf"), nginx_text)
    return {
        "pagi-serve": [binary, os.path.join(work, "pagi.yaml")] + serving_as_invoker(binary),
        "nginx": ["nginx", "-c", os.path.join(work, "nginx.conf")],
    }


def start_pinned(command, work, name, cpus="0", env=None):
    """`command` on CPUs `cpus` (None: unpinned), in a session of its own (stopped with its children),
    stderr in NAME.log."""
    return subprocess.Popen((["taskset", "-c", cpus] if cpus else []) + command, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(work, f"{name}.log"), "w"), start_new_session=True, env=env)


def log_tail(work, name):
    """The end of what a server started by start_pinned wrote to stderr."""
    with open(os.path.join(work, f"{name}.log")) as log:
        return log.read().strip()[-300:]


def stop(process, label):
    """SIGTERM to the process's session, SIGKILL after 30 s."""
    print(f"{time.strftime('%H:%M:%S')} stopping {label}", file=sys.stderr)
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def cpu_model():
    return next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")


def network_settings():
    """TCP congestion control and the qdisc of `lo`: the 1 MiB row moves with them (BBR paces every
    segment when nothing else does; docs/performance.md, "The 1 MiB file against lighttpd")."""
    try:
        with open("/proc/sys/net/ipv4/tcp_congestion_control") as f:
            congestion = f.read().strip()
    except OSError:
        congestion = "?"
    shown = subprocess.run(["tc", "qdisc", "show", "dev", "lo"], capture_output=True, text=True).stdout if shutil.which("tc") else ""
    qdiscs = re.findall(r"^qdisc (\S+)", shown, re.M)
    return f"TCP congestion control {congestion} · `lo` qdisc {', '.join(qdiscs) or 'none'}"


def nginx_version():
    return subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip().split("/")[-1]


def median(samples):
    """The sample with the median req/s."""
    return sorted(samples, key=lambda r: r["rps"])[len(samples) // 2]


def report_arguments(doc, name, quick_help="1 run of 1 s per row: a smoke run, figures not meaningful"):
    """--binary, --quick and --out (default bench/results/NAME.md) of a side-by-side report."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results", f"{name}.md"))
    return parser.parse_args()


def finish(lines, failures, out, quick, work):
    """Writes the report (NAME-quick.md for a quick run), prints it, removes `work`, and exits 1
    after listing the failures, if any."""
    out = out if not quick else out.replace(".md", "-quick.md")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    write(out, "\n".join(lines) + "\n")
    print("\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("benchmark failures: " + "; ".join(failures), file=sys.stderr)
        sys.exit(1)


def make_site(work):
    www = os.path.join(work, "www")
    os.makedirs(www)
    rng = __import__("random").Random(42)
    for name, size in [("1k.bin", 1024), ("64k.bin", 65536), ("1m.bin", 1 << 20)]:
        path = os.path.join(www, name)
        with open(path, "wb") as f:
            f.write(rng.randbytes(size))
        # An hour old: some servers (lighttpd) will not validate a file modified in the current second.
        past = time.time() - 3600
        os.utime(path, (past, past))
    os.makedirs(os.path.join(www, "gzip"))
    write(os.path.join(www, GZIP_FILE.lstrip("/")), compressible_text(65536))
    return www


def compressible_text(size):
    """Deterministic English-like text: words of a small vocabulary in random sentences, which gzip
    shrinks about as much as HTML or JSON (64 KiB → ~16 KiB at level 5)."""
    rng = __import__("random").Random(64)
    words = ("the server answers every request from memory when the file is small enough and sends "
             "larger files with sendfile while the client reads a response header body connection "
             "keeps alive until an idle timeout closes it route host path query middleware handler "
             "static template json value list map name port address compressed gzip level").split()
    lines, length = [], 0
    while length < size:
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(5, 16)))
        line = sentence[0].upper() + sentence[1:] + ".\n"
        lines.append(line)
        length += len(line)
    return "".join(lines)[:size - 1] + "\n"


# What every pagi-serve config of the benches shares below `server:`: no access log, few log lines,
# room for wrk's connections, and no timeout cutting a run short.
PAGI_SERVER_SETTINGS = """\
  access_log: {to: "off"}
  log_level: warn
  limits: {connections: 20000}
  timeouts: {idle: 10m, header: 10m}
"""


def pagi_config(port, www, middleware, workers=1, threads=1):
    """The static and respond routes; with `middleware`, the middleware and gzip routes too (a baseline
    binary gets only the first: an older build may not know the middleware, nor `workers`, which is
    written only when above 1)."""
    extra = f"""
      - path: /mw/none
        respond: {{body: "Hello, world!"}}
      - path: /mw/five
        middleware:
{FIVE_MIDDLEWARE}
        respond: {{body: "Hello, world!"}}
      - path: /gzip/
        middleware: [{{compress: {{algorithms: [gzip], level: 5, min_size: 1KiB}}}}]
        static: {www}/gzip
""" if middleware else ""
    workers_line = f"  workers: {workers}\n" if workers > 1 else ""
    return f"""
server:
  listen: ["127.0.0.1:{port}"]
{workers_line}  threads: {threads}
{PAGI_SERVER_SETTINGS}hosts:
  - names: ["*"]
    routes:
      - path: /
        static: {www}
      - path: /hello
        respond: {{body: "Hello, world!"}}
      - path: /items/{{id}}
        respond: {{json: {{id: "{{{{path.id}}}}", name: "{{{{query.name}}}}"}}}}
""" + extra


def lighttpd_deflate():
    """mod_deflate ships in its own Debian package (lighttpd-mod-deflate); without it lighttpd would
    not start at all, so the gzip row is left out instead."""
    return any(os.path.exists(os.path.join(d, "mod_deflate.so")) for d in ("/usr/lib/lighttpd", "/usr/lib64/lighttpd"))


def pagi_variants(cores):
    """pagi-serve's configs by server name, as (workers, threads): one of each on one core; on more,
    one process of `cores` event loops and `cores` single-threaded worker processes."""
    return {"pagi-serve": (1, 1)} if cores == 1 else {"pagi-threads": (1, cores), "pagi-workers": (cores, 1)}


def configs(work, www, binary, baseline=None, cores=1):
    """Every server's configuration in `work`, each with `cores` workers or threads: the commands that
    serve them, by server name."""
    commands = {}
    for server, (workers, threads) in pagi_variants(cores).items():
        config = os.path.join(work, f"{server}.yaml")
        write(config, pagi_config(PORTS[server], www, middleware=True, workers=workers, threads=threads))
        commands[server] = [binary, config] + serving_as_invoker(binary)
    if baseline:
        write(os.path.join(work, "pagi-baseline.yaml"), pagi_config(PORTS["baseline"], www, middleware=False))
        commands["baseline"] = [baseline, os.path.join(work, "pagi-baseline.yaml")] + serving_as_invoker(baseline)
    write(os.path.join(work, "nginx.conf"), "\n" + nginx_head(work, worker_processes=cores, types="application/octet-stream bin; text/plain txt;") + f"""\
  limit_req_zone $binary_remote_addr zone=bench:1m rate=1000000r/s;
  server {{
    listen 127.0.0.1:{PORTS['nginx']};
    root {www};
    location = /hello {{ default_type text/plain; return 200 "Hello, world!"; }}
    location ~ ^/items/(?<id>[^/]+)$ {{ default_type application/json; return 200 '{{"id":"$id","name":"$arg_name"}}'; }}
    # The middleware rows: `return` answers in the rewrite phase, before limit_req and allow/deny
    # would run, so both rows reach the same `return` through try_files (after the access phases).
    location = /mw/none {{ try_files "" @hello; }}
    location = /mw/five {{
      allow 127.0.0.0/8;
      deny all;
      limit_req zone=bench burst=1000000 nodelay;
      try_files "" @hello-five;
    }}
    location @hello {{ default_type text/plain; return 200 "Hello, world!"; }}
    location @hello-five {{
      add_header X-Request-ID $request_id always;
      add_header X-Frame-Options DENY always;
      add_header Access-Control-Allow-Origin "*" always;
      add_header Vary Origin always;
      default_type text/plain;
      return 200 "Hello, world!";
    }}
    location /gzip/ {{
      gzip on;
      gzip_comp_level 5;
      gzip_types text/plain;
      gzip_min_length 1024;
      gzip_vary on;
    }}
  }}
}}
""")
    write(os.path.join(work, "lighttpd.conf"), f"""
server.document-root = "{www}"
server.port = {PORTS['lighttpd']}
server.bind = "127.0.0.1"
server.max-keep-alive-requests = 100000000
server.max-keep-alive-idle = 600
server.max-fds = 30000
server.max-connections = 20000
server.errorlog = "{work}/lighttpd-error.log"
{f"server.max-worker = {cores}" if cores > 1 else ""}
# Validators are off in lighttpd's built-in defaults; every other server sends them.
static-file.etags = "enable"
etag.use-inode = "enable"
etag.use-mtime = "enable"
etag.use-size = "enable"
mimetype.assign = (".bin" => "application/octet-stream", ".txt" => "text/plain")
""" + ("""server.modules += ("mod_deflate")
$HTTP["url"] =^ "/gzip/" {
  deflate.mimetypes = ("text/plain")
  deflate.allowed-encodings = ("gzip")
  deflate.compression-level = 5
  deflate.min-compress-size = 1
}
""" if lighttpd_deflate() else ""))
    write(os.path.join(work, "Caddyfile"), f"""
{{
  admin off
  auto_https off
}}
http://127.0.0.1:{PORTS['caddy']} {{
  root * {www}
  respond /hello "Hello, world!" 200
  respond /mw/none "Hello, world!" 200
  encode /gzip/* {{
    gzip 5
    minimum_length 1024
  }}
  file_server
}}
""")
    # h2o: `cores` threads like the others' workers; no access log (none is configured); ETags on (its default, said
    # anyway); compression only under /gzip/ (`compress` is off by default). Started as root, it serves
    # as `nobody` (no `user:`); the work dir is world-readable for that (and for nginx's workers).
    write(os.path.join(work, "h2o.yaml"), f"""
num-threads: {cores}
max-connections: 20000
http1-request-timeout: 600
error-log: {work}/h2o-error.log
file.mime.addtypes:
  application/octet-stream: .bin
  text/plain: .txt
hosts:
  default:
    listen:
      host: 127.0.0.1
      port: {PORTS['h2o']}
    paths:
      /gzip:
        file.dir: {www}/gzip
        compress:
          gzip: 5
      /:
        file.dir: {www}
        file.etag: ON
""")
    commands |= {
        "nginx": ["nginx", "-c", os.path.join(work, "nginx.conf")],
        "lighttpd": ["lighttpd", "-D", "-f", os.path.join(work, "lighttpd.conf")],
        "caddy": ["caddy", "run", "--config", os.path.join(work, "Caddyfile"), "--adapter", "caddyfile"],
        "h2o": ["h2o", "-c", os.path.join(work, "h2o.yaml")],
    }
    return commands


def rss_kib(pids):
    """Resident memory of the processes (and their children, for nginx workers)."""
    total = 0
    for pid in all_pids(pids):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def all_pids(pids):
    out = set(pids)
    for pid in pids:
        try:
            children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
            out |= all_pids([int(c) for c in children])
        except ValueError:
            pass
    return out


def wait_ready(port):
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/1k.bin", timeout=1).read()
            return True
        except Exception:
            time.sleep(0.1)
    return False


def fetch(port, path, headers=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def check_gzip(port, path, original, work):
    """Fetches `path` with curl as wrk will ask for it. Returns (problem or None, bytes on the wire)."""
    body_path = os.path.join(work, f"gzip-check-{port}.body")
    done = subprocess.run(["curl", "-sS", "--max-time", "10", "-H", "Accept-Encoding: gzip", "-D", "-",
                           "-o", body_path, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True)
    if done.returncode != 0:
        return f"curl failed: {done.stderr.strip()}", 0
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in done.stdout.splitlines()[1:]) if v}
    with open(body_path, "rb") as f:
        body = f.read()
    if headers.get("content-encoding", "").lower() != "gzip":
        return f"no Content-Encoding: gzip in the answer ({done.stdout.splitlines()[0] if done.stdout else 'no status line'}, {len(body)} bytes)", len(body)
    try:
        plain = gzip.decompress(body)
    except Exception as error:
        return f"the gzip body does not decompress ({error})", len(body)
    if plain != original:
        return f"the decompressed body differs from the file ({len(plain)} bytes, file {len(original)})", len(body)
    return None, len(body)


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_latency(text):
    value = re.match(r"([\d.]+)(us|ms|s|m|h)$", text)
    return float(value.group(1)) * UNITS[value.group(2)] if value else float("nan")


def wrk(url, seconds, headers, cores=1):
    """wrk with 64 connections: one thread on CPU 1 beside a server on CPU 0, or, with `cores` above 1,
    `cores` threads where the scheduler puts them (they share the cores with the server)."""
    command = (["taskset", "-c", "1", "wrk", "-t1"] if cores == 1 else ["wrk", f"-t{cores}"]) + [
        "-c64", f"-d{seconds}s", "--latency", url]
    for h in headers:
        command += ["-H", h]
    out = subprocess.run(command, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    mbs = float(transfer.group(1)) * {"B": 1e-6, "KB": 1e-3, "MB": 1, "GB": 1e3}.get(transfer.group(2), 1)
    # The latency distribution's lines ("    50%    1.02ms"), not a thread stat's "+/- Stdev" such as
    # "78.50%", which would read the next line's "Req/Sec" as the p50.
    p50 = parse_latency(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = parse_latency(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "mbs": mbs, "p50": p50, "p99": p99, "non2xx": int(non2xx.group(1)) if non2xx else 0}


def task_ticks(pid):
    """CPU time (utime + stime, in clock ticks) of every thread of `pid` and of its descendants, by
    (pid, tid): a server's worker processes and threads, to see how many of them did the work."""
    ticks = {}
    for process in all_pids([pid]):
        try:
            tids = os.listdir(f"/proc/{process}/task")
        except FileNotFoundError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{process}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            ticks[(process, int(tid))] = int(fields[11]) + int(fields[12])
    return ticks


def hold_connections(port, count):
    """Opens `count` keep-alive connections, each after one complete request, and keeps them open."""
    held = []
    request = f"GET /1k.bin HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(10)
        s.sendall(request)
        held.append(s)
    for s in held:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length:\s*(\d+)", head)
        remaining = int(length.group(1)) - len(body) if length else 0
        while remaining > 0:
            chunk = s.recv(65536)
            if not chunk:
                break
            remaining -= len(chunk)
    return held


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="run only the workloads whose name contains this text, or the set of that name: "
                        "static, respond, middleware, gzip (no memory figures); memory: the 1 KiB row and the memory figures")
    parser.add_argument("--baseline", metavar="PATH",
                        help="another pagi-serve binary (\"before\"): an extra column on the static and respond rows")
    parser.add_argument("--cores", type=int, choices=(1, 2), default=1,
                        help="2: the static and respond rows with every server on 2 workers or threads, pagi-serve "
                        "as `threads: 2` and as `workers: 2`, nothing pinned (report two-cores*.md)")
    args = parser.parse_args()
    if args.baseline and not os.access(args.baseline, os.X_OK):
        sys.exit(f"--baseline: {args.baseline} is not an executable file")
    if args.baseline and args.cores > 1:
        sys.exit("--baseline: one core only (on two, which of the two pagi-serve variants would it be?)")
    print(network_settings(), file=sys.stderr)
    seconds, runs = (1, 1) if args.quick else (10, 3)
    idle_connections = 500 if args.quick else 10000
    growth_requests = 20_000 if args.quick else 1_000_000
    growth_run = 2 if args.quick else 10

    work = tempfile.mkdtemp(prefix="pagi-bench-")
    os.chmod(work, 0o755)  # nginx workers run as an unprivileged user
    www = make_site(work)
    commands = configs(work, www, args.binary, args.baseline, args.cores)
    servers = [s for s in commands if shutil.which(commands[s][0]) or os.path.exists(commands[s][0])]
    pagis = [s for s in servers if s in pagi_variants(args.cores)]
    missing = [s for s in commands if s not in servers]
    for server in missing:
        print(f"{server}: `{commands[server][0]}` not found, left out of this run", file=sys.stderr)
    with open(os.path.join(www, GZIP_FILE.lstrip("/")), "rb") as f:
        gzip_original = f.read()

    # (row name, path, extra request headers, set). --only selects rows by name or by set.
    origin = "Origin: http://client.example"
    workloads = [
        ("1 KiB file", "/1k.bin", [], "static"),
        ("64 KiB file", "/64k.bin", [], "static"),
        ("1 MiB file", "/1m.bin", [], "static"),
        ("304 revalidation", "/1k.bin", ["{revalidation}"], "static"),
        ("range of 1 MiB file", "/1m.bin", ["Range: bytes=1000-65535"], "static"),
        ("404", "/missing.bin", [], "static"),
        ("respond: fixed 13 B", "/hello", [], "respond"),
        ("respond: templated json", "/items/42?name=ada", [], "respond"),
        ("middleware: none", "/mw/none", [origin], "middleware"),
        ("middleware: five", "/mw/five", [origin], "middleware"),
        ("gzip: 64 KiB text, level 5", GZIP_FILE, ["Accept-Encoding: gzip"], "gzip"),
    ]
    if args.cores > 1:
        # The rows of the two-core goal; middleware and gzip cost the same per core.
        workloads = [w for w in workloads if w[3] in ("static", "respond")]
    # Rows a server cannot express in its plain configuration are left empty: lighttpd has no inline
    # response without Lua (mod_magnet), h2o none without mruby; Caddy's placeholders use braces, which
    # clash with JSON text, and it has no rate limit or address filter without plugins. The baseline
    # binary runs the static and respond rows only.
    unsupported = {("lighttpd", "respond: fixed 13 B"), ("lighttpd", "respond: templated json"),
                   ("caddy", "respond: templated json"), ("lighttpd", "middleware: none"),
                   ("lighttpd", "middleware: five"), ("caddy", "middleware: five")}
    unsupported |= {("h2o", w[0]) for w in workloads if w[3] in ("respond", "middleware")}
    if not lighttpd_deflate():
        unsupported.add(("lighttpd", "gzip: 64 KiB text, level 5"))
    unsupported |= {("baseline", w[0]) for w in workloads if w[3] not in ("static", "respond")}
    # `--only memory`: the 1 KiB row and the memory figures (idle, per idle connection, growth).
    memory_only = args.only == "memory"
    if args.only:
        workloads = [w for w in workloads if (w[0] == "1 KiB file" if memory_only else args.only in w[0] or args.only == w[3])]
        if not workloads:
            sys.exit(f"--only {args.only}: no workload name contains it and no set has that name"
                     + (" (on two cores: static and respond only)" if args.cores > 1 else ""))
    compressed_sizes = {}
    results, resources, usage = {}, {}, {}
    failures = []
    # Caddy (Go) runs as many threads of Go code as GOMAXPROCS; the others ignore it.
    environment = dict(os.environ, GOMAXPROCS=str(args.cores))
    for server in servers:
        port = PORTS[server]
        print(f"{time.strftime('%H:%M:%S')} {LABELS.get(server, server)}", file=sys.stderr)
        process = start_pinned(commands[server], work, server, "0" if args.cores == 1 else None, environment)
        try:
            if not wait_ready(port):
                failures.append(f"{server} did not start")
                continue
            idle_rss = rss_kib([process.pid])
            _, headers = fetch(port, "/1k.bin")
            headers = {k.lower(): v for k, v in headers.items()}  # h2o sends its field names in lower case
            # Revalidate with the ETag where the server sends one (lighttpd's default sends none).
            etag = headers.get("etag")
            revalidation = f"If-None-Match: {etag}" if etag else f"If-Modified-Since: {headers.get('last-modified')}"
            expected = {"304 revalidation": 304, "range of 1 MiB file": 206, "404": 404}
            for name, path, header_templates, group in workloads:
                if (server, name) in unsupported:
                    continue
                hs = [h.format(revalidation=revalidation) for h in header_templates]
                status, answer = fetch(port, path, dict(h.split(": ", 1) for h in hs))
                if status != expected.get(name, 200):
                    failures.append(f"{server}: {name} answered {status}")
                if name == "middleware: five":
                    present = {k.lower() for k in answer}
                    absent = [h for h in FIVE_HEADERS if h.lower() not in present]
                    if absent:
                        failures.append(f"{server}: {name} answered without {', '.join(absent)}")
                        print(f"FAILED: {failures[-1]}", file=sys.stderr)
                        continue
                if group == "gzip":
                    # A row measured without compression would compare nothing: check first, loudly.
                    problem, compressed_sizes[server] = check_gzip(port, path, gzip_original, work)
                    if problem:
                        failures.append(f"{server}: {name}: {problem}")
                        print(f"FAILED: {failures[-1]}", file=sys.stderr)
                        continue
                wrk(f"http://127.0.0.1:{port}{path}", 1, hs, args.cores)  # warm-up
                before, started = task_ticks(process.pid), time.monotonic()
                samples = [wrk(f"http://127.0.0.1:{port}{path}", seconds, hs, args.cores) for _ in range(runs)]
                spent = usage.setdefault(server, {"seconds": 0.0, "ticks": {}})
                spent["seconds"] += time.monotonic() - started
                for task, ticks in task_ticks(process.pid).items():
                    spent["ticks"][task] = spent["ticks"].get(task, 0) + ticks - before.get(task, 0)
                # Under load too, a row that expects success must not count refusals (a 429 or 503 of
                # a rate limit, a 500) in its req/s.
                refused = sum(r["non2xx"] for r in samples)
                if expected.get(name, 200) < 400 and refused:
                    failures.append(f"{server}: {name}: {refused:,} responses under load were not 2xx/3xx")
                results[(server, name)] = median(samples)
            if args.only and not memory_only:
                continue
            # Memory: idle, per idle keep-alive connection, and growth over many requests.
            before = rss_kib([process.pid])
            held = hold_connections(port, idle_connections)
            time.sleep(1)
            with_connections = rss_kib([process.pid])
            for s in held:
                s.close()
            time.sleep(1)
            start = rss_kib([process.pid])
            sent = 0
            while sent < growth_requests:
                sent += int(wrk(f"http://127.0.0.1:{port}/1k.bin", growth_run, [], args.cores)["rps"] * growth_run)
            end = rss_kib([process.pid])
            resources[server] = {
                "idle": idle_rss,
                "per_connection": (with_connections - before) / idle_connections,
                "growth": end - start,
                "requests": sent,
            }
        finally:
            stop(process, LABELS.get(server, server))

    stamp = datetime.datetime.now(datetime.timezone.utc)
    cpu = cpu_model()
    placement = ("server pinned to CPU 0, `wrk -t1 -c64 --latency` on CPU 1" if args.cores == 1 else
                 f"no pinning: {args.cores} workers or threads per server, `wrk -t{args.cores} -c64 --latency` on the same cores")
    lines = [
        f"# Workloads side by side{' on two cores' if args.cores > 1 else ''} "
        f"({'QUICK smoke run, figures not meaningful' if args.quick else f'{runs}×{seconds}s per row, median'})",
        "",
        f"{stamp:%Y-%m-%d %H:%M} UTC · {cpu} · {placement} · access logs off · {network_settings()}",
        "",
        "| workload | " + " | ".join(f"{LABELS.get(s, s)} req/s (p50 / p99 ms)" for s in servers) + " | "
        + " | ".join([f"{SHORT[p]}/nginx" for p in pagis] + [f"{SHORT[p]} ÷ best" for p in pagis]) + " |"
        + (" after/before |" if args.baseline else ""),
        "|---|" + "---|" * (len(servers) + 2 * len(pagis) + bool(args.baseline)),
    ]
    ratios, best_ratios = {}, {p: {} for p in pagis}
    for name, _, _, _ in workloads:
        cells = [wrk_cell(results.get((s, name))) for s in servers]
        nginx = results.get(("nginx", name))
        ratios[name] = {s: results[(s, name)]["rps"] / nginx["rps"] for s in servers if (s, name) in results and nginx}
        best = best_peer(results, servers, name)
        for p in pagis:
            if (p, name) in results and best:
                best_ratios[p][name] = (results[(p, name)]["rps"] / results[(best, name)]["rps"], best)
        cells += [ratio_text(results.get((p, name)), nginx) for p in pagis]
        cells += [f"{best_ratios[p][name][0]:.2f}× ({LABELS.get(best, best)})" if name in best_ratios[p] else "—" for p in pagis]
        if args.baseline:
            cells.append(ratio_text(results.get(("pagi-serve", name)), results.get(("baseline", name))))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if args.cores == 1:
        lines += ["", "pagi ÷ best: pagi-serve's req/s ÷ the req/s of the fastest other server on the row (named; "
                  "the baseline build is not a peer). On the file rows req/s and MB/s give the same ratio."]
    else:
        lines += ["", "pagi `threads: 2` ÷ best, pagi `workers: 2` ÷ best: the req/s of that pagi-serve variant ÷ the "
                  "req/s of the fastest other server on the row (named; neither pagi-serve variant is a peer of the "
                  "other). On the file rows req/s and MB/s give the same ratio.",
                  "", "Two cores, nothing pinned. pagi-serve `threads: 2` is one process with two event loops; "
                  "`workers: 2` is a supervisor and two single-threaded worker processes on one inherited listening "
                  "socket. nginx `worker_processes 2`, lighttpd `server.max-worker = 2` (two forked workers: it has "
                  "no threads), h2o `num-threads: 2`, Caddy `GOMAXPROCS=2`. wrk (`-t2 -c64`) shares the two cores "
                  "with the server, so a server that spends less CPU per request leaves more of them to wrk: each "
                  "figure is of server and client together."]
    lines += ["", "— : the server cannot express the workload in its plain configuration (lighttpd has no inline "
              "response without Lua, h2o none without mruby; Caddy's placeholders use braces, which clash with JSON "
              "text), or the row does not apply to it. nginx answers the `respond` rows with `return 200` and the "
              "same body."]
    if missing:
        lines += ["", "Not installed on this machine, left out: " + ", ".join(LABELS.get(s, s) for s in missing) + "."]
    if args.baseline:
        lines += ["", "pagi-serve (baseline): another build (`--baseline`; its folders are left out, they name this machine), on the static and respond rows; "
                  "after/before = pagi-serve ÷ baseline req/s. The two binaries ran one after the other, "
                  "so the ratio carries the machine's run-to-run noise."]
    names = [w[0] for w in workloads]
    cost = [s for s in servers if (s, "middleware: none") in results and (s, "middleware: five") in results]
    if cost:
        lines += ["", "| middleware cost (`respond` 13 B, `Origin` sent) | " + " | ".join(LABELS.get(s, s) for s in cost) + " |",
                  "|---|" + "---|" * len(cost)]
        for row in ("middleware: none", "middleware: five"):
            lines.append(f"| {row.split(': ')[1]} | " + " | ".join("{:,.0f} req/s".format(results[(s, row)]["rps"]) for s in cost) + " |")
        lines.append("| five / none | " + " | ".join(ratio_text(results[(s, "middleware: five")], results[(s, "middleware: none")])
                                                   for s in cost) + " |")
        lines += ["", "five: `request_id`, `headers` (set X-Frame-Options), `cors` (origins `*`), `ip_filter` (allow "
                  "127.0.0.0/8), `rate_limit` (1,000,000/s, burst 1,000,000) on the route. nginx: `allow`/`deny`, "
                  "`limit_req` with the same rate and burst, `add_header` X-Request-ID (`$request_id`), "
                  "X-Frame-Options, Access-Control-Allow-Origin and Vary; both nginx rows reach their `return 200` "
                  "through `try_files` and a named location, since `return` alone answers before the access phases."]
    if any(n.startswith("gzip") for n in names):
        sizes = ", ".join(f"{LABELS.get(s, s)} {compressed_sizes[s]:,} B" for s in servers if compressed_sizes.get(s))
        lines += ["", f"gzip: `{GZIP_FILE}` ({len(gzip_original):,} B of generated text), `Accept-Encoding: gzip`, "
                  "compressed per request at level 5 (pagi-serve `compress`, nginx `gzip on; gzip_comp_level 5`, "
                  "lighttpd mod_deflate `deflate.compression-level = 5`, Caddy `encode gzip 5`, h2o "
                  "`compress: {gzip: 5}`). Checked with curl "
                  f"before measuring; bytes on the wire: {sizes or 'none'}."]
    lines += ["", "| memory | " + " | ".join(LABELS.get(s, s) for s in servers) + " |", "|---|" + "---|" * len(servers)]
    lines.append("| RSS at idle | " + " | ".join(f"{resources[s]['idle'] / 1024:.1f} MiB" if s in resources else "—" for s in servers) + " |")
    lines.append(f"| per idle keep-alive connection ({idle_connections:,} held) | " + " | ".join(f"{resources[s]['per_connection']:.1f} KiB" if s in resources else "—" for s in servers) + " |")
    lines.append("| RSS growth over ~{:,} requests | ".format(growth_requests) + " | ".join(f"{resources[s]['growth'] / 1024:+.1f} MiB" if s in resources else "—" for s in servers) + " |")
    spread = {s: cpu_spread(usage[s]) for s in servers if s in usage}
    lines += ["", "| CPU while measured | " + " | ".join(LABELS.get(s, s) for s in spread) + " |", "|---|" + "---|" * len(spread),
              "| server CPU (cores) | " + " | ".join(f"{used:.2f}" for used, _ in spread.values()) + " |",
              "| busy threads or processes | " + " | ".join(f"{busy}" for _, busy in spread.values()) + " |",
              "", "Server CPU: utime + stime of all its processes and threads over the measured runs of its rows ÷ "
              "their wall time. Busy: its threads (of every process) that took 10 % of that time or more; "
              f"fewer than {args.cores} is a failure (the server did not spread its load)."]
    failures += [f"{LABELS.get(s, s)}: {busy} busy thread(s) or process(es) while measured, not {args.cores}"
                 for s, (_, busy) in spread.items() if busy < args.cores]
    if failures:
        lines += ["", "Failures: " + "; ".join(failures)]
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    suffix = (("-quick" if args.quick else "") + ("-baseline" if args.baseline else "")
              + ("-" + re.sub(r"\W+", "-", args.only).strip("-") if args.only else ""))
    prefix = "static" if args.cores == 1 else "two-cores"
    table_path = os.path.join(ROOT, "bench", "results", f"{prefix}{suffix}.md")
    write(table_path, "\n".join(lines) + "\n")
    print("\n".join(lines))
    for p in pagis:
        print(f"\n{LABELS.get(p, p)} ÷ best peer, per row:")
        for name in names:
            ratio, peer = best_ratios[p].get(name, (None, None))
            print(f"  {name:<28} " + (f"{ratio:.2f}× ({LABELS.get(peer, peer)})" if ratio else "—"))
    chart(ratios, best_ratios, servers, os.path.join(ROOT, "bench", "results", f"{prefix}{suffix}.png"), stamp)
    shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("benchmark failures: " + "; ".join(failures), file=sys.stderr)
        sys.exit(1)


def wrk_cell(result):
    """A req/s cell of a wrk table: req/s (p50 / p99 ms), with MB/s from 100 MB/s; — for no result."""
    if not result:
        return "—"
    throughput = ", {:,.0f} MB/s".format(result["mbs"]) if result["mbs"] >= 100 else ""
    return "{:,.0f} ({:.2f} / {:.2f}){}".format(result["rps"], result["p50"], result["p99"], throughput)


def cpu_spread(spent):
    """(cores used, busy threads) of a server over its measured runs, from task_ticks deltas: a thread
    or process is busy from 10 % of the time, so a supervisor or a timer thread does not count."""
    tick = 1 / os.sysconf("SC_CLK_TCK")
    used = sum(spent["ticks"].values()) * tick
    return used / spent["seconds"], sum(1 for t in spent["ticks"].values() if t * tick >= 0.1 * spent["seconds"])


def best_peer(results, servers, name):
    """The fastest server on row `name` by req/s, pagi-serve and the baseline build left out; None if
    no peer ran the row."""
    peers = [s for s in servers if s not in NOT_PEERS and (s, name) in results]
    return max(peers, key=lambda s: results[(s, name)]["rps"]) if peers else None


def ratio_text(numerator, denominator):
    return f"{numerator['rps'] / denominator['rps']:.2f}×" if numerator and denominator else "—"


def chart(ratios, best_ratios, servers, path, stamp):
    """Two panels: every server's req/s relative to nginx per row; below, pagi-serve ÷ the best peer of
    the row, in that peer's colour and named over the bar. With two pagi-serve variants in `best_ratios`,
    two bars a row, told apart by hatching (legend), and only the ratio over each: names would overlap."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ImportError:
        print("matplotlib missing: no chart", file=sys.stderr)
        return
    names = list(ratios)
    colours = {s: f"C{i}" for i, s in enumerate(servers)}
    width = 0.8 / max(1, len(servers))
    fig, (ax, best_ax) = plt.subplots(2, 1, figsize=(11, 8.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    for i, server in enumerate(servers):
        values = [ratios[n].get(server, 0) for n in names]
        ax.bar([x + i * width for x in range(len(names))], values, width, label=LABELS.get(server, server).replace("`", ""),
               color=colours[server])
    centres = [x + width * (len(servers) - 1) / 2 for x in range(len(names))]
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_ylabel("req/s relative to nginx")
    ax.set_title(f"Throughput relative to nginx (same run, {stamp:%Y-%m-%d})")
    ax.legend(fontsize=8, ncol=2)
    single = len(best_ratios) == 1
    bar_width = 0.5 if single else 0.6 / len(best_ratios)
    values, variants = [], []
    for j, (pagi, by_row) in enumerate(best_ratios.items()):
        shift = (j - (len(best_ratios) - 1) / 2) * bar_width
        hatch = ["", "//", ".."][j % 3]
        heights = [by_row.get(n, (0, None))[0] for n in names]
        values += heights
        bars = best_ax.bar([c + shift for c in centres], heights, bar_width, hatch=hatch, edgecolor="white",
                           color=[colours.get(by_row.get(n, (0, None))[1], "grey") for n in names])
        variants.append(Patch(facecolor="lightgrey", edgecolor="black", hatch=hatch, label=SHORT[pagi].replace("`", "")))
        for bar, name in zip(bars, names):
            if name in by_row:
                ratio, peer = by_row[name]
                best_ax.annotate(f"{ratio:.2f}×" + (f"\nvs {LABELS.get(peer, peer)}" if single else ""),
                                 (bar.get_x() + bar.get_width() / 2, ratio),
                                 xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=7)
            else:
                best_ax.annotate("—", (bar.get_x() + bar.get_width() / 2, 0), xytext=(0, 2),
                                 textcoords="offset points", ha="center", va="bottom", fontsize=7)
    if not single:
        best_ax.legend(handles=variants, fontsize=8, loc="upper right")
    best_ax.axhline(1.0, color="black", linewidth=0.8)
    best_ax.set_ylim(0, max([1.0] + values) * 1.3)
    best_ax.set_ylabel("pagi-serve ÷ best peer")
    best_ax.set_title("pagi-serve ÷ the fastest other server on the row (bar in that server's colour)", fontsize=10)
    best_ax.set_xticks(centres, names, fontsize=8, rotation=15, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
