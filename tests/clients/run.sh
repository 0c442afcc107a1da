#!/usr/bin/env bash
# The client examples (make test): Python with psycopg 3 and with asyncpg,
# Node.js with node-postgres, Rust with tokio-postgres, each running the same
# flow against the test cluster; each one's output must be
# examples/expected_output.txt exactly. Dependencies are pinned
# (examples/python/requirements.lock, examples/node/package-lock.json,
# Cargo.lock) and installed here.
set -euo pipefail
source "$(dirname "$0")/../../scripts/env.sh"
cd "$ROOT"
venv="$ROOT/target/venv-examples"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r examples/python/requirements.lock
(cd examples/node && npm ci --no-audit --no-fund --silent)
cargo build --quiet -p spendguard-example
expected="$ROOT/examples/expected_output.txt"
passed=0
run() {
  local name=$1; shift
  local out; out=$(mktemp)
  if ! "$@" >"$out" 2>&1 || ! diff -u "$expected" "$out"; then
    echo "client example $name failed:" >&2; cat "$out" >&2; rm -f "$out"; exit 1
  fi
  rm -f "$out"
  echo "client example $name: output as expected"
  passed=$((passed + 1))
}
run python-psycopg "$venv/bin/python" examples/python/flow_psycopg.py
run python-asyncpg "$venv/bin/python" examples/python/flow_asyncpg.py
run node-postgres node examples/node/flow.mjs
run rust-tokio-postgres "$ROOT/target/debug/spendguard-example"
echo "$passed passed, 0 failed"
