-- 03_earn: points per unit, rounding, tier multipliers and promotion, pending
-- days, idempotency, bad input, tier basis and window.
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(90);

-- Helpers (temporary, gone with the session).
CREATE FUNCTION pg_temp.m(ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code LIKE 'tap03%' AND m.external_ref = ref $$;
-- receipt as points/available/pending/tier/replayed
CREATE FUNCTION pg_temp.rc(r loyalty.receipt) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s/%s/%s', r.points, r.available, r.pending, r.tier, r.replayed) $$;
-- balance as available/pending/lifetime_earned/redeemed/expired/tier
CREATE FUNCTION pg_temp.bal(mid bigint, t timestamptz) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s/%s/%s/%s', available, pending, lifetime_earned, redeemed, expired, tier)
      FROM loyalty.balance(mid, t) $$;
CREATE FUNCTION pg_temp.nentries(mid bigint) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM loyalty.entry WHERE member_id = mid $$;

-- ---------------------------------------------------------------------------
-- Basic earn, points per unit 1, floor
-- ---------------------------------------------------------------------------
DO $$BEGIN PERFORM loyalty.create_program('tap03_basic', 'Basic'); END$$;
DO $$BEGIN PERFORM loyalty.add_tier('tap03_basic', 'base', 'Base', 0); END$$;
DO $$BEGIN PERFORM loyalty.enroll('tap03_basic', 'a', '2026-01-01 00:00:00+00'); END$$;

-- 100 * 1 * 1 = 100
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('a'), 100, 'e1', '2026-01-10 10:00:00+00')),
          '100/100/0/base/f', 'earn 100 -> 100 points, available at once');
-- floor(12.99) = 12; 100 + 12 = 112
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('a'), 12.99, 'e2', '2026-01-11 10:00:00+00')),
          '12/112/0/base/f', 'earn 12.99 -> 12 points (floor)');
-- 112 + 5 = 117
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('a'), 5, 'e3', '2026-01-12 10:00:00+00')),
          '5/117/0/base/f', 'earn 5 -> 5 points');

-- Replay of e2 (with another `at`): original receipt, replayed = true.
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('a'), 12.99, 'e2', '2026-02-01 00:00:00+00')),
          '12/112/0/base/t', 'replay returns the original receipt with replayed = true');
SELECT is((loyalty.earn(pg_temp.m('a'), 12.99, 'e2', '2026-02-01 00:00:00+00')).entry_id,
          (SELECT id FROM loyalty.entry WHERE member_id = pg_temp.m('a') AND idempotency_key = 'e2'),
          'replay returns the original entry_id');
SELECT is(pg_temp.nentries(pg_temp.m('a')), 3::bigint, 'replays wrote nothing (3 entries)');
SELECT is(pg_temp.bal(pg_temp.m('a'), '2026-03-01 00:00:00+00'), '117/0/117/0/0/base',
          'replays changed no balance');

-- Same key, different arguments / operation: LY020.
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('a'), 13, 'e2', '2026-01-11 10:00:00+00')$$,
                 'LY020', NULL, 'same key, different amount -> LY020');
SELECT throws_ok($$SELECT loyalty.award(pg_temp.m('a'), 12, 'bonus', 'e2', '2026-01-11 10:00:00+00')$$,
                 'LY020', NULL, 'earn key reused by award -> LY020');
SELECT throws_ok($$SELECT loyalty.redeem(pg_temp.m('a'), 12, 'e2', '2026-01-11 10:00:00+00')$$,
                 'LY020', NULL, 'earn key reused by redeem -> LY020');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('a'), 10, 'e4', '2026-01-13 10:00:00+00', '{"store": "s1"}')),
          '10/127/0/base/f', 'earn with attrs');
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('a'), 10, 'e4', '2026-01-13 10:00:00+00', '{"store": "s2"}')$$,
                 'LY020', NULL, 'same key, different attrs -> LY020');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('a'), 10, 'e4', '2026-01-13 10:00:00+00', '{"store": "s1"}')),
          '10/127/0/base/t', 'same key, same attrs -> replay');

-- Key required.
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('a'), 10, NULL, '2026-01-14 10:00:00+00')$$,
                 'LY021', NULL, 'NULL key -> LY021');
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('a'), 10, '', '2026-01-14 10:00:00+00')$$,
                 'LY021', NULL, 'empty key -> LY021');

-- Amounts.
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('a'), 0, 'bad1', '2026-01-14 10:00:00+00')$$,
                 'LY031', NULL, 'amount 0 -> LY031');
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('a'), -5, 'bad1', '2026-01-14 10:00:00+00')$$,
                 'LY031', NULL, 'negative amount -> LY031');
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('a'), 'NaN', 'bad1', '2026-01-14 10:00:00+00')$$,
                 'LY031', NULL, 'NaN amount -> LY031');
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('a'), 'Infinity', 'bad1', '2026-01-14 10:00:00+00')$$,
                 'LY031', NULL, 'infinite amount -> LY031');
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('a'), '-Infinity', 'bad1', '2026-01-14 10:00:00+00')$$,
                 'LY031', NULL, '-infinite amount -> LY031');
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('a'), NULL, 'bad1', '2026-01-14 10:00:00+00')$$,
                 'LY034', NULL, 'NULL amount -> LY034');
-- 1e30 points do not fit in bigint.
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('a'), 1e30, 'bad1', '2026-01-14 10:00:00+00')$$,
                 'LY032', NULL, 'amount whose points overflow bigint -> LY032');

-- Member and time.
SELECT throws_ok($$SELECT loyalty.earn(NULL, 10, 'bad1', '2026-01-14 10:00:00+00')$$,
                 'LY034', NULL, 'NULL member -> LY034');
SELECT throws_ok($$SELECT loyalty.earn(-1, 10, 'bad1', '2026-01-14 10:00:00+00')$$,
                 'LY002', NULL, 'unknown member -> LY002');
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('a'), 10, 'bad1', 'infinity')$$,
                 'LY033', NULL, 'at = infinity -> LY033');
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('a'), 10, 'bad1', '-infinity')$$,
                 'LY033', NULL, 'at = -infinity -> LY033');
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('a'), 10, 'bad1', NULL)$$,
                 'LY034', NULL, 'at = NULL -> LY034');

-- attrs.
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('a'), 10, 'bad1', '2026-01-14 10:00:00+00', '[1, 2]')$$,
                 'LY035', NULL, 'attrs an array -> LY035');
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('a'), 10, 'bad1', '2026-01-14 10:00:00+00', '"store"')$$,
                 'LY035', NULL, 'attrs a string -> LY035');
SELECT is(pg_temp.nentries(pg_temp.m('a')), 4::bigint, 'failed earns wrote nothing (4 entries)');
-- The balance overflowing bigint is LY032 too (9e18 + 9e18 > 9223372036854775807).
DO $$BEGIN PERFORM loyalty.enroll('tap03_basic', 'big', '2026-01-01 00:00:00+00'); END$$;
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('big'), 9e18, 'b1', '2026-01-10 00:00:00+00')),
          '9000000000000000000/9000000000000000000/0/base/f', 'earn of 9e18 points fits');
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('big'), 9e18, 'b2', '2026-01-11 00:00:00+00')$$,
                 'LY032', NULL, 'an earn that would overflow the balance -> LY032');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('a'), 1, 'e5', '2026-01-15 10:00:00+00', NULL)),
          '1/128/0/base/f', 'attrs NULL is treated as {}');

-- An earn worth 0 points: floor(0.5) = 0 -> an entry with 0 points, no lot.
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('a'), 0.5, 'e6', '2026-01-16 10:00:00+00')),
          '0/128/0/base/f', 'earn 0.5 -> 0 points');
SELECT is((SELECT (kind, points, amount = 0.5)::text FROM loyalty.entry
            WHERE member_id = pg_temp.m('a') AND idempotency_key = 'e6'),
          '(earn,0,t)', '0-point earn still writes an earn entry');
SELECT is((SELECT count(*) FROM loyalty.lot l JOIN loyalty.entry e
                ON e.member_id = l.member_id AND e.id = l.entry_id
            WHERE e.member_id = pg_temp.m('a') AND e.idempotency_key = 'e6'),
          0::bigint, '0-point earn creates no lot');

-- ---------------------------------------------------------------------------
-- Rounding modes and points_per_unit
-- ---------------------------------------------------------------------------
DO $$BEGIN PERFORM loyalty.create_program('tap03_' || r, r, jsonb_build_object('rounding', r))
  FROM unnest(ARRAY['floor', 'round', 'ceil']) r; END$$;
DO $$BEGIN PERFORM loyalty.add_tier('tap03_' || r, 'base', 'Base', 0) FROM unnest(ARRAY['floor', 'round', 'ceil']) r; END$$;
DO $$BEGIN PERFORM loyalty.enroll('tap03_' || r, 'r_' || r, '2026-01-01 00:00:00+00') FROM unnest(ARRAY['floor', 'round', 'ceil']) r; END$$;

SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('r_floor'), 10.5, 'k1', '2026-01-10 00:00:00+00')),
          '10/10/0/base/f', 'floor: 10.5 -> 10');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('r_floor'), 10.99, 'k2', '2026-01-10 00:00:01+00')),
          '10/20/0/base/f', 'floor: 10.99 -> 10');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('r_round'), 10.5, 'k1', '2026-01-10 00:00:00+00')),
          '11/11/0/base/f', 'round: 10.5 -> 11');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('r_round'), 10.49, 'k2', '2026-01-10 00:00:01+00')),
          '10/21/0/base/f', 'round: 10.49 -> 10');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('r_ceil'), 10.01, 'k1', '2026-01-10 00:00:00+00')),
          '11/11/0/base/f', 'ceil: 10.01 -> 11');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('r_ceil'), 10, 'k2', '2026-01-10 00:00:01+00')),
          '10/21/0/base/f', 'ceil: 10 -> 10');

DO $$BEGIN PERFORM loyalty.create_program('tap03_ppu', 'ppu 2.5', '{"points_per_unit": 2.5, "rounding": "round"}'); END$$;
DO $$BEGIN PERFORM loyalty.add_tier('tap03_ppu', 'base', 'Base', 0); END$$;
DO $$BEGIN PERFORM loyalty.enroll('tap03_ppu', 'u', '2026-01-01 00:00:00+00'); END$$;
-- 3 * 2.5 = 7.5 -> 8; 2.9 * 2.5 = 7.25 -> 7
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('u'), 3, 'k1', '2026-01-10 00:00:00+00')),
          '8/8/0/base/f', 'points_per_unit 2.5, round: 3 -> 8');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('u'), 2.9, 'k2', '2026-01-10 00:00:01+00')),
          '7/15/0/base/f', 'points_per_unit 2.5, round: 2.9 -> 7');

-- ---------------------------------------------------------------------------
-- Tier multipliers and promotion (basis points, lifetime window)
-- ---------------------------------------------------------------------------
DO $$BEGIN PERFORM loyalty.create_program('tap03_tier', 'Tiers', '{"tier_window": "lifetime"}'); END$$;
DO $$BEGIN PERFORM loyalty.add_tier('tap03_tier', 'base', 'Base', 0); END$$;
DO $$BEGIN PERFORM loyalty.add_tier('tap03_tier', 'silver', 'Silver', 100, 1.5); END$$;
DO $$BEGIN PERFORM loyalty.add_tier('tap03_tier', 'gold', 'Gold', 500, 2); END$$;
DO $$BEGIN PERFORM loyalty.enroll('tap03_tier', 't1', '2026-01-01 00:00:00+00'); END$$;
DO $$BEGIN PERFORM loyalty.enroll('tap03_tier', 't2', '2026-01-01 00:00:00+00'); END$$;

-- t1: 99 at x1 -> 99, base.
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('t1'), 99, 'k1', '2026-01-10 00:00:00+00')),
          '99/99/0/base/f', 'below the silver threshold: base');
-- 10 at the old multiplier x1 -> 10; qualifying 109 >= 100 -> silver.
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('t1'), 10, 'k2', '2026-01-11 00:00:00+00')),
          '10/109/0/silver/f', 'crossing earn: old multiplier, promoted to silver');
-- 100 at x1.5 -> 150
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('t1'), 100, 'k3', '2026-01-12 00:00:00+00')),
          '150/259/0/silver/f', 'next earn uses the silver multiplier 1.5');
-- 400 at x1.5 -> 600; qualifying >= 500 either way -> gold
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('t1'), 400, 'k4', '2026-01-13 00:00:00+00')),
          '600/859/0/gold/f', 'crossing into gold uses silver multiplier');
-- 10 at x2 -> 20
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('t1'), 10, 'k5', '2026-01-14 00:00:00+00')),
          '20/879/0/gold/f', 'next earn uses the gold multiplier 2');
SELECT is((SELECT string_agg(to_tier, ',' ORDER BY at, id) FROM loyalty.tier_change WHERE member_id = pg_temp.m('t1')),
          'base,silver,gold', 'tier_change history: base, silver, gold');
SELECT is((SELECT tier FROM loyalty.balance(pg_temp.m('t1'), '2026-01-15 00:00:00+00')), 'gold',
          'balance shows gold');

-- t2: one earn of 600 at x1 jumps over silver straight to gold.
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('t2'), 600, 'k1', '2026-01-10 00:00:00+00')),
          '600/600/0/gold/f', 'one earn jumps base -> gold at the base multiplier');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('t2'), 10, 'k2', '2026-01-11 00:00:00+00')),
          '20/620/0/gold/f', 'then earns at x2');

-- ---------------------------------------------------------------------------
-- pending_days: local calendar days in America/New_York, across the DST change
-- (2026-03-08 02:00 EST -> 03:00 EDT).
-- ---------------------------------------------------------------------------
DO $$BEGIN PERFORM loyalty.create_program('tap03_pend', 'Pending', '{"pending_days": 2, "timezone": "America/New_York"}'); END$$;
DO $$BEGIN PERFORM loyalty.add_tier('tap03_pend', 'base', 'Base', 0); END$$;
DO $$BEGIN PERFORM loyalty.enroll('tap03_pend', 'p', '2026-03-01 00:00:00+00'); END$$;

-- Earn at 2026-03-07 12:00 EST (17:00Z): available at 2026-03-09 12:00 EDT = 16:00Z
-- (not 17:00Z, which would be 48 hours).
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('p'), 100, 'k1', '2026-03-07 17:00:00+00')),
          '100/0/100/base/f', 'earn with pending_days: points pending');
SELECT is((SELECT available_at FROM loyalty.lot l JOIN loyalty.entry e
                ON e.member_id = l.member_id AND e.id = l.entry_id
            WHERE e.member_id = pg_temp.m('p') AND e.idempotency_key = 'k1'),
          '2026-03-09 16:00:00+00'::timestamptz, 'lot available_at = 2 local days later, same local time');
-- Award: available immediately, even in a pending program.
SELECT is(pg_temp.rc(loyalty.award(pg_temp.m('p'), 10, 'welcome', 'k2', '2026-03-08 12:00:00+00')),
          '10/10/100/base/f', 'award is available immediately');
SELECT is(pg_temp.bal(pg_temp.m('p'), '2026-03-09 15:59:59+00'), '10/100/110/0/0/base',
          'one second before available_at: still pending');
SELECT is(pg_temp.bal(pg_temp.m('p'), '2026-03-09 16:00:00+00'), '110/0/110/0/0/base',
          'at available_at: available');
SELECT is(pg_temp.bal(pg_temp.m('p'), '2026-03-09 16:00:01+00'), '110/0/110/0/0/base',
          'one second after available_at: available');
SELECT throws_ok($$SELECT loyalty.redeem(pg_temp.m('p'), 50, 'k3', '2026-03-09 15:59:59+00')$$,
                 'LY010', NULL, 'pending points cannot be redeemed (LY010)');
-- 110 - 50 = 60
SELECT is(pg_temp.rc(loyalty.redeem(pg_temp.m('p'), 50, 'k3', '2026-03-09 16:00:00+00')),
          '-50/60/0/base/f', 'redeem at available_at succeeds');

-- ---------------------------------------------------------------------------
-- tier_basis spend (points_per_unit 10 so points and money differ)
-- ---------------------------------------------------------------------------
DO $$BEGIN PERFORM loyalty.create_program('tap03_spend', 'Spend',
       '{"points_per_unit": 10, "tier_basis": "spend", "tier_window": "lifetime"}'); END$$;
DO $$BEGIN PERFORM loyalty.add_tier('tap03_spend', 'base', 'Base', 0); END$$;
DO $$BEGIN PERFORM loyalty.add_tier('tap03_spend', 'silver', 'Silver', 100, 2); END$$;
DO $$BEGIN PERFORM loyalty.enroll('tap03_spend', 's', '2026-01-01 00:00:00+00'); END$$;
-- 20 money -> 200 points; spend 20 < 100 (points 200 would have promoted)
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('s'), 20, 'k1', '2026-01-10 00:00:00+00')),
          '200/200/0/base/f', 'spend basis: 200 points but spend 20 -> base');
-- 79.99 -> floor(799.9) = 799; spend 99.99
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('s'), 79.99, 'k2', '2026-01-11 00:00:00+00')),
          '799/999/0/base/f', 'spend 99.99 -> base');
-- 0.01 -> floor(0.1) = 0 points; spend 100 -> silver
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('s'), 0.01, 'k3', '2026-01-12 00:00:00+00')),
          '0/999/0/silver/f', 'spend reaches 100 -> silver');
-- 1 * 10 * 2 = 20
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('s'), 1, 'k4', '2026-01-13 00:00:00+00')),
          '20/1019/0/silver/f', 'silver multiplier 2');
SELECT is((SELECT qualifying FROM loyalty.balance(pg_temp.m('s'), '2026-01-14 00:00:00+00')),
          101::numeric, 'qualifying = spend 101');

-- ---------------------------------------------------------------------------
-- tier_basis visits
-- ---------------------------------------------------------------------------
DO $$BEGIN PERFORM loyalty.create_program('tap03_visits', 'Visits', '{"tier_basis": "visits", "tier_window": "lifetime"}'); END$$;
DO $$BEGIN PERFORM loyalty.add_tier('tap03_visits', 'base', 'Base', 0); END$$;
DO $$BEGIN PERFORM loyalty.add_tier('tap03_visits', 'silver', 'Silver', 3, 2); END$$;
DO $$BEGIN PERFORM loyalty.enroll('tap03_visits', 'v', '2026-01-01 00:00:00+00'); END$$;
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('v'), 50, 'k1', '2026-01-10 00:00:00+00')),
          '50/50/0/base/f', 'visit 1');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('v'), 50, 'k2', '2026-01-11 00:00:00+00')),
          '50/100/0/base/f', 'visit 2 (100 points do not matter)');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('v'), 1, 'k3', '2026-01-12 00:00:00+00')),
          '1/101/0/silver/f', 'visit 3 -> silver');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('v'), 1, 'k4', '2026-01-13 00:00:00+00')),
          '2/103/0/silver/f', 'visit 4 at x2');
SELECT is((SELECT qualifying FROM loyalty.balance(pg_temp.m('v'), '2026-01-14 00:00:00+00')),
          4::numeric, 'qualifying = 4 visits');

-- ---------------------------------------------------------------------------
-- tier_window calendar_year in America/New_York (UTC-5 in winter)
-- Local 2026-12-31 23:59:59 = 2027-01-01 04:59:59Z; local 2027-01-01 00:00 = 05:00Z.
-- ---------------------------------------------------------------------------
DO $$BEGIN PERFORM loyalty.create_program('tap03_cy', 'Calendar year',
       '{"tier_window": "calendar_year", "timezone": "America/New_York"}'); END$$;
DO $$BEGIN PERFORM loyalty.add_tier('tap03_cy', 'base', 'Base', 0); END$$;
DO $$BEGIN PERFORM loyalty.add_tier('tap03_cy', 'silver', 'Silver', 100); END$$;
DO $$BEGIN PERFORM loyalty.enroll('tap03_cy', 'cy' || i, '2026-01-01 12:00:00+00') FROM generate_series(1, 3) i; END$$;

-- cy1: 60 in local 2026, 60 one second later in local 2027 -> 60 in 2027, base.
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('cy1'), 60, 'k1', '2027-01-01 04:59:59+00')),
          '60/60/0/base/f', 'cy1: last second of local 2026');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('cy1'), 60, 'k2', '2027-01-01 05:00:00+00')),
          '60/120/0/base/f', 'cy1: first second of local 2027 starts a new window -> base');
SELECT is((SELECT qualifying FROM loyalty.balance(pg_temp.m('cy1'), '2027-01-01 05:00:00+00')),
          60::numeric, 'cy1: qualifying in local 2027 is 60');
SELECT is((SELECT qualifying FROM loyalty.balance(pg_temp.m('cy1'), '2027-01-01 04:59:59+00')),
          60::numeric, 'cy1: qualifying at the last second of local 2026 is 60');
-- cy2: both in the last two seconds of local 2026 -> 120, silver.
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('cy2'), 60, 'k1', '2027-01-01 04:59:58+00')),
          '60/60/0/base/f', 'cy2: first earn');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('cy2'), 60, 'k2', '2027-01-01 04:59:59+00')),
          '60/120/0/silver/f', 'cy2: same local year -> silver');
-- cy3: June 2026 and the last second of local 2026 (already 2027 in UTC) -> silver.
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('cy3'), 60, 'k1', '2026-06-01 12:00:00+00')),
          '60/60/0/base/f', 'cy3: June');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('cy3'), 60, 'k2', '2027-01-01 04:59:59+00')),
          '60/120/0/silver/f', 'cy3: local year, not UTC year -> silver');

-- ---------------------------------------------------------------------------
-- tier_window rolling_months 3 and lifetime
-- ---------------------------------------------------------------------------
DO $$BEGIN PERFORM loyalty.create_program('tap03_roll', 'Rolling', '{"tier_window": {"rolling_months": 3}}'); END$$;
DO $$BEGIN PERFORM loyalty.add_tier('tap03_roll', 'base', 'Base', 0); END$$;
DO $$BEGIN PERFORM loyalty.add_tier('tap03_roll', 'silver', 'Silver', 100); END$$;
DO $$BEGIN PERFORM loyalty.enroll('tap03_roll', 'r1', '2026-01-01 00:00:00+00'); END$$;
DO $$BEGIN PERFORM loyalty.enroll('tap03_roll', 'r2', '2026-01-01 00:00:00+00'); END$$;
-- r1: January earn is outside (2026-02-10, 2026-05-10] -> 60, base
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('r1'), 60, 'k1', '2026-01-10 00:00:00+00')),
          '60/60/0/base/f', 'r1: January');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('r1'), 60, 'k2', '2026-05-10 00:00:00+00')),
          '60/120/0/base/f', 'r1: the January earn is outside the 3-month window -> base');
SELECT is((SELECT qualifying FROM loyalty.balance(pg_temp.m('r1'), '2026-05-10 12:00:00+00')),
          60::numeric, 'r1: qualifying counts only the window');
-- r2: March and May -> 120, silver
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('r2'), 60, 'k1', '2026-03-10 00:00:00+00')),
          '60/60/0/base/f', 'r2: March');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('r2'), 60, 'k2', '2026-05-10 00:00:00+00')),
          '60/120/0/silver/f', 'r2: both inside the window -> silver');

DO $$BEGIN PERFORM loyalty.create_program('tap03_life', 'Lifetime', '{"tier_window": "lifetime"}'); END$$;
DO $$BEGIN PERFORM loyalty.add_tier('tap03_life', 'base', 'Base', 0); END$$;
DO $$BEGIN PERFORM loyalty.add_tier('tap03_life', 'silver', 'Silver', 100); END$$;
DO $$BEGIN PERFORM loyalty.enroll('tap03_life', 'l1', '2024-01-01 00:00:00+00'); END$$;
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('l1'), 60, 'k1', '2024-01-10 00:00:00+00')),
          '60/60/0/base/f', 'l1: 2024');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('l1'), 60, 'k2', '2026-05-10 00:00:00+00')),
          '60/120/0/silver/f', 'l1: lifetime window counts 2024 -> silver');

-- The session time zone does not matter: calendar_year is the program's local year.
SET LOCAL timezone = 'Asia/Tokyo';
DO $$BEGIN PERFORM loyalty.enroll('tap03_cy', 'cy4', '2026-01-01 12:00:00+00'); END$$;
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('cy4'), 60, 'k1', '2027-01-01 04:59:59+00')),
          '60/60/0/base/f', 'cy4 (session in Tokyo): last second of New York 2026');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('cy4'), 60, 'k2', '2027-01-01 05:00:00+00')),
          '60/120/0/base/f', 'cy4 (session in Tokyo): New York 2027 starts a new window');
SELECT is((SELECT qualifying FROM loyalty.balance(pg_temp.m('cy3'), '2027-01-01 04:59:59+00')),
          120::numeric, 'cy3 (session in Tokyo): balance qualifying uses the program year');
SET LOCAL timezone = 'UTC';

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
