"""How long `pagi-serve check` takes on large configurations, and how much memory (issue: speed
round four, "big configs" — a reload compiles the same config, so this is also what a reload costs).

Generated configs of 1,000 and 10,000 routes of three kinds: `respond` with a templated JSON body
(`{{path.id}}` in it: every route parses a template), `respond` with a literal body, and `static`.
Each is checked 5 times; the median wall time and the peak RSS (`/usr/bin/time -f %M`) are kept.
`--baseline PATH` checks another binary the same way, side by side (e.g. a build of an older commit).

    bench/run --check [--quick] [--baseline PATH]   → bench/results/check.md (check-quick.md)
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

KINDS = {
    "respond, templated JSON": lambda i: f'      - {{path: "/api/r{i}/{{id}}", respond: {{status: 200, json: {{route: {i}, id: "{{{{path.id}}}}"}}}}}}',
    "respond, literal text": lambda i: f'      - {{path: /text/r{i}, respond: {{body: "route {i}"}}}}',
    "static": lambda i: f'      - {{path: /files/r{i}/, static: {{root: www}}}}',
}


def write_config(directory, kind, count):
    path = os.path.join(directory, f"{kind.split(',')[0].replace(' ', '-')}-{count}.yaml")
    lines = ["server: {access_log: {to: off}}", "hosts:", '  - names: ["*"]', "    routes:"]
    lines += [KINDS[kind](i) for i in range(count)]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def measure(binary, config, runs):
    times, peaks = [], []
    for _ in range(runs):
        started = time.monotonic()
        done = subprocess.run(["/usr/bin/time", "-f", "%M", binary, "check", config], capture_output=True, text=True)
        times.append(time.monotonic() - started)
        if done.returncode != 0:
            sys.exit(f"check failed on {config}:\n{done.stdout}{done.stderr}")
        peaks.append(int(done.stderr.strip().splitlines()[-1]))
    return statistics.median(times), max(peaks) / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--baseline")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    runs = 1 if args.quick else 5
    counts = [1000] if args.quick else [1000, 10000]
    work = tempfile.mkdtemp(prefix="pagi-check-")
    os.makedirs(os.path.join(work, "www"))
    binaries = [("pagi-serve", args.binary)] + ([("baseline", args.baseline)] if args.baseline else [])
    header = "| routes | kind | " + " | ".join(f"{name}: time / peak RSS" for name, _ in binaries) + " |"
    rows = [header, "|---|---|" + "---|" * len(binaries)]
    for count in counts:
        for kind in KINDS:
            config = write_config(work, kind, count)
            cells = []
            for _, binary in binaries:
                seconds, mib = measure(binary, config, runs)
                cells.append(f"{seconds * 1000:,.0f} ms / {mib:.0f} MiB")
            rows.append(f"| {count:,} | {kind} | " + " | ".join(cells) + " |")
            print(rows[-1], file=sys.stderr)
    name = "check-quick.md" if args.quick else "check.md"
    text = ["# `pagi-serve check` on large configurations", "",
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · median of {runs} run(s) · wall time of the whole command "
            "(process start, YAML parse, config build, route compilation, the report) · peak RSS by /usr/bin/time", "",
            *rows, "", "Produced by `bench/run --check` (bench/check.py)."]
    os.makedirs("bench/results", exist_ok=True)
    with open(os.path.join("bench/results", name), "w") as f:
        f.write("\n".join(text) + "\n")
    print(f"wrote bench/results/{name}", file=sys.stderr)


if __name__ == "__main__":
    main()
