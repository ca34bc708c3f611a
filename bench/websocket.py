#!/usr/bin/env python3
"""WebSocket benchmark: echo messages per second of pagi-serve and of uvicorn + `websockets`
(uvloop, httptools) in the same run, and memory per open WebSocket. Called by `bench/run --websocket`.

Each server runs pinned to CPU 0; the load generator runs pinned to CPU 1. The generator is a
single Python process on raw non-blocking sockets: it sends pre-masked frames in batches and only
counts echoed bytes (every echo of a fixed-size message has a known size), so it does almost no
work per message. Its own CPU use is reported: below 100 % of its core means the server, not the
generator, was the limit.
"""
import argparse
import datetime
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance"))
from serverprocess import serving_as_invoker  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORTS = {"pagi-serve": 18091, "uvicorn": 18092}
HANDSHAKE = ("GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def masked_text_frame(payload: bytes) -> bytes:
    assert len(payload) < 126
    key = b"\x11\x22\x33\x44"
    return bytes([0x81, 0x80 | len(payload)]) + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def open_websocket(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(HANDSHAKE)
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError("handshake: connection closed")
        response += chunk
    if not response.startswith(b"HTTP/1.1 101"):
        raise RuntimeError("handshake refused: " + response.split(b"\r\n")[0].decode())
    return sock


def echo_load(port: int, seconds: float, connections: int, window: int, size: int):
    """Messages/s over `connections`, each keeping `window` messages in flight."""
    frame = masked_text_frame(b"x" * size)
    echo_size = 2 + size  # server frames are unmasked, payload < 126 bytes
    batch = frame * window
    selector = selectors.DefaultSelector()
    pending = {}
    for _ in range(connections):
        sock = open_websocket(port)
        sock.setblocking(False)
        sock.sendall(batch)
        pending[sock] = 0
        selector.register(sock, selectors.EVENT_READ)
    received = 0
    cpu_start = time.process_time()
    start = time.monotonic()
    deadline = start + seconds
    while time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            sock = key.fileobj
            data = sock.recv(1 << 18)
            if not data:
                raise RuntimeError("server closed a connection")
            pending[sock] += len(data)
            done, pending[sock] = divmod(pending[sock], echo_size)
            if done:
                received += done
                sock.send(frame * done)  # small: fits the socket buffer
    elapsed = time.monotonic() - start
    cpu = time.process_time() - cpu_start
    for sock in pending:
        sock.close()
    return received / elapsed, cpu / elapsed


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def memory_per_connection(port: int, pid: int, count: int):
    before = rss_kib(pid)
    sockets = [open_websocket(port) for _ in range(count)]
    time.sleep(1)
    after = rss_kib(pid)
    for sock in sockets:
        sock.close()
    return before, after, (after - before) * 1024 / count


def wait_ready(port: int, process: subprocess.Popen):
    for _ in range(200):
        if process.poll() is not None:
            sys.exit(f"server on port {port} exited with status {process.returncode}")
        try:
            open_websocket(port).close()
            return
        except (OSError, RuntimeError):
            time.sleep(0.05)
    sys.exit(f"server on port {port} not ready")


def start(name: str, binary: str, work: str) -> subprocess.Popen:
    if name == "pagi-serve":
        config = os.path.join(work, "pagi-ws.yaml")
        with open(config, "w") as f:
            f.write(f"""
server:
  listen: ["127.0.0.1:{PORTS[name]}"]
  threads: 1
  access_log: {{to: "off"}}
  log_level: warn
  limits: {{connections: 20000}}
hosts:
  - names: ["*"]
    routes:
      - path: /ws
        websocket: {{echo: true, ping_interval: 0}}
""")
        command = [binary, config] + serving_as_invoker(binary)
    else:
        command = [sys.executable, "-m", "uvicorn", "websocket_asgi:app", "--app-dir", os.path.join(ROOT, "bench"),
                   "--host", "127.0.0.1", "--port", str(PORTS[name]), "--ws", "websockets", "--loop", "uvloop",
                   "--http", "httptools", "--log-level", "warning", "--no-access-log", "--ws-ping-interval", "0",
                   "--backlog", "4096"]
    process = subprocess.Popen(["taskset", "-c", "0"] + command, stdout=subprocess.DEVNULL)
    wait_ready(PORTS[name], process)
    return process


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--quick", action="store_true", help="seconds per run; a smoke check, not figures")
    args = parser.parse_args()
    seconds = 1 if args.quick else 10
    idle = 200 if args.quick else 5000
    os.sched_setaffinity(0, {1})  # the generator's core

    results = {}
    with tempfile.TemporaryDirectory() as work:
        for name in ["pagi-serve", "uvicorn"]:
            process = start(name, args.binary, work)
            try:
                echo_load(PORTS[name], 1 if not args.quick else 0.2, 16, 32, 64)  # warm-up
                rate, generator_cpu = echo_load(PORTS[name], seconds, 16, 32, 64)
                before, after, per = memory_per_connection(PORTS[name], process.pid, idle)
                results[name] = {"rate": rate, "cpu": generator_cpu, "before": before, "after": after, "per": per}
                print(f"{name}: {rate:,.0f} msg/s (generator CPU {generator_cpu:.0%}); "
                      f"RSS {before} KiB idle, {after} KiB with {idle} WebSockets = {per / 1024:.1f} KiB each", flush=True)
            finally:
                process.terminate()
                process.wait(timeout=30)

    ratio = results["pagi-serve"]["rate"] / results["uvicorn"]["rate"]
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# WebSocket benchmark" + (" (quick smoke run: figures not comparable)" if args.quick else ""),
        "",
        f"`bench/run --websocket`, {stamp}. Each server pinned to CPU 0 (one thread / one process),",
        "the load generator (bench/websocket.py, raw sockets) on CPU 1: 16 connections, 32 messages",
        f"of 64 bytes in flight on each, {seconds} s. Memory: RSS growth with {idle} idle WebSockets open.",
        "",
        "| server | echo messages/s | generator CPU | RSS idle | RSS with idle WebSockets | per WebSocket |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {r['rate']:,.0f} | {r['cpu']:.0%} | {r['before'] / 1024:.1f} MiB | "
                     f"{r['after'] / 1024:.1f} MiB | {r['per'] / 1024:.1f} KiB |")
    lines += ["", f"pagi-serve / uvicorn: **{ratio:.1f}×** echo messages per second."]
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    path = os.path.join(ROOT, "bench", "results", "websocket-quick.md" if args.quick else "websocket.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"pagi-serve / uvicorn = {ratio:.1f}x; wrote {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
