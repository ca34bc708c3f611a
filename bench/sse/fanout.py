#!/usr/bin/env python3
"""SSE fan-out and memory per stream (issue 3). Driven by bench/sse-fanout.

Starts pagi-serve with one `sse: {subscribe}` route and one `publish` route, opens N streams with
bench/sse/fanout_client (C, epoll), records the server's RSS with 0 and with N open streams, then
publishes one message and reports when each stream received it (p50 / p99 / max), several rounds."""
import argparse, os, socket, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "conformance"))
from serverprocess import serving_as_invoker  # noqa: E402

CONFIG = """server:
  listen: ["127.0.0.1:{port}"]
  access_log: {{to: off}}
  log_level: warn
  limits: {{connections: {limit}}}
hosts:
  - names: [localhost]
    default: true
    routes:
      - path: /events
        sse: {{subscribe: news, keepalive: 0, replay: 0}}
      - path: /publish
        publish: news
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wait_ready(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("pagi-serve did not start")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--client", required=True)
    parser.add_argument("--streams", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    port = free_port()
    work = tempfile.mkdtemp(prefix="pagi-sse-bench-")
    config = os.path.join(work, "config.yaml")
    with open(config, "w") as f:
        f.write(CONFIG.format(port=port, limit=args.streams + 100))
    results = []
    server = subprocess.Popen([args.binary, config] + serving_as_invoker(args.binary), stdout=subprocess.DEVNULL)
    try:
        wait_ready(port)
        time.sleep(0.5)
        idle = rss_kib(server.pid)
        for round_number in range(args.rounds):
            client = subprocess.Popen([args.client, str(port), str(args.streams), "/events", "/publish"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            opened = client.stdout.readline().split()
            time.sleep(0.3)
            loaded = rss_kib(server.pid)
            client.stdin.write("go\n")
            client.stdin.flush()
            line = client.stdout.readline().split()
            client.wait()
            if len(opened) != 2 or len(line) != 5:
                sys.exit(f"client failed: {opened} {line}")
            p50, p99, worst, received = float(line[1]), float(line[2]), float(line[3]), int(line[4])
            per_stream = (loaded - idle) / max(1, int(opened[1]))
            results.append((p50, p99, worst, received, per_stream))
            print(f"round {round_number + 1}: {opened[1]} streams, received {received}: p50 {p50:.1f} ms, "
                  f"p99 {p99:.1f} ms, max {worst:.1f} ms; RSS {idle} KiB idle -> {loaded} KiB "
                  f"({per_stream:.1f} KiB per stream)")
            time.sleep(1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    p99s = sorted(r[1] for r in results)
    print(f"median over {len(results)} rounds: p50 {sorted(r[0] for r in results)[len(results) // 2]:.1f} ms, "
          f"p99 {p99s[len(p99s) // 2]:.1f} ms (goal < 50 ms); memory {sorted(r[4] for r in results)[len(results) // 2]:.1f} KiB per SSE stream")


if __name__ == "__main__":
    main()
