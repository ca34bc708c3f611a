#!/usr/bin/env python3
"""TLS listeners judged by a third-party scanner: sslyze (pinned in scripts/test) scans pagi-serve
serving HTTPS on a loopback port, three times:

- `ecdsa`: the P-256 certificate `pagi-serve cert localhost 127.0.0.1` writes, the default
  min_version (1.2), the setup docs/tls.md walks through;
- `rsa`: an RSA-2048 certificate (made here with pyca/cryptography, which sslyze brings): the
  cipher suites a server offers depend on its key, and RSA key exchange (no forward secrecy, ROBOT)
  only exists with an RSA key;
- `tls13`: the P-256 certificate with `min_version: "1.3"`: TLS 1.2 must be refused.

Checked in each scan: SSL 2.0/3.0 and TLS 1.0/1.1 refused, TLS 1.2 accepted (refused in `tls13`),
TLS 1.3 accepted; no NULL, EXPORT, RC4/RC2, DES/3DES, IDEA, MD5 or anonymous suite and no DH group
under 2048 bits; forward secrecy for every accepted suite (ECDHE/DHE, or TLS 1.3); not vulnerable
to Heartbleed, ROBOT, OpenSSL CCS injection or client-initiated renegotiation, secure renegotiation
supported; TLS compression (CRIME) off; TLS_FALLBACK_SCSV and extended master secret supported.
sslyze's comparison with Mozilla's "intermediate" configuration is reported too, as advice: a
finding there fails the run only through the checks above, and the findings that come only from a
self-made certificate are listed in ALLOWED with the reason.

Writes conformance/tls-scan/summary.md and exits 1 when a check fails.

usage: conformance/tls-scan.py PATH/TO/pagi-serve [--keep DIR]
"""
import argparse
import datetime
import importlib.metadata
import json
import os
import pathlib
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from serverprocess import free_port, serving_as_invoker, stop, wait_for_port  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent / "tls-scan"
SSLYZE_VERSION = "6.3.1"  # the version scripts/test installs
SCAN_SECONDS = 300  # one sslyze run; on this machine one takes about ten seconds

# (scan name, certificate, min_version or None, what it shows)
SCANS = [
    ("ecdsa", "localhost", None, "P-256 certificate from `pagi-serve cert`, default min_version"),
    ("rsa", "rsa", None, "RSA-2048 certificate, default min_version"),
    ("tls13", "localhost", "1.3", 'P-256 certificate, `min_version: "1.3"`'),
]

# sslyze's protocol scan results, in order.
PROTOCOLS = [
    ("ssl_2_0_cipher_suites", "SSL 2.0", "--sslv2"),
    ("ssl_3_0_cipher_suites", "SSL 3.0", "--sslv3"),
    ("tls_1_0_cipher_suites", "TLS 1.0", "--tlsv1"),
    ("tls_1_1_cipher_suites", "TLS 1.1", "--tlsv1_1"),
    ("tls_1_2_cipher_suites", "TLS 1.2", "--tlsv1_2"),
    ("tls_1_3_cipher_suites", "TLS 1.3", "--tlsv1_3"),
]
OTHER_COMMANDS = ["--certinfo", "--compression", "--heartbleed", "--openssl_ccs", "--reneg", "--robot",
                  "--fallback", "--elliptic_curves", "--ems", "--early_data", "--resum"]

# Cipher suites no client should be able to negotiate: no encryption (NULL), export grade,
# RC4/RC2, DES and 3DES (64-bit blocks: Sweet32), IDEA, MD5 MACs, no authentication (anon).
WEAK_SUITE = re.compile(r"NULL|EXPORT|RC4|RC2|DES|IDEA|MD5|_anon_|_ADH_|_AECDH_")

# Findings allowed because they come only from the certificate being made here, self-signed, rather
# than issued by a CA: sslyze's Mozilla-profile finding ids, each with the reason. Nothing about
# protocols, cipher suites or vulnerabilities may be added here.
ALLOWED = {
    "certificate_path_validation":
        "the certificate is self-signed, so no public trust store (Mozilla, Apple, Android, Java, Windows) "
        "can build a chain for it; with a CA's certificate this finding is gone",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary", help="the pagi-serve executable")
    parser.add_argument("--keep", help="a folder for the configs, certificates, server logs and sslyze's JSON")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        sys.exit(f"tls-scan: {args.binary}: no executable there")
    try:
        version = importlib.metadata.version("sslyze")
        nassl = importlib.metadata.version("nassl")
    except importlib.metadata.PackageNotFoundError:
        sys.exit(f"tls-scan: sslyze is not installed: python3 -m pip install sslyze=={SSLYZE_VERSION}")
    if version != SSLYZE_VERSION:
        print(f"tls-scan: warning: sslyze {version} is installed, scripts/test pins {SSLYZE_VERSION}")
    workdir = pathlib.Path(args.keep or tempfile.mkdtemp(prefix="pagi-tls-scan-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    subprocess.run([binary, "cert", "localhost", "127.0.0.1", "--out", str(workdir), "--force"],
                   check=True, stdout=subprocess.DEVNULL)
    rsa_certificate(workdir)

    scans = []
    for name, certificate, min_version, title in SCANS:
        result = scan(binary, workdir, name, certificate, min_version)
        result["title"] = title
        scans.append(result)

    failures = [(scan_["name"], check, detail) for scan_ in scans
                for check, passed, detail in scan_["checks"] if not passed]
    passed = sum(1 for scan_ in scans for _, ok, _ in scan_["checks"] if ok)
    write_summary(scans, version, nassl)
    for scan_ in scans:
        for finding, text in scan_["mozilla"].items():
            if finding not in ALLOWED:
                print(f"tls-scan: note: {scan_['name']}: Mozilla intermediate profile: {finding}: {text}")
    for name, check, detail in failures:
        print(f"FAIL: {name}: {check}: {detail}")
    print(f"tls-scan: sslyze {version}, {time.monotonic() - started:.0f} s; "
          f"summary in {HERE.relative_to(HERE.parent.parent) / 'summary.md'}")
    print(f"tls-scan: {passed} passed, {len(failures)} failed")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures else 0


def rsa_certificate(folder: pathlib.Path) -> None:
    """rsa.crt and rsa.key (0600): self-signed, RSA-2048, for localhost and 127.0.0.1."""
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=30))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                               x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
                   .sign(key, hashes.SHA256()))
    (folder / "rsa.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file = folder / "rsa.key"
    key_file.unlink(missing_ok=True)
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))


def scan(binary: str, workdir: pathlib.Path, name: str, certificate: str, min_version) -> dict:
    """Starts the server with one TLS listener, waits until it answers over HTTPS, runs sslyze
    against it and stops the server, even when something failed."""
    port = free_port()
    tls = f"{{cert: {certificate}.crt, key: {certificate}.key" + (f', min_version: "{min_version}"' if min_version else "") + "}"
    config = workdir / f"{name}.yaml"
    config.write_text(f'server:\n  listen: [{{address: "127.0.0.1:{port}", tls: true}}]\n  access_log: {{to: off}}\n'
                      f"tls: {tls}\n"
                      "hosts:\n  - names: [localhost]\n    routes: [{path: /, respond: {body: \"ok\\n\"}}]\n")
    log = open(workdir / f"{name}-server.log", "w")
    server = subprocess.Popen([binary, "serve", str(config)] + serving_as_invoker(binary), cwd=workdir,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, server, seconds=30)
        answers(port, workdir / f"{certificate}.crt", server)
        report = workdir / f"{name}-sslyze.json"
        command = [sys.executable, "-m", "sslyze", "--sni", "localhost", f"--json_out={report}",
                   f"--certinfo_ca_file={workdir / (certificate + '.crt')}", "--mozilla_config", "intermediate",
                   *[flag for _, _, flag in PROTOCOLS], *OTHER_COMMANDS, f"127.0.0.1:{port}"]
        try:
            # sslyze exits 1 when the server is not compliant with the Mozilla profile, which a
            # self-signed certificate never is: its verdicts are read from the JSON and the console.
            run = subprocess.run(command, capture_output=True, text=True, timeout=SCAN_SECONDS)
        except subprocess.TimeoutExpired:
            sys.exit(f"tls-scan: {name}: sslyze did not finish in {SCAN_SECONDS} s")
        (workdir / f"{name}-sslyze.txt").write_text(run.stdout + run.stderr)
        if server.poll() is not None:
            sys.exit(f"tls-scan: {name}: pagi-serve exited during the scan (status {server.returncode}); "
                     f"its log:\n{(workdir / f'{name}-server.log').read_text()[-3000:]}")
        if not report.exists():
            sys.exit(f"tls-scan: {name}: sslyze wrote no JSON report (exit {run.returncode}):\n{(run.stdout + run.stderr)[-3000:]}")
        document = json.loads(report.read_text())
    finally:
        stop(server, log)
    return judge(name, min_version, document, run.stdout)


def answers(port: int, ca_file: pathlib.Path, server: subprocess.Popen) -> None:
    """GET / over HTTPS, verifying the certificate against itself; exits the script if the server
    does not answer `ok` within 20 s."""
    context = ssl.create_default_context(cafile=str(ca_file))
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"https://localhost:{port}/", context=context, timeout=5) as response:
                body = response.read()
            if body == b"ok\n":
                return
            sys.exit(f"tls-scan: the server answered {body!r} instead of 'ok'")
        except OSError as error:
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"tls-scan: no HTTPS answer on 127.0.0.1:{port}: {error}")
            time.sleep(0.2)


def judge(name: str, min_version, document: dict, console: str) -> dict:
    server = document["server_scan_results"][0]
    if server["connectivity_status"] != "COMPLETED":
        sys.exit(f"tls-scan: {name}: sslyze could not connect: {server.get('connectivity_error_trace')}")
    results = server["scan_result"]
    for command, attempt in results.items():
        if attempt is not None and attempt["status"] not in ("COMPLETED", "NOT_SCHEDULED"):
            sys.exit(f"tls-scan: {name}: sslyze's {command} did not complete: {attempt.get('error_reason')}\n"
                     f"{attempt.get('error_trace') or ''}")

    def result(command):
        return results[command]["result"]

    checks = []
    accepted = {}
    for command, label, _ in PROTOCOLS:
        outcome = result(command)
        accepted[label] = outcome["accepted_cipher_suites"] if outcome["is_tls_version_supported"] else []
        wanted = label == "TLS 1.3" or (label == "TLS 1.2" and min_version != "1.3")
        if not wanted and not outcome["rejected_cipher_suites"]:
            checks.append((f"{label} refused", False, "sslyze tried no cipher suite"))
            continue
        supported = bool(outcome["is_tls_version_supported"])
        suites = ", ".join(s["cipher_suite"]["name"] for s in accepted[label])
        checks.append((f"{label} {'accepted' if wanted else 'refused'}", supported == wanted,
                       f"accepted: {suites}" if supported else "every suite refused"))

    everything = [(label, s) for label, suites in accepted.items() for s in suites]
    weak = [f"{label} {s['cipher_suite']['name']}" for label, s in everything
            if WEAK_SUITE.search(s["cipher_suite"]["name"]) or s["cipher_suite"]["is_anonymous"]
            or s["cipher_suite"]["key_size"] < 128
            or ((s["ephemeral_key"] or {}).get("type_name") == "DH" and s["ephemeral_key"]["size"] < 2048)]
    checks.append(("no weak cipher suite (NULL, EXPORT, RC4, DES/3DES, anonymous, under 128 bits, DH under 2048)",
                   not weak, ", ".join(weak) or "none accepted"))
    # Forward secrecy for every suite a client can negotiate, not only for the one a modern client
    # picks: with RSA key exchange a stolen server key decrypts every recorded session.
    no_fs = [f"{label} {s['cipher_suite']['name']}" for label, s in everything
             if s["ephemeral_key"] is None or not (label == "TLS 1.3" or re.match(r"TLS_(EC)?DHE_", s["cipher_suite"]["name"]))]
    checks.append(("forward secrecy for every accepted suite", not no_fs and bool(everything),
                   ("without: " + ", ".join(no_fs)) if no_fs else "every suite ECDHE/DHE or TLS 1.3"))

    heartbleed = result("heartbleed")["is_vulnerable_to_heartbleed"]
    checks.append(("Heartbleed: not vulnerable", not heartbleed, "vulnerable" if heartbleed else "not vulnerable"))
    robot = result("robot")["robot_result"]
    checks.append(("ROBOT: not vulnerable", robot.startswith("NOT_VULNERABLE"), robot))
    ccs = result("openssl_ccs_injection")["is_vulnerable_to_ccs_injection"]
    checks.append(("OpenSSL CCS injection: not vulnerable", not ccs, "vulnerable" if ccs else "not vulnerable"))
    reneg = result("session_renegotiation")
    checks.append(("renegotiation: secure renegotiation, no client-initiated renegotiation",
                   reneg["supports_secure_renegotiation"] and not reneg["is_vulnerable_to_client_renegotiation_dos"],
                   f"secure renegotiation {'supported' if reneg['supports_secure_renegotiation'] else 'NOT supported'}, "
                   f"client-initiated renegotiation {'accepted' if reneg['is_vulnerable_to_client_renegotiation_dos'] else 'refused'}"))
    compression = result("tls_compression")["supports_compression"]
    checks.append(("TLS compression off (CRIME)", not compression, "enabled" if compression else "disabled"))
    scsv = result("tls_fallback_scsv")["supports_fallback_scsv"]
    checks.append(("TLS_FALLBACK_SCSV supported (downgrade)", scsv, "supported" if scsv else "not supported"))
    ems = result("tls_extended_master_secret")["supports_ems_extension"]
    checks.append(("extended master secret supported", ems, "supported" if ems else "not supported"))

    deployment = result("certificate_info")["certificate_deployments"][0]
    own_store = [p for p in deployment["path_validation_results"] if p["trust_store"]["name"] == "Supplied CA file"]
    return {
        "name": name, "min_version": min_version, "checks": checks, "accepted": accepted,
        "curves": [curve["name"] for curve in result("elliptic_curves")["supported_curves"]],
        "early_data": result("tls_1_3_early_data")["supports_early_data"],
        "resumption": result("session_resumption"),
        "own_store_error": own_store[0]["validation_error"] if own_store else None,
        "mozilla": mozilla_findings(name, console),
        "date": document["date_scans_started"][:10],
    }


def mozilla_findings(name: str, console: str) -> dict:
    """The findings of sslyze's comparison with Mozilla's intermediate configuration, by id. sslyze
    prints them only on its console, after the scan."""
    _, found, section = console.partition("COMPLIANCE AGAINST TLS CONFIGURATION")
    if not found or ("OK - Compliant" not in section and "FAILED - Not compliant" not in section):
        sys.exit(f"tls-scan: {name}: no verdict from sslyze's Mozilla profile check in its output:\n{console[-3000:]}")
    findings = dict(re.findall(r"^\s+\* (\w+): (.*)$", section, flags=re.MULTILINE))
    # sslyze prints Python sets, in no fixed order: sorted, the summary changes only when they do.
    return {finding: re.sub(r"\{([^{}]*)\}", lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}", text)
            for finding, text in findings.items()}


def write_summary(scans: list, version: str, nassl: str) -> None:
    lines = ["# TLS scan (sslyze)", "",
             f"Written by `conformance/tls-scan.py` with sslyze {version} (nassl {nassl}), scanned {scans[0]['date']}. "
             "Each scan starts pagi-serve with one TLS listener on 127.0.0.1 and the certificate it names, waits for "
             "an HTTPS answer, then sslyze tries every protocol version and cipher suite it knows and its vulnerability "
             "checks (SNI `localhost`).", "",
             "| scan | setup |", "|---|---|"]
    lines += [f"| `{s['name']}` | {s['title']} |" for s in scans]
    lines += ["", "## Checks", "", "| scan | check | result | detail |", "|---|---|---|---|"]
    for s in scans:
        for check, passed, detail in s["checks"]:
            lines.append(f"| `{s['name']}` | {check} | {'pass' if passed else '**FAIL**'} | {detail} |")
    lines += ["", "## Accepted protocol versions and cipher suites", ""]
    for s in scans:
        lines += [f"### `{s['name']}`: {s['title']}", "", "| version | accepted cipher suites (key exchange) |", "|---|---|"]
        for label, suites in s["accepted"].items():
            text = "<br>".join(f"`{x['cipher_suite']['name']}` ({kex(x)})" for x in suites) or "refused"
            lines.append(f"| {label} | {text} |")
        resumption = s["resumption"]
        lines += ["", f"Key exchange groups: {', '.join(s['curves'])}. TLS 1.3 early data (0-RTT): "
                      f"{'accepted' if s['early_data'] else 'not accepted'}. TLS 1.2 resumption: session ids "
                      f"{resumption['session_id_successful_resumptions_count']}/{resumption['session_id_attempted_resumptions_count']}, "
                      f"tickets {resumption['tls_ticket_successful_resumptions_count']}/{resumption['tls_ticket_attempted_resumptions_count']}.", ""]
    lines += ["## Mozilla \"intermediate\" configuration (advice)", "",
              "sslyze's `--mozilla_config intermediate` verdict. It does not fail the run by itself: protocol versions, weak "
              "suites, forward secrecy and the vulnerabilities are the checks above.", "",
              "| scan | finding | sslyze says | |", "|---|---|---|---|"]
    for s in scans:
        if not s["mozilla"]:
            lines.append(f"| `{s['name']}` | none | compliant | |")
        for finding, text in s["mozilla"].items():
            lines.append(f"| `{s['name']}` | `{finding}` | {text} | {'allowed (below)' if finding in ALLOWED else '**not compliant**'} |")
    lines += ["", "## Allowed findings (self-signed certificate only)", ""]
    lines += [f"- `{finding}`: {reason}" for finding, reason in ALLOWED.items()]
    lines += ["", "The certificate validated against itself (sslyze's supplied CA file, pyca/cryptography's verifier):", ""]
    for s in scans:
        error = s["own_store_error"]
        lines.append(f"- `{s['name']}`: " + (f"refused: {error}" if error else "valid"))
    if any("basicConstraints.cA" in (s["own_store_error"] or "") for s in scans):
        lines += ["", "`pagi-serve cert` marks its certificate as its own authority (basicConstraints CA:TRUE, as "
                      "`openssl req -x509` does): OpenSSL's verifier accepts it (curl `--cacert`, and Python's `ssl` here, "
                      "which waits for the server's HTTPS answer), pyca/cryptography's refuses a CA certificate as a "
                      "server's own. A property of that certificate, not of the TLS listener: no check depends on it."]
    (HERE / "summary.md").parent.mkdir(exist_ok=True)
    (HERE / "summary.md").write_text("\n".join(lines) + "\n")


def kex(suite: dict) -> str:
    key = suite["ephemeral_key"]
    if key is None:
        return "RSA key transport, no forward secrecy"
    return f"{key['type_name']} {key.get('curve_name') or ''} {key['size']} bits".replace("  ", " ")


if __name__ == "__main__":
    sys.exit(main())
