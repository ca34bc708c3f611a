#!/usr/bin/env python3
"""The operator docs, run: every marked command of docs/scaling.md, docs/tuning.md,
docs/deployment.md and docs/operations.md, `pagi-serve check` on their YAML examples, and the files
in deploy/ checked as far as this machine allows.

usage: conformance/operator-docs.py PATH/TO/pagi-serve [--keep] [--verbose] [--only NAME]
  --keep       leave the scratch folders (printed) for a look
  --verbose    print the output of every block run, not only of those that fail
  --only NAME  only the documents, or the deploy/ check ("deploy"), whose name contains NAME

Marking blocks
--------------
An HTML comment on the line before a fenced block (blank lines between are allowed; it does not
show when the Markdown is rendered) says what to do with it:

  <!-- ops-check -->                  ```sh: run it with bash (-e -o pipefail)
  <!-- ops-check as=root -->          ```sh: run it as root (skipped, with the reason printed, when
                                      this script is not root)
  <!-- ops-check needs=CMD -->        ```sh: run it only when CMD is installed (else skipped, printed)
  <!-- ops-check skip: REASON -->     ```sh: not run — it changes the system, needs a Docker engine…
                                      REASON is printed
  <!-- ops-check file=PATH -->        ```yaml: write the block to PATH, then `pagi-serve check` it
  <!-- ops-check expect -->           ```text: every line must start a line of the output of the run
                                      block before it (in any order; `…` matches anything; runs of
                                      white space match any run of white space)

In the guides (scaling.md, tuning.md, deployment.md) every ```sh block must be marked — run, or
skipped with a reason — so that no command goes unchecked by oversight, and every ```yaml block is
checked with `pagi-serve check`: a whole configuration as it is, a part of one (no `hosts:`) with a
small host added. A YAML block with a `...` placeholder is left alone. In operations.md only marked
blocks count.

How blocks run
--------------
Each document gets a scratch folder, its blocks' working directory; they run in the order of the
document and share it. It holds:
  bin/pagi-serve   BINARY (a link to one copy of it that every user can run), first on PATH:
                   `pagi-serve` in a block is the binary under test
  deploy/          a copy of the repository's deploy/, with the substitutions below
  srv/www/         index.html and 1k.bin, for the examples' /srv/www
  etc/pagi-serve/  for /etc/pagi-serve
Substitutions, in run blocks, YAML blocks, expected output and the deploy/ copies:
  /srv/www, /etc/pagi-serve, /var/log/pagi-serve, /run/pagi-serve, /usr/local/bin/pagi-serve
      → the same path inside the scratch folder;
  the port numbers 80, 443, 6379, 8080, 8081, 9180, written as whole numbers (127.0.0.1:8080,
      ":80", ListenStream=80, --port 6379) → free ports, one per number and document;
  wrk's -dNs → -d1s: CI checks that a benchmark command works, it does not measure.
A block runs as `nobody` when this script runs as root (the docs' commands are an operator's, who
is not root unless the block says as=root), else as whoever runs the script. Environment: PATH
with bin/ first, HOME=the scratch folder, OPS_CHECK=1. Each block has 90 s; what it leaves
running is stopped (SIGTERM to its process group, then SIGKILL).

The deploy/ files
-----------------
- every deploy/**/*.yaml: `pagi-serve check`;
- deploy/systemd: the units parsed (known sections and keys; ExecStart and ExecStartPre run the
  binary on /etc/pagi-serve/config.yaml; each ListenStream= is a listen address of
  deploy/systemd/config.yaml and the other way round; Backlog= is the file's backlog;
  TimeoutStopSec= outlasts timeouts.shutdown); `systemd-analyze verify` when it is installed (any
  complaint fails); the service's ExecStartPre and ExecStart run for real under `systemd-socket-activate -l 127.0.0.1:PORT` (the file's ":80"
  made "127.0.0.1:PORT" for this), as the unit's User= when this script is root, and a request
  answered. systemd is not PID 1 here, so the units are not started by systemd itself;
- deploy/nginx-front.conf: `nginx -t` (inside a small main configuration, as Debian's nginx.conf
  includes conf.d/), then nginx for real on loopback, with a throw-away certificate, in front of
  pagi-serve on deploy/behind-proxy.yaml (plus a WebSocket and an SSE route): a client at
  127.0.0.2 that sends a forged X-Forwarded-For must be logged as 127.0.0.2 over https, with the
  proxy's host; the WebSocket handshake and the first SSE event must come through;
- deploy/haproxy-front.cfg: `haproxy -c`, then the same run as for nginx; skipped, with the reason,
  when haproxy is not installed;
- deploy/Dockerfile: every instruction known; the build stage runs `swift build -c release
  --static-swift-stdlib --product pagi-serve` and the final stage copies exactly the binary that
  builds (WORKDIR/.build/release/pagi-serve) and runs it as a user other than root; every file the
  Dockerfile copies from the context exists and is not excluded by Dockerfile.dockerignore, which
  excludes .build; every target path of Package.swift lies in a copied folder. A real `docker
  build` cannot run on this CI: there is no Docker engine (the docker client alone cannot build).

Exit 0 when everything run passed; skips are listed but do not fail.
"""
import fnmatch
import json
import os
import pathlib
import pwd
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import yaml  # PyYAML, installed by scripts/test

ROOT = pathlib.Path(__file__).resolve().parent.parent
GUIDES = ["docs/scaling.md", "docs/tuning.md", "docs/deployment.md"]
MARKED_ONLY = ["docs/operations.md"]
MAPPED_PATHS = ["/usr/local/bin/pagi-serve", "/var/log/pagi-serve", "/run/pagi-serve", "/etc/pagi-serve", "/srv/www"]
MAPPED_PORTS = ["80", "443", "6379", "8080", "8081", "9180"]
PORT_PATTERN = re.compile(r"(?<![\w.])(" + "|".join(MAPPED_PORTS) + r")(?![\w.])")
TOP_LEVEL_KEYS = {"server", "tls", "pubsub", "middleware", "include", "hosts"}
SMALL_HOST = "\nhosts:\n  - names: [localhost]\n    default: true\n    routes:\n      - path: /\n        health: true\n"
MARKER = re.compile(r"^<!--\s*ops-check(?P<args>.*?)-->\s*$")
BLOCK_SECONDS = 90
VERBOSE = "--verbose" in sys.argv

results = {"passed": 0, "failed": [], "skipped": []}


def passed(what):
    results["passed"] += 1
    print(f"ok    {what}")


def failed(what, detail=""):
    results["failed"].append(what)
    print(f"FAIL  {what}")
    if detail:
        print("      " + detail.rstrip().replace("\n", "\n      "))


def skipped(what, reason):
    results["skipped"].append(f"{what}: {reason}")
    print(f"skip  {what}: {reason}")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def is_root():
    return os.geteuid() == 0


# ---------------------------------------------------------------------------------------------
# Scratch folders, substitutions, running as the operator

class Scratch:
    """A document's scratch folder and its substitutions."""

    def __init__(self, name, binary, keep):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix=f"ops-{name}-"))
        self.dir.chmod(0o755)  # workers serving as www-data read the examples' files in here
        self.keep = keep
        self.ports = {number: free_port() for number in MAPPED_PORTS}
        (self.dir / "bin").mkdir()
        (self.dir / "bin" / "pagi-serve").symlink_to(binary)
        www = self.dir / "srv" / "www"
        www.mkdir(parents=True)
        (www / "index.html").write_text("<!doctype html><title>ops-check</title><p>ops-check\n")
        (www / "1k.bin").write_bytes(bytes(range(256)) * 4)
        (self.dir / "etc" / "pagi-serve").mkdir(parents=True)
        shutil.copytree(ROOT / "deploy", self.dir / "deploy")
        for path in (self.dir / "deploy").rglob("*"):
            if path.is_file():
                path.write_text(self.map(path.read_text()))
        self.user = pwd.getpwnam("nobody") if is_root() else None
        self.give_away(self.dir)

    def map(self, text):
        for path in MAPPED_PATHS:
            target = str(self.dir / "bin" / "pagi-serve") if path == "/usr/local/bin/pagi-serve" else str(self.dir) + path
            text = re.sub(r"(?<![\w.-])" + re.escape(path) + r"(?![\w-])", lambda _: target, text)
        return PORT_PATTERN.sub(lambda m: str(self.ports[m.group(1)]), text)

    def path(self, documented):
        return pathlib.Path(str(self.dir) + documented) if documented.startswith("/") else self.dir / documented

    def give_away(self, path):
        """Makes `path` (and what is below it) the unprivileged user's, so that its blocks can write."""
        if not self.user:
            return
        for item in [path, *(path.rglob("*") if path.is_dir() else [])]:
            os.lchown(item, self.user.pw_uid, self.user.pw_gid)

    def env(self):
        env = {key: value for key, value in os.environ.items() if not key.startswith(("LISTEN_", "PAGI_"))}
        env.update(PATH=f"{self.dir / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}", HOME=str(self.dir), OPS_CHECK="1")
        return env

    def run(self, argv, as_root=False, timeout=BLOCK_SECONDS, input_text=None):
        """Runs `argv` in the scratch folder in a session of its own; returns (status, output)."""
        user = {} if as_root or not self.user else {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        log = self.dir / ".ops-check-output"
        with open(log, "w+b") as out:
            process = subprocess.Popen(argv, cwd=self.dir, env=self.env(), stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.PIPE if input_text else subprocess.DEVNULL,
                                       start_new_session=True, **user)
            try:
                process.communicate(input_text.encode() if input_text else None, timeout=timeout)
                status = process.returncode
            except subprocess.TimeoutExpired:
                status = f"timed out after {timeout} s"
            stop_group(process.pid, leader=process)
            process.wait()
            out.seek(0)
            return status, out.read().decode(errors="replace")

    def close(self):
        if self.keep:
            print(f"      (kept {self.dir})")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def stop_group(pgid, grace=10, leader=None):
    """SIGTERM to a process group, then SIGKILL after `grace` seconds. `leader`, the Popen of the
    group's first process when it is this script's child, is reaped meanwhile (a zombie keeps the
    group alive)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if leader is not None:
                leader.poll()
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def check_config(scratch, path, label, as_root=False):
    status, output = scratch.run(["pagi-serve", "check", str(path)], as_root=as_root)
    if status == 0:
        passed(f"{label}: pagi-serve check")
    else:
        failed(f"{label}: pagi-serve check (exit {status})", output)


# ---------------------------------------------------------------------------------------------
# The documents

def blocks(text):
    """(line, marker arguments or None, language, body) for every fenced block of a Markdown text."""
    lines = text.split("\n")
    found, marker, index = [], None, 0
    while index < len(lines):
        line = lines[index]
        match = MARKER.match(line.strip())
        if match:
            marker = match.group("args").strip()
        elif line.startswith("```") and line.strip() != "```":
            language, start, body = line[3:].strip().split(" ")[0], index + 1, []
            index += 1
            while index < len(lines) and lines[index].strip() != "```":
                body.append(lines[index])
                index += 1
            found.append((start, marker, language, "\n".join(body) + "\n"))
            marker = None
        elif line.strip():
            marker = None
        index += 1
    return found


def options(marker):
    """A marker's arguments: {"skip": reason} or {"as": "root", "needs": cmd, "file": path, "expect": True}."""
    if marker is None:
        return None
    if marker.startswith("skip"):
        return {"skip": marker.partition(":")[2].strip() or "no reason given"}
    parsed = {}
    for word in marker.split():
        key, _, value = word.partition("=")
        parsed[key] = value or True
    return parsed


def matches_expected(expected, output, scratch):
    """The expected lines (a ```text block) that no output line starts with."""
    def normal(line):
        return " ".join(line.replace("\r", "").split())
    lines = [normal(line) for line in output.split("\n")]
    missing = []
    for line in scratch.map(expected).split("\n"):
        line = normal(line)
        if not line:
            continue
        pattern = r"\s*.*?\s*".join(r"\s+".join(map(re.escape, piece.split())) for piece in line.split("…"))
        if not any(re.match(pattern, candidate) for candidate in lines):
            missing.append(line)
    return missing


def check_document(relative, binary, keep, guide):
    text = (ROOT / relative).read_text()
    name = pathlib.Path(relative).stem
    print(f"\n== {relative}")
    scratch = Scratch(name, binary, keep)
    last_output = None
    try:
        for line, marker, language, body in blocks(text):
            where = f"{relative}:{line}"
            opts = options(marker)
            if language in ("sh", "bash", "shell"):
                last_output = None
                if opts is None:
                    if guide:
                        failed(f"{where}: sh block without an ops-check marker (run it, or skip it with a reason)")
                    continue
                if "skip" in opts:
                    skipped(where, opts["skip"])
                    continue
                if opts.get("as") == "root" and not is_root():
                    skipped(where, "needs root, and this script is not root")
                    continue
                if "needs" in opts and not shutil.which(opts["needs"]):
                    skipped(where, f"{opts['needs']} is not installed")
                    continue
                script = scratch.dir / f".ops-check-block-{line}.sh"
                script.write_text(re.sub(r"(\bwrk\b[^\n]*?)-d\d+s", r"\1-d1s", scratch.map(body)))
                script.chmod(0o644)
                status, output = scratch.run(["bash", "-e", "-o", "pipefail", str(script)], as_root=opts.get("as") == "root")
                last_output = output
                who = "as " + ("root" if opts.get("as") == "root" else (scratch.user or pwd.getpwuid(os.geteuid())).pw_name)
                if VERBOSE:
                    print("      " + output.rstrip().replace("\n", "\n      "))
                if status == 0:
                    passed(f"{where}: sh block ({who})")
                else:
                    failed(f"{where}: sh block ({who}) exited {status}", output[-3000:])
            elif language == "text" and opts and opts.get("expect"):
                if last_output is None:
                    skipped(f"{where}: expected output", "the block before it did not run")
                    continue
                missing = matches_expected(body, last_output, scratch)
                if missing:
                    failed(f"{where}: expected output", "missing:\n  " + "\n  ".join(missing) + "\noutput:\n" + last_output[-3000:])
                else:
                    passed(f"{where}: expected output")
            elif language == "yaml":
                if opts and "file" in opts:
                    target = scratch.path(opts["file"])
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(scratch.map(body))
                    scratch.give_away(target)
                    check_config(scratch, opts["file"] if not opts["file"].startswith("/") else target, where)
                elif guide and "..." not in body:
                    document = yaml.safe_load(body)
                    if not isinstance(document, dict) or not set(document) <= TOP_LEVEL_KEYS:
                        continue  # a piece of a host or a route, not of a whole file
                    target = scratch.dir / f".ops-check-block-{line}.yaml"
                    target.write_text(scratch.map(body) + ("" if "hosts" in document else SMALL_HOST))
                    scratch.give_away(target)
                    check_config(scratch, target.name, where + (" (with a host added)" if "hosts" not in document else ""))
    finally:
        scratch.close()


# ---------------------------------------------------------------------------------------------
# deploy/

def unit_file(path):
    """A systemd unit file as {section: [(key, value)]}; comments and blank lines dropped."""
    sections, current = {}, None
    for raw in path.read_text().split("\n"):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
        elif "=" in line and current is not None:
            key, _, value = line.partition("=")
            current.append((key.strip(), value.strip()))
        else:
            raise ValueError(f"{path.name}: cannot read line {raw!r}")
    return sections


UNIT_KEYS = {
    "Unit": {"Description", "Documentation", "Requires", "Wants", "After", "Before", "BindsTo", "PartOf", "Conflicts"},
    "Install": {"WantedBy", "RequiredBy", "Also", "Alias"},
    "Socket": {"ListenStream", "ListenDatagram", "BindIPv6Only", "Backlog", "SocketMode", "SocketUser", "SocketGroup",
               "DirectoryMode", "Accept", "Service", "FileDescriptorName", "NoDelay", "ReusePort", "FreeBind"},
    "Service": {"Type", "NotifyAccess", "User", "Group", "ExecStartPre", "ExecStart", "ExecReload", "KillMode", "KillSignal",
                "TimeoutStopSec", "TimeoutStartSec", "Restart", "RestartSec", "LimitNOFILE", "LogsDirectory",
                "RuntimeDirectory", "StateDirectory", "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp",
                "PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups",
                "RestrictAddressFamilies", "LockPersonality", "ReadWritePaths", "Environment", "EnvironmentFile",
                "AmbientCapabilities", "CapabilityBoundingSet", "WorkingDirectory"},
}


def seconds(text):
    match = re.fullmatch(r"(\d+)(ms|s|m|min)?", str(text).strip())
    if not match:
        return None
    value = int(match.group(1))
    return {"ms": value / 1000, "m": value * 60, "min": value * 60}.get(match.group(2), value)


def check_systemd(scratch):
    folder = ROOT / "deploy" / "systemd"
    try:
        socket_unit = unit_file(folder / "pagi-serve.socket")
        service_unit = unit_file(folder / "pagi-serve.service")
    except ValueError as error:
        failed("deploy/systemd: units readable", str(error))
        return
    problems = []
    for name, unit in (("pagi-serve.socket", socket_unit), ("pagi-serve.service", service_unit)):
        for section, entries in unit.items():
            if section not in UNIT_KEYS:
                problems.append(f"{name}: unknown section [{section}]")
                continue
            problems += [f"{name}: [{section}] {key}= is not a key this check knows" for key, _ in entries if key not in UNIT_KEYS[section]]
    service = dict(service_unit.get("Service", []))
    config_path = "/etc/pagi-serve/config.yaml"
    if shlex.split(service.get("ExecStart", "")) != ["/usr/local/bin/pagi-serve", config_path]:
        problems.append(f"ExecStart= should run /usr/local/bin/pagi-serve {config_path}")
    if shlex.split(service.get("ExecStartPre", "")) != ["/usr/local/bin/pagi-serve", "check", config_path]:
        problems.append(f"ExecStartPre= should run /usr/local/bin/pagi-serve check {config_path}")
    if service.get("KillMode") != "mixed":
        problems.append("KillMode= should be mixed (SIGTERM to the supervisor alone)")
    config = yaml.safe_load((folder / "config.yaml").read_text())
    server = config.get("server", {})
    shutdown = seconds(server.get("timeouts", {}).get("shutdown", "30s"))
    stop = seconds(service.get("TimeoutStopSec", "90s"))
    if shutdown is None or stop is None or stop < shutdown + 5:
        problems.append(f"TimeoutStopSec= ({service.get('TimeoutStopSec')}) should outlast timeouts.shutdown + 5 s")
    streams = [value for key, value in socket_unit.get("Socket", []) if key == "ListenStream"]
    as_listen = [f":{value}" if value.isdigit() else f"unix:{value}" if value.startswith("/") else value for value in streams]
    listens = [item if isinstance(item, str) else item["address"] for item in server.get("listen", [])]
    if sorted(as_listen) != sorted(listens):
        problems.append(f"the socket's ListenStream= ({', '.join(streams)}) and the file's listen ({', '.join(listens)}) differ")
    backlog = dict(socket_unit.get("Socket", [])).get("Backlog")
    if backlog is not None and str(server.get("backlog", 1024)) != backlog:
        problems.append(f"the socket's Backlog= ({backlog}) and the file's backlog ({server.get('backlog', 1024)}) differ")
    if problems:
        failed("deploy/systemd: units and config.yaml agree", "\n".join(problems))
    else:
        passed("deploy/systemd: units and config.yaml agree (keys, ExecStart, ListenStream = listen, Backlog = backlog, stop timeout)")

    mapped = scratch.dir / "deploy" / "systemd"
    analyze = shutil.which("systemd-analyze")
    if analyze:
        status, output = scratch.run([analyze, "verify", "--man=no", str(mapped / "pagi-serve.socket"), str(mapped / "pagi-serve.service")], as_root=True)
        complaints = [line for line in output.split("\n") if line.strip()]
        if status == 0 and not complaints:
            passed("deploy/systemd: systemd-analyze verify")
        else:
            failed(f"deploy/systemd: systemd-analyze verify (exit {status})", output)
    else:
        skipped("deploy/systemd: systemd-analyze verify", "systemd-analyze is not installed (Debian package systemd)")

    activate = shutil.which("systemd-socket-activate") or next(
        (path for path in ("/lib/systemd/systemd-socket-activate", "/usr/lib/systemd/systemd-socket-activate") if os.path.exists(path)), None)
    if not activate:
        skipped("deploy/systemd: ExecStart under systemd-socket-activate", "systemd-socket-activate is not installed (Debian package systemd)")
        return
    port = scratch.ports["80"]
    config_file = scratch.path(config_path)
    config_file.write_text(re.sub(rf'":{port}"', f'"127.0.0.1:{port}"', (mapped / "config.yaml").read_text()))
    user = service.get("User")
    run_as = {}
    if is_root() and user:
        account = pwd.getpwnam(user)
        run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        logs = scratch.path("/var/log/pagi-serve")  # LogsDirectory=: made and owned by User=
        logs.mkdir(parents=True, exist_ok=True)
        os.chown(logs, account.pw_uid, account.pw_gid)
    else:
        scratch.path("/var/log/pagi-serve").mkdir(parents=True, exist_ok=True)
        scratch.give_away(scratch.path("/var/log/pagi-serve"))
    who = f"as {user}" if run_as else "as this user"
    pre = [scratch.map(word) for word in shlex.split(service["ExecStartPre"])]
    status = subprocess.run(pre, capture_output=True, text=True, **run_as)
    if status.returncode != 0:
        failed(f"deploy/systemd: ExecStartPre ({who})", status.stdout + status.stderr)
        return
    passed(f"deploy/systemd: ExecStartPre ({who})")
    start = [scratch.map(word) for word in shlex.split(service["ExecStart"])]
    log = scratch.dir / ".socket-activate.log"
    with open(log, "w") as out:
        process = subprocess.Popen([activate, "-l", f"127.0.0.1:{port}", *start], stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True, **run_as)
        try:
            status, body = http_get("127.0.0.1", port, "/", host="example.com")
            os.kill(process.pid, signal.SIGTERM)
            code = process.wait(timeout=stop)
        except Exception as error:  # noqa: BLE001 - reported with the log
            status, body, code = f"error: {error}", b"", None
        stop_group(process.pid, leader=process)
    output = log.read_text()
    if status == 200 and b"ops-check" in body and code == 0 and "(socket activation)" in output:
        passed(f"deploy/systemd: ExecStart under systemd-socket-activate -l 127.0.0.1:PORT ({who}): 200, then exit 0 on SIGTERM")
    else:
        failed(f"deploy/systemd: ExecStart under systemd-socket-activate ({who})", f"answer {status}, exit {code}\n{output}")


def http_get(address, port, path, host="localhost", attempts=50):
    """A plain GET over a fresh connection, retried while nothing listens: (status, body)."""
    for attempt in range(attempts):
        try:
            with socket.create_connection((address, port), timeout=5) as connection:
                connection.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
                data = b""
                while chunk := connection.recv(65536):
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            return int(head.split(b" ")[1]), body
        except (ConnectionRefusedError, IndexError):
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers on {address}:{port}")


class Front:
    """pagi-serve on deploy/behind-proxy.yaml (plus a WebSocket and an SSE route), for a proxy in front."""

    def __init__(self, scratch):
        self.scratch = scratch
        self.port = scratch.ports["8080"]
        self.log = scratch.path("/var/log/pagi-serve/access.log")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        scratch.give_away(scratch.path("/var/log"))
        if self.log.exists():
            self.log.unlink()
        text = (scratch.dir / "deploy" / "behind-proxy.yaml").read_text()
        extra = ("      - path: /ws\n        websocket: echo\n"
                 "      - path: /events\n        sse: {ticker: {every: 200ms, data: tick}}\n")
        self.config = scratch.dir / ".behind-proxy-test.yaml"
        self.config.write_text(text.rstrip("\n") + "\n" + extra)
        scratch.give_away(self.config)
        user = {"user": scratch.user.pw_uid, "group": scratch.user.pw_gid, "extra_groups": []} if scratch.user else {}
        self.output = open(scratch.dir / ".behind-proxy-test.log", "w")
        self.process = subprocess.Popen([str(scratch.dir / "bin" / "pagi-serve"), str(self.config)], cwd=scratch.dir,
                                        stdout=self.output, stderr=subprocess.STDOUT, start_new_session=True, **user)
        http_get("127.0.0.1", self.port, "/")

    def entries(self):
        time.sleep(0.3)
        return [json.loads(line) for line in self.log.read_text().split("\n") if line.strip()] if self.log.exists() else []

    def close(self):
        stop_group(self.process.pid, leader=self.process)
        self.output.close()


def make_certificate(scratch):
    folder = scratch.dir / "tls"
    folder.mkdir(exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=example.com",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")], check=True, capture_output=True)
    (folder / "combined.pem").write_text((folder / "cert.pem").read_text() + (folder / "key.pem").read_text())
    return folder


def through_proxy(label, front, https_port, http_port):
    """A client at 127.0.0.2, forging X-Forwarded-For, through the proxy: checks what pagi-serve logged,
    the redirect to https, a WebSocket handshake and the first SSE event."""
    problems = []
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE

    def exchange(request, until=None, port=https_port, tls=True):
        raw = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.2", 0))
        connection = context.wrap_socket(raw, server_hostname="example.com") if tls else raw
        with connection:
            connection.sendall(request.encode())
            data = b""
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    chunk = connection.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                data += chunk
                if until and until in data:
                    break
            return data

    for attempt in range(50):
        try:
            answer = exchange("GET / HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 203.0.113.7\r\nConnection: close\r\n\r\n")
            break
        except (ConnectionRefusedError, ssl.SSLError):
            time.sleep(0.1)
    else:
        failed(f"{label}: nothing answers on 127.0.0.1:{https_port}")
        return
    if not answer.startswith(b"HTTP/1.1 200"):
        problems.append(f"GET / through the proxy: {answer[:200]!r}")
    entries = [entry for entry in front.entries() if entry.get("uri") == "/"]
    if not entries:
        problems.append("pagi-serve logged no request for /")
    else:
        entry = entries[-1]
        expected = {"client": "127.0.0.2", "scheme": "https", "host": "example.com", "status": 200}
        wrong = {key: entry.get(key) for key, value in expected.items() if entry.get(key) != value}
        if wrong:
            problems.append(f"pagi-serve logged {wrong}, expected {expected} (the forged 203.0.113.7 must not be believed)")
    plain = exchange("GET /x HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n", port=http_port, tls=False)
    if not (plain.startswith(b"HTTP/1.1 301") or plain.startswith(b"HTTP/1.1 302")) or b"https://example.com" not in plain:
        problems.append(f"plain http is not redirected to https: {plain[:200]!r}")
    upgrade = exchange("GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", until=b"\r\n\r\n")
    if not upgrade.startswith(b"HTTP/1.1 101"):
        problems.append(f"WebSocket handshake through the proxy: {upgrade[:200]!r}")
    events = exchange("GET /events HTTP/1.1\r\nHost: example.com\r\nAccept: text/event-stream\r\n\r\n", until=b"data: tick")
    if b"data: tick" not in events:
        problems.append(f"no SSE event came through the proxy within 5 s: {events[:300]!r}")
    if problems:
        failed(f"{label}: in front of pagi-serve", "\n".join(problems))
    else:
        passed(f"{label}: in front of pagi-serve: client 127.0.0.2 logged over https (forged X-Forwarded-For ignored), "
               "http → https, WebSocket upgrade and SSE pass")


def check_nginx(scratch, tls):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not nginx:
        failed("deploy/nginx-front.conf: nginx is not installed (scripts/test installs nginx-light)")
        return
    folder = scratch.dir / "nginx"
    for sub in ("", "temp"):
        (folder / sub).mkdir(exist_ok=True)
    text = (scratch.dir / "deploy" / "nginx-front.conf").read_text()
    text = re.sub(r"^\s*listen \[::\]:.*\n", "", text, flags=re.M)  # loopback IPv4 only here
    text = re.sub(r"^(\s*listen )(\d+)", r"\g<1>127.0.0.1:\2", text, flags=re.M)
    text = re.sub(r"ssl_certificate\s+\S+;", f"ssl_certificate {tls / 'cert.pem'};", text)
    text = re.sub(r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {tls / 'key.pem'};", text)
    (folder / "pagi-serve.conf").write_text(text)
    temp = folder / "temp"
    (folder / "nginx.conf").write_text(f"""# Around deploy/nginx-front.conf, as Debian's nginx.conf includes conf.d/*.conf inside http {{}}.
daemon off;
worker_processes 1;
pid {folder / 'nginx.pid'};
error_log {folder / 'error.log'} warn;
events {{ worker_connections 256; }}
http {{
    access_log {folder / 'access.log'};
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {folder / 'pagi-serve.conf'};
}}
""")
    status = subprocess.run([nginx, "-t", "-q", "-e", str(folder / "error.log"), "-c", str(folder / "nginx.conf")], capture_output=True, text=True)
    if status.returncode != 0:
        failed("deploy/nginx-front.conf: nginx -t", status.stdout + status.stderr)
        return
    passed("deploy/nginx-front.conf: nginx -t")
    front = Front(scratch)
    process = subprocess.Popen([nginx, "-e", str(folder / "error.log"), "-c", str(folder / "nginx.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        through_proxy("deploy/nginx-front.conf: nginx", front, scratch.ports["443"], scratch.ports["80"])
    finally:
        stop_group(process.pid, leader=process)
        front.close()


def check_haproxy(scratch, tls):
    haproxy = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if not haproxy:
        skipped("deploy/haproxy-front.cfg", "haproxy is not installed (scripts/test installs it when apt-get can)")
        return
    text = (scratch.dir / "deploy" / "haproxy-front.cfg").read_text()
    text = re.sub(r"^(\s*bind ):(\d+)", r"\g<1>127.0.0.1:\2", text, flags=re.M)
    text = re.sub(r"crt \S+", f"crt {tls / 'combined.pem'}", text)
    if not is_root():  # user/group need root; the rest is the same
        text = re.sub(r"^\s*(user|group) .*\n", "", text, flags=re.M)
    config = scratch.dir / "haproxy.cfg"
    config.write_text(text)
    status = subprocess.run([haproxy, "-c", "-q", "-f", str(config)], capture_output=True, text=True)
    if status.returncode != 0:
        failed("deploy/haproxy-front.cfg: haproxy -c", status.stdout + status.stderr)
        return
    passed("deploy/haproxy-front.cfg: haproxy -c")
    front = Front(scratch)
    process = subprocess.Popen([haproxy, "-db", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        through_proxy("deploy/haproxy-front.cfg: HAProxy", front, scratch.ports["443"], scratch.ports["80"])
    finally:
        stop_group(process.pid, leader=process)
        front.close()


DOCKERFILE_INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
                           "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "MAINTAINER"}


def dockerfile_instructions(text):
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    result, pending = [], ""
    for raw in text.split("\n"):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        pending += (" " if pending else "") + line.rstrip("\\").strip()
        if line.endswith("\\"):
            continue
        word, _, rest = pending.partition(" ")
        result.append((word.upper(), rest.strip()))
        pending = ""
    return result


def dockerignore_excludes(patterns, path):
    """Whether Docker's rules (last match wins, a folder's match covers what is in it) exclude `path`."""
    excluded = False
    parts = path.split("/")
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase("/".join(parts[:n]), pattern) for n in range(1, len(parts) + 1)):
            excluded = not negated
    return excluded


def check_dockerfile():
    path = ROOT / "deploy" / "Dockerfile"
    instructions = dockerfile_instructions(path.read_text())
    problems = [f"unknown instruction {word}" for word, _ in instructions if word not in DOCKERFILE_INSTRUCTIONS]
    stages, current = [], None
    for word, rest in instructions:
        if word == "FROM":
            image, _, alias = re.sub(r"\s+as\s+", " AS ", rest, flags=re.I).partition(" AS ")
            current = {"image": image.strip(), "alias": alias.strip() or None, "lines": [], "workdir": "/"}
            stages.append(current)
        elif current is not None:
            current["lines"].append((word, rest))
            if word == "WORKDIR":
                current["workdir"] = rest if rest.startswith("/") else current["workdir"].rstrip("/") + "/" + rest
        elif word != "ARG":
            problems.append(f"{word} before the first FROM")
    if len(stages) < 2:
        problems.append("expected a build stage and a final stage")
        failed("deploy/Dockerfile", "\n".join(problems))
        return
    build, final = stages[0], stages[-1]
    if not build["image"].startswith("swift:"):
        problems.append(f"the build stage should start from the official swift image, not {build['image']}")
    if final["image"] != "debian:bookworm-slim":
        problems.append(f"the final stage should start from debian:bookworm-slim, not {final['image']}")
    builds = [rest for word, rest in build["lines"] if word == "RUN" and "swift build" in rest]
    product = None
    if len(builds) != 1:
        problems.append("the build stage should have one RUN swift build")
    else:
        words = shlex.split(builds[0])
        for needed in ("-c", "release", "--static-swift-stdlib", "--product"):
            if needed not in words:
                problems.append(f"swift build lacks {needed}")
        if "--product" in words:
            product = words[words.index("--product") + 1]
    built = f"{build['workdir'].rstrip('/')}/.build/release/{product}"
    copies = [shlex.split(rest) for word, rest in final["lines"] if word == "COPY"]
    from_build = [words for words in copies if words and words[0] == f"--from={build['alias']}"]
    if len(from_build) != 1 or from_build[0][1] != built:
        problems.append(f"the final stage should copy {built} (what the build stage builds) from --from={build['alias']}: "
                        f"it copies {[words[1:] for words in from_build]}")
    binary_destination = from_build[0][-1] if from_build else None
    entrypoint = next((json.loads(rest) for word, rest in final["lines"] if word == "ENTRYPOINT"), None)
    if not entrypoint or entrypoint[0] != binary_destination:
        problems.append(f"ENTRYPOINT should run {binary_destination}")
    users = [rest for word, rest in final["lines"] if word == "USER"]
    if not users or users[-1] in ("root", "0"):
        problems.append("the final stage should run as a user other than root (USER)")
    ignore_file = path.with_name("Dockerfile.dockerignore")
    patterns = [line.strip() for line in ignore_file.read_text().split("\n") if line.strip() and not line.startswith("#")]
    if not dockerignore_excludes(patterns, ".build"):
        problems.append("Dockerfile.dockerignore should exclude .build")
    copied_folders = []
    for stage in stages:
        for word, rest in stage["lines"]:
            if word not in ("COPY", "ADD"):
                continue
            words = shlex.split(rest)
            if any(word.startswith("--from") for word in words):
                continue
            for source in [word for word in words[:-1] if not word.startswith("--")]:
                found = list(ROOT.glob(source))
                if not found:
                    problems.append(f"COPY {source}: nothing in the repository")
                for item in found:
                    relative = str(item.relative_to(ROOT))
                    if dockerignore_excludes(patterns, relative):
                        problems.append(f"COPY {source}: {relative} is excluded by Dockerfile.dockerignore")
                    if item.is_dir():
                        copied_folders.append(relative)
                        inside = [str(f.relative_to(ROOT)) for f in item.rglob("*") if f.is_file()]
                        dropped = [f for f in inside if dockerignore_excludes(patterns, f)]
                        if dropped:
                            problems.append(f"COPY {source}: Dockerfile.dockerignore excludes {dropped[:3]}")
    manifest = (ROOT / "Package.swift").read_text()
    for target_path in re.findall(r'path:\s*"([^"]+)"', manifest):
        if not any(target_path == folder or target_path.startswith(folder + "/") for folder in copied_folders):
            problems.append(f"Package.swift names {target_path}, which the build stage does not copy")
    if problems:
        failed("deploy/Dockerfile: instructions and paths", "\n".join(problems))
    else:
        passed(f"deploy/Dockerfile: instructions known, the final stage copies {built} as built "
               f"(--static-swift-stdlib) and runs it as {users[-1]}, the context keeps what it copies and drops .build")
    skipped("deploy/Dockerfile: docker build", "no Docker engine on this CI (the docker client alone cannot build)")


def check_deploy(binary, keep):
    print("\n== deploy/")
    scratch = Scratch("deploy", binary, keep)
    try:
        for path in sorted((ROOT / "deploy").rglob("*.yaml")):
            relative = path.relative_to(ROOT)
            check_config(scratch, scratch.dir / relative, str(relative))
        check_systemd(scratch)
        tls = make_certificate(scratch)
        check_nginx(scratch, tls)
        check_haproxy(scratch, tls)
        check_dockerfile()
    finally:
        scratch.close()


def main():
    arguments = sys.argv[1:]
    keep = "--keep" in arguments
    arguments = [a for a in arguments if a not in ("--keep", "--verbose")]
    only = arguments[arguments.index("--only") + 1] if "--only" in arguments else ""
    positional = [a for i, a in enumerate(arguments) if not a.startswith("--") and (i == 0 or arguments[i - 1] != "--only")]
    if any(a.startswith("--") and a != "--only" for a in arguments):
        positional = []
    if len(positional) != 1:
        sys.exit(__doc__.split("\n\n")[1])
    if not os.access(positional[0], os.X_OK):
        sys.exit(f"operator-docs: {positional[0]}: no executable there")
    # One copy that `nobody` and the units' users can run, wherever the repository lives; a build
    # replacing the original meanwhile does not change what is tested.
    copies = pathlib.Path(tempfile.mkdtemp(prefix="ops-bin-"))
    copies.chmod(0o755)
    binary = str(copies / "pagi-serve")
    shutil.copy2(positional[0], binary)
    os.chmod(binary, 0o755)
    started = time.monotonic()
    try:
        for relative in GUIDES + MARKED_ONLY:
            if only in relative:
                check_document(relative, binary, keep, guide=relative in GUIDES)
        if only in "deploy":
            check_deploy(binary, keep)
    finally:
        shutil.rmtree(copies, ignore_errors=True)
    print(f"\noperator-docs: {results['passed']} passed, {len(results['failed'])} failed, "
          f"{len(results['skipped'])} skipped, in {time.monotonic() - started:.0f} s")
    for line in results["failed"]:
        print(f"  FAIL {line}")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
