-- 05_reverse: refunds: proportional points, cumulative limits, pending first,
-- negative_balance policies, qualifying figure.
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(72);

CREATE FUNCTION pg_temp.m(ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code LIKE 'tap05%' AND m.external_ref = ref $$;
CREATE FUNCTION pg_temp.rc(r loyalty.receipt) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s/%s/%s', r.points, r.available, r.pending, r.tier, r.replayed) $$;
CREATE FUNCTION pg_temp.bal(mid bigint, t timestamptz) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s/%s/%s/%s', available, pending, lifetime_earned, redeemed, expired, tier)
      FROM loyalty.balance(mid, t) $$;
CREATE FUNCTION pg_temp.nentries(mid bigint) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM loyalty.entry WHERE member_id = mid $$;
CREATE FUNCTION pg_temp.qual(mid bigint, t timestamptz) RETURNS numeric LANGUAGE sql AS $$
    SELECT qualifying FROM loyalty.balance(mid, t) $$;

-- One program per setting; every program has a base tier.
DO $$BEGIN
    PERFORM loyalty.create_program('tap05_prop', 'Proportional', '{"points_per_unit": 1.5}');
    PERFORM loyalty.create_program('tap05_pend', 'Pending', '{"pending_days": 10}');
    PERFORM loyalty.create_program('tap05_deny', 'Deny', '{"negative_balance": "deny"}');
    PERFORM loyalty.create_program('tap05_allow', 'Allow', '{"negative_balance": "allow"}');
    PERFORM loyalty.create_program('tap05_clamp', 'Clamp', '{"negative_balance": "clamp"}');
    PERFORM loyalty.create_program('tap05_order', 'Order', '{"expiry": {"policy": "rolling", "months": 12}}');
    PERFORM loyalty.create_program('tap05_tq', 'Tier points', '{"tier_window": "lifetime"}');
    PERFORM loyalty.create_program('tap05_ts', 'Tier spend', '{"tier_window": "lifetime", "tier_basis": "spend", "points_per_unit": 2}');
    PERFORM loyalty.create_program('tap05_tv', 'Tier visits', '{"tier_window": "lifetime", "tier_basis": "visits"}');
    PERFORM loyalty.create_program('tap05_tw', 'Tier window', '{"tier_window": {"rolling_months": 3}}');
    PERFORM loyalty.add_tier(code, 'base', 'Base', 0) FROM loyalty.program WHERE code LIKE 'tap05%';
    PERFORM loyalty.add_tier('tap05_tq', 'silver', 'Silver', 100);
    PERFORM loyalty.enroll('tap05_prop', 'p', '2026-01-01 00:00:00+00');
    PERFORM loyalty.enroll('tap05_prop', 'p_other', '2026-01-01 00:00:00+00');
    PERFORM loyalty.enroll('tap05_pend', 'q', '2026-01-01 00:00:00+00');
    PERFORM loyalty.enroll('tap05_deny', 'd', '2026-01-01 00:00:00+00');
    PERFORM loyalty.enroll('tap05_allow', 'l', '2026-01-01 00:00:00+00');
    PERFORM loyalty.enroll('tap05_clamp', 'c', '2026-01-01 00:00:00+00');
    PERFORM loyalty.enroll('tap05_order', 'o', '2026-01-01 00:00:00+00');
    PERFORM loyalty.enroll('tap05_tq', 'tq', '2026-01-01 00:00:00+00');
    PERFORM loyalty.enroll('tap05_ts', 'ts', '2026-01-01 00:00:00+00');
    PERFORM loyalty.enroll('tap05_tv', 'tv', '2026-01-01 00:00:00+00');
    PERFORM loyalty.enroll('tap05_tw', 'tw', '2026-01-01 00:00:00+00');
END$$;

-- ---------------------------------------------------------------------------
-- Proportional partial refunds (points_per_unit 1.5, floor)
-- ---------------------------------------------------------------------------
-- 10 * 1.5 = 15 points
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('p'), 10, 'p1', '2026-01-10 00:00:00+00')),
          '15/15/0/base/f', 'purchase of 10 earns 15');
-- refund 3: floor(15 * 3/10) = floor(4.5) = 4
SELECT is(pg_temp.rc(loyalty.reverse(pg_temp.m('p'), 'p1', 3, 'rv1', '2026-01-11 00:00:00+00')),
          '-4/11/0/base/f', 'refund 3 of 10 takes floor(4.5) = 4');
-- refund 3 more: floor(15 * 6/10) - 4 = 9 - 4 = 5
SELECT is(pg_temp.rc(loyalty.reverse(pg_temp.m('p'), 'p1', 3, 'rv2', '2026-01-11 00:01:00+00')),
          '-5/6/0/base/f', 'refund another 3: cumulative 9 - 4 = 5');
-- refund the rest (NULL): 15 - 9 = 6
SELECT is(pg_temp.rc(loyalty.reverse(pg_temp.m('p'), 'p1', NULL, 'rv3', '2026-01-11 00:02:00+00')),
          '-6/0/0/base/f', 'refund the rest: exactly what was earned in total (15)');
SELECT throws_ok($$SELECT loyalty.reverse(pg_temp.m('p'), 'p1', NULL, 'rv4', '2026-01-11 00:03:00+00')$$,
                 'LY051', NULL, 'refund of an already fully refunded purchase -> LY051');
SELECT throws_ok($$SELECT loyalty.reverse(pg_temp.m('p'), 'p1', 0.01, 'rv4', '2026-01-11 00:03:00+00')$$,
                 'LY051', NULL, 'any further refund -> LY051');
SELECT is((SELECT string_agg(points::text, ',' ORDER BY at, entry_id) FROM loyalty.statement(pg_temp.m('p')) WHERE kind = 'reverse'),
          '-4,-5,-6', 'statement: three reverse entries');
-- lifetime_earned = 15 credited - 15 reversed = 0
SELECT is(pg_temp.bal(pg_temp.m('p'), '2026-01-12 00:00:00+00'), '0/0/0/0/0/base',
          'after the full refund: lifetime_earned 0, nothing left');

-- Replays of a reverse.
SELECT is(pg_temp.rc(loyalty.reverse(pg_temp.m('p'), 'p1', 3, 'rv1', '2026-02-01 00:00:00+00')),
          '-4/11/0/base/t', 'reverse replay returns the original receipt');
SELECT throws_ok($$SELECT loyalty.reverse(pg_temp.m('p'), 'p1', 2, 'rv1', '2026-01-11 00:00:00+00')$$,
                 'LY020', NULL, 'reverse key reused with another amount -> LY020');

-- Refund larger than the purchase.
-- 50 * 1.5 = 75 points; 75 + 0 = 75
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('p'), 50, 'p2', '2026-01-12 00:00:00+00')),
          '75/75/0/base/f', 'purchase of 50 earns 75');
SELECT throws_ok($$SELECT loyalty.reverse(pg_temp.m('p'), 'p2', 60, 'rv5', '2026-01-13 00:00:00+00')$$,
                 'LY051', NULL, 'refund 60 of a 50 purchase -> LY051');
-- refund 30: floor(75 * 30/50) = 45
SELECT is(pg_temp.rc(loyalty.reverse(pg_temp.m('p'), 'p2', 30, 'rv5', '2026-01-13 00:00:00+00')),
          '-45/30/0/base/f', 'refund 30 of 50 takes 45');
SELECT throws_ok($$SELECT loyalty.reverse(pg_temp.m('p'), 'p2', 30, 'rv6', '2026-01-13 00:01:00+00')$$,
                 'LY051', NULL, 'cumulative refunds 60 > 50 -> LY051');
-- refund the last 20: 75 - 45 = 30
SELECT is(pg_temp.rc(loyalty.reverse(pg_temp.m('p'), 'p2', 20, 'rv6', '2026-01-13 00:02:00+00')),
          '-30/0/0/base/f', 'refund the remaining 20 takes the remaining 30');

-- Bad references and amounts.
SELECT lives_ok($$SELECT loyalty.award(pg_temp.m('p'), 5, 'bonus', 'aw1', '2026-01-14 00:00:00+00')$$, 'award 5');
SELECT lives_ok($$SELECT loyalty.earn(pg_temp.m('p_other'), 10, 'px', '2026-01-14 00:00:00+00')$$, 'other member earns');
SELECT throws_ok($$SELECT loyalty.reverse(pg_temp.m('p'), 'nope', 1, 'rv7', '2026-01-15 00:00:00+00')$$,
                 'LY005', NULL, 'unknown original key -> LY005');
SELECT throws_ok($$SELECT loyalty.reverse(pg_temp.m('p'), 'aw1', 1, 'rv7', '2026-01-15 00:00:00+00')$$,
                 'LY005', NULL, 'original key of an award -> LY005');
SELECT throws_ok($$SELECT loyalty.reverse(pg_temp.m('p'), 'rv1', 1, 'rv7', '2026-01-15 00:00:00+00')$$,
                 'LY005', NULL, 'original key of a reverse -> LY005');
SELECT throws_ok($$SELECT loyalty.reverse(pg_temp.m('p'), 'px', 1, 'rv7', '2026-01-15 00:00:00+00')$$,
                 'LY005', NULL, 'original key of another member''s earn -> LY005');
SELECT lives_ok($$SELECT loyalty.earn(pg_temp.m('p'), 10, 'p3', '2026-01-15 00:00:00+00')$$, 'earn p3');
SELECT throws_ok($$SELECT loyalty.reverse(pg_temp.m('p'), 'p3', 0, 'rv7', '2026-01-16 00:00:00+00')$$,
                 'LY031', NULL, 'refund amount 0 -> LY031');
SELECT throws_ok($$SELECT loyalty.reverse(pg_temp.m('p'), 'p3', -1, 'rv7', '2026-01-16 00:00:00+00')$$,
                 'LY031', NULL, 'negative refund amount -> LY031');
SELECT throws_ok($$SELECT loyalty.reverse(pg_temp.m('p'), 'p3', 'NaN', 'rv7', '2026-01-16 00:00:00+00')$$,
                 'LY031', NULL, 'NaN refund amount -> LY031');
SELECT throws_ok($$SELECT loyalty.reverse(pg_temp.m('p'), NULL, 1, 'rv7', '2026-01-16 00:00:00+00')$$,
                 'LY034', NULL, 'NULL original key -> LY034');
SELECT throws_ok($$SELECT loyalty.reverse(pg_temp.m('p'), 'p3', 1, NULL, '2026-01-16 00:00:00+00')$$,
                 'LY021', NULL, 'reverse without key -> LY021');
SELECT throws_ok($$SELECT loyalty.reverse(pg_temp.m('p'), 'p3', 1, 'rv7', 'infinity')$$,
                 'LY033', NULL, 'reverse at infinity -> LY033');
-- p: award + earn p1 + 3 reverses + earn p2 + 2 reverses + award + earn p3 = 9
SELECT is(pg_temp.nentries(pg_temp.m('p')), 9::bigint, 'failed reverses wrote nothing');

-- A purchase that earned 0 points (floor(0.5 * 1.5) = 0) can be refunded: 0 points.
SELECT lives_ok($$SELECT loyalty.earn(pg_temp.m('p_other'), 0.5, 'zero', '2026-01-16 00:00:00+00')$$, 'earn worth 0 points');
SELECT is(pg_temp.rc(loyalty.reverse(pg_temp.m('p_other'), 'zero', NULL, 'rvz', '2026-01-17 00:00:00+00')),
          '0/15/0/base/f', 'refund of a 0-point purchase takes 0 points');

-- ---------------------------------------------------------------------------
-- Refund while the purchase is pending: its own pending points go first.
-- ---------------------------------------------------------------------------
SELECT is(pg_temp.rc(loyalty.award(pg_temp.m('q'), 50, 'welcome', 'aw1', '2026-01-01 00:00:00+00')),
          '50/50/0/base/f', 'pending program: award 50 available');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('q'), 100, 'p1', '2026-01-02 00:00:00+00')),
          '100/50/100/base/f', 'earn 100 pending until 2026-01-12');
SELECT is(pg_temp.rc(loyalty.reverse(pg_temp.m('q'), 'p1', 40, 'rv1', '2026-01-03 00:00:00+00')),
          '-40/50/60/base/f', 'refund 40 takes 40 pending points, available untouched');
-- at 2026-01-12 the 60 left become available: 50 + 60; lifetime 150 - 40 = 110
SELECT is(pg_temp.bal(pg_temp.m('q'), '2026-01-12 00:00:00+00'), '110/0/110/0/0/base',
          'the rest of the purchase becomes available later');

-- ---------------------------------------------------------------------------
-- Points already spent: deny / allow / clamp
-- ---------------------------------------------------------------------------
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('d'), 100, 'p1', '2026-01-10 00:00:00+00')),
          '100/100/0/base/f', 'deny: earn 100');
SELECT is(pg_temp.rc(loyalty.redeem(pg_temp.m('d'), 80, 'r1', '2026-01-11 00:00:00+00')),
          '-80/20/0/base/f', 'deny: redeem 80');
SELECT throws_ok($$SELECT loyalty.reverse(pg_temp.m('d'), 'p1', NULL, 'rv1', '2026-01-12 00:00:00+00')$$,
                 'LY011', NULL, 'deny: full refund after spending -> LY011');
SELECT is(pg_temp.nentries(pg_temp.m('d')), 2::bigint, 'deny: nothing written');
SELECT is(pg_temp.bal(pg_temp.m('d'), '2026-01-12 00:00:00+00'), '20/0/100/80/0/base',
          'deny: balance unchanged');
-- refund 20 of 100 -> 20 points, exactly what is left
SELECT is(pg_temp.rc(loyalty.reverse(pg_temp.m('d'), 'p1', 20, 'rv1', '2026-01-12 00:00:00+00')),
          '-20/0/0/base/f', 'deny: a refund covered by the balance goes through');

SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('l'), 100, 'p1', '2026-01-10 00:00:00+00')),
          '100/100/0/base/f', 'allow: earn 100');
SELECT is(pg_temp.rc(loyalty.redeem(pg_temp.m('l'), 80, 'r1', '2026-01-11 00:00:00+00')),
          '-80/20/0/base/f', 'allow: redeem 80');
SELECT is(pg_temp.rc(loyalty.reverse(pg_temp.m('l'), 'p1', NULL, 'rv1', '2026-01-12 00:00:00+00')),
          '-100/-80/0/base/f', 'allow: full refund takes 100, available -80');
-- lifetime 100 - 100 = 0, redeemed 80: 0 - 80 = -80
SELECT is(pg_temp.bal(pg_temp.m('l'), '2026-01-12 00:00:01+00'), '-80/0/0/80/0/base',
          'allow: balance columns while negative');
SELECT throws_ok($$SELECT loyalty.redeem(pg_temp.m('l'), 1, 'r2', '2026-01-12 00:00:02+00')$$,
                 'LY010', NULL, 'allow: nothing can be redeemed while negative');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('l'), 50, 'p2', '2026-01-13 00:00:00+00')),
          '50/-30/0/base/f', 'allow: a later earn pays down the debt');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('l'), 50, 'p3', '2026-01-14 00:00:00+00')),
          '50/20/0/base/f', 'allow: and brings the balance back up');
SELECT is(pg_temp.rc(loyalty.redeem(pg_temp.m('l'), 20, 'r3', '2026-01-15 00:00:00+00')),
          '-20/0/0/base/f', 'allow: the 20 are spendable');

SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('c'), 100, 'p1', '2026-01-10 00:00:00+00')),
          '100/100/0/base/f', 'clamp: earn 100');
SELECT is(pg_temp.rc(loyalty.redeem(pg_temp.m('c'), 80, 'r1', '2026-01-11 00:00:00+00')),
          '-80/20/0/base/f', 'clamp: redeem 80');
SELECT is(pg_temp.rc(loyalty.reverse(pg_temp.m('c'), 'p1', NULL, 'rv1', '2026-01-12 00:00:00+00')),
          '-20/0/0/base/f', 'clamp: full refund takes only the 20 left');
-- lifetime 100 - 20 = 80, redeemed 80
SELECT is(pg_temp.bal(pg_temp.m('c'), '2026-01-12 00:00:01+00'), '0/0/80/80/0/base',
          'clamp: balance columns');

-- ---------------------------------------------------------------------------
-- Own lot first, then other available lots soonest-expiring first.
-- ---------------------------------------------------------------------------
SELECT lives_ok($$SELECT loyalty.award(pg_temp.m('o'), 100, 'a', 'aw1', '2026-01-10 00:00:00+00')$$,
                'order: award 100 (expires 2027-01-10)');
SELECT lives_ok($$SELECT loyalty.earn(pg_temp.m('o'), 100, 'p1', '2026-02-10 00:00:00+00')$$,
                'order: earn 100 (expires 2027-02-10)');
SELECT lives_ok($$SELECT loyalty.award(pg_temp.m('o'), 100, 'b', 'aw2', '2026-03-10 00:00:00+00')$$,
                'order: award 100 (expires 2027-03-10)');
-- redeem 150: aw1 100, p1 50
SELECT is(pg_temp.rc(loyalty.redeem(pg_temp.m('o'), 150, 'r1', '2026-04-01 00:00:00+00')),
          '-150/150/0/base/f', 'order: redeem 150');
-- full refund of p1: 50 from its own lot, 50 from aw2; 300 - 150 - 100 = 50
SELECT is(pg_temp.rc(loyalty.reverse(pg_temp.m('o'), 'p1', NULL, 'rv1', '2026-04-02 00:00:00+00')),
          '-100/50/0/base/f', 'order: refund takes own lot then the other');
SELECT is(pg_temp.bal(pg_temp.m('o'), '2027-03-10 00:00:00+00'), '0/0/200/150/50/base',
          'order: the 50 left of aw2 expire on its date');

-- ---------------------------------------------------------------------------
-- Qualifying figure reduced
-- ---------------------------------------------------------------------------
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('tq'), 150, 'p1', '2026-01-10 00:00:00+00')),
          '150/150/0/silver/f', 'points basis: earn 150 -> silver');
SELECT lives_ok($$SELECT loyalty.reverse(pg_temp.m('tq'), 'p1', 100, 'rv1', '2026-01-11 00:00:00+00')$$,
                'points basis: refund 100 of 150');
SELECT is(pg_temp.qual(pg_temp.m('tq'), '2026-01-12 00:00:00+00'), 50::numeric,
          'points basis: qualifying 150 - 100 = 50');

-- spend basis, points_per_unit 2: 150 money -> 300 points
SELECT lives_ok($$SELECT loyalty.earn(pg_temp.m('ts'), 150, 'p1', '2026-01-10 00:00:00+00')$$, 'spend basis: earn 150');
SELECT lives_ok($$SELECT loyalty.reverse(pg_temp.m('ts'), 'p1', 50, 'rv1', '2026-01-11 00:00:00+00')$$,
                'spend basis: refund 50');
SELECT is(pg_temp.qual(pg_temp.m('ts'), '2026-01-12 00:00:00+00'), 100::numeric,
          'spend basis: qualifying 150 - 50 = 100 (money, not points)');

SELECT lives_ok($$SELECT loyalty.earn(pg_temp.m('tv'), 10, 'p1', '2026-01-10 00:00:00+00');
                  SELECT loyalty.earn(pg_temp.m('tv'), 10, 'p2', '2026-01-10 00:01:00+00');
                  SELECT loyalty.reverse(pg_temp.m('tv'), 'p1', 5, 'rv1', '2026-01-11 00:00:00+00')$$,
                'visits basis: two earns, partial refund of one');
SELECT is(pg_temp.qual(pg_temp.m('tv'), '2026-01-12 00:00:00+00'), 2::numeric,
          'visits basis: a partial refund keeps the visit');
SELECT lives_ok($$SELECT loyalty.reverse(pg_temp.m('tv'), 'p1', NULL, 'rv2', '2026-01-12 00:00:00+00')$$,
                'visits basis: refund the rest');
SELECT is(pg_temp.qual(pg_temp.m('tv'), '2026-01-13 00:00:00+00'), 1::numeric,
          'visits basis: a full refund takes the visit back');

-- Rolling 3-month window: the refund is dated at the purchase (2026-01-10),
-- which on 2026-04-26 is outside the window (2026-01-26, 2026-04-26]:
-- qualifying = 50 (p2), not 50 - 100.
SELECT lives_ok($$SELECT loyalty.earn(pg_temp.m('tw'), 150, 'p1', '2026-01-10 00:00:00+00');
                  SELECT loyalty.earn(pg_temp.m('tw'), 50, 'p2', '2026-04-20 00:00:00+00');
                  SELECT loyalty.reverse(pg_temp.m('tw'), 'p1', 100, 'rv1', '2026-04-25 00:00:00+00')$$,
                'window: earn in January and April, refund of January in April');
SELECT is(pg_temp.qual(pg_temp.m('tw'), '2026-04-26 00:00:00+00'), 50::numeric,
          'window: the refund reduces the window of the original purchase');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
