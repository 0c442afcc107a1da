#!/usr/bin/env python3
"""make bench: each spendguard workload next to its floor, the least plain
SQL that writes the same rows (one statement per call, on spendguard's own
tables, so the same indexes and constraints), and a bare-UPDATE reference.
pgbench runs every side with prepared statements, as drivers do, in
alternating runs; RESULTS.md reports the median of the runs and its ratio.

Environment: BENCH_SECONDS (per run, default 5), BENCH_CLIENTS (default
"8 32"), BENCH_RUNS (alternating runs per side, default 3), BENCH_MODE
(pgbench -M: prepared | simple, default prepared), BENCH_ONLY (comma-separated
workload keys), BENCH_MEMORY_CALLS (default 1000000, 0 to skip),
BENCH_STATEMENTS (1: count statements per call with pg_stat_statements in a
separate pass, default 1), BENCH_HOT_ORG (1: the hot-organisation workloads,
default 1), BENCH_CPU (1: server CPU per call at 1 client, default 1),
BENCH_SPREAD / BENCH_EXTRA_RUNS (more runs, up to 2, while a side's runs
spread more than 10 %), BENCH_RESUME (a bench/out/state.json: the passes
after the CPU pass only, and of those only what the state and
bench/out/memory.json do not hold yet), BENCH_LOG_EVENTS (events put into the log before
authorize is measured again, default 10,000,000; 0 to skip), BENCH_PEERS_DIR
(a folder with checkouts pgledger/ and pg-authz/: they run as peers), SG_* from
scripts/env.sh.
"""
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SQL = HERE / "sql"
OUT = HERE / "out"
# (bench/run.sh sets them; `bench.py --chart` needs none of them)
PG_BIN = os.environ.get("PG_BIN", "")
PGDATA = os.environ.get("SG_PGDATA", "")
SOCK, PORT, DB = (os.environ.get(v, "") for v in ["SG_SOCKDIR", "SG_PORT", "SG_DB"])
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
CLIENTS = [int(c) for c in os.environ.get("BENCH_CLIENTS", "8 32").split()]
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
MODE = os.environ.get("BENCH_MODE", "prepared")
ONLY = [k for k in os.environ.get("BENCH_ONLY", "").split(",") if k]
MEMORY_CALLS = int(os.environ.get("BENCH_MEMORY_CALLS", "1000000"))
STATEMENTS = os.environ.get("BENCH_STATEMENTS", "1") == "1"
LOG_EVENTS = int(os.environ.get("BENCH_LOG_EVENTS", "10000000"))
HOT_ORG = os.environ.get("BENCH_HOT_ORG", "1") == "1"
# a bench/out/state.json of an earlier run: its workloads, hot org and CPU
# figures are taken as they are, and the passes after them run
RESUME = os.environ.get("BENCH_RESUME", "")
CPU = os.environ.get("BENCH_CPU", "1") == "1"
# runs whose tps spread more than this (max - min over median) get more
# alternating runs, up to EXTRA_RUNS
SPREAD = float(os.environ.get("BENCH_SPREAD", "0.10"))
EXTRA_RUNS = int(os.environ.get("BENCH_EXTRA_RUNS", "2"))
# A folder with checkouts of plain-SQL peers: pgledger/ (github.com/pgr0ss/
# pgledger) and pg-authz/ (github.com/varunchopra/pg-authz, its meter
# module). Each one found runs next to the spendguard workload it compares
# with, in a database of its own. Nothing of them is part of this repository.
PEERS_DIR = os.environ.get("BENCH_PEERS_DIR", "")
PEERS = {
    # workload key: (peer, database, SQL files in order, setup statements)
    "authorize_spread": (
        "pgledger", "spendguard_bench_pgledger",
        ["vendor/scoville-pgsql-ulid/ulid-to-uuid.sql", "vendor/scoville-pgsql-ulid/uuid-to-ulid.sql",
         "pgledger.sql"],
        ["CREATE TABLE bench_account (n int PRIMARY KEY, id text NOT NULL); "
         "INSERT INTO bench_account SELECT g, (pgledger_create_account('acct-' || g, 'USD')).id "
         "FROM generate_series(1, 10000) g"]),
    "spend_reserve_settle_spread": (
        "pg-authz meter", "spendguard_bench_meter",
        ["meter/src/schema/*.sql", "meter/src/functions/*.sql", "meter/src/triggers/*.sql"],
        ["SELECT count(*) FROM generate_series(1, 10000) g, "
         "LATERAL meter.allocate('u' || g, 'llm_call', 1000000000000, 'tokens') a"]),
}
PEER_CHECKOUT = {"pgledger": "pgledger", "pg-authz meter": "pg-authz"}

# key, title, what spendguard runs, what the floor runs, bare-UPDATE reference script
WORKLOADS = [
    ("authorize_spread", "authorize, spread",
     "`budget_authorize_hold` over 10,000 budgets",
     "guarded usage UPDATE + event INSERT, one CTE", "base_authorize_spread.sql"),
    ("authorize_hot", "authorize, hot", "`budget_authorize_hold`, one budget",
     "the same CTE, one budget", "base_authorize_hot.sql"),
    ("authorize_capture", "authorize + capture",
     "authorize with a hold id, then `budget_capture_hold` (two transactions)",
     "usage UPDATE + hold INSERT + event INSERT; hold UPDATE + usage UPDATE + event INSERT",
     "base_authorize_capture.sql"),
    ("authorize_ttl_capture", "authorize with TTL + capture",
     "the same with `ttl => '15 minutes'` on the authorize",
     "the same with `expires_at` on the hold row", "base_authorize_capture.sql"),
    ("replay", "idempotent replay", "`budget_authorize_hold` with a recorded `event_id`",
     "one indexed SELECT of the event", "base_replay.sql"),
    ("try_increment", "try_increment", "`budget_try_increment` over 10,000 budgets",
     "usage UPDATE + event INSERT, one CTE", "base_try_increment.sql"),
    ("spend_upsert", "spend_upsert_daily", "`spend_upsert_daily` over 10,000 users",
     "`INSERT … ON CONFLICT DO UPDATE` into daily_spend", "base_spend_upsert.sql"),
    ("spend_charge_spread", "spend_charge, spread", "`spend_charge` over 10,000 users with a day budget",
     "limit look-up + period lock + period sum + upsert, one statement", None),
    ("spend_charge_hot", "spend_charge, hot", "`spend_charge`, one user", "the same, one user", None),
    ("spend_reserve_settle_spread", "reserve + settle, spread",
     "`spend_reserve` then `spend_settle` (two transactions) over 10,000 users",
     "guarded usage UPDATE + hold + event + reservation INSERTs; reservation + hold + usage UPDATEs + event INSERT + daily upsert",
     None),
    ("spend_reserve_settle_hot", "reserve + settle, hot", "the same, one user", "the same, one user", None),
    ("scope_charge_spread", "scope_charge, spread",
     "`scope_charge` over key, user, team, org (10,000 / 1,000 / 100 / 10), a day budget on each",
     "budget locks + every budget's spend and holds + 4 usage UPDATEs + 4 event INSERTs, one statement",
     None),
    ("scope_charge_hot", "scope_charge, hot org", "the same, every call on one org",
     "the same, one org", "base_authorize_hot.sql"),
    ("scope_reserve_settle_spread", "scope reserve + settle, spread",
     "`scope_reserve` then `scope_settle` (two transactions) over key, user, team, org",
     "budget locks + checks + 4 usage UPDATEs + 4 hold + 4 event + reservation INSERTs; "
     "reservation + 4 hold + 4 usage UPDATEs + 4 event INSERTs",
     None),
    ("scope_reserve_settle_hot", "scope reserve + settle, hot org", "the same, every call on one org",
     "the same, one org", "base_authorize_hot.sql"),
    ("scope_charge_alerts", "scope_charge, 3 alert thresholds",
     "`scope_charge` spread, each budget with thresholds at 50, 80 and 100 % (not reached)",
     "the scope_charge floor (no alert row is due)", None),
    ("price_cost", "price_cost", "`price_cost` of 1,000 models with 3 prices each",
     "the price row in force and the rounded sum, one SELECT", None),
    ("usage_cap_charge", "usage_cap_charge, 1M rows",
     "`usage_cap_charge` over 10,000 principals, 1M usage rows in the table",
     "advisory lock + window sum + INSERT, one statement", None),
    ("proposal", "proposal create + consume",
     "`proposal_create` then `proposal_consume` of its token (two transactions)",
     "advisory lock + in-flight check + tool_call and secret INSERTs; hash-checked UPDATE", None),
    ("args_hash_1k", "args_hash, 1 KB", "`args_hash` of a 1 KB jsonb",
     "`sha256()` of the same document's text", None),
    ("args_hash_64k", "args_hash, 64 KB", "`args_hash` of a 64 KB jsonb",
     "`sha256()` of the same document's text", None),
]
WORKLOADS = [w for w in WORKLOADS if not ONLY or w[0] in ONLY]
SIDES = ["sg", "floor", "base", "peer", "unchained"]
PEER_READY = set()
# The hash chain's cost (SPEC §9): the same spendguard calls in a database
# created at 0.4.0, whose schema has no chain. The same library serves it
# with its 0.4.0 statements (crate::spi::Versioned): events without links,
# no head on the budget row, no hash computed; nothing else differs.
UNCHAINED_DB = "spendguard_bench_unchained"
UNCHAINED_KEYS = ["authorize_spread", "authorize_hot", "authorize_capture"]
UNCHAINED_READY = set()


def sides_of(key):
    """The sides a workload has: the bare-UPDATE reference and a peer are optional."""
    base = dict((w[0], w[4]) for w in WORKLOADS)[key]
    peer = key in PEER_READY and (SQL / f"peer_{key}.sql").exists()
    return [s for s in SIDES if (s != "base" or base) and (s != "peer" or peer)
            and (s != "unchained" or key in UNCHAINED_READY)]


def setup_unchained():
    """The database at 0.4.0 for the unchained side, with the same fixtures."""
    keys = [w[0] for w in WORKLOADS if w[0] in UNCHAINED_KEYS]
    if not keys:
        return
    psql(f"DROP DATABASE IF EXISTS {UNCHAINED_DB}", db="postgres")
    psql(f"CREATE DATABASE {UNCHAINED_DB}", db="postgres")
    psql("CREATE EXTENSION spendguard VERSION '0.4.0'", db=UNCHAINED_DB)
    # the same fixtures as the chained database (setup.sql uses nothing 0.4.0 lacks)
    subprocess.run([f"{PG_BIN}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", SOCK, "-p", PORT,
                    "-U", "postgres", "-d", UNCHAINED_DB, "-f", str(SQL / "setup.sql")],
                   check=True, capture_output=True)
    UNCHAINED_READY.update(keys)


def setup_peers():
    """Each peer found under BENCH_PEERS_DIR into a database of its own."""
    if not PEERS_DIR:
        return False
    for key, (name, db, patterns, setup) in PEERS.items():
        if ONLY and key not in ONLY:
            continue
        root = Path(PEERS_DIR) / PEER_CHECKOUT[name]
        files = [f for p in patterns for f in sorted(root.glob(p))]
        if not root.is_dir() or not files:
            print(f"BENCH_PEERS_DIR: no {root}; no {name} peer", file=sys.stderr)
            continue
        psql(f"DROP DATABASE IF EXISTS {db}", db="postgres")
        psql(f"CREATE DATABASE {db}", db="postgres")
        for f in files:
            subprocess.run([f"{PG_BIN}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", SOCK, "-p",
                            PORT, "-U", "postgres", "-d", db, "-f", str(f)],
                           check=True, capture_output=True)
        for stmt in setup:
            psql(stmt, db=db)
        psql("VACUUM ANALYZE", db=db)
        PEER_READY.add(key)
    return bool(PEER_READY)


def psql(sql, db=DB):
    return subprocess.run(
        [f"{PG_BIN}/psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", SOCK, "-p", PORT,
         "-U", "postgres", "-d", db, "-c", sql],
        check=True, capture_output=True, text=True).stdout.strip()


def as_postgres(*cmd):
    prefix = [] if os.geteuid() != 0 else ["sudo", "-u", "postgres", "--"]
    subprocess.run(prefix + list(cmd), check=True, capture_output=True)


def restart(options=""):
    """Stop, then start with exactly these options. Not `pg_ctl restart`:
    without -o it reuses the last start's options (postmaster.opts), so
    the pass after statement_counts() kept pg_stat_statements (track =
    all) loaded in every timed run after it, until this was found."""
    as_postgres(f"{PG_BIN}/pg_ctl", "-D", PGDATA, "-w", "-m", "fast", "stop")
    args = [f"{PG_BIN}/pg_ctl", "-D", PGDATA, "-w", "start", "-l", f"{PGDATA}/server.log"]
    if options:
        args += ["-o", options]
    as_postgres(*args)


def wal():
    """(bytes, records) of WAL written so far, cluster-wide (pg_stat_wal)."""
    b, r = psql("SELECT wal_bytes, wal_records FROM pg_stat_wal").split("|")
    return float(b), float(r)


def script_of(key, side):
    if side == "base":
        return dict((w[0], w[4]) for w in WORKLOADS)[key]
    if side == "unchained":
        return f"sg_{key}.sql"
    return f"{side}_{key}.sql"


def pgbench(script, clients, tag, db=None, env=None):
    prefix = OUT / tag
    for old in OUT.glob(f"{tag}.*"):
        old.unlink()
    if db is None:
        db = PEERS[script[len("peer_"):-len(".sql")]][1] if script.startswith("peer_") else DB
    cmd = [f"{PG_BIN}/pgbench", "-n", "-M", MODE, "-h", SOCK, "-p", PORT, "-U", "postgres",
           "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(SECONDS),
           "-f", str(SQL / script), "-l", f"--log-prefix={prefix}", db]
    wal0 = wal()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=OUT,
                       env={**os.environ, **env} if env else None)
    wal1 = wal()
    if r.returncode != 0:
        sys.exit(f"pgbench failed: {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    tps = float(re.search(r"tps = ([0-9.]+) \(without initial connection time\)", r.stdout).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", r.stdout)
    lat = []
    for f in OUT.glob(f"{tag}.*"):
        for line in f.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3:
                lat.append(int(parts[2]))
        f.unlink()
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] / 1000.0 if lat else float("nan")
    n = len(lat) or 1
    return {"tps": tps, "p50_ms": pct(0.50), "p99_ms": pct(0.99), "n": len(lat),
            "wal_bytes": (wal1[0] - wal0[0]) / n, "wal_records": (wal1[1] - wal0[1]) / n,
            "failed": int(failed.group(1)) if failed else 0}


def spread(runs):
    """(max - min) / median of a side's runs' tps."""
    t = [r["tps"] for r in runs]
    return (max(t) - min(t)) / statistics.median(t) if t and statistics.median(t) else 0.0


def server_cpu():
    """CPU seconds the cluster has used so far: the postmaster and its
    children, live (utime + stime) and exited (the postmaster's cutime +
    cstime, counted when it reaps them), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    pm = int(Path(PGDATA, "postmaster.pid").read_text().split()[0])

    def fields(pid):
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        # the command may hold spaces: fields after its closing parenthesis
        return text[text.rindex(")") + 2:].split()

    f = fields(pm)
    total = sum(int(x) for x in f[11:15])  # utime stime cutime cstime
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != pm:
            g = fields(d.name)
            if g and int(g[1]) == pm:  # ppid
                total += int(g[11]) + int(g[12])
    return total / tick


def cpu_per_call(script, seconds=3):
    """Server CPU per transaction of one client (µs): independent of how busy
    the machine's other cores are."""
    c0 = server_cpu()
    r = subprocess.run([f"{PG_BIN}/pgbench", "-n", "-M", MODE, "-h", SOCK, "-p", PORT, "-U",
                        "postgres", "-c", "1", "-T", str(seconds), "-f", str(SQL / script), DB],
                       capture_output=True, text=True, cwd=OUT, check=True)
    time.sleep(0.2)  # the backend exits and is reaped
    c1 = server_cpu()
    n = int(re.search(r"number of transactions actually processed: (\d+)", r.stdout).group(1))
    return (c1 - c0) / max(n, 1) * 1e6


def cpu_pass():
    """CPU per call at 1 client, each workload's spendguard and floor side,
    with autovacuum off: the figure counts every process of the cluster, so
    an autovacuum worker busy with the workloads' dead rows (or one that
    exits in a window, its whole life's CPU counted then) would be counted
    with the calls."""
    out = {}
    psql("ALTER SYSTEM SET autovacuum = off")
    psql("SELECT pg_reload_conf()")
    try:
        for _ in range(600):  # running workers go on after the reload: cancel them
            if psql("SELECT count(pg_cancel_backend(pid)) FROM pg_stat_activity "
                    "WHERE backend_type = 'autovacuum worker'") == "0":
                break
            time.sleep(0.5)
        time.sleep(0.5)  # reaped, so their CPU is counted before the first window
        for key, *_ in WORKLOADS:
            for side in ["sg", "floor"]:
                psql("CHECKPOINT")
                out[(key, side)] = cpu_per_call(script_of(key, side))
            print(f"cpu {key:32} sg {out[(key, 'sg')]:8.1f} us  floor {out[(key, 'floor')]:8.1f} us",
                  flush=True)
    finally:
        psql("ALTER SYSTEM RESET autovacuum")
        psql("SELECT pg_reload_conf()")
    return out


HOT = [("off", "one org, no slices", "hot_org_off.sql"),
       ("on", "one org, 32 slices", "hot_org_on.sql"),
       ("spread", "spread over 100 orgs", "hot_org_spread.sql"),
       ("bare", "bare hot-row UPDATE", "base_authorize_hot.sql")]


def hot_org():
    """scope_reserve + scope_settle over (key, user, team, org), 1,000 keys
    under one org, slices off and on, next to the same keys over 100 orgs
    and the bare hot-row UPDATE; RUNS alternating runs each, median."""
    subprocess.run([f"{PG_BIN}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", SOCK, "-p", PORT,
                    "-U", "postgres", "-d", DB, "-f", str(SQL / "setup_hot_org.sql")],
                   check=True, capture_output=True)
    out = {}
    turn = 0
    for clients in CLIENTS:
        runs = {v: [] for v, *_ in HOT}
        for run in range(RUNS):
            order = HOT[turn % len(HOT):] + HOT[:turn % len(HOT)]
            turn += 1
            for v, title, script in order:
                psql("CHECKPOINT")
                r = pgbench(script, clients, f"hot-{v}-{clients}")
                runs[v].append(r)
                print(f"hot org {title:24} {clients:3} cl run {run + 1} {r['tps']:10.1f} tps "
                      f"p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms", flush=True)
        out[clients] = {v: median_run(runs[v]) for v in runs}
    bad = psql("SET spendguard.tenant = 'default'; SELECT count(*) FROM spendguard.verify()")
    over = psql("SELECT count(*) FROM spendguard.scope_usage() "
                "WHERE spent_micros + reserved_micros > limit_micros")
    return {"runs": out, "verify": bad.splitlines()[-1], "over": over}


def median_run(runs):
    """The run whose tps is the median (its latency and WAL come with it)."""
    ordered = sorted(runs, key=lambda r: r["tps"])
    return {**ordered[len(ordered) // 2], "tps": statistics.median(r["tps"] for r in runs),
            "runs": [round(r["tps"]) for r in runs]}


def statement_counts():
    """Statements each side runs per transaction: top-level and nested, from
    pg_stat_statements with track = all, in a pass of its own (the timed runs
    go without the library, so it costs neither side anything)."""
    restart("-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all")
    psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    counts = {}
    n = 200
    for key, *_ in WORKLOADS:
        for side in ["sg", "floor"]:
            psql("SELECT pg_stat_statements_reset()")
            subprocess.run([f"{PG_BIN}/pgbench", "-n", "-M", MODE, "-h", SOCK, "-p", PORT,
                            "-U", "postgres", "-c", "1", "-t", str(n), "-f",
                            str(SQL / script_of(key, side)), DB],
                           check=True, capture_output=True, cwd=OUT)
            top, nested = psql(
                "SELECT coalesce(sum(calls) FILTER (WHERE toplevel AND query NOT LIKE '%pg_stat_statements_reset%'), 0), "
                "coalesce(sum(calls) FILTER (WHERE NOT toplevel), 0) FROM pg_stat_statements "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ).split("|")
            counts[(key, side)] = (int(top) / n, int(nested) / n)
    psql("DROP EXTENSION pg_stat_statements")
    restart()
    return counts


def log_growth():
    """Fills the shared event log with LOG_EVENTS events of tenant 'bulk'
    (10,000 budgets whose histories fold; their chain links are
    placeholders, not hashes, so verify() of one reports its chain: it is
    timed, not checked), then
    measures authorize again and times the readers of one budget, with
    their plans (auto_explain of the statements inside the functions)."""
    t0 = time.time()
    psql(f"""
      INSERT INTO spendguard.budget_event (tenant_id, event_seq, capability_id, grant_index, kind,
        allowed, exposure_units, invocation_count_after, total_cost_exposed_after,
        total_cost_realized_after, guarantee_level, chain_n, prev_hash, hash)
      SELECT 'bulk', g, 'b' || (g % 10000), 0, 'increment_invocation', true, 0, g / 10000 + 1, 0, 0,
             'single_node_atomic', g / 10000 + 1, int8send(g / 10000), int8send(g / 10000 + 1)
      FROM generate_series(0, {LOG_EVENTS - 1}) g;
      INSERT INTO spendguard.budget_usage (tenant_id, capability_id, grant_index, invocation_count, seq,
        chain_n, chain_hash)
      SELECT 'bulk', 'b' || k, 0, count(*), max(g), count(*), int8send(count(*)) FROM (
        SELECT g % 10000 AS k, g FROM generate_series(0, {LOG_EVENTS - 1}) g) x GROUP BY k;""")
    psql("VACUUM ANALYZE spendguard.budget_event")
    psql("VACUUM ANALYZE spendguard.budget_usage")
    fill = time.time() - t0
    total = int(psql("SELECT count(*) FROM spendguard.budget_event"))
    after = {}
    turn = 0
    # statements over SLOW_MS in these runs are logged with their plans
    # (auto_explain), so that a side that collapses says why
    log = Path(PGDATA, "server.log")
    log_from = log.stat().st_size if log.exists() else 0
    slow_env = {"PGOPTIONS": f"-c session_preload_libraries=auto_explain "
                             f"-c auto_explain.log_min_duration={SLOW_MS} "
                             f"-c auto_explain.log_nested_statements=on"}
    for clients in CLIENTS:
        runs = {"sg": [], "floor": []}
        for run in range(RUNS):
            order = ["sg", "floor"] if turn % 2 == 0 else ["floor", "sg"]
            turn += 1
            for side in order:
                psql("CHECKPOINT")
                runs[side].append(pgbench(script_of("authorize_spread", side), clients,
                                          f"grown-{clients}-{side}", env=slow_env))
        after[clients] = {side: median_run(runs[side]) for side in runs}
    slow = slow_statements(log, log_from)
    readers = {}
    for name, sql in [("budget_events of one budget", "SELECT count(*) FROM spendguard.budget_events(100, 'b7', 0)"),
                      ("verify() of one budget", "SELECT count(*) FROM spendguard.verify('b7', 0)")]:
        r = subprocess.run(
            [f"{PG_BIN}/psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", SOCK, "-p", PORT, "-U", "postgres",
             "-d", DB, "-c", "LOAD 'auto_explain'", "-c", "SET auto_explain.log_min_duration = 0",
             "-c", "SET auto_explain.log_nested_statements = on", "-c", "SET client_min_messages = log",
             "-c", "SET spendguard.tenant = 'bulk'", "-c", "\\timing on", "-c", sql],
            capture_output=True, text=True, check=True)
        text = r.stdout + r.stderr
        scans = sorted(set(re.findall(r"((?:Index Only Scan|Index Scan|Bitmap Index Scan|Seq Scan)"
                                      r"(?: Backward)?(?: using \w+)? on \w+)", text)))
        ms = re.findall(r"Time: ([0-9.]+) ms", text)
        value = [l for l in r.stdout.splitlines() if l.strip().isdigit()]
        readers[name] = {"ms": float(ms[-1]) if ms else float("nan"), "scans": scans,
                         "rows": value[-1] if value else "?"}
    return {"events": total, "fill_seconds": fill, "after": after, "readers": readers,
            "slow": slow}


SLOW_MS = 100


def slow_statements(log, start):
    """Statements auto_explain logged in log after byte start: how many per
    side (the floor writes tenant 'floor'), and the scans of the slowest."""
    if not log.exists():
        return {}
    with log.open("rb") as f:
        f.seek(start)
        text = f.read().decode("utf-8", "replace")
    out = {}
    for block in re.split(r"\n(?=\d{4}-\d\d-\d\d )", text):
        m = re.search(r"duration: ([0-9.]+) ms\s+plan:", block)
        if not m:
            continue
        side = "floor" if "'floor'" in block else "sg"
        o = out.setdefault(side, {"count": 0, "max_ms": 0.0, "scans": []})
        o["count"] += 1
        if float(m.group(1)) > o["max_ms"]:
            o["max_ms"] = float(m.group(1))
            o["scans"] = sorted(set(re.findall(
                r"((?:Index Only Scan|Index Scan|Bitmap Index Scan|Seq Scan)"
                r"(?: Backward)?(?: using \w+)? on \w+)", block)))
    return out


MEMORY_WORKLOADS = [
    ("authorize_spread", "authorize"),
    ("authorize_capture", "authorize + capture"),
    ("replay", "idempotent replay"),
    ("try_increment", "try_increment"),
    ("spend_upsert", "spend_upsert_daily"),
    ("spend_charge", "spend_charge"),
    ("spend_reserve_settle", "reserve + settle"),
    ("usage_cap_charge", "usage_cap_charge"),
    ("proposal", "proposal create + consume"),
    ("args_hash_64k", "args_hash, 64 KB"),
    ("scope_reserve_settle", "scope reserve + settle"),
    ("scope_reserve_settle_sliced", "scope reserve + settle, 32 slices"),
]


def memory_one(key):
    """RSS of one backend before and after MEMORY_CALLS calls of one workload in one session."""
    per_stmt = 100
    stmts = MEMORY_CALLS // per_stmt
    warm = max(stmts // 100, 10)
    script = OUT / f"memory_{key}.psql"
    stmt = (SQL / f"memory_{key}.sql").read_text().strip().splitlines()[-1]
    with script.open("w") as f:
        f.write("\\set ON_ERROR_STOP on\nSET synchronous_commit = off;\n")
        # \! takes its line verbatim: pass the pid through the environment
        f.write("SELECT pg_backend_pid() AS pid \\gset\n\\setenv SG_BACKEND_PID :pid\n\\o /dev/null\n")
        f.write((stmt + "\n") * warm)
        f.write("\\o\n\\! grep -E '^(VmRSS|RssAnon)' /proc/$SG_BACKEND_PID/status | sed 's/^/before /'\n\\o /dev/null\n")
        f.write((stmt + "\n") * (stmts - warm))
        f.write("\\o\n\\! grep -E '^(VmRSS|RssAnon)' /proc/$SG_BACKEND_PID/status | sed 's/^/after /'\n")
    t0 = time.time()
    r = subprocess.run([f"{PG_BIN}/psql", "-X", "-q", "-h", SOCK, "-p", PORT, "-U", "postgres",
                        "-d", DB, "-f", str(script)], capture_output=True, text=True)
    script.unlink()
    if r.returncode != 0:
        raise RuntimeError(f"memory check {key}: {r.stderr}")
    kb = {}
    for line in r.stdout.splitlines():
        m = re.match(r"(before|after) (VmRSS|RssAnon):\s+(\d+) kB", line)
        if m:
            kb[(m.group(1), m.group(2))] = int(m.group(3))
    return {"calls": stmts * per_stmt, "warmup_calls": warm * per_stmt, "seconds": time.time() - t0,
            **{f"{w}_{k}_kb": v for (w, k), v in kb.items()}}


def memory_check():
    """Every workload of MEMORY_WORKLOADS, two sessions at a time (2 cores)."""
    psql("SELECT spendguard.spend_set_group_budget('memg', 9000000000000000000, 'month')")
    if not HOT_ORG or RESUME:  # the hot org's fixtures, if hot_org() did not run
        subprocess.run([f"{PG_BIN}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", SOCK, "-p",
                        PORT, "-U", "postgres", "-d", DB, "-f", str(SQL / "setup_hot_org.sql")],
                       check=True, capture_output=True)
    # each result is written as it completes (bench/out/memory.json), so a
    # run stopped in this long pass keeps what it measured; a resumed run
    # (BENCH_RESUME) measures only the workloads missing there
    path = OUT / "memory.json"
    done = json.loads(path.read_text()) if RESUME and path.exists() else {}
    lock = threading.Lock()

    def one(key):
        r = memory_one(key)
        with lock:
            done[key] = r
            path.write_text(json.dumps(done))
        print(f"memory {key}: {json.dumps(r)}", flush=True)

    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, [k for k, _ in MEMORY_WORKLOADS if k not in done]))
    return {k: done[k] for k, _ in MEMORY_WORKLOADS}


def machine():
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return f"{os.cpu_count()} cores ({cpu}), {int(mem) // 1024 // 1024 + 1} GiB, {platform.platform()}"


def plot(results, path, hot=None, grown=None, mem=None, cpu=None):
    """The chart: each workload against its floor, then (where the run has
    them) the hot organisation, CPU per call, the hash chain's cost, the
    big log and backend memory."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no chart", file=sys.stderr)
        return False
    cols = 6
    rows = (len(WORKLOADS) + cols - 1) // cols
    extra_rows = 2 if (hot or grown or mem or cpu) else 0
    fig = plt.figure(figsize=(3.4 * cols, 3.6 * (rows + extra_rows)))
    grid = fig.add_gridspec(rows + extra_rows, cols)
    flat = [fig.add_subplot(grid[i // cols, i % cols]) for i in range(len(WORKLOADS))]
    for ax, (key, title, *_) in zip(flat, WORKLOADS):
        xs = range(len(CLIENTS))
        w = 0.21
        for off, side, label, color in [(-1.5 * w, "base", "bare UPDATE (reference)", "#cccccc"),
                                        (-0.5 * w, "floor", "floor: least SQL, same rows", "#888888"),
                                        (0.5 * w, "sg", "spendguard", "#2a6fbb"),
                                        (1.5 * w, "peer", "peer (plain SQL)", "#d9822b")]:
            ax.bar([x + off for x in xs],
                   [results[(key, c)].get(side, {"tps": 0})["tps"] for c in CLIENTS], w,
                   label=label, color=color)
        ax.set_xticks(list(xs), [f"{c} cl" for c in CLIENTS])
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("transactions/s")
    flat[0].legend(fontsize=7)
    titles = {key: title for key, title, *_ in WORKLOADS}
    xs = range(len(CLIENTS))
    if hot:
        ax = fig.add_subplot(grid[rows, 0:2])
        w = 0.2
        for off, side, label, color in [(-w, "off", "one org, no slices", "#bbbbbb"),
                                        (0, "on", "one org, 32 slices", "#2a6fbb"),
                                        (w, "spread", "100 orgs", "#888888")]:
            ax.bar([x + off for x in xs], [hot["runs"][c][side]["tps"] for c in CLIENTS], w,
                   label=label, color=color)
        ax.set_xticks(list(xs), [f"{c} cl" for c in CLIENTS])
        ax.set_title("hot organisation: scope reserve + settle", fontsize=9)
        ax.set_ylabel("transactions/s")
        ax.legend(fontsize=7)
    if grown:
        ax = fig.add_subplot(grid[rows, 2:4])
        w = 0.2
        for off, side, which, label, color in [
                (-1.5 * w, "floor", "empty", "floor, empty log", "#bbbbbb"),
                (-0.5 * w, "floor", "big", "floor, big log", "#888888"),
                (0.5 * w, "sg", "empty", "spendguard, empty log", "#9dc3e6"),
                (1.5 * w, "sg", "big", "spendguard, big log", "#2a6fbb")]:
            ax.bar([x + off for x in xs],
                   [(results[("authorize_spread", c)][side] if which == "empty"
                     else grown["after"][c][side])["tps"] for c in CLIENTS], w,
                   label=label, color=color)
        ax.set_xticks(list(xs), [f"{c} cl" for c in CLIENTS])
        ax.set_title(f"authorize, spread: empty log and {grown['events']:,} rows", fontsize=9)
        ax.set_ylabel("transactions/s")
        ax.legend(fontsize=6, loc="lower center")
    if mem:
        ax = fig.add_subplot(grid[rows, 4:6])
        keys = [k for k, _ in MEMORY_WORKLOADS if k in mem and mem[k].get("after_RssAnon_kb") is not None]
        ax.barh(range(len(keys)), [mem[k]["after_RssAnon_kb"] - mem[k]["before_RssAnon_kb"]
                                   for k in keys], color="#2a6fbb")
        ax.set_yticks(range(len(keys)), [dict(MEMORY_WORKLOADS)[k] for k in keys], fontsize=7)
        ax.invert_yaxis()
        calls = next(iter(mem.values()))["calls"]
        ax.set_title(f"backend RssAnon growth over {calls:,} calls", fontsize=9)
        ax.set_xlabel("kB")
    if cpu:
        ax = fig.add_subplot(grid[rows + 1, 0:3])
        keys = [k for k, *_ in WORKLOADS if (k, "sg") in cpu and (k, "floor") in cpu]
        ax.bar(range(len(keys)), [cpu[(k, "floor")] / cpu[(k, "sg")] for k in keys], color="#2a6fbb")
        ax.axhline(0.9, color="#d9822b", linewidth=1, label="0.9")
        ax.set_xticks(range(len(keys)), [titles[k] for k in keys], rotation=60, ha="right", fontsize=6)
        ax.set_ylim(0, 1.1)
        ax.set_title("server CPU per call, 1 client: floor / spendguard", fontsize=9)
        ax.legend(fontsize=7)
    chained = [k for k, *_ in WORKLOADS if "unchained" in results[(k, CLIENTS[0])]]
    if chained:
        ax = fig.add_subplot(grid[rows + 1, 3:6])
        w = 0.8 / len(CLIENTS)
        for i, c in enumerate(CLIENTS):
            ax.bar([x + (i - (len(CLIENTS) - 1) / 2) * w for x in range(len(chained))],
                   [(1 - results[(k, c)]["sg"]["tps"] / results[(k, c)]["unchained"]["tps"]) * 100
                    for k in chained], w, label=f"{c} cl",
                   color=["#9dc3e6", "#2a6fbb", "#1b4a7d"][i % 3])
        ax.set_xticks(range(len(chained)), [titles[k] for k in chained], fontsize=7)
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set_title("the hash chain's cost: 1 − chained / unchained throughput", fontsize=9)
        ax.set_ylabel("%")
        ax.legend(fontsize=7)
    fig.suptitle(f"spendguard vs its floor, pgbench -M {MODE}, median of {RUNS} (higher is better)")
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=100)
    return True


def unpack(state):
    """A parsed bench/out/state.json as main() uses it: keys back to tuples and ints."""
    results = {(k, int(c)): v for k, c, v in state["results"]}
    hot = state["hot"] and {**state["hot"], "runs": {int(c): v for c, v in state["hot"]["runs"].items()}}
    cpu = {(k, side): v for k, side, v in state["cpu"]}
    counts = {(k, side): tuple(v) for k, side, v in state.get("counts", [])}
    return results, hot, cpu, counts, grown_of(state)


def grown_of(state):
    """The log pass kept in a state, if it ran: its client counts back to ints."""
    g = state.get("grown")
    return g and {**g, "after": {int(c): v for c, v in g["after"].items()}}


def main():
    OUT.mkdir(exist_ok=True)
    # the cluster as postgresql.conf sets it: nothing left by ALTER SYSTEM or
    # by the options of an earlier start
    psql("ALTER SYSTEM RESET ALL")
    restart()
    settings = {s: psql(f"SHOW {s}") for s in
                ["server_version", "fsync", "synchronous_commit", "shared_buffers", "wal_level",
                 "max_connections", "full_page_writes", "checkpoint_timeout", "max_wal_size"]}
    print("settings:", json.dumps(settings))
    subprocess.run([f"{PG_BIN}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", SOCK, "-p", PORT,
                    "-U", "postgres", "-d", DB, "-f", str(SQL / "setup.sql")],
                   check=True, capture_output=True)
    peer = setup_peers()
    setup_unchained()
    state = json.loads(Path(RESUME).read_text()) if RESUME else None
    counts = statement_counts() if STATEMENTS and not (state and state.get("counts")) else {}
    results = {}
    turn = 0
    for clients in ([] if state else CLIENTS):
        for key, title, *_ in WORKLOADS:
            sides = sides_of(key)
            runs = {side: [] for side in sides}

            def one_round(label):
                # rotate who goes first, so drift hits every side
                nonlocal turn
                order = sides[turn % len(sides):] + sides[:turn % len(sides)]
                turn += 1
                for side in order:
                    psql("CHECKPOINT")
                    r = pgbench(script_of(key, side), clients, f"{key}-{clients}-{side}",
                                db=UNCHAINED_DB if side == "unchained" else None)
                    runs[side].append(r)
                    print(f"{title:30} {clients:3} cl {label} {side:5} {r['tps']:10.1f} tps "
                          f"p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms", flush=True)

            for run in range(RUNS):
                one_round(f"run {run + 1}")
            # where the runs spread widely, more alternating runs
            extra = 0
            while extra < EXTRA_RUNS and any(spread(runs[s]) > SPREAD for s in ["sg", "floor"]):
                extra += 1
                one_round(f"extra {extra}")
            results[(key, clients)] = {side: {**median_run(runs[side]), "spread": spread(runs[side])}
                                       for side in sides}
    if state:
        results, hot, cpu, saved_counts, _ = unpack(state)
        counts = counts or saved_counts
    else:
        hot = hot_org() if HOT_ORG else None
        cpu = cpu_pass() if CPU else {}
    # the run so far, so that a later pass that fails can be resumed
    # (BENCH_RESUME) without running it again
    (OUT / "state.json").write_text(json.dumps({
        "results": [[k, c, v] for (k, c), v in results.items()], "hot": hot,
        "cpu": [[k, side, v] for (k, side), v in cpu.items()],
        "counts": [[k, side, list(v)] for (k, side), v in counts.items()],
        # a resumed state's log pass stays (BENCH_RESUME may name this file)
        **({"grown": state["grown"]} if state and state.get("grown") else {})}))
    if state and state.get("grown"):
        grown = grown_of(state)
    else:
        grown = log_growth() if LOG_EVENTS else None
        if grown:
            saved = json.loads((OUT / "state.json").read_text())
            (OUT / "state.json").write_text(json.dumps({**saved, "grown": grown}))
    mem = memory_check() if MEMORY_CALLS else {}
    print("memory:", json.dumps(mem))
    chart = plot(results, HERE / "throughput.png", hot, grown, mem, cpu)

    lines = ["# make bench results", "",
             f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: `pgbench -M {MODE}`, "
             f"{SECONDS} s per run, {RUNS} alternating runs per side; each figure is the median "
             "of its runs, each ratio is between medians of this one `make bench`.", "",
             f"* Machine: {machine()}",
             f"* PostgreSQL {settings['server_version']}; " +
             ", ".join(f"{k} = {v}" for k, v in settings.items() if k != "server_version"),
             f"* pgbench: `-n -M {MODE} -c C -j min(C,2) -T {SECONDS}`, autocommit, Unix socket, "
             "same machine", ""] + ([
             "Resumed (`BENCH_RESUME`): the workload, hot organisation and CPU figures are an "
             "earlier run's, kept in its bench/out/state.json; the passes after them (statement "
             "counts, the log growth, memory) ran after it, unless the state or bench/out/memory.json "
             "already held them. WAL per call is not kept in that state.", ""] if state else []) + [
             "The **floor** is the least plain SQL that writes what SPEC requires for the call: "
             "one CTE statement per call on spendguard's own tables (tenant `floor`), so the same "
             "rows, indexes and constraints (`bench/sql/floor_*.sql`). The bare UPDATE "
             "(`bench/sql/base_*.sql`) writes no audit row; it is a reference only.", "",
             "| workload | spendguard | floor |", "|---|---|---|"]
    lines += [f"| {t} | {s} | {f} |" for _, t, s, f, _ in WORKLOADS]
    lines += ["", "| workload | clients | spendguard tps | p50 ms | p99 ms | floor tps | "
              "**spendguard / floor** | bare UPDATE tps | spendguard / bare | runs (sg; floor) | "
              "spread (sg; floor) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for key, title, *_ in WORKLOADS:
        for c in CLIENTS:
            r = results[(key, c)]
            sg, fl, base = r["sg"], r["floor"], r.get("base")
            bare = f"{base['tps']:.0f} | {sg['tps'] / base['tps']:.2f}" if base else "– | –"
            lines.append(f"| {title} | {c} | {sg['tps']:.0f} | {sg['p50_ms']:.2f} | {sg['p99_ms']:.2f} | "
                         f"{fl['tps']:.0f} | **{sg['tps'] / fl['tps']:.2f}** | {bare} | "
                         f"{sg['runs']}; {fl['runs']} | {sg['spread'] * 100:.0f} %; "
                         f"{fl['spread'] * 100:.0f} % |")
    lines += ["", "Spread: (max − min) / median of a side's runs; a side above "
              f"{SPREAD * 100:.0f} % got up to {EXTRA_RUNS} more alternating runs."]
    if cpu:
        lines += ["", "## Server CPU per call, 1 client", "",
                  "CPU time of the whole cluster (postmaster and every child, from /proc: live "
                  "processes' utime + stime, exited ones through the postmaster's cutime + "
                  "cstime) over a 3 s pgbench run of one client, divided by its transactions, "
                  "with autovacuum off for this pass (its workers would be counted). "
                  "It does not depend on what else the machine runs, so its ratio is steadier "
                  "than throughput's (10 ms clock ticks: about ±2 µs a call).", "",
                  "| workload | spendguard µs | floor µs | spendguard / floor | floor / spendguard |",
                  "|---|---:|---:|---:|---:|"]
        for key, title, *_ in WORKLOADS:
            a, b = cpu[(key, "sg")], cpu[(key, "floor")]
            lines.append(f"| {title} | {a:.0f} | {b:.0f} | {a / b:.2f} | **{b / a:.2f}** |")
    if hot:
        lines += ["", "## A hot organisation (SPEC §6 `slices`)", "",
                  "`scope_reserve` then `scope_settle` (two transactions) over (key, user, team, "
                  "org): 1,000 keys of 500 users in 100 teams, every call under one org whose day "
                  "budget has no slices, or 32; the same keys spread over 100 orgs; and the bare "
                  "UPDATE of one row (`bench/sql/hot_org_*.sql`, `base_authorize_hot.sql`). "
                  f"Median of {RUNS} alternating runs. After the runs: verify() found "
                  f"{hot['verify']} problems, {hot['over']} budgets are above their limit.", "",
                  "| clients | no slices tps | 32 slices tps | 100 orgs tps | **32 slices / 100 orgs** "
                  "| no slices / 100 orgs | bare hot-row UPDATE tps | runs (off; on; spread) |",
                  "|---:|---:|---:|---:|---:|---:|---:|---|"]
        for c in CLIENTS:
            h = hot["runs"][c]
            lines.append(f"| {c} | {h['off']['tps']:.0f} | {h['on']['tps']:.0f} | "
                         f"{h['spread']['tps']:.0f} | **{h['on']['tps'] / h['spread']['tps']:.2f}** | "
                         f"{h['off']['tps'] / h['spread']['tps']:.2f} | {h['bare']['tps']:.0f} | "
                         f"{h['off']['runs']}; {h['on']['runs']}; {h['spread']['runs']} |")
    chained = [(key, title) for key, title, *_ in WORKLOADS if "unchained" in results[(key, CLIENTS[0])]]
    if chained:
        lines += ["", "## The hash chain (SPEC §9)", "",
                  "The same spendguard calls in a database created at 0.4.0, whose schema has no "
                  "chain: this library serves it with its 0.4.0 statements (events without links, "
                  "no head on the budget row, no hash computed), in runs alternating with the "
                  "others. The chain's cost is 1 − chained / unchained.", "",
                  "| workload | clients | chained tps | unchained tps | chained / unchained | chain's cost |",
                  "|---|---:|---:|---:|---:|---:|"]
        for key, title in chained:
            for c in CLIENTS:
                r = results[(key, c)]
                ratio = r["sg"]["tps"] / r["unchained"]["tps"]
                lines.append(f"| {title} | {c} | {r['sg']['tps']:.0f} | {r['unchained']['tps']:.0f} | "
                             f"{ratio:.3f} | {(1 - ratio) * 100:.1f} % |")
    peered = [(key, title) for key, title, *_ in WORKLOADS if "peer" in results[(key, CLIENTS[0])]]
    if peered:
        lines += ["", "## Peers", "",
                  "Plain-SQL peers, run from checkouts of them (`BENCH_PEERS_DIR`; their code is "
                  "not part of this repository), each in a database of its own, same settings "
                  "(`bench/sql/peer_*.sql`):", "",
                  "* [pgledger](https://github.com/pgr0ss/pgledger), a double-entry ledger in "
                  "PL/pgSQL, next to authorize: one `pgledger_create_transfer` between two of "
                  "10,000 accounts updates two balances and writes a transfer and two entries, "
                  "one transaction like one authorize;",
                  "* [pg-authz](https://github.com/varunchopra/pg-authz)'s meter, next to reserve "
                  "+ settle: `meter.reserve` then `meter.commit` of the reservation (two "
                  "transactions) over 10,000 users with an allocated balance.", "",
                  "| spendguard workload | peer | clients | spendguard tps | peer tps | spendguard / peer |",
                  "|---|---|---:|---:|---:|---:|"]
        for key, title in peered:
            for c in CLIENTS:
                r = results[(key, c)]
                lines.append(f"| {title} | {PEERS[key][0]} | {c} | {r['sg']['tps']:.0f} | "
                             f"{r['peer']['tps']:.0f} | {r['sg']['tps'] / r['peer']['tps']:.2f} |")
    elif not peer:
        lines += ["", "No peer in this run (`BENCH_PEERS_DIR` not set: see docs/performance.md, "
                  "\"Peers\")."]
    if counts:
        lines += ["", "## Statements per transaction", "",
                  "From `pg_stat_statements` (track = all) in a pass of its own, 200 transactions "
                  "each: top-level statements the client sent, and statements run inside them "
                  "(spendguard's SPI statements). An authorize that passes runs the same two inner "
                  "statements with or without hold expiry in the extension: the lazy expiry only "
                  "runs on the way to a `max_total_cost` denial.", "",
                  "| workload | spendguard top-level | spendguard nested | floor top-level | floor nested |",
                  "|---|---:|---:|---:|---:|"]
        for key, title, *_ in WORKLOADS:
            st, sn = counts[(key, "sg")]
            ft, fn = counts[(key, "floor")]
            lines.append(f"| {title} | {st:.1f} | {sn:.1f} | {ft:.1f} | {fn:.1f} |")
    wal_clients = 8 if 8 in CLIENTS else CLIENTS[-1]
    lines += ["", "## WAL per transaction", "",
              "From `pg_stat_wal` around the median run (cluster-wide, so it includes checkpoints' "
              "full-page images and background work), divided by the transactions pgbench logged; "
              f"{wal_clients} clients. Row locks (`FOR UPDATE`) are WAL records too.", "",
              "| workload | spendguard bytes | records | floor bytes | records | bare bytes | records |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for key, title, *_ in WORKLOADS:
        r = results[(key, wal_clients)]
        cells = []
        for side in ["sg", "floor", "base"]:
            x = r.get(side)
            cells += ([f"{x['wal_bytes']:.0f}", f"{x['wal_records']:.1f}"]
                      if x and x.get("wal_bytes") is not None else ["–", "–"])
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    if grown:
        lines += ["", "## As the log grows", "",
                  f"{LOG_EVENTS:,} events of another tenant put into the shared log "
                  f"({grown['events']:,} rows in all, {grown['fill_seconds']:.0f} s to load), then "
                  "authorize, spread, measured again the same way:", "",
                  "| clients | spendguard tps, empty log | with the big log | ratio | floor tps, empty log "
                  "| with the big log | spendguard / floor, big log |", "|---:|---:|---:|---:|---:|---:|---:|"]
        for c in CLIENTS:
            e, g = results[("authorize_spread", c)], grown["after"][c]
            lines.append(f"| {c} | {e['sg']['tps']:.0f} | {g['sg']['tps']:.0f} | "
                         f"**{g['sg']['tps'] / e['sg']['tps']:.2f}** | {e['floor']['tps']:.0f} | "
                         f"{g['floor']['tps']:.0f} | {g['sg']['tps'] / g['floor']['tps']:.2f} |")
        slow = grown.get("slow") or {}
        lines += ["", f"Statements over {SLOW_MS} ms in these runs (auto_explain, nested statements "
                  "included): " + ("none." if not slow else "; ".join(
                      f"{side} {o['count']}, the slowest {o['max_ms']:.0f} ms through "
                      f"{', '.join(o['scans']) or '?'}" for side, o in sorted(slow.items())) + ".")]
        lines += ["", "Readers of one budget of the big tenant (10,000 budgets of 1,000 events), "
                  "with the scans auto_explain reports for the statements inside them:", "",
                  "| reader | time | scans |", "|---|---:|---|"]
        for name, r in grown["readers"].items():
            lines.append(f"| {name} | {r['ms']:.1f} ms | {'; '.join(r['scans']) or '?'} |")
    if mem:
        first = next(iter(mem.values()))
        lines += ["", "## Backend memory", "",
                  f"Per workload, one session making {first['calls']:,} calls (100 per statement, "
                  f"`bench/sql/memory_*.sql`; synchronous_commit off for speed; two sessions at a "
                  f"time), RSS read from /proc after {first['warmup_calls']:,} warm-up calls and "
                  f"at the end:", "",
                  "| workload | RssAnon after warm-up | RssAnon at the end | growth | VmRSS growth | seconds |",
                  "|---|---:|---:|---:|---:|---:|"]
        for key, title in MEMORY_WORKLOADS:
            m = mem.get(key)
            if not m or m.get("before_RssAnon_kb") is None or m.get("after_RssAnon_kb") is None:
                continue
            b, a = m["before_RssAnon_kb"], m["after_RssAnon_kb"]
            vb, va = m.get("before_VmRSS_kb", 0), m.get("after_VmRSS_kb", 0)
            lines.append(f"| {title} | {b:,} kB | {a:,} kB | {a - b:+,} kB | {va - vb:+,} kB | "
                         f"{m['seconds']:.0f} |")
        lines += ["", "RssAnon is the backend's private memory (a leak shows here); VmRSS also counts "
                  "the shared buffers the backend has touched, which grows with the data it reads."]
    lines += ["", "Chart: `bench/throughput.png`." if chart else "No chart (matplotlib missing).", ""]
    (HERE / "RESULTS.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--chart"]:
        # the chart again from a run's saved figures, without running anything:
        # bench.py --chart bench/out/state.json [bench/out/memory.json]
        res, hot_, cpu_, _, grown_ = unpack(json.loads(Path(sys.argv[2]).read_text()))
        mem_ = json.loads(Path(sys.argv[3]).read_text()) if len(sys.argv) > 3 else {}
        plot(res, HERE / "throughput.png", hot_, grown_, mem_, cpu_)
    else:
        main()
