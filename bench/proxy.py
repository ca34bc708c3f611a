#!/usr/bin/env python3
"""Reverse proxy side by side: pagi-serve `proxy` against nginx `proxy_pass`, in the same run, in front
of the same upstream (called by `bench/run --proxy`). The cleartext harness's setup (bench/harness.py):
each proxy pinned to CPU 0 with its access log off, `wrk -t1 -c64 --latency` on CPU 1, one proxy after
the other, 3 × 10 s per row, median req/s; ratios pagi-serve ÷ nginx.

The upstream is a second nginx (`worker_processes 1`, access log off, keep-alive, `sendfile`,
`open_file_cache`) serving the harness's files, the same for both proxies and started once for the
whole run. The machine has two cores and the proxy gets one to itself, so the upstream shares CPU 1
with wrk. The direct row (wrk straight to the upstream, nothing on CPU 0) is therefore the ceiling:
the most that CPU 1 can ask for and answer. A proxy row near it is limited by CPU 1, not by the proxy.
The CPU table shows which core limited each row; where CPU 1 did, the proxies' CPU per request
compares them better than req/s.

Proxies:
  pagi-serve   `threads: 1`, a route `{path: /, proxy: {to: ["http://127.0.0.1:PORT"]}}` on host `*`
               (the upstream side is async-http-client on its own event loop; everything pagi-serve
               runs is pinned to CPU 0)
  nginx        `worker_processes 1`, `proxy_pass http://backend` to an `upstream` block with
               `keepalive 64` (as many idle connections kept as wrk has: none is closed after an
               answer), `proxy_http_version 1.1`, `proxy_set_header Connection ""` (keep-alive to the
               upstream), and the request headers pagi-serve adds: the client's `Host`,
               `X-Forwarded-For/-Proto/-Host` and `Forwarded`

Rows:
  1 KiB file                          keep-alive client, keep-alive upstream
  1 KiB file, new client connection   `Connection: close`: wrk reconnects after every answer; the
  per request                         proxy keeps its upstream connections

Before a row is measured, its answer through the proxy is fetched once and compared byte for byte with
the file, and must carry the upstream's marker header (`X-Upstream`), so it came through the upstream;
with `Connection: close`, the answer must say `Connection: close`. The upstream's `stub_status` is read
around every run: upstream connections opened and requests served per answer, and mid-run the upstream
connections open. CPU per row: the proxy's (pagi-serve by thread name), the upstream's and wrk's, each
as a share of a core. In a full run, with `perf` installed, pagi-serve's keep-alive row is run once more
for 10 s under `perf record` and the hottest symbols are listed.
"""
import datetime
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import harness
import tls
from harness import make_site
from serverprocess import free_port

SERVERS = ["pagi-serve", "nginx"]
LABELS = {"direct": "direct to the upstream (ceiling)", "pagi-serve": "pagi-serve `proxy`", "nginx": "nginx `proxy_pass`"}
UPSTREAM_MARK = "bench-upstream"
STATUS_PATH = "/upstream-status"
# (row name, path, extra request headers)
WORKLOADS = [
    ("1 KiB file", "/1k.bin", []),
    ("1 KiB file, new client connection per request", "/1k.bin", ["Connection: close"]),
]
PROFILED = "1 KiB file"
# Idle upstream connections nginx keeps: as many as wrk's connections, so that no request has to open
# one (with 32, a quick run opened a new upstream connection for about one request in five).
KEEPALIVE = 64


def upstream_config(port, work, www):
    """The upstream nginx: the files, a marker header on every answer, stub_status for the counters."""
    return "\n" + harness.nginx_head(work, name="upstream") + f"""\
  server {{
    listen 127.0.0.1:{port};
    root {www};
    open_file_cache max=16 inactive=600s;
    open_file_cache_valid 600s;
    add_header X-Upstream {UPSTREAM_MARK} always;
    location = {STATUS_PATH} {{ stub_status; }}
  }}
}}
"""


def pagi_config(port, upstream_port):
    return f"""
server:
  listen: ["127.0.0.1:{port}"]
  threads: 1
{harness.PAGI_SERVER_SETTINGS}hosts:
  - names: ["*"]
    routes:
      - path: /
        proxy: {{to: ["http://127.0.0.1:{upstream_port}"]}}
"""


def nginx_config(port, upstream_port, work):
    return "\n" + harness.nginx_head(work) + f"""\
  upstream backend {{
    server 127.0.0.1:{upstream_port};
    keepalive {KEEPALIVE};
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # What pagi-serve's proxy sends along: the client's Host and the forwarding headers.
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header Forwarded 'for=$remote_addr;proto=$scheme;host="$http_host"';
    }}
  }}
}}
"""


def start_on_cpu1(command, work, name):
    """`command` on CPU 1 (with wrk), in a session of its own, stderr in NAME.log."""
    return subprocess.Popen(["taskset", "-c", "1"] + command, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(work, f"{name}.log"), "w"), start_new_session=True)


def stop(process, label):
    """harness.stop, unless the server has already exited (it failed to start)."""
    if process.poll() is None:
        harness.stop(process, label)


def fetch(port, path, headers):
    """One request over a new connection: (status, headers in lower case, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=dict(h.split(": ", 1) for h in headers))
        response = connection.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        connection.close()


def wait_ready(port, process):
    """True once the server answers anything on `port` (a 501 or 502 is checked for later)."""
    for _ in range(100):
        if process.poll() is not None:
            return False
        try:
            fetch(port, "/1k.bin", [])
            return True
        except Exception:
            time.sleep(0.1)
    return False


class Upstream:
    """The upstream's stub_status counters. Every read is a request on a new connection of its own,
    which the counters include: they are subtracted."""

    def __init__(self, port):
        self.port = port
        self.reads = 0

    def status(self):
        _, _, body = fetch(self.port, STATUS_PATH, [])
        self.reads += 1
        text = body.decode()
        active = int(re.search(r"Active connections:\s+(\d+)", text).group(1))
        accepts, _, requests = map(int, re.search(r"\n\s*(\d+)\s+(\d+)\s+(\d+)\s*\n", text).groups())
        return {"active": active, "accepts": accepts, "requests": requests, "reads": self.reads}


def wrk(url, seconds, headers, server_pid, upstream_pid, upstream):
    """tls.wrk (figures, the server's CPU by thread, wrk's CPU) plus the upstream's CPU, the upstream
    connections opened and requests served during the run, and the connections open half way."""
    before = upstream.status()
    ticks_before, _ = tls.tree_ticks(upstream_pid)
    middle = {}
    timer = threading.Timer(seconds / 2, lambda: middle.update(upstream.status()))
    start = time.monotonic()
    timer.start()
    try:
        result = tls.wrk(url, seconds, headers, server_pid)
    finally:
        timer.join()
    elapsed = time.monotonic() - start
    ticks_after, _ = tls.tree_ticks(upstream_pid)
    after = upstream.status()
    own = after["reads"] - before["reads"]  # the status reads after `before`: each one connection, one request
    result["upstream_cpu"] = (ticks_after - ticks_before) / tls.CLK_TCK / elapsed
    result["upstream_accepts"] = after["accepts"] - before["accepts"] - own
    result["upstream_requests"] = after["requests"] - before["requests"] - own
    result["upstream_active"] = middle["active"] - 1 if middle else None  # without the status read's own
    result["answers"] = result["rps"] * seconds
    return result


def cpu_ratio(p, n):
    """pagi-serve's CPU per request ÷ nginx's (below 1: pagi-serve spends less per request)."""
    if not p or not n:
        return "—"
    return f"{(p['server_cpu'] / p['rps']) / (n['server_cpu'] / n['rps']):.2f}×"


def main():
    args = harness.report_arguments(__doc__, "proxy")
    seconds, runs = (1, 1) if args.quick else (10, 3)
    load_average = os.getloadavg()

    work = tempfile.mkdtemp(prefix="pagi-proxy-")
    os.chmod(work, 0o755)  # nginx workers run as an unprivileged user
    www = make_site(work)
    ports = {s: free_port() for s in ["upstream"] + SERVERS}
    commands = harness.server_commands(args.binary, work, pagi_config(ports["pagi-serve"], ports["upstream"]),
                                       nginx_config(ports["nginx"], ports["upstream"], work))
    harness.write(os.path.join(work, "upstream.conf"), upstream_config(ports["upstream"], work, www))
    files = {path: open(os.path.join(www, path.lstrip("/")), "rb").read() for _, path, _ in WORKLOADS}
    upstream = Upstream(ports["upstream"])

    results, failures = {}, []
    perf = None
    print(f"{time.strftime('%H:%M:%S')} upstream nginx", file=sys.stderr)
    upstream_process = start_on_cpu1(["nginx", "-c", os.path.join(work, "upstream.conf")], work, "upstream")
    try:
        if not wait_ready(ports["upstream"], upstream_process):
            failures.append(f"the upstream did not start: {harness.log_tail(work, 'upstream')}")
        else:
            # The ceiling: wrk straight to the upstream (CPU 0 idle).
            for server in ["direct"] + SERVERS:
                port = ports["upstream" if server == "direct" else server]
                process = upstream_process
                if server != "direct":
                    print(f"{time.strftime('%H:%M:%S')} {server}", file=sys.stderr)
                    process = harness.start_pinned(commands[server], work, server)
                try:
                    if server != "direct" and not wait_ready(port, process):
                        failures.append(f"{server} did not start: {harness.log_tail(work, server)}")
                        continue
                    for name, path, headers in WORKLOADS:
                        status, answer, body = fetch(port, path, headers)
                        if status != 200 or body != files[path]:
                            failures.append(f"{server}: {name} answered {status} with {len(body):,} bytes, not the file")
                            print(f"FAILED: {failures[-1]}", file=sys.stderr)
                            continue
                        if answer.get("x-upstream") != UPSTREAM_MARK:
                            failures.append(f"{server}: {name}: the answer has no `X-Upstream: {UPSTREAM_MARK}`: "
                                            "it did not come from the upstream")
                            print(f"FAILED: {failures[-1]}", file=sys.stderr)
                            continue
                        if headers and answer.get("connection", "").lower() != "close":
                            failures.append(f"{server}: {name}: no `Connection: close` in the answer")
                            print(f"FAILED: {failures[-1]}", file=sys.stderr)
                            continue
                        url = f"http://127.0.0.1:{port}{path}"
                        try:
                            wrk(url, 1, headers, process.pid, upstream_process.pid, upstream)  # warm-up
                            samples = [wrk(url, seconds, headers, process.pid, upstream_process.pid, upstream)
                                       for _ in range(runs)]
                        except (RuntimeError, AttributeError) as error:
                            failures.append(f"{server}: {name}: {error}")
                            continue
                        bad = sum(r["errors"] + r["non2xx"] for r in samples)
                        if bad:
                            failures.append(f"{server}: {name}: {bad:,} socket errors or non-2xx answers under load")
                        results[(server, name)] = harness.median(samples)
                        print(f"  {name}: {results[(server, name)]['rps']:,.0f} req/s", file=sys.stderr)
                    if server == "pagi-serve" and not args.quick and shutil.which("perf") and (server, PROFILED) in results:
                        print(f"{time.strftime('%H:%M:%S')} profiling pagi-serve: {PROFILED}", file=sys.stderr)
                        path = next(p for n, p, _ in WORKLOADS if n == PROFILED)
                        perf = tls.record_profile(process.pid, work, [
                            "taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{tls.PROFILE_SECONDS + 2}s",
                            f"http://127.0.0.1:{port}{path}"])
                finally:
                    if server != "direct":
                        stop(process, server)
    finally:
        stop(upstream_process, "upstream")

    stamp = datetime.datetime.now(datetime.timezone.utc)
    cpu = harness.cpu_model()
    nginx_version = harness.nginx_version()
    columns = ["direct"] + SERVERS
    lines = [
        tls.run_title("Reverse proxy: pagi-serve `proxy` and nginx `proxy_pass` side by side", args.quick, runs, seconds),
        "",
        f"{stamp:%Y-%m-%d %H:%M} UTC · {cpu} · proxy pinned to CPU 0; the upstream (nginx, `worker_processes 1`) and "
        f"`wrk -t1 -c64 --latency` on CPU 1 · access logs off · `bench/run --proxy{' --quick' if args.quick else ''}` · "
        f"load average before the run {load_average[0]:.2f}",
        "",
        "| workload | " + " | ".join(f"{LABELS[s]} req/s (p50 / p99 ms)" for s in columns)
        + " | pagi/nginx | pagi/direct | nginx/direct | proxy CPU per request, pagi/nginx |",
        "|---|" + "---|" * (len(columns) + 4),
    ]
    for name, _, _ in WORKLOADS:
        cells = [harness.wrk_cell(results.get((s, name))) for s in columns]
        p, n, d = (results.get((s, name)) for s in columns[1:] + columns[:1])
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {harness.ratio_text(p, n)} | "
                     f"{harness.ratio_text(p, d)} | {harness.ratio_text(n, d)} | {cpu_ratio(p, n)} |")
    lines += [
        "",
        "Upstream: nginx " + nginx_version + " serving the harness's 1 KiB file (`1k.bin`, random bytes), "
        "`worker_processes 1`, `sendfile on`, `open_file_cache`, keep-alive, access log off, one instance for the whole run, "
        "pinned to CPU 1 with wrk: two cores leave no third for it, and CPU 0 is the proxy's alone. The direct "
        "row is wrk straight to it (CPU 0 idle): the ceiling of what CPU 1 can ask for and answer, since a proxy "
        "row puts the same work on CPU 1 plus nothing else. pagi-serve: `threads: 1`, "
        "`{path: /, proxy: {to: [\"http://127.0.0.1:PORT\"]}}` on host `*` (its upstream client, "
        "async-http-client, runs on event loops of its own; the whole process is pinned to CPU 0). nginx: "
        f"`worker_processes 1`, `upstream {{ server 127.0.0.1:PORT; keepalive {KEEPALIVE}; }}`, `proxy_pass`, "
        "`proxy_http_version 1.1`, `proxy_set_header Connection \"\"`, and the request headers pagi-serve adds "
        "(the client's `Host`, `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host`, `Forwarded`); "
        "`proxy_buffering` at its default (on).",
        "New client connection per request: `-H 'Connection: close'`; wrk opens a new connection to the proxy "
        "after each answer, the proxy keeps its connections to the upstream.",
        "Every row was checked first: the answer through the proxy byte-equal to the file, with the upstream's "
        f"`X-Upstream: {UPSTREAM_MARK}` header (and `Connection: close` on the second row); no socket error or "
        "non-2xx answer in any measured run.",
        "",
        "CPU over the measured runs (utime + stime ÷ wall time: 100 % is one core; pagi-serve by thread name) "
        "and the upstream's `stub_status` over the same runs:",
        "",
        "| workload | proxy | proxy CPU, CPU 0 (by thread) | upstream CPU | wrk CPU | CPU 1 (upstream + wrk) "
        "| proxy CPU per request | upstream connections opened / open half way | upstream requests per answer |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, _, _ in WORKLOADS:
        for s in columns:
            r = results.get((s, name))
            if not r:
                lines.append(f"| {name} | {LABELS[s]} | — | — | — | — | — | — | — |")
                continue
            proxy = "—" if s == "direct" else f"{r['server_cpu']:.0%} ({tls.thread_text(r['threads'])})"
            per_request = "—" if s == "direct" else tls.per_request(r)
            active = "—" if r["upstream_active"] is None else f"{r['upstream_active']:,}"
            lines.append(f"| {name} | {LABELS[s]} | {proxy} | {r['upstream_cpu']:.0%} | {r['wrk_cpu']:.0%} | "
                         f"{r['upstream_cpu'] + r['wrk_cpu']:.0%} | {per_request} | "
                         f"{r['upstream_accepts']:,} / {active} | {r['upstream_requests'] / r['answers']:.2f} |")
    limited = [f"{LABELS[s]} on the {name.replace('1 KiB file, ', '')} row" for name, _, _ in WORKLOADS for s in SERVERS
               if (s, name) in results and results[(s, name)]["upstream_cpu"] + results[(s, name)]["wrk_cpu"] >= 0.95
               and results[(s, name)]["server_cpu"] < 0.9]
    if limited:
        lines += ["", "Limited by CPU 1 (the upstream and wrk at 95 % of it or more, the proxy below 90 % of CPU 0): "
                  + "; ".join(limited) + ". There, req/s shows the ceiling more than the proxy: compare the proxy's CPU "
                  "per request."]
    lines += ["", "The CPU and upstream figures are those of each row's median run. Upstream connections opened: "
              "`accepts` of the upstream's `stub_status` over the run (wrk's own on the direct rows); open half way: "
              "its `Active connections`, the status request left out. Upstream requests per answer: its "
              "`requests` over the run ÷ wrk's answers (req/s × run time; the requests in flight at either end make "
              "it differ from 1.00 by a little)."]
    if perf:
        lines += tls.profile_lines(perf, f"{PROFILED} (keep-alive) through the proxy", tls.module_summary(perf))
    if failures:
        lines += ["", "Failures: " + "; ".join(failures)]
    harness.finish(lines, failures, args.out, args.quick, work)


if __name__ == "__main__":
    main()
