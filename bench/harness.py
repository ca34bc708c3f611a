#!/usr/bin/env python3
"""Side-by-side benchmark of pagi-serve, nginx, lighttpd and Caddy (issue: speed is shown as ratios
measured in the same run on the same machine). Called by bench/run, which installs the tools and
builds pagi-serve in release mode.

Every server is started pinned to CPU 0 with its access log off, warmed up, loaded from CPU 1 with
wrk (keep-alive), then stopped by PID. Results: a Markdown table and a PNG chart of the ratios to
nginx in bench/results/.
"""
import argparse
import datetime
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORTS = {"pagi-serve": 18081, "nginx": 18082, "lighttpd": 18083, "caddy": 18084}


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


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
    return www


def configs(work, www, binary):
    write(os.path.join(work, "pagi.yaml"), f"""
server:
  listen: ["127.0.0.1:{PORTS['pagi-serve']}"]
  threads: 1
  access_log: {{to: "off"}}
  log_level: warn
  limits: {{connections: 20000}}
  timeouts: {{idle: 10m, header: 10m}}
hosts:
  - names: ["*"]
    routes:
      - path: /
        static: {www}
      - path: /hello
        respond: {{body: "Hello, world!"}}
      - path: /items/{{id}}
        respond: {{json: {{id: "{{{{path.id}}}}", name: "{{{{query.name}}}}"}}}}
""")
    write(os.path.join(work, "nginx.conf"), f"""
worker_processes 1;
worker_rlimit_nofile 30000;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 20000; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000000;
  keepalive_timeout 600s;
  types {{ application/octet-stream bin; }}
  server {{
    listen 127.0.0.1:{PORTS['nginx']};
    root {www};
    location = /hello {{ default_type text/plain; return 200 "Hello, world!"; }}
    location ~ ^/items/(?<id>[^/]+)$ {{ default_type application/json; return 200 '{{"id":"$id","name":"$arg_name"}}'; }}
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
# Validators are off in lighttpd's built-in defaults; every other server sends them.
static-file.etags = "enable"
etag.use-inode = "enable"
etag.use-mtime = "enable"
etag.use-size = "enable"
mimetype.assign = (".bin" => "application/octet-stream")
""")
    write(os.path.join(work, "Caddyfile"), f"""
{{
  admin off
  auto_https off
}}
http://127.0.0.1:{PORTS['caddy']} {{
  root * {www}
  respond /hello "Hello, world!" 200
  file_server
}}
""")
    return {
        "pagi-serve": [binary, os.path.join(work, "pagi.yaml")],
        "nginx": ["nginx", "-c", os.path.join(work, "nginx.conf")],
        "lighttpd": ["lighttpd", "-D", "-f", os.path.join(work, "lighttpd.conf")],
        "caddy": ["caddy", "run", "--config", os.path.join(work, "Caddyfile"), "--adapter", "caddyfile"],
    }


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


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_latency(text):
    value = re.match(r"([\d.]+)(us|ms|s|m|h)$", text)
    return float(value.group(1)) * UNITS[value.group(2)] if value else float("nan")


def wrk(url, seconds, headers):
    command = ["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{seconds}s", "--latency", url]
    for h in headers:
        command += ["-H", h]
    out = subprocess.run(command, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    mbs = float(transfer.group(1)) * {"B": 1e-6, "KB": 1e-3, "MB": 1, "GB": 1e3}.get(transfer.group(2), 1)
    p50 = parse_latency(re.search(r"50%\s+(\S+)", out).group(1))
    p99 = parse_latency(re.search(r"99%\s+(\S+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "mbs": mbs, "p50": p50, "p99": p99, "non2xx": int(non2xx.group(1)) if non2xx else 0}


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
    parser.add_argument("--only", help="run only the workloads whose name contains this text (no memory figures)")
    args = parser.parse_args()
    seconds, runs = (1, 1) if args.quick else (10, 3)
    idle_connections = 500 if args.quick else 10000
    growth_requests = 20_000 if args.quick else 1_000_000
    growth_run = 2 if args.quick else 10

    work = tempfile.mkdtemp(prefix="pagi-bench-")
    os.chmod(work, 0o755)  # nginx workers run as an unprivileged user
    www = make_site(work)
    commands = configs(work, www, args.binary)
    servers = [s for s in commands if shutil.which(commands[s][0]) or os.path.exists(commands[s][0])]

    workloads = [
        ("1 KiB file", "/1k.bin", []),
        ("64 KiB file", "/64k.bin", []),
        ("1 MiB file", "/1m.bin", []),
        ("304 revalidation", "/1k.bin", ["{revalidation}"]),
        ("range of 1 MiB file", "/1m.bin", ["Range: bytes=1000-65535"]),
        ("404", "/missing.bin", []),
        ("respond: fixed 13 B", "/hello", []),
        ("respond: templated json", "/items/42?name=ada", []),
    ]
    # Rows a server cannot express in its plain configuration are left empty: lighttpd has no inline
    # response without Lua (mod_magnet); Caddy's placeholders use braces, which clash with JSON text.
    unsupported = {("lighttpd", "respond: fixed 13 B"), ("lighttpd", "respond: templated json"),
                   ("caddy", "respond: templated json")}
    if args.only:
        workloads = [w for w in workloads if args.only in w[0]]
    results, resources = {}, {}
    failures = []
    for server in servers:
        port = PORTS[server]
        print(f"{time.strftime('%H:%M:%S')} {server}", file=sys.stderr)
        process = subprocess.Popen(["taskset", "-c", "0"] + commands[server], stdout=subprocess.DEVNULL,
                                   stderr=open(os.path.join(work, f"{server}.log"), "w"), start_new_session=True)
        try:
            if not wait_ready(port):
                failures.append(f"{server} did not start")
                continue
            idle_rss = rss_kib([process.pid])
            _, headers = fetch(port, "/1k.bin")
            # Revalidate with the ETag where the server sends one (lighttpd's default sends none).
            etag = headers.get("ETag") or headers.get("Etag")
            revalidation = f"If-None-Match: {etag}" if etag else f"If-Modified-Since: {headers.get('Last-Modified')}"
            expected = {"304 revalidation": 304, "range of 1 MiB file": 206, "404": 404}
            for name, path, header_templates in workloads:
                if (server, name) in unsupported:
                    continue
                hs = [h.format(revalidation=revalidation) for h in header_templates]
                status, _ = fetch(port, path, dict(h.split(": ", 1) for h in hs))
                if status != expected.get(name, 200):
                    failures.append(f"{server}: {name} answered {status}")
                wrk(f"http://127.0.0.1:{port}{path}", 1, hs)  # warm-up
                samples = [wrk(f"http://127.0.0.1:{port}{path}", seconds, hs) for _ in range(runs)]
                results[(server, name)] = sorted(samples, key=lambda r: r["rps"])[len(samples) // 2]
            if args.only:
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
                sent += int(wrk(f"http://127.0.0.1:{port}/1k.bin", growth_run, [])["rps"] * growth_run)
            end = rss_kib([process.pid])
            resources[server] = {
                "idle": idle_rss,
                "per_connection": (with_connections - before) / idle_connections,
                "growth": end - start,
                "requests": sent,
            }
        finally:
            print(f"{time.strftime('%H:%M:%S')} stopping {server}", file=sys.stderr)
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    stamp = datetime.datetime.now(datetime.timezone.utc)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [
        f"# Workloads side by side ({'QUICK smoke run, figures not meaningful' if args.quick else f'{runs}×{seconds}s per row, median'})",
        "",
        f"{stamp:%Y-%m-%d %H:%M} UTC · {cpu} · server pinned to CPU 0, `wrk -t1 -c64 --latency` on CPU 1 · access logs off",
        "",
        "| workload | " + " | ".join(f"{s} req/s (p50 / p99 ms)" for s in servers) + " | pagi/nginx |",
        "|---|" + "---|" * (len(servers) + 1),
    ]
    ratios = {}
    for name, _, _ in workloads:
        cells = []
        for s in servers:
            r = results.get((s, name))
            if not r:
                cells.append("—")
                continue
            throughput = ", {:,.0f} MB/s".format(r["mbs"]) if r["mbs"] >= 100 else ""
            cells.append("{:,.0f} ({:.2f} / {:.2f}){}".format(r["rps"], r["p50"], r["p99"], throughput))
        pagi, nginx = results.get(("pagi-serve", name)), results.get(("nginx", name))
        ratio = pagi["rps"] / nginx["rps"] if pagi and nginx else float("nan")
        ratios[name] = {s: results[(s, name)]["rps"] / nginx["rps"] for s in servers if (s, name) in results and nginx}
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio:.2f}× |")
    lines += ["", "— : the server cannot express the workload in its plain configuration (lighttpd has no inline "
              "response without Lua; Caddy's placeholders use braces, which clash with JSON text). nginx answers the "
              "`respond` rows with `return 200` and the same body."]
    lines += ["", "| memory | " + " | ".join(servers) + " |", "|---|" + "---|" * len(servers)]
    lines.append("| RSS at idle | " + " | ".join(f"{resources[s]['idle'] / 1024:.1f} MiB" if s in resources else "—" for s in servers) + " |")
    lines.append(f"| per idle keep-alive connection ({idle_connections:,} held) | " + " | ".join(f"{resources[s]['per_connection']:.1f} KiB" if s in resources else "—" for s in servers) + " |")
    lines.append("| RSS growth over ~{:,} requests | ".format(growth_requests) + " | ".join(f"{resources[s]['growth'] / 1024:+.1f} MiB" if s in resources else "—" for s in servers) + " |")
    if failures:
        lines += ["", "Failures: " + "; ".join(failures)]
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    suffix = ("-quick" if args.quick else "") + ("-" + re.sub(r"\W+", "-", args.only).strip("-") if args.only else "")
    table_path = os.path.join(ROOT, "bench", "results", f"static{suffix}.md")
    write(table_path, "\n".join(lines) + "\n")
    print("\n".join(lines))
    chart(ratios, servers, os.path.join(ROOT, "bench", "results", f"static{suffix}.png"), stamp)
    shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("benchmark failures: " + "; ".join(failures), file=sys.stderr)
        sys.exit(1)


def chart(ratios, servers, path, stamp):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no chart", file=sys.stderr)
        return
    names = list(ratios)
    width = 0.8 / max(1, len(servers))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for i, server in enumerate(servers):
        values = [ratios[n].get(server, 0) for n in names]
        ax.bar([x + i * width for x in range(len(names))], values, width, label=server)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([x + width * (len(servers) - 1) / 2 for x in range(len(names))], names, fontsize=8,
                  rotation=15, ha="right")
    ax.set_ylabel("req/s relative to nginx")
    ax.set_title(f"Throughput relative to nginx (same run, {stamp:%Y-%m-%d})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
