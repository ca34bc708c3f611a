#!/usr/bin/env python3
"""OpenAPI stubs judged by schemathesis: pagi-serve mounts the project's own example API
(sites/api/openapi.yaml) and the Swagger Petstore v3 (petstore-openapi.yaml, from
swagger-api/swagger-petstore, src/main/resources/openapi.yaml, Apache 2.0) with `validate: true`,
and schemathesis (`st run`) tests each with a fixed seed and a bounded number of examples per
operation.

Writes conformance/schemathesis/summary.md (failures by check and document, the reports that are
no failure of the server and why, the checks left out and why) and exits 1 when a document had
failures.

usage: conformance/schemathesis/run.py PATH/TO/pagi-serve [--max-examples N] [--seed S] [--keep DIR]
"""
import argparse
import base64
import importlib.metadata
import json
import os
import pathlib
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from serverprocess import free_port, serving_as_invoker, wait_for_port  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DOCUMENTS = {  # mount point -> document
    "/api/": ROOT / "sites" / "api" / "openapi.yaml",
    "/petstore/": HERE / "petstore-openapi.yaml",
}
# Checks left out, each with the reason; every other check of schemathesis runs. Those also named
# in ONLY_FOR are left out for those documents only.
EXCLUDED = {
    "ignored_auth": "auth: a stub checks that required API keys are present, not that they are valid (the Petstore "
                    "declares OAuth2 and an API key); put basic_auth or ip_filter in front of a mount that needs more",
    "object_level_authorization": "auth: there are no users in a stub",
}
# Only for some documents (none at present).
ONLY_FOR: dict[str, list[str]] = {}


def start_server(binary: str, workdir: pathlib.Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    routes = "\n".join(f"      - path: {mount}\n        openapi: {{spec: {spec}, validate: true}}" for mount, spec in DOCUMENTS.items())
    config = workdir / "schemathesis.yaml"
    config.write_text(f"server:\n  listen: [\"127.0.0.1:{port}\"]\n  log_level: warn\n"
                      f"hosts:\n  - names: [\"*\"]\n    default: true\n    routes:\n{routes}\n")
    server = subprocess.Popen([binary, str(config)] + serving_as_invoker(binary), stdout=subprocess.DEVNULL, text=True)
    wait_for_port(port, server, seconds=30)
    return server, port


# Failures schemathesis reports that are no failure of the server, each with a test on the failing
# case (its generation metadata and the request sent) and the reason. Everything else counts.
FALSE_POSITIVES = [
    ("a string sent for an array in a form body",
     lambda check, case, request, response: check == "negative_data_rejection"
     and case.get("media_type") == "application/x-www-form-urlencoded"
     and case.get("meta", {}).get("phase", {}).get("data", {}).get("description", "").endswith(": Incorrect type"),
     "OpenAPI's form encoding of an array (`style: form, explode: true`) is the field repeated, so "
     "`photoUrls=AAA` is exactly a one-item array: the same bytes as valid data, accepted as such"),
    ("an object in a form body not written as JSON",
     lambda check, case, request, response: check == "positive_data_acceptance"
     and case.get("media_type") == "application/x-www-form-urlencoded" and '"expected":"object"' in response,
     "a form field that holds an object is JSON text (OpenAPI's Encoding Object: the default content type "
     "of an object property); schemathesis writes the object's keys as separate values instead"),
    ("no body sent for an optional XML body",
     lambda check, case, request, response: check == "negative_data_rejection" and "xml" in (case.get("media_type") or "")
     and not request.get("body"),
     "schemathesis could not write its invalid value as XML and sent no body at all; the operation's body "
     "is optional, so the request it sent is valid"),
]


def text(body) -> str:
    """A body as the NDJSON report holds it (text, or `{"$base64": ...}`)."""
    if isinstance(body, dict) and "$base64" in body:
        return base64.b64decode(body["$base64"]).decode("utf-8", "replace")
    return body if isinstance(body, str) else ""


def failures(report: pathlib.Path) -> tuple[dict[str, int], dict[str, int]]:
    """Distinct failures per check (by operation and message, as schemathesis counts its unique
    failures) from schemathesis' NDJSON event stream: those that count, and the false positives
    by FALSE_POSITIVES name."""
    counted, ignored = set(), set()
    for line in report.read_text().splitlines():
        recorder = (json.loads(line).get("ScenarioFinished") or {}).get("recorder", {})
        for case_id, checks in recorder.get("checks", {}).items():
            case = recorder.get("cases", {}).get(case_id, {}).get("value", {})
            interaction = recorder.get("interactions", {}).get(case_id) or {}
            request = interaction.get("request") or {}
            response = text((interaction.get("response") or {}).get("content"))
            for check in checks:
                if check.get("status") != "failure":
                    continue
                failure = check.get("failure_info", {}).get("failure", {})
                key = (check["name"], failure.get("operation"), failure.get("title"), failure.get("message"))
                reason = next((name for name, matches, _ in FALSE_POSITIVES if matches(check["name"], case, request, response)), None)
                (ignored if reason else counted).add(key + ((reason,) if reason else ()))
    by_check: dict[str, int] = {}
    for name, *_ in counted - {key[:4] for key in ignored}:
        by_check[name] = by_check.get(name, 0) + 1
    by_reason: dict[str, int] = {}
    for *_, reason in ignored:
        by_reason[reason] = by_reason.get(reason, 0) + 1
    return by_check, by_reason


def run_schemathesis(mount: str, spec: pathlib.Path, port: int, args, workdir: pathlib.Path):
    report = workdir / f"{mount.strip('/')}.ndjson"
    excluded = [check for check in EXCLUDED if mount in ONLY_FOR.get(check, [mount])]
    command = [sys.executable, "-m", "schemathesis.cli", "run", str(spec), "--url", f"http://127.0.0.1:{port}{mount.rstrip('/')}",
               "--checks", "all", "--exclude-checks", ",".join(excluded),
               "--seed", str(args.seed), "--max-examples", str(args.max_examples), "--workers", "1",
               "--phases", "examples,coverage,fuzzing", "--no-shrink",
               "--report", "ndjson", "--report-ndjson-path", str(report)]
    print("+", " ".join(command), flush=True)
    # In the scratch folder: schemathesis keeps its example database in the current directory.
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"}, cwd=workdir)
    output = result.stdout + result.stderr
    (workdir / f"{mount.strip('/')}.log").write_text(output)
    tail = "\n".join(output.splitlines()[-25:])
    print(tail, flush=True)
    counted, ignored = failures(report) if report.exists() else ({"(run did not report)": 1}, {})
    return counted, ignored, result.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--keep", help="a folder for schemathesis' logs and reports")
    args = parser.parse_args()
    try:
        version = "schemathesis " + importlib.metadata.version("schemathesis")
    except importlib.metadata.PackageNotFoundError:
        sys.exit("schemathesis is not installed: python3 -m pip install schemathesis==4.32.5")
    workdir = pathlib.Path(args.keep or tempfile.mkdtemp(prefix="pagi-schemathesis-"))
    workdir.mkdir(parents=True, exist_ok=True)
    server, port = start_server(args.binary, workdir)
    results = {}
    try:
        for mount, spec in DOCUMENTS.items():
            results[mount] = run_schemathesis(mount, spec, port, args, workdir)
    finally:
        server.terminate()
        server.wait(timeout=10)

    lines = ["# schemathesis against the OpenAPI stubs", "",
             f"Written by `conformance/schemathesis/run.py` ({version}, seed {args.seed}, at most {args.max_examples} "
             "examples per operation, phases examples, coverage and fuzzing; each document mounted with `validate: true`). "
             "Failures are counted as schemathesis counts its unique failures (by operation, check and message).", "",
             "| document | check | failures |", "|---|---|---|"]
    total = 0
    for mount, (counted, _, code) in results.items():
        name = DOCUMENTS[mount].relative_to(ROOT)
        total += sum(counted.values())
        if not counted:
            lines.append(f"| `{name}` | every check run | 0 |")
        for check, count in sorted(counted.items()):
            lines.append(f"| `{name}` | `{check}` | {count} |")
    lines += ["", "Reported by schemathesis but not failures of the server:", ""]
    explained = {name: reason for name, _, reason in FALSE_POSITIVES}
    for mount, (_, ignored, _) in results.items():
        for reason, count in sorted(ignored.items()):
            lines.append(f"- `{DOCUMENTS[mount].relative_to(ROOT)}`, {reason} ({count}): {explained[reason]}")
    lines += ["", "Checks left out, and why:", ""]
    for check, reason in EXCLUDED.items():
        scope = [str(DOCUMENTS[mount].relative_to(ROOT)) for mount in ONLY_FOR.get(check, [])]
        lines.append(f"- `{check}`" + (f" (for {', '.join(scope)} only)" if scope else "") + f": {reason}")
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    failed = sum(1 for counted, _, _ in results.values() if counted)
    print(f"schemathesis: {len(results) - failed} passed, {failed} failed ({total} failures)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
