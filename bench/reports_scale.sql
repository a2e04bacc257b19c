-- Scale data for the reports (issue 7): :members members in one program, about 20
-- ledger entries each, written set-based straight into the tables (the API would take
-- hours), with lots, draws and member balances consistent: check_invariants() holds.
--
-- Per member: 14 purchases (earn, $1-$100, 1 point per dollar, at random times between
-- enrolment and now; enrolment within the last 2 years), each with its lot (rolling
-- 12-month expiry). The first 3 lots are redeemed in full an hour after they were earned
-- (3 redeem entries); every other lot past its expiry has expired (one expire entry at its
-- expiry instant); the rest are live. About 19-20 entries per member in all.
--
-- Every statement uses one instant, :'gen_now', taken once at the start, never now():
-- each statement has its own now(), and a lot whose expiry fell between two of them was
-- written as expired by one statement and as live by another (an expire draw with no
-- expire entry, a live lot with a draw): 23-32 check_invariants() violations at 250k
-- members, where generation takes minutes, and none at 20k. Lots expiring after
-- :'gen_now' are then past expiry and not yet swept when the reports run, which is the
-- state every report must handle anyway (maintenance has not run).
--
-- Entry ids are numbered in business-time order, lot ids are member * 16 + 1..14.
--
-- psql -v members=1000000 -f bench/reports_scale.sql
\set ON_ERROR_STOP 1
\if :{?members}
\else
\set members 1000000
\endif
SET synchronize_seqscans = off;     -- scans return rows in insertion (member) order
SET work_mem = '256MB';
SET maintenance_work_mem = '1GB';
SET timezone = 'UTC';
\timing on
SELECT now() AS gen_now \gset

SELECT loyalty.create_program('bench', 'Bench',
       '{"expiry": {"policy": "rolling", "months": 12}, "cost_per_point": 0.01}');
SELECT loyalty.add_tier('bench', 'base', 'Base', 0);
SELECT loyalty.add_tier('bench', 'silver', 'Silver', 1000, 1.25);
SELECT loyalty.add_tier('bench', 'gold', 'Gold', 5000, 1.5);

\echo members
INSERT INTO loyalty.member (id, program_id, external_ref, enrolled_at, referral_code, tier_id, tier_since)
SELECT g, p.id, 'cust-' || g, :'gen_now'::timestamptz - random() * interval '730 days', lpad(to_hex(g), 8, '0'),
       (SELECT t.id FROM loyalty.tier t WHERE t.program_id = p.id AND t.code = 'base'), :'gen_now'::timestamptz
  FROM loyalty.program p, generate_series(1, :members) g
 WHERE p.code = 'bench';
SELECT setval('loyalty.member_id_seq', :members);

\echo purchases
-- One row per purchase and its lot, in member order.
CREATE UNLOGGED TABLE bench_ev AS
SELECT m.id AS member_id, k, x.at, x.amount, floor(x.amount)::bigint AS points,
       x.at + interval '12 months' AS expires_at,
       CASE WHEN k <= 3 THEN least(x.at + interval '1 hour', :'gen_now'::timestamptz) END AS redeemed_at
  FROM loyalty.member m
 CROSS JOIN generate_series(1, 14) k
 CROSS JOIN LATERAL (SELECT m.enrolled_at + random() * (:'gen_now'::timestamptz - m.enrolled_at) AS at,
                            round((1 + random() * 99)::numeric, 2) AS amount, k AS kk) x
 ORDER BY m.id, k;

\echo ledger entries
-- One row per entry: an earn per purchase, a redeem for the first 3, an expire for every
-- other lot past its expiry. Entry ids follow business time, as in a ledger appended as
-- operations happen (the BRIN indexes on entry id and at rely on that order).
CREATE UNLOGGED TABLE bench_en AS
SELECT row_number() OVER (ORDER BY r.at, e.member_id, r.kind) AS id, e.member_id, e.k, r.kind, r.points,
       r.at, r.key, r.amount, r.q, r.qat
  FROM bench_ev e
 CROSS JOIN LATERAL (
       VALUES ('earn'::loyalty.entry_kind, e.points, e.at, 'pos-' || e.k, e.amount, e.points::numeric, e.at),
              ('redeem', -e.points, e.redeemed_at, 'app-' || e.k, NULL, 0, NULL),
              ('expire', -e.points, e.expires_at, NULL, NULL, 0, NULL)
       ) r(kind, points, at, key, amount, q, qat)
 WHERE r.kind = 'earn'
    OR (r.kind = 'redeem' AND e.redeemed_at IS NOT NULL)
    OR (r.kind = 'expire' AND e.redeemed_at IS NULL AND e.expires_at <= :'gen_now'::timestamptz);
CREATE INDEX ON bench_en (member_id, k, kind);

INSERT INTO loyalty.entry (member_id, id, kind, points, at, recorded_at, idempotency_key, amount,
                           qualifying, qualifying_at, available_after, pending_after, tier_after)
SELECT n.member_id, n.id, n.kind, n.points, n.at, n.at, n.key, n.amount, n.q, n.qat, 0, 0, 'base'
  FROM bench_en n ORDER BY n.id;
SELECT setval('loyalty.entry_id_seq', (SELECT max(id) FROM bench_en));

\echo lots
INSERT INTO loyalty.lot (member_id, id, entry_id, at, points, remaining, available_at, expires_at, state)
SELECT e.member_id, e.member_id * 16 + e.k, n.id, e.at, e.points,
       CASE WHEN e.redeemed_at IS NULL AND e.expires_at > :'gen_now'::timestamptz THEN e.points ELSE 0 END,
       e.at, e.expires_at,
       CASE WHEN e.redeemed_at IS NULL AND e.expires_at > :'gen_now'::timestamptz THEN 'a' ELSE 'x' END
  FROM bench_ev e
  JOIN bench_en n ON n.member_id = e.member_id AND n.k = e.k AND n.kind = 'earn';
SELECT setval('loyalty.lot_id_seq', (:members + 1) * 16);

\echo draws
INSERT INTO loyalty.lot_draw (member_id, entry_id, lot_id, at, points)
SELECT e.member_id, n.id, e.member_id * 16 + e.k, n.at, e.points
  FROM bench_ev e
  JOIN bench_en n ON n.member_id = e.member_id AND n.k = e.k AND n.kind IN ('redeem', 'expire');
DROP TABLE bench_en;

\echo member balances
UPDATE loyalty.member m
   SET available = s.available, lifetime_earned = s.earned, redeemed = s.redeemed, expired = s.expired,
       lifetime_spend = s.spend, lifetime_visits = 14, qualifying = s.q,
       tier_id = (SELECT t.id FROM loyalty.tier t WHERE t.program_id = m.program_id
                   AND t.threshold <= s.q ORDER BY t.threshold DESC LIMIT 1),
       last_activity_at = s.last_at, last_entry_at = s.last_entry, next_transition_at = s.next_at
  FROM (SELECT e.member_id,
               coalesce(sum(e.points) FILTER (WHERE e.redeemed_at IS NULL AND e.expires_at > :'gen_now'::timestamptz), 0) AS available,
               sum(e.points) AS earned,
               sum(e.points) FILTER (WHERE e.redeemed_at IS NOT NULL) AS redeemed,
               coalesce(sum(e.points) FILTER (WHERE e.redeemed_at IS NULL AND e.expires_at <= :'gen_now'::timestamptz), 0) AS expired,
               sum(e.amount) AS spend,
               coalesce(sum(e.points) FILTER (WHERE e.at > :'gen_now'::timestamptz - interval '12 months'), 0) AS q,
               greatest(max(e.at), max(e.redeemed_at)) AS last_at,
               greatest(max(e.at), max(e.redeemed_at), max(e.expires_at) FILTER (WHERE e.expires_at <= :'gen_now'::timestamptz
                                                                                AND e.redeemed_at IS NULL)) AS last_entry,
               coalesce(min(e.expires_at) FILTER (WHERE e.redeemed_at IS NULL AND e.expires_at > :'gen_now'::timestamptz),
                        'infinity') AS next_at
          FROM bench_ev e GROUP BY e.member_id) s
 WHERE m.id = s.member_id;
DROP TABLE bench_ev;
