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
-- Entry ids are numbered in business-time order, lot ids are member * 16 + 1..14; the
-- entries and the lots are appended in business-time order, as operations would write them
-- (the BRIN indexes on entry.id, entry.at and lot.expires_at rely on that).
--
-- Load speed (1M members / ~19M entries must take minutes, not the hour the row-by-row
-- version would): every row is computed once into unlogged work tables and written with
-- one INSERT ... SELECT per table, members with their final balances (no UPDATE pass);
-- the ledger tables (entry, lot, lot_draw: no foreign key points at them) lose their
-- indexes and key constraints for the load and get them back, with the same names and
-- definitions, from sorted builds afterwards; session_replication_role = replica skips
-- the per-row foreign-key checks of the member rows (program and tier ids, valid by
-- construction) and the append-only guards, which only refuse UPDATE/DELETE anyway.
-- The tables stay logged. check_invariants() (run by reports_scale.sh) verifies the result.
--
-- psql -v members=1000000 -f bench/reports_scale.sql
\set ON_ERROR_STOP 1
\if :{?members}
\else
\set members 1000000
\endif
SET synchronize_seqscans = off;     -- scans return rows in insertion (member) order
SET work_mem = '1GB';                  -- the entries' sort by business time (about 2 GB at 1M members)
SET maintenance_work_mem = '1GB';
SET timezone = 'UTC';
\timing on
SELECT now() AS gen_now \gset

SELECT loyalty.create_program('bench', 'Bench',
       '{"expiry": {"policy": "rolling", "months": 12}, "cost_per_point": 0.01}');
SELECT loyalty.add_tier('bench', 'base', 'Base', 0);
SELECT loyalty.add_tier('bench', 'silver', 'Silver', 1000, 1.25);
SELECT loyalty.add_tier('bench', 'gold', 'Gold', 5000, 1.5);

\echo work tables
-- members: id and enrolment
CREATE UNLOGGED TABLE bench_m AS
SELECT g AS id, :'gen_now'::timestamptz - random() * interval '730 days' AS enrolled_at
  FROM generate_series(1, :members) g;

-- One row per purchase and its lot, in member order.
CREATE UNLOGGED TABLE bench_ev AS
SELECT m.id AS member_id, k, x.at, x.amount, floor(x.amount)::bigint AS points,
       x.at + interval '12 months' AS expires_at,
       CASE WHEN k <= 3 THEN least(x.at + interval '1 hour', :'gen_now'::timestamptz) END AS redeemed_at
  FROM bench_m m
 CROSS JOIN generate_series(1, 14) k
 CROSS JOIN LATERAL (SELECT m.enrolled_at + random() * (:'gen_now'::timestamptz - m.enrolled_at) AS at,
                            round((1 + random() * 99)::numeric, 2) AS amount, k AS kk) x;

-- One row per entry, in id (= business time) order: an earn per purchase (carrying its
-- lot's expiry and fate), a redeem for the first 3, an expire for every other lot past
-- its expiry.
CREATE UNLOGGED TABLE bench_en AS
SELECT row_number() OVER (ORDER BY r.at, e.member_id, r.kind) AS id, e.member_id, e.k, r.kind, r.points,
       r.at, r.key, r.amount, r.q, r.qat, e.expires_at, e.redeemed_at
  FROM bench_ev e
 CROSS JOIN LATERAL (
       VALUES ('earn'::loyalty.entry_kind, e.points, e.at, 'pos-' || e.k, e.amount, e.points::numeric, e.at),
              ('redeem', -e.points, e.redeemed_at, 'app-' || e.k, NULL, 0, NULL),
              ('expire', -e.points, e.expires_at, NULL, NULL, 0, NULL)
       ) r(kind, points, at, key, amount, q, qat)
 WHERE r.kind = 'earn'
    OR (r.kind = 'redeem' AND e.redeemed_at IS NOT NULL)
    OR (r.kind = 'expire' AND e.redeemed_at IS NULL AND e.expires_at <= :'gen_now'::timestamptz);
-- (written in the window's sort order, which is id order: no second sort)

\echo members
SET session_replication_role = replica;
INSERT INTO loyalty.member (id, program_id, external_ref, enrolled_at, referral_code, tier_id, tier_since,
                            available, lifetime_earned, redeemed, expired, lifetime_spend, lifetime_visits,
                            qualifying, last_activity_at, last_entry_at, next_transition_at)
SELECT m.id, p.id, 'cust-' || m.id, m.enrolled_at, lpad(to_hex(m.id), 8, '0'),
       (SELECT t.id FROM loyalty.tier t WHERE t.program_id = p.id AND t.threshold <= s.q
         ORDER BY t.threshold DESC LIMIT 1),
       :'gen_now'::timestamptz,
       s.available, s.earned, s.redeemed, s.expired, s.spend, 14, s.q, s.last_at, s.last_entry, s.next_at
  FROM loyalty.program p
 CROSS JOIN bench_m m
  JOIN (SELECT e.member_id,
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
          FROM bench_ev e GROUP BY e.member_id) s ON s.member_id = m.id
 WHERE p.code = 'bench'
 ORDER BY m.id;
SELECT setval('loyalty.member_id_seq', :members);
DROP TABLE bench_ev, bench_m;

\echo drop the ledger indexes for the load
CREATE TEMP TABLE bench_ddl AS
SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid)) AS add_ddl,
       format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname) AS drop_ddl
  FROM pg_constraint c
 WHERE c.conrelid IN ('loyalty.entry'::regclass, 'loyalty.lot'::regclass, 'loyalty.lot_draw'::regclass)
   AND c.contype IN ('p', 'u')
UNION ALL
SELECT pg_get_indexdef(i.indexrelid), format('DROP INDEX %s', i.indexrelid::regclass)
  FROM pg_index i
 WHERE i.indrelid IN ('loyalty.entry'::regclass, 'loyalty.lot'::regclass, 'loyalty.lot_draw'::regclass)
   AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid);
SELECT drop_ddl FROM bench_ddl \gexec

\echo ledger entries
INSERT INTO loyalty.entry (member_id, id, kind, points, at, recorded_at, idempotency_key, amount,
                           qualifying, qualifying_at, available_after, pending_after, tier_after)
SELECT n.member_id, n.id, n.kind, n.points, n.at, n.at, n.key, n.amount, n.q, n.qat, 0, 0, 'base'
  FROM bench_en n;
SELECT setval('loyalty.entry_id_seq', (SELECT max(id) FROM bench_en));

\echo lots
-- in business-time order (bench_en's order), as earns append them
INSERT INTO loyalty.lot (member_id, id, entry_id, at, points, remaining, available_at, expires_at, state)
SELECT n.member_id, n.member_id * 16 + n.k, n.id, n.at, n.points,
       CASE WHEN n.redeemed_at IS NULL AND n.expires_at > :'gen_now'::timestamptz THEN n.points ELSE 0 END,
       n.at, n.expires_at,
       CASE WHEN n.redeemed_at IS NULL AND n.expires_at > :'gen_now'::timestamptz THEN 'a' ELSE 'x' END
  FROM bench_en n WHERE n.kind = 'earn';
SELECT setval('loyalty.lot_id_seq', (:members + 1) * 16);

\echo draws
INSERT INTO loyalty.lot_draw (member_id, entry_id, lot_id, at, points)
SELECT n.member_id, n.id, n.member_id * 16 + n.k, n.at, -n.points
  FROM bench_en n WHERE n.kind IN ('redeem', 'expire');
DROP TABLE bench_en;
RESET session_replication_role;

\echo rebuild the ledger indexes
SET max_parallel_maintenance_workers = 2;
SELECT add_ddl FROM bench_ddl \gexec
