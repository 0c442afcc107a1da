"""spendguard from Python with psycopg 3 (prepares repeated statements).

The flow every example runs: authorize with a TTL -> the model call ->
capture; reserve -> settle for a user's daily budget; propose -> apply
together with the app's own write. SQLSTATEs map to what an app does:
SG020 -> HTTP 429, 40001 -> retry the transaction with the same event_id,
SG004 -> a bug, SG011 / SG012 -> ask again.
Connection: $SG_CONNINFO (libpq key=value).
"""
import os
import uuid

import psycopg
from psycopg import errors

WHAT_TO_DO = {"SG020": "HTTP 429", "SG004": "bug in the caller", "SG011": "ask again",
              "SG012": "ask again", "40001": "retry"}


def sqlstate_of(fn):
    try:
        fn()
    except psycopg.Error as e:
        return e.sqlstate
    raise AssertionError("expected an error")


def main():
    tenant = "py-psycopg-" + uuid.uuid4().hex[:12]
    conninfo = os.environ["SG_CONNINFO"]
    with psycopg.connect(conninfo, autocommit=True, prepare_threshold=0) as db, \
         psycopg.connect(conninfo, autocommit=True) as other:
        for c in (db, other):
            c.execute("SELECT set_config('spendguard.tenant', %s, false)", (tenant,))

        # authorize with a TTL -> the model call -> capture the real cost
        r = db.execute("SELECT authorized, committed_cost_after FROM spendguard.budget_authorize_hold("
                       "'openai:gpt-4o', 0, 30000, max_total_cost => 100000, hold_id => %s, "
                       "event_id => %s, ttl => '5 minutes')", ("call-1", "req-1")).fetchone()
        print(f"authorize with ttl: {'authorized' if r[0] else 'denied'}, committed {r[1]}")
        cost = 27450  # what the model call cost
        print(f"model call: {cost} micros")
        cap = db.execute("SELECT kind, realized_spend_units, commit_index FROM spendguard.budget_capture_hold("
                         "hold_id => %s, realized_spend => %s, event_id => %s)", ("call-1", cost, "cap-1")).fetchone()
        print(f"capture: {cap[0]}, realized {cap[1]}")
        again = db.execute("SELECT commit_index FROM spendguard.budget_capture_hold("
                           "hold_id => %s, realized_spend => %s, event_id => %s)", ("call-1", cost, "cap-1")).fetchone()
        print(f"replay of the capture's event_id: {'same' if again[0] == cap[2] else 'another'} commit index")
        code = sqlstate_of(lambda: db.execute("SELECT spendguard.budget_capture_hold(hold_id => 'call-1', "
                                              "realized_spend => 1, event_id => 'cap-1')"))
        print(f"event_id reused for another request: {code} -> {WHAT_TO_DO[code]}")

        # reserve -> the model call -> settle, against a daily budget
        db.execute("SELECT spendguard.spend_set_group_budget('free', 40000, 'day')")
        r = db.execute("SELECT allowed, reserved_micros FROM spendguard.spend_reserve("
                       "'user-42', 'free', 30000, 'res-1')").fetchone()
        print(f"reserve: {'allowed' if r[0] else 'denied'}, reserved {r[1]}")
        r = db.execute("SELECT spend_micros FROM spendguard.spend_settle('res-1', %s)", (cost,)).fetchone()
        print(f"settle: day total {r[0]}")
        code = sqlstate_of(lambda: db.execute("SELECT spendguard.spend_charge_enforce('user-42', 'free', 20000)"))
        print(f"charge over the daily budget: {code} -> {WHAT_TO_DO[code]}")

        # scoped budgets: one decision over every budget of key, user, team
        # and org; a denial names the budget that blocked and the room left
        db.execute("SELECT spendguard.scope_set_budget('org:acme', 'day', 50000)")
        db.execute("SELECT spendguard.scope_set_budget('user:u42', 'day', 100000)")
        scopes = ["key:k1", "user:u42", "team:ml", "org:acme"]
        r = db.execute("SELECT allowed, remaining_micros FROM spendguard.scope_reserve(%s, 30000, 'sres-1')", (scopes,)).fetchone()
        print(f"scoped reserve over key, user, team and org: {'allowed' if r[0] else 'denied'}, least room left {r[1]}")
        r = db.execute("SELECT headroom FROM spendguard.scope_settle('sres-1', %s)", (cost,)).fetchone()
        org_day = next(h for h in r[0] if h["scope"] == "org:acme" and h["period"] == "day")
        print(f"scoped settle: org:acme day spent {org_day['spent_micros']}")
        r = db.execute("SELECT allowed, blocked_scope, blocked_period, remaining_micros FROM spendguard.scope_reserve(%s, 30000, 'sres-2')", (scopes,)).fetchone()
        print(f"scoped reserve again: {'allowed' if r[0] else 'denied'} at {r[1]} ({r[2]}), {r[3]} left")

        # 40001: a REPEATABLE READ transaction meets a concurrent change of
        # its budget; the retry with the same event_id takes effect once
        db.autocommit = False
        db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        db.execute("SELECT 1")  # the transaction's snapshot
        other.execute("SELECT spendguard.budget_authorize_hold('shared', 0, 1)")
        attempts, codes = 0, []
        while True:
            attempts += 1
            try:
                db.execute("SELECT spendguard.budget_authorize_hold('shared', 0, 5, event_id => 'req-ser')")
                db.commit()
                break
            except errors.SerializationFailure as e:
                codes.append(e.sqlstate)
                db.rollback()
        db.autocommit = True
        n = db.execute("SELECT count(*) FROM spendguard.budget_events(100, 'shared', 0) "
                       "WHERE event_id = 'req-ser'").fetchone()[0]
        print(f"serialization failure: {codes[0]} -> retried with the same event_id, "
              f"authorized {'once' if n == 1 and attempts == 2 else n}")

        # propose -> apply in the same transaction as the app's own write
        db.execute("CREATE TEMP TABLE refunds (order_id int, amount int)")
        p = db.execute("SELECT token FROM spendguard.proposal_create('application', 'agent-7', 'refund', "
                       "%s::jsonb, effect => 'destructive')", ('{"order": 43, "amount": 500}',)).fetchone()
        print(f"proposal: created, token {'shown once' if p[0].startswith('propose:') else 'missing'}")
        with db.transaction():
            r = db.execute("SELECT applied_by_id FROM spendguard.proposal_consume(%s, 'user', 'ops-1', %s::jsonb)",
                           (p[0], '{"amount": 500, "order": 43}')).fetchone()
            db.execute("INSERT INTO refunds VALUES (43, 500)")
        n = db.execute("SELECT count(*) FROM refunds").fetchone()[0]
        print(f"apply with the app's own write: applied by {r[0]}, refunds {n}")
        code = sqlstate_of(lambda: db.execute("SELECT spendguard.proposal_consume(%s, 'user', 'ops-2')", (p[0],)))
        print(f"apply again: {code} -> {WHAT_TO_DO[code]}")
        late = db.execute("SELECT token FROM spendguard.proposal_create('user', 'u', 'late', '{}', "
                          "ttl => '1 microsecond')").fetchone()[0]
        code = sqlstate_of(lambda: db.execute("SELECT spendguard.proposal_consume(%s, 'user', 'ops-1')", (late,)))
        print(f"apply after expiry: {code} -> {WHAT_TO_DO[code]}")
        n = db.execute("SELECT count(*) FROM spendguard.verify()").fetchone()[0]
        print(f"verify: {n} problems")


if __name__ == "__main__":
    main()
