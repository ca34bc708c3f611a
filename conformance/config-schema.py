#!/usr/bin/env python3
"""`pagi-serve schema` checked with Python's jsonschema (draft 2020-12): the schema is valid, the
copy editors use (docs/config.schema.json) is current, every example config in the repository
validates, and broken configs (unknown key, wrong type, bad enum, two handlers) do not.

usage: conformance/config-schema.py PATH/TO/pagi-serve
"""
import json
import pathlib
import subprocess
import sys

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main() -> int:
    binary = sys.argv[1]
    text = subprocess.run([binary, "schema"], check=True, capture_output=True, text=True).stdout
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    failures = []

    committed = (ROOT / "docs" / "config.schema.json").read_text()
    if json.loads(committed) != schema:
        failures.append("docs/config.schema.json is stale: regenerate it with `pagi-serve schema > docs/config.schema.json`")

    # Every example of a whole config in the repository: the served example, the site examples,
    # and the YAML blocks of the README and docs that are whole configs (they have `hosts:`).
    examples = []
    for path in [ROOT / "config.yaml"] + sorted((ROOT / "sites").rglob("*.yaml")):
        document = load(path.read_text())
        if is_config(document):
            examples.append((str(path.relative_to(ROOT)), document))
    for path in [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md")):
        for number, block in enumerate(yaml_blocks(path.read_text()), 1):
            document = load(block)
            if is_config(document) and not has_placeholder(document):
                examples.append((f"{path.relative_to(ROOT)} (YAML block {number})", document))
    if not examples:
        failures.append("no example configs found")
    for name, document in examples:
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.path)):
            failures.append(f"{name}: {'/'.join(map(str, error.path))}: {error.message}")

    good = {"hosts": [{"names": ["a"], "middleware": ["request_id", {"compress": None}, {"rate_limit": {"rate": "10/s"}}],
                       "routes": [{"path": "/", "static": "site"}, {"path": "/x", "respond": {"status": 200, "delay": "150ms"}}]}],
            "server": {"listen": [":8080", {"address": "127.0.0.1:9", "http2": True}], "workers": "auto",
                       "timeouts": {"idle": 75}, "limits": {"body_bytes": "10MiB"}, "log_level": "debug"}}
    broken = {
        "unknown top-level key": {"hostz": [], "hosts": []},
        "unknown route key": {"hosts": [{"routes": [{"path": "/", "stattic": "x"}]}]},
        "route without handler": {"hosts": [{"routes": [{"path": "/"}]}]},
        "two handlers": {"hosts": [{"routes": [{"path": "/", "static": "x", "health": True}]}]},
        "wrong type (workers)": {"server": {"workers": [2]}, "hosts": []},
        "bad enum (log_level)": {"server": {"log_level": "verbose"}, "hosts": []},
        "bad enum (redirect status)": {"hosts": [{"routes": [{"path": "/", "redirect": {"to": "/x", "status": 200}}]}]},
        "bad duration": {"server": {"timeouts": {"idle": "soon"}}, "hosts": []},
        "unknown middleware": {"hosts": [{"middleware": [{"cors2": {}}], "routes": []}]},
        "middleware item with two keys": {"hosts": [{"middleware": [{"cors": {}, "headers": {}}], "routes": []}]},
        "rewrite without to": {"hosts": [{"middleware": [{"rewrite": {"from": "^/a"}}], "routes": []}]},
        "compress level out of range": {"hosts": [{"middleware": [{"compress": {"level": 12}}], "routes": []}]},
    }
    for error in validator.iter_errors(good):
        failures.append(f"a valid config was refused: {'/'.join(map(str, error.path))}: {error.message}")
    for name, document in broken.items():
        if validator.is_valid(document):
            failures.append(f"a broken config passed: {name}")

    for failure in failures:
        print("FAIL:", failure)
    print(f"config-schema: {len(examples) + 1 + len(broken) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


def load(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def is_config(document) -> bool:
    """A whole config has `hosts:` at the top (OpenAPI documents and fragments do not)."""
    return isinstance(document, dict) and "hosts" in document


def has_placeholder(value) -> bool:
    """A sketch of a config: `...` stands for what the text leaves out."""
    if value == "...":
        return True
    if isinstance(value, dict):
        return any(has_placeholder(k) or has_placeholder(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_placeholder(item) for item in value)
    return False


def yaml_blocks(markdown: str):
    """The contents of the fenced ```yaml blocks of a Markdown text."""
    blocks, current = [], None
    for line in markdown.splitlines():
        if current is None and line.strip() in ("```yaml", "```yml"):
            current = []
        elif current is not None and line.strip() == "```":
            blocks.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


if __name__ == "__main__":
    sys.exit(main())
