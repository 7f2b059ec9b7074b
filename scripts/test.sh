#!/usr/bin/env bash
# scripts/test.sh — chatgate's one test command (README.md, .ci/run).
#
# Installs what the tests need, then runs every test: go vet, staticcheck,
# the Go unit and end-to-end tests under the race detector, the allocation
# tests without it, the end-to-end tests again against a gateway built with
# -race, each fuzz target for a bounded time beyond its seed corpus, and the
# Node.js end-to-end tests. Every Go step covers each module of the
# workspace (the gateway's and bench/).
#
# Environment:
#   FUZZTIME   time per fuzz target (default 5s; 0 skips fuzzing)
#   SKIP_NODE  set to 1 to skip the Node.js tests
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-5s}
# The staticcheck release the code is checked with (2026.2.2), pinned so a
# new release's checks arrive with a deliberate update of this line.
STATICCHECK_VERSION=v0.8.2
step() { printf '\n==> %s  [%dm%02ds]\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)); }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
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
# The socket.io-client bundle the gateway serves at /socket.io/socket.io.js
# (package sioclient; the pinned version is in sioclient/package.json).
(cd sioclient && npm ci --no-audit --no-fund --loglevel=error)

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

# The package patterns of every module of the workspace: ./... alone stops
# at the nested bench module.
pkgs=()
modules=$(go list -m -f '{{.Dir}}')
while read -r dir; do
  case $dir in
    "$PWD") pkgs+=(./...) ;;
    "$PWD"/*) pkgs+=("./${dir#"$PWD"/}/...") ;;
    *) pkgs+=("$dir/...") ;;
  esac
done <<<"$modules"
[ ${#pkgs[@]} -gt 0 ] || fail "go list -m found no module"
echo "packages: ${pkgs[*]}"

step "go vet"
go vet "${pkgs[@]}"

bindir=$(mktemp -d)
trap 'rm -rf "$bindir"' EXIT

step "staticcheck $STATICCHECK_VERSION"
GOBIN="$bindir" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
"$bindir/staticcheck" "${pkgs[@]}"

step "building the gateway, and a second one with the race detector"
go build -o "$bindir/gateway" ./cmd/gateway
go build -race -o "$bindir/gateway-race" ./cmd/gateway
export CHATGATE_BIN="$bindir/gateway"

step "go test -race (unit and end-to-end)"
go test -race -shuffle=on -count=1 -timeout 15m "${pkgs[@]}"

step "allocation tests, without the race detector"
# Under -race sync.Pool drops items at random and the detector allocates
# on its own, so the tests that count allocations or live heap bytes
# (testing.AllocsPerRun, or the heap profile with every allocation
# sampled: runtime.MemProfileRate = 1) skip there: this pass runs exactly
# those tests, found in the sources, without -race, and fails unless each
# of them ran and passed (none skipped).
#
# alloc_tests prints the names of the functions of the _test.go files in
# directory $1 that call testing.AllocsPerRun or set MemProfileRate to 1.
alloc_tests() {
  awk '/^func / { name = $2; sub(/\(.*/, "", name); if (name == "") name = "(a method)" }
       /testing\.AllocsPerRun\(|runtime\.MemProfileRate = 1$/ { print name }' "$1"/*_test.go | sort -u
}
alloc_ran=0
pkgdirs=$(go list -f '{{.Dir}} {{.ImportPath}}' "${pkgs[@]}")
while read -r dir pkg; do
  compgen -G "$dir/*_test.go" >/dev/null || continue
  found=$(alloc_tests "$dir")
  [ -n "$found" ] || continue
  mapfile -t names <<<"$found"
  for name in "${names[@]}"; do
    case $name in
      Test*) ;;
      *) fail "$pkg: an allocation count in $name, which is no Test function: this pass runs Test functions by name" ;;
    esac
  done
  echo "--- $pkg: ${names[*]}"
  if ! out=$(go test -count=1 -v -run "^($(IFS='|'; echo "${names[*]}"))\$" "$pkg" 2>&1); then
    printf '%s\n' "$out"
    fail "allocation tests of $pkg"
  fi
  grep -E '^ *--- (PASS|FAIL|SKIP)' <<<"$out" || true
  if grep -q -- '--- SKIP' <<<"$out"; then
    fail "$pkg: an allocation test skipped without -race"
  fi
  for name in "${names[@]}"; do
    grep -q "^--- PASS: $name (" <<<"$out" || fail "$pkg: $name did not run and pass"
    alloc_ran=$((alloc_ran + 1))
  done
done <<<"$pkgdirs"
[ "$alloc_ran" -gt 0 ] || fail "no allocation test found"
echo "$alloc_ran allocation tests ran and passed without -race"

step "end-to-end tests against the gateway built with -race"
# Every test fails if its gateway printed a data race report (and the
# harness refuses a gateway that was not built with -race).
CHATGATE_BIN="$bindir/gateway-race" CHATGATE_E2E_RACE=1 \
  go test -shuffle=on -count=1 -timeout 15m ./tests/e2e

if [ "$FUZZTIME" != "0" ]; then
  step "fuzzing each target for $FUZZTIME"
  for pkg in $(go list "${pkgs[@]}"); do
    dir=$(go list -f '{{.Dir}}' "$pkg")
    for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
      echo "--- $pkg $target"
      corpus="$dir/testdata/fuzz/$target"
      before=$(count_files "$corpus")
      if ! go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg"; then
        # A real failure leaves its input in testdata/fuzz. Go's fuzzer can
        # also stop with "context deadline exceeded" while it is still
        # minimising a new input when the time is up, leaving nothing:
        # such a run is repeated (twice at most); a run that leaves an
        # input, or a third stop, fails the suite.
        for retry in 1 2; do
          if [ "$(count_files "$corpus")" != "$before" ]; then
            echo "fuzzing $target found a failing input: $corpus" >&2
            exit 1
          fi
          echo "--- $target stopped without a failing input; running it again ($retry)"
          if go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" -fuzzminimizetime=1s "$pkg"; then
            continue 2
          fi
        done
        echo "fuzzing $target failed three times" >&2
        exit 1
      fi
    done
  done
fi

if [ "${SKIP_NODE:-0}" != "1" ]; then
  step "Node.js end-to-end tests"
  (cd tests/node && node --test --test-concurrency=1 --test-timeout=120000)
fi

step "all tests passed"
