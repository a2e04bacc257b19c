-- 06_expiry: every expiry policy at its exact boundary, time zones and DST,
-- maintenance versus lazy sweeps, balances as of past times.
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(71);

CREATE FUNCTION pg_temp.m(ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code LIKE 'tap06%' AND m.external_ref = ref $$;
CREATE FUNCTION pg_temp.rc(r loyalty.receipt) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s/%s/%s', r.points, r.available, r.pending, r.tier, r.replayed) $$;
CREATE FUNCTION pg_temp.bal(mid bigint, t timestamptz) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s/%s/%s/%s', available, pending, lifetime_earned, redeemed, expired, tier)
      FROM loyalty.balance(mid, t) $$;
CREATE FUNCTION pg_temp.expires(mid bigint) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(to_char(at, 'YYYY-MM-DD HH24:MI:SS') || ' ' || points, ', ' ORDER BY at, entry_id)
      FROM loyalty.statement(mid) WHERE kind = 'expire' $$;

-- ---------------------------------------------------------------------------
-- Maintenance versus lazy sweeps (first, so that run_maintenance only sees
-- the members of this section).
-- ---------------------------------------------------------------------------
DO $$BEGIN
    PERFORM loyalty.create_program('tap06_mt', 'Maintenance', '{"expiry": {"policy": "rolling", "months": 12}}');
    PERFORM loyalty.add_tier('tap06_mt', 'base', 'Base', 0);
    PERFORM loyalty.create_program('tap06_mtp', 'Maintenance pending', '{"pending_days": 5}');
    PERFORM loyalty.add_tier('tap06_mtp', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tap06_mt', r, '2025-11-01 00:00:00+00') FROM unnest(ARRAY['mx', 'my', 'mz']) r;
    PERFORM loyalty.enroll('tap06_mtp', 'mp', '2025-11-01 00:00:00+00');
    -- mx and my: 100 expiring 2027-01-01 00:00Z, 70 of them spent.
    PERFORM loyalty.award(pg_temp.m(r), 100, 'start', 'a1', '2026-01-01 00:00:00+00') FROM unnest(ARRAY['mx', 'my']) r;
    PERFORM loyalty.redeem(pg_temp.m(r), 70, 'r1', '2026-06-01 00:00:00+00') FROM unnest(ARRAY['mx', 'my']) r;
    -- mz: two lots expiring at two instants, 2026-12-01 and 2026-12-15.
    PERFORM loyalty.award(pg_temp.m('mz'), 10, 'start', 'a1', '2025-12-01 00:00:00+00');
    PERFORM loyalty.award(pg_temp.m('mz'), 20, 'start', 'a2', '2025-12-15 00:00:00+00');
    -- mp: 100 pending until 2026-12-25.
    PERFORM loyalty.earn(pg_temp.m('mp'), 100, 'e1', '2026-12-20 00:00:00+00');
END$$;

-- Balance as of past times, from the ledger.
SELECT is(pg_temp.bal(pg_temp.m('mx'), '2025-12-31 00:00:00+00'), '0/0/0/0/0/base',
          'balance before the first entry is empty');
SELECT is(pg_temp.bal(pg_temp.m('mx'), '2026-03-01 00:00:00+00'), '100/0/100/0/0/base',
          'balance between award and redeem');
SELECT is(pg_temp.bal(pg_temp.m('mx'), '2026-12-31 23:59:59+00'), '30/0/100/70/0/base',
          'one second before expiry: 30 available');
-- Spent points are never expired: 30, not 100.
SELECT is(pg_temp.bal(pg_temp.m('mx'), '2027-01-01 00:00:00+00'), '0/0/100/70/30/base',
          'at expiry: only the unspent 30 expire (no maintenance yet)');

-- my: a later operation sweeps lazily and writes the expire entry.
SELECT is(pg_temp.rc(loyalty.award(pg_temp.m('my'), 5, 'late', 'a2', '2027-01-02 00:00:00+00')),
          '5/5/0/base/f', 'operation after the expiry instant: expired points gone');
SELECT is(pg_temp.expires(pg_temp.m('my')), '2027-01-01 00:00:00 -30',
          'lazy sweep wrote an expire entry dated at the expiry instant');

SELECT is((SELECT (r->>'released_lots', r->>'released_points', r->>'expired_lots',
                   r->>'expired_points', r->>'expire_entries')::text
             FROM loyalty.run_maintenance('2027-01-02 00:00:00+00') r),
          '(1,100,3,60,3)',
          'run_maintenance: releases mp''s lot, expires mx (30) and mz (10, 20), my was already swept');
SELECT is(pg_temp.expires(pg_temp.m('mx')), '2027-01-01 00:00:00 -30',
          'maintenance wrote the same expire entry as the lazy sweep');
SELECT is(pg_temp.expires(pg_temp.m('mz')), '2026-12-01 00:00:00 -10, 2026-12-15 00:00:00 -20',
          'one expire entry per expiry instant');
SELECT is((SELECT (available, pending)::text FROM loyalty.member WHERE id = pg_temp.m('mp')),
          '(100,0)', 'maintenance made mp''s pending points available');
SELECT is((SELECT (r->>'released_points', r->>'expired_points', r->>'expire_entries')::text
             FROM loyalty.run_maintenance('2027-01-02 00:00:00+00') r),
          '(0,0,0)', 'run_maintenance twice: nothing more');
SELECT is((SELECT (r->>'released_points', r->>'expired_points', r->>'expire_entries')::text
             FROM loyalty.run_maintenance('2027-01-03 00:00:00+00') r),
          '(0,0,0)', 'run_maintenance later: nothing more');
SELECT is(pg_temp.expires(pg_temp.m('mx')), '2027-01-01 00:00:00 -30', 'mx still has one expire entry');
SELECT is(pg_temp.bal(pg_temp.m('mx'), '2027-01-05 00:00:00+00'), '0/0/100/70/30/base',
          'mx balance after maintenance');
SELECT is(pg_temp.bal(pg_temp.m('mx'), '2026-12-31 23:59:59+00'), '30/0/100/70/0/base',
          'mx balance as of before the expiry, after maintenance wrote it');

-- ---------------------------------------------------------------------------
-- Rolling 12 months (UTC) and day clamping
-- ---------------------------------------------------------------------------
DO $$BEGIN
    PERFORM loyalty.create_program('tap06_roll', 'Rolling 12', '{"expiry": {"policy": "rolling", "months": 12}}');
    PERFORM loyalty.add_tier('tap06_roll', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tap06_roll', 'r', '2026-01-01 00:00:00+00');
    PERFORM loyalty.award(pg_temp.m('r'), 100, 'start', 'a1', '2026-01-31 10:00:00+00');
    PERFORM loyalty.create_program('tap06_roll1', 'Rolling 1', '{"expiry": {"policy": "rolling", "months": 1}}');
    PERFORM loyalty.add_tier('tap06_roll1', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tap06_roll1', 'r1', '2026-01-01 00:00:00+00');
    PERFORM loyalty.award(pg_temp.m('r1'), 100, 'start', 'a1', '2026-03-31 10:00:00+00');
END$$;
-- 2026-01-31 10:00Z + 12 months = 2027-01-31 10:00Z
SELECT is(pg_temp.bal(pg_temp.m('r'), '2027-01-31 09:59:59+00'), '100/0/100/0/0/base',
          'rolling 12: available one second before');
SELECT is(pg_temp.bal(pg_temp.m('r'), '2027-01-31 10:00:00+00'), '0/0/100/0/100/base',
          'rolling 12: expired at expires_at');
SELECT is((SELECT next_expiry FROM loyalty.balance(pg_temp.m('r'), '2026-06-01 00:00:00+00')),
          '2027-01-31 10:00:00+00'::timestamptz, 'rolling 12: next_expiry');
-- 2026-03-31 + 1 month: April has 30 days -> 2026-04-30 10:00Z
SELECT is(loyalty.add_months_local('2026-03-31 10:00:00+00', 1, 'UTC'), '2026-04-30 10:00:00+00'::timestamptz,
          'add_months_local clamps the day to the month end');
SELECT is(pg_temp.bal(pg_temp.m('r1'), '2026-04-30 09:59:59+00'), '100/0/100/0/0/base',
          'rolling 1 from March 31: available on April 30 before 10:00');
SELECT is(pg_temp.bal(pg_temp.m('r1'), '2026-04-30 10:00:00+00'), '0/0/100/0/100/base',
          'rolling 1 from March 31: expired April 30 10:00');

-- ---------------------------------------------------------------------------
-- end_of_period in local time
-- ---------------------------------------------------------------------------
DO $$BEGIN
    PERFORM loyalty.create_program('tap06_eom', 'EOM Berlin', '{"timezone": "Europe/Berlin",
            "expiry": {"policy": "end_of_period", "months": 1, "period": "month"}}');
    PERFORM loyalty.create_program('tap06_eoq', 'EOQ New York', '{"timezone": "America/New_York",
            "expiry": {"policy": "end_of_period", "months": 3, "period": "quarter"}}');
    PERFORM loyalty.create_program('tap06_eoy', 'EOY Berlin', '{"timezone": "Europe/Berlin",
            "expiry": {"policy": "end_of_period", "months": 12, "period": "year"}}');
    PERFORM loyalty.add_tier(c, 'base', 'Base', 0) FROM unnest(ARRAY['tap06_eom', 'tap06_eoq', 'tap06_eoy']) c;
    PERFORM loyalty.enroll('tap06_eom', 'em', '2026-01-01 00:00:00+00');
    PERFORM loyalty.enroll('tap06_eoq', 'eq', '2026-01-01 00:00:00+00');
    PERFORM loyalty.enroll('tap06_eoy', 'ey', '2026-01-01 00:00:00+00');
    PERFORM loyalty.award(pg_temp.m('em'), 100, 'start', 'a1', '2026-01-15 11:00:00+00');
    PERFORM loyalty.award(pg_temp.m('eq'), 100, 'start', 'a1', '2026-02-10 17:00:00+00');
    PERFORM loyalty.award(pg_temp.m('ey'), 100, 'start', 'a1', '2026-06-15 10:00:00+00');
END$$;
-- Berlin: 2026-01-15 12:00 CET + 1 month = 2026-02-15 -> end of February local:
-- expired from 2026-03-01 00:00 CET = 2026-02-28 23:00Z.
SELECT is(pg_temp.bal(pg_temp.m('em'), '2026-02-28 22:59:59+00'), '100/0/100/0/0/base',
          'end of month (Berlin): available at 23:59:59 local on Feb 28');
SELECT is(pg_temp.bal(pg_temp.m('em'), '2026-02-28 23:00:00+00'), '0/0/100/0/100/base',
          'end of month (Berlin): expired at 00:00 local on Mar 1');
-- New York: 2026-02-10 12:00 EST + 3 months = 2026-05-10 -> end of Q2 local:
-- expired from 2026-07-01 00:00 EDT = 04:00Z.
SELECT is(pg_temp.bal(pg_temp.m('eq'), '2026-07-01 03:59:59+00'), '100/0/100/0/0/base',
          'end of quarter (New York): available at 23:59:59 local on Jun 30');
SELECT is(pg_temp.bal(pg_temp.m('eq'), '2026-07-01 04:00:00+00'), '0/0/100/0/100/base',
          'end of quarter (New York): expired at 00:00 local on Jul 1');
-- Berlin: 2026-06-15 + 12 months = 2027-06-15 -> end of 2027 local:
-- expired from 2028-01-01 00:00 CET = 2027-12-31 23:00Z.
SELECT is(pg_temp.bal(pg_temp.m('ey'), '2027-12-31 22:59:59+00'), '100/0/100/0/0/base',
          'end of year (Berlin): available at 23:59:59 local on Dec 31');
SELECT is(pg_temp.bal(pg_temp.m('ey'), '2027-12-31 23:00:00+00'), '0/0/100/0/100/base',
          'end of year (Berlin): expired at 00:00 local on Jan 1');

-- ---------------------------------------------------------------------------
-- Rolling months across DST changes in America/New_York
-- (2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST)
-- ---------------------------------------------------------------------------
DO $$BEGIN
    PERFORM loyalty.create_program('tap06_dst', 'DST', '{"timezone": "America/New_York",
            "expiry": {"policy": "rolling", "months": 1}}');
    PERFORM loyalty.add_tier('tap06_dst', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tap06_dst', r, '2026-01-01 00:00:00+00') FROM unnest(ARRAY['ds1', 'ds2', 'ds3']) r;
    PERFORM loyalty.award(pg_temp.m('ds1'), 100, 'start', 'a1', '2026-03-07 17:00:00+00'); -- 12:00 EST
    PERFORM loyalty.award(pg_temp.m('ds2'), 100, 'start', 'a1', '2026-03-08 06:30:00+00'); -- 01:30 EST
    PERFORM loyalty.award(pg_temp.m('ds3'), 100, 'start', 'a1', '2026-10-31 16:00:00+00'); -- 12:00 EDT
END$$;
-- 2026-04-07 12:00 EDT = 16:00Z
SELECT is(pg_temp.bal(pg_temp.m('ds1'), '2026-04-07 15:59:59+00'), '100/0/100/0/0/base',
          'DST spring: available one second before 12:00 local');
SELECT is(pg_temp.bal(pg_temp.m('ds1'), '2026-04-07 16:00:00+00'), '0/0/100/0/100/base',
          'DST spring: expired at 12:00 EDT (16:00Z), same local clock time');
-- 2026-04-08 01:30 EDT = 05:30Z
SELECT is(pg_temp.bal(pg_temp.m('ds2'), '2026-04-08 05:29:59+00'), '100/0/100/0/0/base',
          'lot available on the DST day: available one second before');
SELECT is(pg_temp.bal(pg_temp.m('ds2'), '2026-04-08 05:30:00+00'), '0/0/100/0/100/base',
          'lot available on the DST day: expired at 01:30 EDT (05:30Z)');
-- 2026-11-30 12:00 EST = 17:00Z
SELECT is(pg_temp.bal(pg_temp.m('ds3'), '2026-11-30 16:59:59+00'), '100/0/100/0/0/base',
          'DST autumn: still available at 11:59:59 EST (16:59:59Z)');
SELECT is(pg_temp.bal(pg_temp.m('ds3'), '2026-11-30 17:00:00+00'), '0/0/100/0/100/base',
          'DST autumn: expired at 12:00 EST (17:00Z)');
SELECT is(loyalty.add_months_local('2026-03-07 17:00:00+00', 1, 'America/New_York'),
          '2026-04-07 16:00:00+00'::timestamptz, 'add_months_local keeps the local clock time across DST');

-- ---------------------------------------------------------------------------
-- Inactivity 6 months (UTC)
-- ---------------------------------------------------------------------------
DO $$BEGIN
    PERFORM loyalty.create_program('tap06_inact', 'Inactivity', '{"expiry": {"policy": "inactivity", "months": 6}}');
    PERFORM loyalty.add_tier('tap06_inact', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tap06_inact', r, '2026-01-01 00:00:00+00') FROM unnest(ARRAY['ia', 'ib', 'ic']) r;
    PERFORM loyalty.award(pg_temp.m(r), 100, 'start', 'a1', '2026-01-01 00:00:00+00') FROM unnest(ARRAY['ia', 'ib', 'ic']) r;
    -- ia: a redeem on 2026-03-01 moves the deadline to 2026-09-01.
    PERFORM loyalty.redeem(pg_temp.m('ia'), 10, 'r1', '2026-03-01 00:00:00+00');
    -- ic: an earn on 2026-04-01 moves the deadline to 2026-10-01.
    PERFORM loyalty.earn(pg_temp.m('ic'), 10, 'e1', '2026-04-01 00:00:00+00');
END$$;
-- ib: no activity after the award: deadline 2026-07-01.
SELECT is(pg_temp.bal(pg_temp.m('ib'), '2026-06-30 23:59:59+00'), '100/0/100/0/0/base',
          'inactivity: available one second before the deadline');
SELECT is(pg_temp.bal(pg_temp.m('ib'), '2026-07-01 00:00:00+00'), '0/0/100/0/100/base',
          'inactivity: everything expires 6 months after the last activity');
SELECT is(pg_temp.bal(pg_temp.m('ia'), '2026-02-01 00:00:00+00'), '100/0/100/0/0/base',
          'inactivity: balance as of before the redeem');
SELECT is(pg_temp.bal(pg_temp.m('ia'), '2026-07-01 00:00:00+00'), '90/0/100/10/0/base',
          'inactivity: a redeem extends the deadline');
SELECT is(pg_temp.bal(pg_temp.m('ia'), '2026-08-31 23:59:59+00'), '90/0/100/10/0/base',
          'inactivity: available one second before the extended deadline');
SELECT is(pg_temp.bal(pg_temp.m('ia'), '2026-09-01 00:00:00+00'), '0/0/100/10/90/base',
          'inactivity: expired at the extended deadline');
SELECT is(pg_temp.bal(pg_temp.m('ic'), '2026-09-30 23:59:59+00'), '110/0/110/0/0/base',
          'inactivity: an earn extends the deadline');
SELECT is(pg_temp.bal(pg_temp.m('ic'), '2026-10-01 00:00:00+00'), '0/0/110/0/110/base',
          'inactivity: all points, old and new, expire together');
SELECT is(pg_temp.rc(loyalty.award(pg_temp.m('ib'), 7, 'comeback', 'a2', '2026-08-15 00:00:00+00')),
          '7/7/0/base/f', 'inactivity: operation after the deadline sees the expired points gone');
SELECT is(pg_temp.expires(pg_temp.m('ib')), '2026-07-01 00:00:00 -100',
          'inactivity: expire entry dated at the deadline');

-- ---------------------------------------------------------------------------
-- none
-- ---------------------------------------------------------------------------
DO $$BEGIN
    PERFORM loyalty.create_program('tap06_none', 'None', '{"expiry": {"policy": "none"}}');
    PERFORM loyalty.add_tier('tap06_none', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tap06_none', 'n', '2026-01-01 00:00:00+00');
    PERFORM loyalty.award(pg_temp.m('n'), 100, 'start', 'a1', '2026-01-01 00:00:00+00');
END$$;
SELECT is(pg_temp.bal(pg_temp.m('n'), '2099-01-01 00:00:00+00'), '100/0/100/0/0/base',
          'none: points never expire');
SELECT is((SELECT (next_expiry IS NULL, coalesce(next_expiry_points, 0))::text
             FROM loyalty.balance(pg_temp.m('n'), '2026-06-01 00:00:00+00')),
          '(t,0)', 'none: no next expiry');

-- ---------------------------------------------------------------------------
-- Spent points are never expired, also with several lots (rolling 12)
-- ---------------------------------------------------------------------------
DO $$BEGIN
    PERFORM loyalty.enroll('tap06_roll', 's', '2026-01-01 00:00:00+00');
    PERFORM loyalty.award(pg_temp.m('s'), 100, 'one', 'a1', '2026-01-01 00:00:00+00');
    PERFORM loyalty.award(pg_temp.m('s'), 100, 'two', 'a2', '2026-02-01 00:00:00+00');
END$$;
-- redeem 130: 100 of the first lot, 30 of the second
SELECT is(pg_temp.rc(loyalty.redeem(pg_temp.m('s'), 130, 'r1', '2026-03-01 00:00:00+00')),
          '-130/70/0/base/f', 'redeem 130 of 200');
SELECT is(pg_temp.bal(pg_temp.m('s'), '2027-01-01 00:00:00+00'), '70/0/200/130/0/base',
          'the fully spent first lot expires nothing');
SELECT is(pg_temp.bal(pg_temp.m('s'), '2027-02-01 00:00:00+00'), '0/0/200/130/70/base',
          'the second lot expires only its unspent 70');
-- Due by 2027-02-01 and not yet expired: r 100, r1 100, em 100, eq 100,
-- ds1..ds3 300, ia 90, ic 110, s 70 (ib was swept lazily, its new lot of 7 is
-- due 2027-02-15; ey is due at the end of 2027; n never) = 970.
SELECT is((SELECT (r->>'expired_points')::bigint FROM loyalty.run_maintenance('2027-02-01 00:00:00+00') r),
          970::bigint, 'run_maintenance expires exactly the unspent points that are due');
SELECT is(pg_temp.expires(pg_temp.m('s')), '2027-02-01 00:00:00 -70', 's: one expire entry of -70');
SELECT is(pg_temp.expires(pg_temp.m('r')), '2027-01-31 10:00:00 -100', 'r: expire entry at the exact instant');
SELECT is(pg_temp.expires(pg_temp.m('em')), '2026-02-28 23:00:00 -100', 'em: expire entry at local month end');
SELECT is(pg_temp.expires(pg_temp.m('ey')), NULL, 'ey: not due yet, no expire entry');
SELECT is(pg_temp.bal(pg_temp.m('s'), '2027-01-15 00:00:00+00'), '70/0/200/130/0/base',
          's: balance as of a time before the expire entry, after maintenance');

-- ---------------------------------------------------------------------------
-- run_maintenance(now, max_members) handles at most max_members members.
-- Nothing else in this file is due between 2027-02-01 and 2027-02-10.
-- ---------------------------------------------------------------------------
DO $$BEGIN
    PERFORM loyalty.create_program('tap06_batch', 'Batch', '{"expiry": {"policy": "rolling", "months": 1}}');
    PERFORM loyalty.add_tier('tap06_batch', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tap06_batch', r, '2026-12-01 00:00:00+00') FROM unnest(ARRAY['b1', 'b2']) r;
    -- 50 each, expiring 2027-02-05
    PERFORM loyalty.award(pg_temp.m(r), 50, 'start', 'a1', '2027-01-05 00:00:00+00') FROM unnest(ARRAY['b1', 'b2']) r;
END$$;
SELECT is((SELECT string_agg(loyalty.run_maintenance('2027-02-10 00:00:00+00', 1)->>'expired_points', ',' ORDER BY i)
             FROM generate_series(1, 3) i),
          '50,50,0', 'run_maintenance with max_members 1: one member per call');

-- ---------------------------------------------------------------------------
-- Late-arriving operation: applied to the current state, its lot dated from
-- its own `at` (rolling 12 months).
-- ---------------------------------------------------------------------------
DO $$BEGIN
    PERFORM loyalty.enroll('tap06_roll', 'late', '2026-01-01 00:00:00+00');
    PERFORM loyalty.award(pg_temp.m('late'), 100, 'september', 'a1', '2026-09-01 00:00:00+00');
END$$;
SELECT is(pg_temp.rc(loyalty.award(pg_temp.m('late'), 50, 'july, sent late', 'a2', '2026-07-01 00:00:00+00')),
          '50/150/0/base/f', 'late award: applied to the current balance');
SELECT is(pg_temp.bal(pg_temp.m('late'), '2026-08-01 00:00:00+00'), '50/0/50/0/0/base',
          'late award: balance as of August counts it, not the September one');
SELECT is(pg_temp.bal(pg_temp.m('late'), '2027-06-30 23:59:59+00'), '150/0/150/0/0/base',
          'late award: available until its own expiry');
SELECT is(pg_temp.bal(pg_temp.m('late'), '2027-07-01 00:00:00+00'), '100/0/150/0/50/base',
          'late award: expires 12 months after its own `at`');

-- ---------------------------------------------------------------------------
-- Operations exactly at the expiry instant; expiry counted from available_at
-- ---------------------------------------------------------------------------
DO $$BEGIN
    PERFORM loyalty.enroll('tap06_roll', r, '2026-01-01 00:00:00+00') FROM unnest(ARRAY['edge1', 'edge2']) r;
    -- 100 each, expiring 2027-03-31 10:00Z
    PERFORM loyalty.award(pg_temp.m(r), 100, 'start', 'a1', '2026-03-31 10:00:00+00') FROM unnest(ARRAY['edge1', 'edge2']) r;
    PERFORM loyalty.create_program('tap06_pexp', 'Pending then rolling',
            '{"pending_days": 10, "expiry": {"policy": "rolling", "months": 1}}');
    PERFORM loyalty.add_tier('tap06_pexp', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tap06_pexp', 'px', '2026-01-01 00:00:00+00');
END$$;
SELECT throws_ok($$SELECT loyalty.redeem(pg_temp.m('edge1'), 100, 'r1', '2027-03-31 10:00:00+00')$$,
                 'LY010', NULL, 'redeem at the expiry instant: the points are gone (LY010)');
SELECT is(pg_temp.rc(loyalty.redeem(pg_temp.m('edge2'), 100, 'r1', '2027-03-31 09:59:59+00')),
          '-100/0/0/base/f', 'redeem one second before the expiry instant succeeds');
SELECT is(pg_temp.bal(pg_temp.m('edge2'), '2027-04-01 00:00:00+00'), '0/0/100/100/0/base',
          'nothing left to expire after the redeem');
-- earn 2026-01-25: available 2026-02-04, so it expires 2026-03-04 (not 2026-02-25)
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('px'), 100, 'e1', '2026-01-25 00:00:00+00')),
          '100/0/100/base/f', 'pending earn');
SELECT is(pg_temp.bal(pg_temp.m('px'), '2026-03-03 23:59:59+00'), '100/0/100/0/0/base',
          'expiry counts from available_at: still available the day before');
SELECT is(pg_temp.bal(pg_temp.m('px'), '2026-03-04 00:00:00+00'), '0/0/100/0/100/base',
          'expiry counts from available_at: expired one month after it');

-- ---------------------------------------------------------------------------
-- Inactivity: every movement but a refund or an expiry is activity (README),
-- so a staff adjustment keeps the points alive for another 6 months.
-- ---------------------------------------------------------------------------
DO $$BEGIN
    PERFORM loyalty.enroll('tap06_inact', 'iadj', '2026-01-01 00:00:00+00');
    PERFORM loyalty.award(pg_temp.m('iadj'), 100, 'start', 'a1', '2026-01-01 00:00:00+00');
    PERFORM loyalty.adjust(pg_temp.m('iadj'), 10, 'correction', 'ad1', '2026-04-01 00:00:00+00');
END$$;
SELECT is(pg_temp.bal(pg_temp.m('iadj'), '2026-07-01 00:00:00+00'), '110/0/110/0/0/base',
          'inactivity: an adjustment is activity, nothing expires 6 months after the award');
SELECT is(pg_temp.bal(pg_temp.m('iadj'), '2026-10-01 00:00:00+00'), '0/0/110/0/110/base',
          'inactivity: everything expires 6 months after the adjustment');

-- ---------------------------------------------------------------------------
-- The session time zone does not matter, only the program's.
-- ---------------------------------------------------------------------------
SET LOCAL timezone = 'Pacific/Chatham';
DO $$BEGIN
    PERFORM loyalty.enroll('tap06_eom', 'em2', '2026-01-01 00:00:00+00');
    PERFORM loyalty.award(pg_temp.m('em2'), 100, 'start', 'a1', '2026-01-15 11:00:00+00');
    PERFORM loyalty.enroll('tap06_dst', 'ds4', '2026-01-01 00:00:00+00');
    PERFORM loyalty.award(pg_temp.m('ds4'), 100, 'start', 'a1', '2026-03-07 17:00:00+00');
END$$;
SELECT is(pg_temp.bal(pg_temp.m('em2'), '2026-02-28 22:59:59+00') || ' ' || pg_temp.bal(pg_temp.m('em2'), '2026-02-28 23:00:00+00'),
          '100/0/100/0/0/base 0/0/100/0/100/base', 'session time zone Pacific/Chatham: Berlin month end unchanged');
SELECT is(pg_temp.bal(pg_temp.m('ds4'), '2026-04-07 15:59:59+00') || ' ' || pg_temp.bal(pg_temp.m('ds4'), '2026-04-07 16:00:00+00'),
          '100/0/100/0/0/base 0/0/100/0/100/base', 'session time zone Pacific/Chatham: New York DST expiry unchanged');
SET LOCAL timezone = 'UTC';

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
