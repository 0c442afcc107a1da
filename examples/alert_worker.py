"""spendguard alert delivery worker (SPEC §7; docs/alerts.md).

LISTENs on spendguard_alerts, claims undelivered alerts of every tenant
(spendguard.alert_claim_all, a lease per claim), POSTs each one as JSON to
a webhook with its id as the idempotency key (header Idempotency-Key and
field "id"), acks the ones the webhook answered 2xx, and backs off on
errors. On every (re)connect it claims first, so alerts written while it
was away (or while it was down, or whose lease ran out) are caught up; a
NOTIFY only wakes it up, it carries no data.

Delivery is at least once: a worker killed after a POST and before its ack
leaves the alert to be claimed again when the lease runs out, so the
receiver may see an id twice and must dedup by it.

    SG_CONNINFO='host=... dbname=... user=...' \\
      python examples/alert_worker.py --url https://hooks.example.com/spendguard

The role it connects as needs EXECUTE on spendguard.alert_claim_all and
spendguard.alert_ack_all (not granted to PUBLIC).
"""
import argparse
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request

import psycopg
from psycopg.rows import dict_row


def log(msg):
    print(f"alert_worker: {msg}", file=sys.stderr, flush=True)


def post(url, alert, timeout):
    """True when the webhook took the alert (a 2xx answer)."""
    body = json.dumps(alert, default=str, sort_keys=True).encode()
    req = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": str(alert["id"])},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return 200 <= r.status < 300
    except (urllib.error.URLError, OSError, socket.timeout) as e:
        log(f"POST of alert {alert['id']} failed: {e}")
        return False


def deliver(conn, args):
    """Claims a batch, posts it, acks what was taken. Returns (claimed,
    failed): the caller claims again at once when a full batch came, and
    backs off after a failure (unacked alerts come back when their lease
    runs out)."""
    rows = conn.execute(
        "SELECT * FROM spendguard.alert_claim_all(%s, %s, make_interval(secs => %s))",
        (args.consumer, args.batch, args.lease),
    ).fetchall()
    taken, failed = [], False
    for a in rows:
        if post(args.url, a, args.timeout):
            taken.append(a["id"])
        else:
            failed = True
            break
    if taken:
        conn.execute("SELECT spendguard.alert_ack_all(%s)", (taken,))
    return len(rows), failed


def run(args):
    backoff = args.backoff
    while True:
        try:
            with psycopg.connect(os.environ["SG_CONNINFO"], autocommit=True, row_factory=dict_row) as conn:
                conn.execute("LISTEN spendguard_alerts")
                log(f"connected as consumer {args.consumer}; catching up")
                while True:
                    claimed, failed = deliver(conn, args)
                    if failed:
                        time.sleep(backoff)
                        backoff = min(backoff * 2, args.max_backoff)
                        continue
                    backoff = args.backoff
                    if claimed == args.batch:
                        continue
                    # wait for a wake-up, or poll: a lease that ran out
                    # sends no NOTIFY
                    for _ in conn.notifies(timeout=args.poll, stop_after=1):
                        pass
        except psycopg.Error as e:
            log(f"database error, reconnecting in {backoff:.1f} s: {e}")
            time.sleep(backoff)
            backoff = min(backoff * 2, args.max_backoff)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="the webhook that receives each alert as JSON")
    p.add_argument("--consumer", default=f"{socket.gethostname()}-{os.getpid()}")
    p.add_argument("--batch", type=int, default=100, help="alerts per claim")
    p.add_argument("--lease", type=float, default=60, help="seconds an alert stays claimed unacked")
    p.add_argument("--poll", type=float, default=5, help="seconds between claims without a wake-up")
    p.add_argument("--timeout", type=float, default=10, help="seconds for one POST")
    p.add_argument("--backoff", type=float, default=0.5, help="first wait after an error, doubled up to --max-backoff")
    p.add_argument("--max-backoff", type=float, default=30)
    run(p.parse_args())


if __name__ == "__main__":
    main()
