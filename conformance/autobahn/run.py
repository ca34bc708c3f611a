#!/usr/bin/env python3
"""Autobahn|Testsuite conformance of the `websocket` handler, through kosoku (PyPI).

Starts the real pagi-serve binary with an echo route (permessage-deflate on), runs the Autobahn
cases 1.* - 10.*, 12.* and 13.* against it, writes the summary table to conformance/autobahn/summary.md
and exits non-zero unless every case is OK, NON-STRICT or INFORMATIONAL.

    conformance/autobahn/run.py --binary .build/debug/pagi-serve [--cases '1.*' ...] [--parallelism N]

With --through-proxy, a second pagi-serve with a `proxy` route (docs/proxy.md) stands between the
test client and the echo server, and the cases without compression (1.* - 10.*) run through it: the
tunnel must pass every frame as it comes (summary: conformance/autobahn/summary-proxy.md).
"""

import argparse
import asyncio
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import kosoku

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from serverprocess import free_port, serving_as_invoker, wait_for_port  # noqa: E402

HERE = Path(__file__).resolve().parent
# Autobahn has no group 8 or 11.
DEFAULT_CASES = [f"{group}.*" for group in (1, 2, 3, 4, 5, 6, 7, 9, 10, 12, 13)]
ACCEPTED = {"OK", "NON-STRICT", "INFORMATIONAL"}
VERDICTS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED", "ERROR"]

def server_config(port: int, route: str) -> str:
    """A pagi-serve on `port` with one route (`route`: its handler, YAML), quiet."""
    return f"""\
server:
  listen: ["127.0.0.1:{port}"]
  access_log: {{to: off}}
  log_level: error
hosts:
  - names: ["*"]
    routes:
      - path: /
        {route}
"""


# Autobahn's largest messages are 16 MiB (9.*); compression on (12.*, 13.*).
ECHO = "websocket: {echo: true, max_message: 32MiB, compression: true, ping_interval: 0}"


def verdict(result) -> str:
    """The case's worst verdict: its message behaviour, or its close behaviour when that failed."""
    behavior = result.behavior.value
    close = result.behavior_close.value
    if behavior in ACCEPTED and close not in ACCEPTED:
        return "FAILED"
    return behavior


NON_COMPRESSION_CASES = [f"{group}.*" for group in (1, 2, 3, 4, 5, 6, 7, 9, 10)]


def write_summary(results, seconds: float, path: Path, proxied: bool = False) -> None:
    by_group = collections.defaultdict(collections.Counter)
    for result in results:
        by_group[int(result.case_id.split(".")[0])][verdict(result)] += 1
    lines = [
        "# Autobahn|Testsuite results",
        "",
        ("The `websocket` handler (echo route) behind a `proxy` route of a second pagi-serve, against the"
         if proxied else "The `websocket` handler (echo route, permessage-deflate on) against the"),
        "Autobahn cases" + (" without compression" if proxied else "") + ", run by `conformance/autobahn/run.py"
        + (" --through-proxy`" if proxied else "`") + " through kosoku (called by `scripts/test`).",
        "",
        "| group | cases | " + " | ".join(VERDICTS) + " |",
        "|---|---|" + "---|" * len(VERDICTS),
    ]
    total = collections.Counter()
    for group in sorted(by_group):
        counts = by_group[group]
        total.update(counts)
        lines.append(f"| {group}.* | {sum(counts.values())} | " + " | ".join(str(counts[v]) for v in VERDICTS) + " |")
    lines.append(f"| **all** | {sum(total.values())} | " + " | ".join(str(total[v]) for v in VERDICTS) + " |")
    lines += ["", f"Run time: {seconds:.0f} s."]
    bad = [r for r in results if verdict(r) not in ACCEPTED]
    if bad:
        lines += ["", "Cases not passed:", ""]
        lines += [f"- {r.case_id}: {r.behavior.value} / close {r.behavior_close.value}" for r in bad]
    path.write_text("\n".join(lines) + "\n")


async def run_cases(url: str, cases, parallelism: int):
    try:
        return await kosoku.run_fuzzingclient(url, cases, None, concurrency=parallelism)
    except kosoku.FailureError as failure:
        return failure.results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True, help="the pagi-serve executable")
    parser.add_argument("--cases", nargs="*", default=DEFAULT_CASES)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--summary")
    parser.add_argument("--through-proxy", action="store_true", help="run the cases without compression through a proxy route")
    args = parser.parse_args()
    summary = args.summary or str(HERE / ("summary-proxy.md" if args.through_proxy else "summary.md"))
    cases = NON_COMPRESSION_CASES if args.through_proxy and args.cases == DEFAULT_CASES else args.cases

    port = free_port()
    servers = []
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "autobahn.yaml"
        config.write_text(server_config(port, ECHO))
        servers.append(subprocess.Popen([args.binary, str(config)] + serving_as_invoker(args.binary)))
        target = port
        if args.through_proxy:
            target = free_port()
            proxy = Path(scratch) / "proxy.yaml"
            proxy.write_text(server_config(target, f'proxy: {{to: ["http://127.0.0.1:{port}"]}}'))
            servers.append(subprocess.Popen([args.binary, str(proxy)] + serving_as_invoker(args.binary)))
        try:
            wait_for_port(port, servers[0])
            wait_for_port(target, servers[-1])
            started = time.monotonic()
            results = asyncio.run(run_cases(f"ws://127.0.0.1:{target}/", cases, args.parallelism))
            seconds = time.monotonic() - started
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)
    write_summary(results, seconds, Path(summary), proxied=args.through_proxy)
    print(Path(summary).read_text())
    bad = [r for r in results if verdict(r) not in ACCEPTED]
    if not results or bad:
        print(f"autobahn: {len(bad)} of {len(results)} cases not passed", file=sys.stderr)
        return 1
    print(f"autobahn: all {len(results)} cases passed ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
