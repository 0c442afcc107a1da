# spendguard: `make run` and `make test` work on a fresh Debian machine as
# root with only the Rust toolchain; both install what they need first.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.PHONY: run test bench package setup lint unit pgtest install cluster upgraded-cluster regress upgrade backup integration package-test clients alerts citus-test stop psql clean

include_env = source scripts/env.sh

## make run: build, install, start a local PostgreSQL with spendguard, run the demo
run: setup install
	bash scripts/cluster.sh fresh
	@$(include_env); "$$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -h "$$SG_SOCKDIR" -p "$$SG_PORT" -U postgres -d "$$SG_DB" -f examples/demo.sql
	@$(include_env); printf '\nspendguard is running. Connect with:\n  psql "%s"\n(or: make psql; stop it with: make stop)\n' "$$SG_CONNINFO"

## make test: every suite, then one total line
test:
	bash scripts/test.sh

## make bench: pgbench throughput against plain SQL -> bench/RESULTS.md, bench/throughput.png
bench:
	bash bench/run.sh

## make package: an installable tarball for an existing PostgreSQL 15 (target/package/)
package: setup
	bash scripts/package.sh

setup:
	bash scripts/setup.sh

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

unit:
	cargo test -p spendguard-core
	python3 tests/chain/vectors.py

# #[pg_test]s in a temporary cluster; PostgreSQL refuses root, so as postgres
pgtest:
	@$(include_env); mkdir -p "$$SG_CLUSTER"; chown postgres:postgres "$$SG_CLUSTER"; \
	  set -x; cargo pgrx test pg15 --runas postgres --pgdata "$$SG_CLUSTER/pgrx-test"

install:
	bash scripts/cluster.sh install

cluster:
	bash scripts/cluster.sh fresh

# the test cluster's database built at 0.1.0 and updated: the integration
# suite runs on an upgraded database
upgraded-cluster:
	bash scripts/cluster.sh upgraded

regress:
	bash scripts/regress.sh

# Citus (SPEC §10): a coordinator and two workers, when citus.so is
# installed; says so and skips when it is not
citus-test: setup install
	bash tests/citus/run.sh

# 0.1.0 -> current: schema and catalog equal to a fresh install, rows intact
upgrade:
	bash tests/upgrade/run.sh

# pg_dump / pg_restore / pg_dumpall round trips keep every row and the
# restored database works on
backup:
	bash tests/backup/run.sh

# the tarball installs into an emptied PostgreSQL and a new cluster uses it
package-test:
	bash tests/package/run.sh

# alerts end to end: a webhook receiver, the worker killed twice (SIGKILL)
alerts:
	bash tests/alerts/run.sh

# the examples of four client stacks, each against the expected output
clients:
	bash tests/clients/run.sh

integration:
	@$(include_env); cargo test -p spendguard-it --tests --no-fail-fast

stop:
	bash scripts/cluster.sh stop

psql:
	@$(include_env); exec "$$PG_BIN/psql" "$$SG_CONNINFO"

clean: stop
	cargo clean
	@$(include_env); rm -rf "$$SG_CLUSTER"
	rm -rf tests/pg_regress/results tests/pg_regress/regression.*
