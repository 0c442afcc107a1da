#!/usr/bin/env bash
# make test: every suite in order, each one's output shown, then one total
# line ("total: N passed, 0 failed") summed over all of them. Stops at the
# first failing suite with its exit status.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in setup lint unit pgtest install upgraded-cluster regress upgrade backup integration clients alerts package-test citus-test; do
  make --no-print-directory "$target" 2>&1 | tee -a "$log"
done
cargo_passed=$(grep -oE '^test result: ok\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
regress_passed=$(grep -oE 'All [0-9]+ tests passed' "$log" | awk '{s += $2} END {print s + 0}')
# scripts that end with their own "N passed, 0 failed" line (upgrade, backup, clients, alerts, package)
script_passed=$(grep -E '^[0-9]+ passed, 0 failed$' "$log" | awk '{s += $1} END {print s + 0}')
echo
echo "suites: fmt+clippy, core unit + #[pg_test] + integration ($cargo_passed), pg_regress ($regress_passed), scripts ($script_passed)"
echo "total: $((cargo_passed + regress_passed + script_passed)) passed, 0 failed"
