#!/usr/bin/env python3
"""HTTPS side by side: pagi-serve's TLS listener against nginx `ssl`, HTTP/1.1 over TLS, in the same
run on the same files (called by `bench/run --tls`). The cleartext harness's setup (bench/harness.py):
each server pinned to CPU 0 with its access log off, `wrk -t1 -c64 --latency` on CPU 1, one server
after the other, 3 × 10 s per row, median req/s; ratios pagi-serve ÷ nginx.

One certificate for both servers, made by the binary under test (`pagi-serve cert localhost
127.0.0.1`, an ECDSA P-256 key): pagi-serve a listener `{address: …, tls: true}` and the top-level
`tls: {cert, key}`; nginx `listen … ssl`, `ssl_certificate`, `ssl_certificate_key`,
`ssl_protocols TLSv1.2 TLSv1.3`, `sendfile on`, keep-alive as in the harness.

Rows:
  1 KiB file, 1 MiB file          keep-alive: one handshake per connection, then requests
  1 KiB file, new TLS connection  `Connection: close`: wrk reconnects after every answer and does
  per request                     not resume sessions, so every request is a full handshake

Before a row is measured, its answer is fetched once over TLS (certificate verified against the pair
above) and compared with the file; the protocol and cipher suite the server picks for an OpenSSL
client (wrk links the same library) are reported. CPU per row: the server's (its threads, for
pagi-serve by thread name: event loop vs NIO's thread pool, which reads files over TLS) and wrk's,
as a share of their core, so a row that wrk, not the server, limits shows. In a full run, with
`perf` installed, pagi-serve's 1 MiB row is run once more for 10 s under `perf record` and the hottest
symbols are listed.
"""
import datetime
import http.client
import os
import re
import resource
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

import harness
from harness import make_site, parse_latency
from serverprocess import free_port

CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVERS = ["pagi-serve", "nginx"]
# (row name, path, extra request headers)
WORKLOADS = [
    ("1 KiB file", "/1k.bin", []),
    ("1 MiB file", "/1m.bin", []),
    ("1 KiB file, new TLS connection per request", "/1k.bin", ["Connection: close"]),
]
PROFILE_SECONDS = 10


def pagi_config(port, www, certs):
    return tls_pagi_config(f'[{{address: "127.0.0.1:{port}", tls: true}}]', www, certs)


def tls_pagi_config(listen, www, certs, routes=""):
    """pagi-serve's configuration in the TLS benchmarks: the `listen` list, one thread, the certificate
    of make_certificate, `www` served at / and then `routes` (further route lines)."""
    return f"""
server:
  listen: {listen}
  threads: 1
  access_log: {{to: "off"}}
  log_level: warn
  limits: {{connections: 20000}}
  timeouts: {{idle: 10m, header: 10m}}
tls:
  cert: {certs}/localhost.crt
  key: {certs}/localhost.key
hosts:
  - names: ["*"]
    routes:
      - path: /
        static: {www}
""" + routes


def nginx_config(port, work, www, certs):
    return "\n" + harness.nginx_head(work) + f"""\
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {certs}/localhost.crt;
    ssl_certificate_key {certs}/localhost.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    root {www};
  }}
}}
"""


def tls_site(binary, prefix):
    """A working folder (`prefix`…), the benchmark's files in it (harness.make_site), a certificate
    for both servers and a client context that verifies it: (work, www, certs, context)."""
    work = tempfile.mkdtemp(prefix=prefix)
    os.chmod(work, 0o755)  # nginx workers run as an unprivileged user
    www = make_site(work)
    certs = make_certificate(binary, work)
    return work, www, certs, tls_context(certs)


def make_certificate(binary, work):
    """`pagi-serve cert localhost 127.0.0.1` into work/certs, for both servers: the folder, or exits
    (removing `work`) when the binary cannot make it."""
    certs = os.path.join(work, "certs")
    os.makedirs(certs)  # `cert --out` writes into a folder that exists
    made = subprocess.run([binary, "cert", "localhost", "127.0.0.1", "--out", certs], capture_output=True, text=True)
    if made.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        sys.exit(f"pagi-serve cert failed: {made.stderr.strip()}")
    return certs


def tls_context(certs):
    return ssl.create_default_context(cafile=os.path.join(certs, "localhost.crt"))


def fetch(port, path, headers, context):
    """One request over a verified TLS connection: (status, headers, body, protocol, cipher suite)."""
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
    try:
        connection.request("GET", path, headers=dict(h.split(": ", 1) for h in headers))
        # Read before the answer: http.client lets go of a socket whose answer says `close`.
        protocol, cipher = connection.sock.version(), connection.sock.cipher()[0]
        response = connection.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body, protocol, cipher
    finally:
        connection.close()


def wait_ready(port, process, context):
    for _ in range(100):
        if process.poll() is not None:
            return False
        try:
            fetch(port, "/1k.bin", [], context)
            return True
        except Exception:
            time.sleep(0.1)
    return False


def tree_ticks(pid):
    """utime + stime of a process and its descendants (nginx's worker), and per thread name."""
    total, by_thread = 0, {}
    for p in harness.all_pids([pid]):
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/stat") as f:
                    stat = f.read()
                fields = stat.rsplit(")", 1)[1].split()
                ticks = int(fields[11]) + int(fields[12])
                name = stem(stat[stat.index("(") + 1:stat.rindex(")")])
                total += ticks
                by_thread[name] = by_thread.get(name, 0) + ticks
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total, by_thread


def measured(command, server_pid):
    """Runs a load generator to its end: (its output, {"server_cpu": the server's CPU, "threads": the
    server's CPU per thread name}, the load generator's CPU), each as a share of a core over the run."""
    server_before, threads_before = tree_ticks(server_pid)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    out = subprocess.run(command, capture_output=True, text=True).stdout
    elapsed = time.monotonic() - start
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_after, threads_after = tree_ticks(server_pid)
    client_cpu = (children_after.ru_utime + children_after.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
    return out, {
        "server_cpu": (server_after - server_before) / CLK_TCK / elapsed,
        "threads": {n: (threads_after.get(n, 0) - threads_before.get(n, 0)) / CLK_TCK / elapsed for n in threads_after},
    }, client_cpu / elapsed


def megabytes(number, unit):
    """A rate the load generator printed as NUMBER UNIT (B, KB, MB, GB) in MB."""
    return float(number) * {"B": 1e-6, "KB": 1e-3, "MB": 1, "GB": 1e3}.get(unit, 1)


def wrk(url, seconds, headers, server_pid):
    """wrk on CPU 1; its figures, plus the server's and wrk's CPU over the run (share of a core)."""
    command = ["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{seconds}s", "--latency", url]
    for h in headers:
        command += ["-H", h]
    out, cpu, wrk_cpu = measured(command, server_pid)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not rps:
        raise RuntimeError(f"wrk printed no rate: {out.strip()[-300:]}")
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": float(rps.group(1)),
        "mbs": megabytes(transfer.group(1), transfer.group(2)),
        "p50": parse_latency(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
        "p99": parse_latency(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
        "errors": sum(map(int, errors.groups())) if errors else 0,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        **cpu,
        "wrk_cpu": wrk_cpu,
    }


def profile(port, pid, work):
    """`perf record` on the server for PROFILE_SECONDS during a further 1 MiB run: the hottest symbols
    (share of the samples, with their thread and library), and the samples per thread."""
    return record_profile(pid, work, ["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{PROFILE_SECONDS + 2}s",
                                      f"https://127.0.0.1:{port}/1m.bin"])


def record_profile(pid, work, load_command):
    """`perf record -F 999` on process `pid` for PROFILE_SECONDS while `load_command` runs (it should
    last PROFILE_SECONDS + 2 s): {"symbols": the hottest (share, thread, library, symbol), "threads":
    share per thread, "modules": share per Swift module or library}, or None when perf fails."""
    data = os.path.join(work, "perf.data")
    load = subprocess.Popen(load_command, stdout=subprocess.DEVNULL)
    time.sleep(1)
    recorded = subprocess.run(["perf", "record", "-F", "999", "-p", str(pid), "-o", data, "--", "sleep", str(PROFILE_SECONDS)],
                              capture_output=True, text=True)
    load.wait()
    if recorded.returncode != 0 or not os.path.exists(data):
        return None

    def report(sort, limit="0.3"):
        out = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", sort,
                              "--percent-limit", limit], capture_output=True, text=True).stdout
        # "  12.34%  NIO-ELT-0-#0  pagi-serve  [.] symbol": the share, then one field per sort key.
        return [l.split(None, len(sort.split(","))) for l in out.splitlines() if re.match(r"\s+[\d.]+%", l)]

    # Numbered threads (the thread pool's two) summed under their stem, as in the CPU table.
    symbols = {}
    for fields in report("comm,dso,sym", limit="0.01"):
        if len(fields) < 4:
            continue
        key = (stem(fields[1]), fields[2], re.sub(r"^\[[.kgu]\]\s+", "", fields[3]).strip())
        symbols[key] = symbols.get(key, 0) + float(fields[0].rstrip("%"))
    ranked = sorted(symbols.items(), key=lambda x: -x[1])
    demangler = shutil.which("swift-demangle")

    def demangle(names, *flags):
        if not demangler or not names:
            return names
        out = subprocess.run([demangler, *flags], input="\n".join(names), capture_output=True, text=True).stdout.splitlines()
        return out if len(out) == len(names) else names

    top = [item for item in ranked[:18] if item[1] >= 0.3]
    names = demangle([symbol for (_, _, symbol), _ in top], "--simplified")
    modules = {}
    for ((_, dso, _), share), full in zip(ranked, demangle([symbol for (_, _, symbol), _ in ranked])):
        module = module_of(dso, full)
        modules[module] = modules.get(module, 0) + share
    threads = {}
    for fields in report("comm"):
        threads[stem(fields[1])] = threads.get(stem(fields[1]), 0) + float(fields[0].rstrip("%"))
    return {"symbols": [(share, thread, dso, name) for ((thread, dso, _), share), name in zip(top, names)],
            "threads": threads, "modules": modules}


def module_of(dso, symbol):
    """Where a sample's code belongs: the kernel, a C library, BoringSSL, the Swift runtime, or the
    first Swift module a demangled symbol names (NIOHTTP2, NIOHPACK, PagiEngine, ...)."""
    if dso.startswith("[kernel"):
        return "kernel"
    if dso != "pagi-serve":
        return dso
    if "BoringSSL" in symbol or symbol.startswith("CNIO") or symbol.startswith("aes") or symbol.startswith("gcm"):
        return "BoringSSL"
    if symbol.startswith("swift_") or symbol.startswith("_swift"):
        return "Swift runtime"
    found = re.search(r"\b(_?[A-Z][A-Za-z0-9_]*)\.", symbol)
    return "Swift standard library" if not found or found.group(1) == "Swift" else found.group(1)


def stem(thread):
    """A thread's name without its number: NIO-ELT-0-#0 → NIO-ELT, SGLTN-TP-#1 → SGLTN-TP."""
    return re.sub(r"[-#\d]+$", "", thread.strip()) or "?"


def per_request(result):
    return f"{result['server_cpu'] / result['rps'] * 1e6:,.0f} µs"


def run_title(title, quick, runs, seconds):
    return "# " + title + (" (QUICK smoke run, figures not meaningful)" if quick else f" ({runs}×{seconds}s per row, median)")


def cpu_row(label, p, n, client):
    """A row of the CPU table: pagi-serve's CPU by thread and its load generator's (`client`: the key
    of its CPU in a result), nginx's and its load generator's, and the server CPU per request."""
    return (f"| {label} | " + (f"{p['server_cpu']:.0%} ({thread_text(p['threads'])})" if p else "—")
            + " | " + (f"{p[client]:.0%}" if p else "—") + " | " + (f"{n['server_cpu']:.0%}" if n else "—")
            + " | " + (f"{n[client]:.0%}" if n else "—") + " | "
            + (f"{per_request(p)} / {per_request(n)}" if p and n else "—") + " |")


def module_summary(perf):
    """`perf`'s samples by Swift module or library, for `profile_lines`' `more`."""
    return (" By Swift module or library (the first module a demangled symbol names): "
            + ", ".join(f"{m} {v:.1f} %" for m, v in sorted(perf["modules"].items(), key=lambda x: -x[1]) if v >= 0.5) + ".")


def profile_lines(perf, subject, more=""):
    """The report's section on a record_profile: samples per thread (then `more`), the hottest symbols."""
    lines = [
        "",
        f"Where pagi-serve's time goes on the {subject}: `perf record -F 999` on the server for {PROFILE_SECONDS} s "
        "of a further run of the same load. Samples per thread: " + ", ".join(
            f"`{n}` {v:.0f} %" for n, v in sorted(perf["threads"].items(), key=lambda x: -x[1])) + "." + more,
        "",
        "| samples | thread | library | symbol |",
        "|---|---|---|---|",
    ]
    for percent, comm, dso, symbol in perf["symbols"]:
        symbol = symbol.replace("|", "\\|")
        lines.append(f"| {percent:.1f} % | `{comm}` | {dso} | `{symbol[:110]}` |")
    return lines


def thread_text(threads):
    shown = sorted(((n, v) for n, v in threads.items() if v >= 0.005), key=lambda x: -x[1])
    return ", ".join(f"`{n}` {v:.0%}" for n, v in shown) or "—"


def main():
    args = harness.report_arguments(__doc__, "tls")
    seconds, runs = (1, 1) if args.quick else (10, 3)
    load_average = os.getloadavg()

    work, www, certs, context = tls_site(args.binary, "pagi-tls-")
    ports = {s: free_port() for s in SERVERS}
    commands = harness.server_commands(args.binary, work, pagi_config(ports["pagi-serve"], www, certs),
                                       nginx_config(ports["nginx"], work, www, certs))
    files = {path: open(os.path.join(www, path.lstrip("/")), "rb").read() for _, path, _ in WORKLOADS}

    results, negotiated, failures = {}, {}, []
    perf = None
    for server in SERVERS:
        port = ports[server]
        print(f"{time.strftime('%H:%M:%S')} {server}", file=sys.stderr)
        process = harness.start_pinned(commands[server], work, server)
        try:
            if not wait_ready(port, process, context):
                failures.append(f"{server} did not start: {harness.log_tail(work, server)}")
                continue
            for name, path, headers in WORKLOADS:
                # The answer the row will count: the file itself, over a verified TLS connection; with
                # `Connection: close`, announced as the last on its connection (wrk then reconnects).
                status, answer, body, protocol, cipher = fetch(port, path, headers, context)
                negotiated[server] = f"{protocol}, {cipher}"
                if status != 200 or body != files[path]:
                    failures.append(f"{server}: {name} answered {status} with {len(body):,} bytes, not the file")
                    continue
                if headers and answer.get("connection", "").lower() != "close":
                    failures.append(f"{server}: {name}: no `Connection: close` in the answer")
                    continue
                url = f"https://127.0.0.1:{port}{path}"
                wrk(url, 1, headers, process.pid)  # warm-up
                samples = [wrk(url, seconds, headers, process.pid) for _ in range(runs)]
                bad = sum(r["errors"] + r["non2xx"] for r in samples)
                if bad:
                    failures.append(f"{server}: {name}: {bad:,} socket errors or non-2xx answers under load")
                results[(server, name)] = harness.median(samples)
                print(f"  {name}: {results[(server, name)]['rps']:,.0f} req/s", file=sys.stderr)
            if server == "pagi-serve" and not args.quick and shutil.which("perf"):
                print(f"{time.strftime('%H:%M:%S')} profiling pagi-serve on the 1 MiB file", file=sys.stderr)
                perf = profile(port, process.pid, work)
        finally:
            harness.stop(process, server)

    stamp = datetime.datetime.now(datetime.timezone.utc)
    cpu = harness.cpu_model()
    nginx_version = harness.nginx_version()
    lines = [
        run_title("HTTPS (HTTP/1.1 over TLS): pagi-serve and nginx side by side", args.quick, runs, seconds),
        "",
        f"{stamp:%Y-%m-%d %H:%M} UTC · {cpu} · server pinned to CPU 0, `wrk -t1 -c64 --latency` on CPU 1 (https URLs) · "
        f"access logs off · `bench/run --tls{' --quick' if args.quick else ''}` · load average before the run "
        f"{load_average[0]:.2f}",
        "",
        "| workload | pagi-serve req/s (p50 / p99 ms) | nginx req/s (p50 / p99 ms) | pagi/nginx |",
        "|---|---|---|---|",
    ]
    for name, _, _ in WORKLOADS:
        cells = [harness.wrk_cell(results.get((s, name))) for s in SERVERS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | "
                     f"{harness.ratio_text(results.get(('pagi-serve', name)), results.get(('nginx', name)))} |")
    lines += [
        "",
        "One certificate for both: `pagi-serve cert localhost 127.0.0.1` (ECDSA P-256). pagi-serve: a listener "
        "`{address: …, tls: true}`, top-level `tls: {cert, key}`, `threads: 1`. nginx " + nginx_version
        + ": `worker_processes 1`, `listen … ssl`, `ssl_protocols TLSv1.2 TLSv1.3`, `sendfile on`, `tcp_nopush on`, "
        "keep-alive; its other TLS settings at their defaults. Negotiated with an OpenSSL client "
        f"({' '.join(ssl.OPENSSL_VERSION.split()[:2])}, Python's; wrk links the system's): " + "; ".join(f"{s} {negotiated[s]}" for s in SERVERS if s in negotiated) + ".",
        "New TLS connection per request: `-H 'Connection: close'`; wrk opens a new connection after each answer "
        "and does not resume sessions, so each request is a full TLS 1.3 handshake (ECDHE + an ECDSA signature "
        "by the server) and its row is new TLS connections per second.",
        "",
        "CPU over the measured runs (utime + stime ÷ wall time: 100 % is one core; the server's whole process, "
        "pagi-serve by thread name):",
        "",
        "| workload | pagi-serve CPU (by thread) | wrk CPU (pagi-serve run) | nginx CPU | wrk CPU (nginx run) "
        "| server CPU per request, pagi-serve / nginx |",
        "|---|---|---|---|---|---|",
    ]
    for name, _, _ in WORKLOADS:
        lines.append(cpu_row(name, results.get(("pagi-serve", name)), results.get(("nginx", name)), "wrk_cpu"))
    lines += ["", "The CPU figures are those of each row's median run."]
    if perf:
        lines += profile_lines(perf, "1 MiB file")
    if failures:
        lines += ["", "Failures: " + "; ".join(failures)]
    harness.finish(lines, failures, args.out, args.quick, work)


if __name__ == "__main__":
    main()
