"""Starting pagi-serve for the conformance checks and the benchmarks: a free loopback port, and
waiting until the server listens on it."""
import os
import pwd
import socket
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 20) -> float:
    """Seconds until `port` accepts a connection; exits the script when `process` ends first or
    `seconds` pass."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if process.poll() is not None:
            sys.exit(f"pagi-serve exited early with status {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return time.monotonic() - start
        except OSError:
            time.sleep(0.01)
    sys.exit("pagi-serve did not start listening")


def stop(process: subprocess.Popen, log=None) -> None:
    """SIGTERM, SIGKILL after 10 s, then closes the file `log` the server wrote to, if any."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if log is not None:
        log.close()


def serving_as_invoker(binary: str) -> list[str]:
    """`--user` naming whoever runs the script, for a `binary` that has the flag: a server started
    as root serves as root only when told so on purpose (docs/operations.md, *Privileges*). Older
    builds, run as baselines by the benchmarks, have neither the flag nor the rule."""
    usage = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True).stdout
    return ["--user", pwd.getpwuid(os.geteuid()).pw_name] if "--user" in usage else []
