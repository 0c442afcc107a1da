-- spendguard monitoring: views an operator reads or exports (postgres_exporter
-- queries in docs/postgres_exporter.yml). They cover every tenant, with a
-- tenant_id column: they run with their owner's rights, so row level
-- security does not filter them. PUBLIC has no access; an admin grants
-- SELECT to a monitoring role (docs/operations.md).

-- recorded_at of the log is in insertion order: a BRIN index answers "the
-- last hour" for a few bytes per insert.
CREATE INDEX budget_event_recorded ON spendguard.budget_event USING brin (recorded_at);

CREATE VIEW spendguard.monitor_open_holds AS
  SELECT h.tenant_id, h.capability_id, h.grant_index,
         -- sums are numeric: a monitoring view never fails (holds left open
         -- by budget-level calls can add up past bigint)
         count(*) AS open_holds, sum(h.remaining_exposure) AS open_exposure,
         min(h.created_at) AS oldest_created_at,
         count(*) FILTER (WHERE h.expires_at IS NULL) AS without_ttl
  FROM spendguard.budget_hold h
  WHERE h.disposition = 'open'
  GROUP BY h.tenant_id, h.capability_id, h.grant_index;
COMMENT ON VIEW spendguard.monitor_open_holds IS
  'Open holds per budget, all tenants: how many, their exposure, the oldest, how many have no TTL';

CREATE VIEW spendguard.monitor_expired_unswept AS
  SELECT h.tenant_id, count(*) AS holds, sum(h.remaining_exposure) AS exposure,
         min(h.expires_at) AS oldest_expires_at
  FROM spendguard.budget_hold h
  WHERE h.disposition = 'open' AND h.expires_at <= now()
  GROUP BY h.tenant_id;
COMMENT ON VIEW spendguard.monitor_expired_unswept IS
  'Holds past expires_at that no sweep has expired yet, per tenant (a growing number means no sweep runs)';

CREATE VIEW spendguard.monitor_denials_last_hour AS
  SELECT e.tenant_id, e.capability_id, e.denial_reason, count(*) AS denials,
         max(e.recorded_at) AS last_denied_at
  FROM spendguard.budget_event e
  WHERE NOT e.allowed AND e.recorded_at > now() - interval '1 hour'
  GROUP BY e.tenant_id, e.capability_id, e.denial_reason;
COMMENT ON VIEW spendguard.monitor_denials_last_hour IS
  'Denied authorizations and reservations of the last hour from the budget log, per budget and reason';

CREATE VIEW spendguard.monitor_spend_by_group AS
  SELECT d.tenant_id, d.group_id, coalesce(b.period, 'day') AS period, p.start AS period_start,
         -- numeric: a monitoring view never fails, and a group's users
         -- together can pass bigint
         sum(d.spend_micros) AS spend_micros, count(DISTINCT d.user_id) AS users,
         b.limit_micros AS limit_per_user
  FROM spendguard.daily_spend d
  LEFT JOIN spendguard.spend_budget b ON b.tenant_id = d.tenant_id AND b.group_id = d.group_id
  CROSS JOIN LATERAL (
    SELECT CASE coalesce(b.period, 'day')
             WHEN 'day' THEN (now() AT TIME ZONE 'UTC')::date
             WHEN 'week' THEN date_trunc('week', now() AT TIME ZONE 'UTC')::date
             ELSE date_trunc('month', now() AT TIME ZONE 'UTC')::date END AS start) p
  WHERE d.day >= p.start
  GROUP BY d.tenant_id, d.group_id, b.period, p.start, b.limit_micros;
COMMENT ON VIEW spendguard.monitor_spend_by_group IS
  'Spend per group in its current UTC period (the group budget''s, else today), all tenants';

CREATE VIEW spendguard.monitor_pending_proposals AS
  SELECT t.tenant_id, t.tool_name, t.effect, count(*) AS pending, min(t.proposed_at) AS oldest_proposed_at,
         min(t.expires_at) AS next_expiry
  FROM spendguard.tool_call t
  WHERE t.status = 'proposed' AND t.expires_at > now()
  GROUP BY t.tenant_id, t.tool_name, t.effect;
COMMENT ON VIEW spendguard.monitor_pending_proposals IS
  'Proposals waiting for approval (proposed, not expired) per tool and effect, all tenants';

REVOKE ALL ON spendguard.monitor_open_holds, spendguard.monitor_expired_unswept,
  spendguard.monitor_denials_last_hour, spendguard.monitor_spend_by_group,
  spendguard.monitor_pending_proposals FROM PUBLIC;
