"""Memory given back after slow SSE subscribers are dropped (issue: speed round four).

100 clients subscribe to an SSE channel and never read (small receive buffers); 32 KiB messages are
published until each client's stream has queued past the server's per-client limit and the server
drops it. RSS is read before, at its peak, and 3 s after the drops. `--baseline PATH` runs another
binary the same way (e.g. a build without `MemoryTrim`).

    bench/run --sse-memory [--baseline PATH]   → bench/results/sse-memory.md
"""
import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

CLIENTS = 100
# 9.6 MiB per client: past what the kernel's socket buffers take and the 1 MiB the server may queue
# on top, so that every client is dropped.
MESSAGES = 300
MESSAGE = 32 * 1024


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(binary, work):
    port = free_port()
    config = os.path.join(work, "sse.yaml")
    with open(config, "w") as f:
        f.write("server: {access_log: {to: off}, threads: 1}\nhosts:\n  - names: [\"*\"]\n    routes:\n"
                "      - {path: /events, sse: {subscribe: news}}\n      - {path: /publish, methods: [POST], publish: news}\n")
    user = ["--user", "root"] if os.geteuid() == 0 else []
    server = subprocess.Popen([binary, config, "--listen", f"127.0.0.1:{port}", *user],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.5)
        before = rss_mib(server.pid)
        clients = []
        for _ in range(CLIENTS):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            clients.append(s)
        time.sleep(0.5)
        body = b"x" * MESSAGE
        peak = before
        for _ in range(MESSAGES):
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/publish", data=body, method="POST")).read()
            peak = max(peak, rss_mib(server.pid))
        for s in clients:
            s.close()
        time.sleep(3)
        after = rss_mib(server.pid)
        return before, peak, after
    finally:
        server.terminate()
        server.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--baseline")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="pagi-sse-memory-")
    rows = ["| binary | RSS before | peak | 3 s after the drops |", "|---|---|---|---|"]
    for name, binary in [("pagi-serve", args.binary)] + ([("baseline", args.baseline)] if args.baseline else []):
        before, peak, after = run(binary, work)
        rows.append(f"| {name} | {before:.1f} MiB | {peak:.1f} MiB | {after:.1f} MiB |")
        print(rows[-1], file=sys.stderr)
    text = ["# Memory given back after slow SSE subscribers are dropped", "",
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · {CLIENTS} subscribers that never read "
            f"(4 KiB receive buffers), {MESSAGES} messages of {MESSAGE // 1024} KiB published, each client dropped past "
            "the 1 MiB it may have queued; one server thread", "", *rows, "",
            "Produced by `bench/run --sse-memory` (bench/sse_memory.py)."]
    with open("bench/results/sse-memory.md", "w") as f:
        f.write("\n".join(text) + "\n")
    print("wrote bench/results/sse-memory.md", file=sys.stderr)


if __name__ == "__main__":
    main()
