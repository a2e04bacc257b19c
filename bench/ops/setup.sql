-- bench/ops/setup.sql: one program, :members members, each with 4 lots of 50
-- points (so a redeem of 120 draws from 3 lots), and the plain-SQL floor's tables.
-- The lots are dated from March 2026: they expire (12 months) after 2027-01-02, so the
-- tier case's run_maintenance as of that day has no expiry of these members to do.
\ir members.sql
SELECT count(loyalty.award(g, 50, 'seed', 'seed-' || g || '-' || l, '2026-03-01'::timestamptz + l * interval '1 day'))
  FROM generate_series(1, :members) g, generate_series(1, 4) l;

-- The floor: the least any correct implementation must write for the same
-- operations (a ledger row, a lot, a balance), without validation, idempotency
-- checks, tiers or expiry bookkeeping.
\ir floor_tables.sql
INSERT INTO floor_member SELECT g, 200 FROM generate_series(1, :members) g;
INSERT INTO floor_lot (member_id, entry_id, points, remaining, expires_at)
SELECT g, 0, 50, 50, '2027-01-01'::timestamptz + l * interval '1 day'
  FROM generate_series(1, :members) g, generate_series(1, 4) l;
VACUUM ANALYZE;
