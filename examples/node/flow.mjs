// spendguard from Node.js with node-postgres: the same flow and SQLSTATE
// handling as examples/python/flow_psycopg.py. Errors carry .code (the
// SQLSTATE, custom SG0xx codes included); composite results are rows.
// Connection: $SG_CONNINFO (libpq key=value), mapped to pg's options.
import pg from "pg";
import { randomUUID } from "node:crypto";

const WHAT_TO_DO = { SG020: "HTTP 429", SG004: "bug in the caller", SG011: "ask again", SG012: "ask again", "40001": "retry" };

function options() {
  const kv = Object.fromEntries(process.env.SG_CONNINFO.split(/\s+/).map((p) => p.split("=", 2)));
  return { host: kv.host, port: Number(kv.port), user: kv.user, database: kv.dbname };
}

async function sqlstateOf(promise) {
  try {
    await promise;
  } catch (e) {
    return e.code;
  }
  throw new Error("expected an error");
}

const tenant = "node-" + randomUUID().slice(0, 12);
const db = new pg.Client(options());
const other = new pg.Client(options());
await db.connect();
await other.connect();
for (const c of [db, other]) await c.query("SELECT set_config('spendguard.tenant', $1, false)", [tenant]);
const one = async (sql, params = []) => (await db.query(sql, params)).rows[0];

let r = await one(
  "SELECT * FROM spendguard.budget_authorize_hold('openai:gpt-4o', 0, 30000, max_total_cost => 100000, hold_id => $1, event_id => $2, ttl => '5 minutes')",
  ["call-1", "req-1"],
);
// bigint columns come back as strings in node-postgres
console.log(`authorize with ttl: ${r.authorized ? "authorized" : "denied"}, committed ${r.committed_cost_after}`);
const cost = 27450;
console.log(`model call: ${cost} micros`);
const capture = "SELECT * FROM spendguard.budget_capture_hold(hold_id => $1, realized_spend => $2, event_id => $3)";
const cap = await one(capture, ["call-1", cost, "cap-1"]);
console.log(`capture: ${cap.kind}, realized ${cap.realized_spend_units}`);
const again = await one(capture, ["call-1", cost, "cap-1"]);
console.log(`replay of the capture's event_id: ${again.commit_index === cap.commit_index ? "same" : "another"} commit index`);
let code = await sqlstateOf(db.query(capture, ["call-1", 1, "cap-1"]));
console.log(`event_id reused for another request: ${code} -> ${WHAT_TO_DO[code]}`);

await db.query("SELECT spendguard.spend_set_group_budget('free', 40000, 'day')");
r = await one("SELECT * FROM spendguard.spend_reserve('user-42', 'free', 30000, 'res-1')");
console.log(`reserve: ${r.allowed ? "allowed" : "denied"}, reserved ${r.reserved_micros}`);
r = await one("SELECT * FROM spendguard.spend_settle('res-1', $1)", [cost]);
console.log(`settle: day total ${r.spend_micros}`);
code = await sqlstateOf(db.query("SELECT * FROM spendguard.spend_charge_enforce('user-42', 'free', 20000)"));
console.log(`charge over the daily budget: ${code} -> ${WHAT_TO_DO[code]}`);

// scoped budgets: one decision over every budget of key, user, team and org;
// a denial names the budget that blocked and the room left
await db.query("SELECT spendguard.scope_set_budget('org:acme', 'day', 50000)");
await db.query("SELECT spendguard.scope_set_budget('user:u42', 'day', 100000)");
const scopes = ["key:k1", "user:u42", "team:ml", "org:acme"];
r = await one("SELECT allowed, remaining_micros FROM spendguard.scope_reserve($1, 30000, 'sres-1')", [scopes]);
console.log(`scoped reserve over key, user, team and org: ${r.allowed ? "allowed" : "denied"}, least room left ${r.remaining_micros}`);
r = await one("SELECT headroom FROM spendguard.scope_settle('sres-1', $1)", [cost]);
const orgDay = r.headroom.find((h) => h.scope === "org:acme" && h.period === "day");
console.log(`scoped settle: org:acme day spent ${orgDay.spent_micros}`);
r = await one("SELECT * FROM spendguard.scope_reserve($1, 30000, 'sres-2')", [scopes]);
console.log(`scoped reserve again: ${r.allowed ? "allowed" : "denied"} at ${r.blocked_scope} (${r.blocked_period}), ${r.remaining_micros} left`);

let attempts = 0;
const codes = [];
await db.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
await db.query("SELECT 1");
await other.query("SELECT spendguard.budget_authorize_hold('shared', 0, 1)");
for (;;) {
  attempts += 1;
  try {
    await db.query("SELECT * FROM spendguard.budget_authorize_hold('shared', 0, 5, event_id => 'req-ser')");
    await db.query("COMMIT");
    break;
  } catch (e) {
    if (e.code !== "40001") throw e;
    codes.push(e.code);
    await db.query("ROLLBACK");
    await db.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
  }
}
let n = Number((await one("SELECT count(*) AS n FROM spendguard.budget_events(100, 'shared', 0) WHERE event_id = 'req-ser'")).n);
console.log(`serialization failure: ${codes[0]} -> retried with the same event_id, authorized ${n === 1 && attempts === 2 ? "once" : n}`);

await db.query("CREATE TEMP TABLE refunds (order_id int, amount int)");
const p = await one(
  "SELECT token FROM spendguard.proposal_create('application', 'agent-7', 'refund', $1::jsonb, effect => 'destructive')",
  [JSON.stringify({ order: 43, amount: 500 })],
);
console.log(`proposal: created, token ${p.token.startsWith("propose:") ? "shown once" : "missing"}`);
await db.query("BEGIN");
const applied = await one("SELECT * FROM spendguard.proposal_consume($1, 'user', 'ops-1', $2::jsonb)", [p.token, JSON.stringify({ amount: 500, order: 43 })]);
await db.query("INSERT INTO refunds VALUES (43, 500)");
await db.query("COMMIT");
n = (await one("SELECT count(*)::int AS n FROM refunds")).n;
console.log(`apply with the app's own write: applied by ${applied.applied_by_id}, refunds ${n}`);
code = await sqlstateOf(db.query("SELECT * FROM spendguard.proposal_consume($1, 'user', 'ops-2')", [p.token]));
console.log(`apply again: ${code} -> ${WHAT_TO_DO[code]}`);
const late = (await one("SELECT token FROM spendguard.proposal_create('user', 'u', 'late', '{}', ttl => '1 microsecond')")).token;
code = await sqlstateOf(db.query("SELECT * FROM spendguard.proposal_consume($1, 'user', 'ops-1')", [late]));
console.log(`apply after expiry: ${code} -> ${WHAT_TO_DO[code]}`);
n = (await one("SELECT count(*)::int AS n FROM spendguard.verify()")).n;
console.log(`verify: ${n} problems`);
await db.end();
await other.end();
