"""spendguard from Python with asyncpg (binary protocol, prepared
statements): the same flow and the same SQLSTATE handling as
flow_psycopg.py. Composite results come back as Records; custom SQLSTATEs
(SG0xx) as asyncpg.PostgresError with .sqlstate.
Connection: $SG_CONNINFO (libpq key=value), mapped to asyncpg's arguments.
"""
import asyncio
import json
import os
import uuid

import asyncpg

WHAT_TO_DO = {"SG020": "HTTP 429", "SG004": "bug in the caller", "SG011": "ask again",
              "SG012": "ask again", "40001": "retry"}


def params():
    kv = dict(p.split("=", 1) for p in os.environ["SG_CONNINFO"].split())
    return {"host": kv["host"], "port": int(kv["port"]), "user": kv["user"], "database": kv["dbname"]}


async def sqlstate_of(coro):
    try:
        await coro
    except asyncpg.PostgresError as e:
        return e.sqlstate
    raise AssertionError("expected an error")


async def main():
    tenant = "py-asyncpg-" + uuid.uuid4().hex[:12]
    db = await asyncpg.connect(**params())
    other = await asyncpg.connect(**params())
    for c in (db, other):
        await c.execute("SELECT set_config('spendguard.tenant', $1, false)", tenant)

    r = await db.fetchrow("SELECT * FROM spendguard.budget_authorize_hold('openai:gpt-4o', 0, 30000, "
                          "max_total_cost => 100000, hold_id => $1, event_id => $2, ttl => '5 minutes')",
                          "call-1", "req-1")
    print(f"authorize with ttl: {'authorized' if r['authorized'] else 'denied'}, committed {r['committed_cost_after']}")
    cost = 27450
    print(f"model call: {cost} micros")
    capture = "SELECT * FROM spendguard.budget_capture_hold(hold_id => $1, realized_spend => $2, event_id => $3)"
    cap = await db.fetchrow(capture, "call-1", cost, "cap-1")
    print(f"capture: {cap['kind']}, realized {cap['realized_spend_units']}")
    again = await db.fetchrow(capture, "call-1", cost, "cap-1")
    print(f"replay of the capture's event_id: {'same' if again['commit_index'] == cap['commit_index'] else 'another'} commit index")
    code = await sqlstate_of(db.fetchrow(capture, "call-1", 1, "cap-1"))
    print(f"event_id reused for another request: {code} -> {WHAT_TO_DO[code]}")

    await db.execute("SELECT spendguard.spend_set_group_budget('free', 40000, 'day')")
    r = await db.fetchrow("SELECT * FROM spendguard.spend_reserve('user-42', 'free', 30000, 'res-1')")
    print(f"reserve: {'allowed' if r['allowed'] else 'denied'}, reserved {r['reserved_micros']}")
    r = await db.fetchrow("SELECT * FROM spendguard.spend_settle('res-1', $1)", cost)
    print(f"settle: day total {r['spend_micros']}")
    code = await sqlstate_of(db.fetchrow("SELECT * FROM spendguard.spend_charge_enforce('user-42', 'free', 20000)"))
    print(f"charge over the daily budget: {code} -> {WHAT_TO_DO[code]}")

    # scoped budgets: one decision over every budget of key, user, team and
    # org; headroom is jsonb, which asyncpg returns as text
    await db.execute("SELECT spendguard.scope_set_budget('org:acme', 'day', 50000)")
    await db.execute("SELECT spendguard.scope_set_budget('user:u42', 'day', 100000)")
    scopes = ["key:k1", "user:u42", "team:ml", "org:acme"]
    r = await db.fetchrow("SELECT allowed, remaining_micros FROM spendguard.scope_reserve($1, 30000, 'sres-1')", scopes)
    print(f"scoped reserve over key, user, team and org: {'allowed' if r['allowed'] else 'denied'}, least room left {r['remaining_micros']}")
    r = await db.fetchrow("SELECT headroom FROM spendguard.scope_settle('sres-1', $1)", cost)
    org_day = next(h for h in json.loads(r["headroom"]) if h["scope"] == "org:acme" and h["period"] == "day")
    print(f"scoped settle: org:acme day spent {org_day['spent_micros']}")
    r = await db.fetchrow("SELECT * FROM spendguard.scope_reserve($1, 30000, 'sres-2')", scopes)
    print(f"scoped reserve again: {'allowed' if r['allowed'] else 'denied'} at {r['blocked_scope']} ({r['blocked_period']}), {r['remaining_micros']} left")

    attempts, codes = 0, []
    tx = db.transaction(isolation="repeatable_read")
    await tx.start()
    await db.fetchval("SELECT 1")
    await other.execute("SELECT spendguard.budget_authorize_hold('shared', 0, 1)")
    while True:
        attempts += 1
        try:
            await db.fetchrow("SELECT * FROM spendguard.budget_authorize_hold('shared', 0, 5, event_id => 'req-ser')")
            await tx.commit()
            break
        except asyncpg.exceptions.SerializationError as e:
            codes.append(e.sqlstate)
            await tx.rollback()
            tx = db.transaction(isolation="repeatable_read")
            await tx.start()
    n = await db.fetchval("SELECT count(*) FROM spendguard.budget_events(100, 'shared', 0) WHERE event_id = 'req-ser'")
    print(f"serialization failure: {codes[0]} -> retried with the same event_id, "
          f"authorized {'once' if n == 1 and attempts == 2 else n}")

    await db.execute("CREATE TEMP TABLE refunds (order_id int, amount int)")
    token = await db.fetchval("SELECT token FROM spendguard.proposal_create('application', 'agent-7', 'refund', "
                              "$1::jsonb, effect => 'destructive')", '{"order": 43, "amount": 500}')
    print(f"proposal: created, token {'shown once' if token.startswith('propose:') else 'missing'}")
    async with db.transaction():
        row = await db.fetchrow("SELECT * FROM spendguard.proposal_consume($1, 'user', 'ops-1', $2::jsonb)",
                                token, '{"amount": 500, "order": 43}')
        await db.execute("INSERT INTO refunds VALUES (43, 500)")
    n = await db.fetchval("SELECT count(*) FROM refunds")
    print(f"apply with the app's own write: applied by {row['applied_by_id']}, refunds {n}")
    code = await sqlstate_of(db.fetchrow("SELECT * FROM spendguard.proposal_consume($1, 'user', 'ops-2')", token))
    print(f"apply again: {code} -> {WHAT_TO_DO[code]}")
    late = await db.fetchval("SELECT token FROM spendguard.proposal_create('user', 'u', 'late', '{}', ttl => '1 microsecond')")
    code = await sqlstate_of(db.fetchrow("SELECT * FROM spendguard.proposal_consume($1, 'user', 'ops-1')", late))
    print(f"apply after expiry: {code} -> {WHAT_TO_DO[code]}")
    print(f"verify: {await db.fetchval('SELECT count(*) FROM spendguard.verify()')} problems")
    await db.close()
    await other.close()


if __name__ == "__main__":
    asyncio.run(main())
