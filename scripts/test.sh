#!/usr/bin/env bash
# scripts/test.sh — chatgate's one test command (README.md, .ci/run).
#
# Installs what the tests need, then runs every test: go vet, the Go unit
# and end-to-end tests under the race detector, each fuzz target for a
# bounded time beyond its seed corpus, and the Node.js end-to-end tests.
#
# Environment:
#   FUZZTIME   time per fuzz target (default 5s; 0 skips fuzzing)
#   SKIP_NODE  set to 1 to skip the Node.js tests
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-5s}
step() { printf '\n==> %s\n' "$*"; }
# count_files prints how many files a directory holds (0 if it is absent).
count_files() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi; }

step "installing Node.js test dependencies"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq nodejs npm
  fi
fi
(cd tests/node && npm ci --no-audit --no-fund --loglevel=error)

step "installing Chromium, nginx and haproxy for the browser and proxy tests"
# From Debian's packages; the tests fail (rather than skip) without them.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
export CHATGATE_REQUIRE_BROWSER=${CHATGATE_REQUIRE_BROWSER:-1}
export CHATGATE_REQUIRE_PROXIES=${CHATGATE_REQUIRE_PROXIES:-1}

step "go vet"
go vet ./...

step "building the gateway"
bindir=$(mktemp -d)
trap 'rm -rf "$bindir"' EXIT
go build -o "$bindir/gateway" ./cmd/gateway
export CHATGATE_BIN="$bindir/gateway"

step "go test -race (unit and end-to-end)"
go test -race -shuffle=on -count=1 -timeout 15m ./...

if [ "$FUZZTIME" != "0" ]; then
  step "fuzzing each target for $FUZZTIME"
  for pkg in $(go list ./...); do
    dir=$(go list -f '{{.Dir}}' "$pkg")
    for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
      echo "--- $pkg $target"
      corpus="$dir/testdata/fuzz/$target"
      before=$(count_files "$corpus")
      if ! go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg"; then
        # A real failure leaves its input in testdata/fuzz. Go's fuzzer can
        # also stop with "context deadline exceeded" while it is still
        # minimising a new input when the time is up, leaving nothing:
        # that run is repeated once, and a second failure fails the suite.
        if [ "$(count_files "$corpus")" != "$before" ]; then
          echo "fuzzing $target found a failing input: $corpus" >&2
          exit 1
        fi
        echo "--- $target stopped without a failing input; running it again"
        go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" -fuzzminimizetime=1s "$pkg"
      fi
    done
  done
fi

if [ "${SKIP_NODE:-0}" != "1" ]; then
  step "Node.js end-to-end tests"
  (cd tests/node && node --test --test-concurrency=1 --test-timeout=120000)
fi

step "all tests passed"
