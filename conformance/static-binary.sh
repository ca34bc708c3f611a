#!/usr/bin/env bash
# The release binary is one self-contained file (docs/deployment.md, *One binary*): built with
# `swift build -c release --static-swift-stdlib`, it needs no library of the Swift toolchain — ldd
# lists none — and it serves the example site with the toolchain hidden. Prints its size, stripped
# and not.
# usage: conformance/static-binary.sh BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
binary="$(realpath -e "$1")"
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
server=""

libraries="$(ldd "$binary")"
if grep -Ei 'libswift|libFoundation|lib_Foundation|libdispatch|libBlocksRuntime|libicu|libxml2' <<<"$libraries"; then
  echo "static-binary: the binary needs the libraries above (build it with --static-swift-stdlib)" >&2
  exit 1
fi
echo "static-binary: ldd lists only system libraries: $(awk '/=>/ {print $1}' <<<"$libraries" | tr '\n' ' ')"

strip -o "$work/pagi-serve" "$binary"
echo "static-binary: size $(( $(stat -c %s "$binary") / 1048576 )) MiB, stripped $(( $(stat -c %s "$work/pagi-serve") / 1048576 )) MiB"

# Where the toolchain keeps its shared libraries (the binary's build machine has them).
toolchain=""
if command -v swift >/dev/null; then toolchain="$(dirname "$(dirname "$(realpath -e "$(command -v swift)")")")/lib/swift"; fi
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
serve=("$work/pagi-serve" config.yaml --listen "127.0.0.1:$port" --user "$(id -un)")
if [ -n "$toolchain" ] && [ -d "$toolchain" ] && unshare -m true 2>/dev/null; then
  # A mount namespace of its own, with an empty directory over the toolchain's libraries.
  unshare -m sh -c 'mount -t tmpfs none "$0" && exec "$@"' "$toolchain" "${serve[@]}" >/dev/null 2>"$work/log" &
  echo "static-binary: serving with $toolchain hidden"
else
  env -i PATH=/usr/bin:/bin "${serve[@]}" >/dev/null 2>"$work/log" &
  echo "static-binary: cannot hide the toolchain here (no mount namespace); serving with an empty environment"
fi
server=$!
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" && break
  kill -0 "$server" 2>/dev/null || { cat "$work/log" >&2; echo "static-binary: the binary did not start" >&2; exit 1; }
  sleep 0.1
done
status="$(curl -s -o "$work/index" -w '%{http_code}' "http://127.0.0.1:$port/")"
if [ "$status" != 200 ] || ! grep -q "<html" "$work/index"; then
  cat "$work/log" >&2
  echo "static-binary: GET / answered $status" >&2
  exit 1
fi
echo "static-binary: the example site answers GET / with 200 ($(stat -c %s "$work/index") bytes)"
