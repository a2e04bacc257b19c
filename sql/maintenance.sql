-- maintenance: run_maintenance releases pending points and expires lots for
-- the members that are due, once; operations do the same lazily.
SET timezone = 'UTC';
SET datestyle = 'ISO';
\set SHOW_CONTEXT never

-- Points pending for 2 days, then valid for a month.
SELECT loyalty.create_program('mnt', 'Maintenance',
       '{"pending_days": 2, "expiry": {"policy": "rolling", "months": 1}}') IS NOT NULL AS created;
SELECT loyalty.add_tier('mnt', 'base', 'Base', 0) IS NOT NULL AS added;
SELECT loyalty.enroll('mnt', 'ma', '2024-01-01 00:00+00') AS ma \gset
SELECT loyalty.enroll('mnt', 'mb', '2024-01-01 00:00+00') AS mb \gset
SELECT loyalty.enroll('mnt', 'mc', '2024-01-01 00:00+00') AS mc \gset
SELECT loyalty.enroll('mnt', 'md', '2024-01-01 00:00+00') AS md \gset

-- ma: 10 available 01-03 10:00, expire 02-03 10:00.
-- mb: 20 available 01-03 12:00, expire 02-03 12:00.
-- md: 5 + 7 available 01-03 10:00, expire 02-03 10:00 (one expire entry).
-- mc: like ma, but never reached by maintenance: its next operation, on
--     02-05, releases and expires lazily.
SELECT points, available, pending FROM loyalty.earn(:ma, 10, 'p1', '2024-01-01 10:00+00');
SELECT points, available, pending FROM loyalty.earn(:mb, 20, 'p1', '2024-01-01 12:00+00');
SELECT points, available, pending FROM loyalty.earn(:md, 5, 'p1', '2024-01-01 10:00+00');
SELECT points, available, pending FROM loyalty.earn(:md, 7, 'p2', '2024-01-01 10:00+00');
SELECT points, available, pending FROM loyalty.earn(:mc, 10, 'p1', '2024-01-01 10:00+00');
SELECT points, available, pending FROM loyalty.earn(:mc, 1, 'p2', '2024-02-05 00:00+00');

-- Nothing is due yet.
SELECT loyalty.run_maintenance('2024-01-02 00:00+00');
-- ma and md are due at 01-03 10:00; mb only at 12:00.
SELECT loyalty.run_maintenance('2024-01-03 11:00+00');
-- Running again does nothing.
SELECT loyalty.run_maintenance('2024-01-03 11:00+00');
SELECT m.external_ref, m.available, m.pending
  FROM loyalty.member m WHERE m.id IN (:ma, :mb, :md) ORDER BY m.external_ref;

-- At 02-03 12:00 all three are due.  max_members = 1 takes the member due
-- first: mb, whose 20 points were released 01-03 12:00 and expire at 12:00
-- today.  maintain() loops over the rest, committing after each batch.
SELECT loyalty.run_maintenance('2024-02-03 12:00+00', 1);
CALL loyalty.maintain('2024-02-03 12:00+00', 1);
SELECT loyalty.run_maintenance('2024-02-03 12:00+00');
-- A batch size below 1 is LY038.
CALL loyalty.maintain('2024-02-03 12:00+00', 0);
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.run_maintenance('2024-02-03 12:00+00', 0);
\echo :LAST_ERROR_SQLSTATE
SELECT m.external_ref, m.available, m.pending, m.lifetime_earned, m.expired
  FROM loyalty.member m WHERE m.id IN (:ma, :mb, :mc, :md) ORDER BY m.external_ref;

-- One expire entry per member and expiry instant, dated at the instant;
-- mc's lazy sweep wrote the same entry as maintenance wrote for ma.
SELECT m.external_ref, s.at, s.kind, s.points
  FROM loyalty.member m, loyalty.statement(m.id) s
 WHERE m.id IN (:ma, :mb, :mc, :md)
 ORDER BY m.external_ref, s.at, s.entry_id;
SELECT count(*) AS lots_drawn_by_md_expiry
  FROM loyalty.lot_draw d JOIN loyalty.entry e ON e.member_id = d.member_id AND e.id = d.entry_id
 WHERE e.member_id = :md AND e.kind = 'expire';

-- balance() agrees with what maintenance wrote.
SELECT m.external_ref, b.available, b.pending, b.lifetime_earned, b.expired
  FROM loyalty.member m, loyalty.balance(m.id, '2024-02-04 00:00+00') b
 WHERE m.id IN (:ma, :mb, :md) ORDER BY m.external_ref;
SELECT count(*) AS violations FROM loyalty.check_invariants();
