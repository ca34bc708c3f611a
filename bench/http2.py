#!/usr/bin/env python3
"""HTTP/2 side by side: pagi-serve against nginx `http2`, in the same run on the same files (called by
`bench/run --http2`). The setup of the TLS benchmark (bench/tls.py): one certificate for both servers
made by the binary under test (`pagi-serve cert localhost 127.0.0.1`), each server pinned to CPU 0 with
its access log off, one server after the other; the load is h2load (nghttp2) on CPU 1,
`h2load -c 64 -m 10 -D 10` (64 connections, 10 streams in flight on each, 10 s), 3 runs per row, median
req/s; ratios pagi-serve ÷ nginx.

Listeners: a TLS one, where the client offers ALPN `h2` (pagi-serve `{address: …, tls: true}`, nginx
`listen … ssl http2`), and a cleartext one spoken to with HTTP/2 prior knowledge, h2c (pagi-serve's
cleartext listeners take it by default; nginx `listen … http2` without `ssl`).

Rows:
  1 KiB file (h2, TLS)                  the static file, answered from memory by both
  respond: fixed 13 B (h2, TLS)         pagi-serve `respond: {body: "Hello, world!"}`, nginx `return 200`
                                        with the same content type
  the same two over h2c                 cleartext, prior knowledge

Before a row is measured, its answer is fetched once with curl (`--http2` with the certificate
verified, or `--http2-prior-knowledge`): the HTTP version must be 2, and the body the file or the text;
every measured h2load run must report the application protocol `h2` (or `h2c`) and no failed, errored
or non-2xx request. CPU per row: the server's (pagi-serve by thread name) and h2load's, as a share of a
core, so a row that h2load, not the server, limits shows. In a full run, with `perf` installed,
pagi-serve's 1 KiB h2 row is run once more for 10 s under `perf record`: the hottest symbols, and the
samples by Swift module or library.
"""
import datetime
import os
import re
import shutil
import subprocess
import sys
import time

import harness
import tls
from serverprocess import free_port

SERVERS = ["pagi-serve", "nginx"]
FIXED_BODY = b"Hello, world!"
# pagi-serve's `respond: {body: …}` answers text/plain; charset=utf-8, and nginx is told the same.
FIXED_TYPE = "text/plain; charset=utf-8"
# (row name, path, listener: "h2" over TLS with ALPN, "h2c" cleartext with prior knowledge)
WORKLOADS = [
    ("1 KiB file", "/1k.bin", "h2"),
    ("respond: fixed 13 B", "/fixed", "h2"),
    ("1 KiB file, h2c", "/1k.bin", "h2c"),
    ("respond: fixed 13 B, h2c", "/fixed", "h2c"),
]
PROFILED = "1 KiB file"
CLIENTS, STREAMS = 64, 10


def pagi_config(ports, www, certs):
    h2c, h2 = ports["h2c"], ports["h2"]
    return tls.tls_pagi_config(f'["127.0.0.1:{h2c}", {{address: "127.0.0.1:{h2}", tls: true}}]', www, certs, f"""\
      - path: /fixed
        respond: {{body: "{FIXED_BODY.decode()}"}}
""")


def nginx_config(ports, work, www, certs):
    return "\n" + harness.nginx_head(work) + f"""\
  server {{
    listen 127.0.0.1:{ports['h2']} ssl http2;
    listen 127.0.0.1:{ports['h2c']} http2;
    ssl_certificate {certs}/localhost.crt;
    ssl_certificate_key {certs}/localhost.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    root {www};
    location = /fixed {{ default_type "{FIXED_TYPE}"; return 200 "{FIXED_BODY.decode()}"; }}
  }}
}}
"""


def url(ports, path, listener):
    return f"{'https' if listener == 'h2' else 'http'}://127.0.0.1:{ports[listener]}{path}"


def check(ports, path, listener, certs, work):
    """One request with curl as h2load will make it: (HTTP version, status, content type, body) or an
    error text."""
    body_path = os.path.join(work, "check.body")
    flags = ["--http2", "--cacert", os.path.join(certs, "localhost.crt")] if listener == "h2" else ["--http2-prior-knowledge"]
    done = subprocess.run(["curl", "-sS", "--max-time", "10", *flags, "-o", body_path,
                           "-w", "%{http_version} %{http_code} %{content_type}", url(ports, path, listener)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        return f"curl failed: {done.stderr.strip()}"
    version, status, content_type = (done.stdout.split(" ", 2) + ["", ""])[:3]
    with open(body_path, "rb") as f:
        return version, int(status), content_type, f.read()


def h2load(target, seconds, server_pid, listener):
    """h2load on CPU 1; its figures, plus the server's and h2load's CPU over the run (share of a core)."""
    command = ["taskset", "-c", "1", "h2load", "-c", str(CLIENTS), "-m", str(STREAMS), "-D", str(seconds), target]
    out, cpu, h2load_cpu = tls.measured(command, server_pid)
    rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s, ([\d.]+)(\w+)/s", out)
    counts = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                       r"(\d+) errored, (\d+) timeout", out)
    protocol = re.search(r"Application protocol: (\S+)", out)
    if not rps or not counts or not protocol:
        raise RuntimeError(f"h2load printed no rate or protocol: {out.strip()[-400:]}")
    if protocol.group(1) != listener:
        raise RuntimeError(f"h2load spoke {protocol.group(1)}, not {listener}")
    status = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    traffic = re.search(r"traffic: .*?\((\d+)\) total, .*?\((\d+)\) headers \(space savings ([\d.]+)%\), .*?\((\d+)\) data", out)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out)
    done = int(counts.group(2)) or 1
    return {
        "rps": float(rps.group(1)),
        "mbs": tls.megabytes(rps.group(2), rps.group(3)),
        "mean": harness.parse_latency(mean.group(1)) if mean else float("nan"),
        "bad": sum(map(int, counts.group(4, 5, 6))) + (sum(map(int, status.group(2, 3, 4))) if status else 0),
        "header_bytes": int(traffic.group(2)) / done if traffic else float("nan"),
        "header_savings": float(traffic.group(3)) if traffic else float("nan"),
        **cpu,
        "h2load_cpu": h2load_cpu,
    }


def main():
    args = harness.report_arguments(__doc__, "http2")
    seconds, runs = (1, 1) if args.quick else (10, 3)
    load_average = os.getloadavg()

    work, www, certs, context = tls.tls_site(args.binary, "pagi-h2-")
    ports = {s: {"h2": free_port(), "h2c": free_port()} for s in SERVERS}
    commands = harness.server_commands(args.binary, work, pagi_config(ports["pagi-serve"], www, certs),
                                       nginx_config(ports["nginx"], work, www, certs))
    expected = {"/1k.bin": open(os.path.join(www, "1k.bin"), "rb").read(), "/fixed": FIXED_BODY}

    results, content_types, failures = {}, {}, []
    perf = None
    for server in SERVERS:
        print(f"{time.strftime('%H:%M:%S')} {server}", file=sys.stderr)
        process = harness.start_pinned(commands[server], work, server)
        try:
            # Ready when the TLS listener answers HTTP/1.1 (no ALPN from Python's client).
            if not tls.wait_ready(ports[server]["h2"], process, context):
                failures.append(f"{server} did not start: {harness.log_tail(work, server)}")
                continue
            for name, path, listener in WORKLOADS:
                answer = check(ports[server], path, listener, certs, work)
                if isinstance(answer, str):
                    failures.append(f"{server}: {name}: {answer}")
                    continue
                version, status, content_type, body = answer
                if version != "2" or status != 200 or body != expected[path]:
                    failures.append(f"{server}: {name} answered HTTP/{version} {status} with {len(body):,} bytes, "
                                    "not HTTP/2 200 with the expected body")
                    continue
                content_types[(server, path)] = content_type
                target = url(ports[server], path, listener)
                try:
                    h2load(target, 1, process.pid, listener)  # warm-up
                    samples = [h2load(target, seconds, process.pid, listener) for _ in range(runs)]
                except RuntimeError as error:
                    failures.append(f"{server}: {name}: {error}")
                    continue
                bad = sum(r["bad"] for r in samples)
                if bad:
                    failures.append(f"{server}: {name}: {bad:,} failed, errored or non-2xx requests under load")
                results[(server, name)] = harness.median(samples)
                print(f"  {name}: {results[(server, name)]['rps']:,.0f} req/s", file=sys.stderr)
            if server == "pagi-serve" and not args.quick and shutil.which("perf"):
                print(f"{time.strftime('%H:%M:%S')} profiling pagi-serve: {PROFILED}", file=sys.stderr)
                path, listener = next((p, l) for n, p, l in WORKLOADS if n == PROFILED)
                perf = tls.record_profile(process.pid, work, [
                    "taskset", "-c", "1", "h2load", "-c", str(CLIENTS), "-m", str(STREAMS),
                    "-D", str(tls.PROFILE_SECONDS + 2), url(ports[server], path, listener)])
        finally:
            harness.stop(process, server)

    stamp = datetime.datetime.now(datetime.timezone.utc)
    cpu = harness.cpu_model()
    nginx_version = harness.nginx_version()
    h2load_version = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout.strip()
    load = f"`h2load -c {CLIENTS} -m {STREAMS} -D {seconds}`"
    lines = [
        tls.run_title("HTTP/2: pagi-serve and nginx side by side", args.quick, runs, seconds),
        "",
        f"{stamp:%Y-%m-%d %H:%M} UTC · {cpu} · server pinned to CPU 0, {load} on CPU 1 ({h2load_version}) · "
        f"access logs off · `bench/run --http2{' --quick' if args.quick else ''}` · load average before the run "
        f"{load_average[0]:.2f}",
        "",
        "| workload | pagi-serve req/s (mean ms) | nginx req/s (mean ms) | pagi/nginx |",
        "|---|---|---|---|",
    ]
    for name, _, listener in WORKLOADS:
        cells = []
        for s in SERVERS:
            r = results.get((s, name))
            cells.append("{:,.0f} ({:.2f})".format(r["rps"], r["mean"]) if r else "—")
        label = name if listener == "h2c" else f"{name}, h2 (TLS)"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | "
                     f"{harness.ratio_text(results.get(('pagi-serve', name)), results.get(('nginx', name)))} |")
    types = "; ".join(f"{s} `{content_types[(s, '/fixed')]}`" for s in SERVERS if (s, "/fixed") in content_types)
    lines += [
        "",
        f"{CLIENTS} connections with {STREAMS} streams in flight on each ({CLIENTS * STREAMS} requests at a time), "
        "one h2load thread; mean ms: h2load's mean time per request. h2 (TLS): ALPN `h2` offered by h2load, "
        "one certificate for both made by `pagi-serve cert localhost 127.0.0.1` (ECDSA P-256); h2c: cleartext, "
        "HTTP/2 with prior knowledge. pagi-serve: `threads: 1`, a cleartext listener and a `tls: true` one, "
        "`http2` at its default (on). nginx " + nginx_version + ": `worker_processes 1`, `listen … ssl http2` and "
        "`listen … http2`, `ssl_protocols TLSv1.2 TLSv1.3`, its HTTP/2 settings at their defaults "
        "(`http2_max_concurrent_streams 128`, as pagi-serve's SETTINGS). respond: fixed 13 B is pagi-serve "
        "`respond: {body: \"Hello, world!\"}` and nginx `return 200 \"Hello, world!\"` with `default_type` set "
        f"to pagi-serve's content type ({types or 'not checked'}).",
        "Every row was checked first with curl (`--http2` over TLS with the certificate verified, "
        "`--http2-prior-knowledge` on h2c): HTTP version 2, status 200, the expected body; each h2load run "
        "must report the application protocol of its row and no failed or non-2xx request.",
        "",
        "CPU over the measured runs (utime + stime ÷ wall time: 100 % is one core; the server's whole process, "
        "pagi-serve by thread name) and header bytes per response on the wire (HPACK):",
        "",
        "| workload | pagi-serve CPU (by thread) | h2load CPU (pagi-serve run) | nginx CPU | h2load CPU (nginx run) "
        "| server CPU per request, pagi-serve / nginx | header bytes per response, pagi-serve / nginx |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, _, listener in WORKLOADS:
        p, n = results.get(("pagi-serve", name)), results.get(("nginx", name))
        label = name if listener == "h2c" else f"{name}, h2 (TLS)"
        lines.append(tls.cpu_row(label, p, n, "h2load_cpu") + " "
                     + (f"{p['header_bytes']:.1f} / {n['header_bytes']:.1f}" if p and n else "—") + " |")
    lines += ["", "The CPU figures are those of each row's median run."]
    if perf:
        lines += tls.profile_lines(perf, f"{PROFILED} over h2 (TLS)", tls.module_summary(perf))
    if failures:
        lines += ["", "Failures: " + "; ".join(failures)]
    harness.finish(lines, failures, args.out, args.quick, work)


if __name__ == "__main__":
    main()
