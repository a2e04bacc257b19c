-- 42_partners: coalition partners. add_partner validation, earns and redemptions at a
-- partner, refunds of a partner's purchase, rules matching a partner, and a settlement
-- computed by hand (per partner and the total row, inside a period).
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(31);

CREATE FUNCTION pg_temp.m(ref text) RETURNS bigint LANGUAGE sql AS $$ SELECT loyalty.member_id('p42', ref) $$;
CREATE FUNCTION pg_temp.nentries() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM loyalty.entry $$;
CREATE FUNCTION pg_temp.settle(f timestamptz, t timestamptz) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT format('%s|%s|%s|%s|%s|%s', coalesce(partner, '*'), points_issued, points_redeemed,
                  issued_value, redeemed_value, balance)
      FROM loyalty.partner_settlement('p42', f, t) $$;

SELECT loyalty.create_program('p42', 'Coalition', '{"timezone": "Europe/London"}');
SELECT loyalty.add_tier('p42', 'base', 'Base', 0);
SELECT loyalty.enroll('p42', ref, '2026-01-01') FROM unnest(ARRAY['a', 'b']) ref;

SELECT ok(loyalty.add_partner('p42', 'cafe', 'The Café', 0.01) > 0, 'add_partner returns the id');
SELECT ok(loyalty.add_partner('p42', 'books', 'Bookshop', 0.02) > 0, 'a second partner');
SELECT throws_ok($$SELECT loyalty.add_partner('p42', 'cafe', 'Again', 0.01)$$, 'LY041', NULL, 'duplicate -> LY041');
SELECT throws_ok($$SELECT loyalty.add_partner('p42', 'x', 'X', 'NaN')$$, 'LY104', NULL, 'NaN price -> LY104');
SELECT throws_ok($$SELECT loyalty.add_partner('p42', 'x', 'X', -0.01)$$, 'LY104', NULL, 'negative price -> LY104');
SELECT throws_ok($$SELECT loyalty.add_partner('p42', 'x', 'X', 'Infinity')$$, 'LY104', NULL, 'infinite price -> LY104');
SELECT throws_ok($$SELECT loyalty.add_partner('p42', 'x', 'X', NULL)$$, 'LY034', NULL, 'NULL price -> LY034');
SELECT throws_ok($$SELECT loyalty.add_partner('nope', 'x', 'X', 1)$$, 'LY001', NULL, 'unknown program -> LY001');
SELECT throws_ok($$SELECT loyalty.add_partner('p42', '', 'X', 1)$$, 'LY037', NULL, 'empty code -> LY037');

-- a rule can target a partner: 2x at the café
SELECT loyalty.add_rule('p42', 'cafe2x', '{"kind": "multiplier", "multiplier": 2, "match": {"partner": "cafe"}}');

CREATE TEMP TABLE before AS SELECT pg_temp.nentries() AS n;
SELECT throws_ok($$SELECT * FROM loyalty.earn(pg_temp.m('a'), 10, 'bad1', '2026-03-01', '{"partner": "zoo"}')$$,
                 'LY103', NULL, 'earn at an unknown partner -> LY103');
SELECT throws_ok($$SELECT * FROM loyalty.earn(pg_temp.m('a'), 10, 'bad2', '2026-03-01', '{"partner": 7}')$$,
                 'LY103', NULL, 'a partner that is not a code -> LY103');
SELECT throws_ok($$SELECT * FROM loyalty.partner_redeem(pg_temp.m('a'), 1, 'zoo', 'bad3', '2026-03-01')$$,
                 'LY103', NULL, 'redeem at an unknown partner -> LY103');
SELECT is(pg_temp.nentries(), (SELECT n FROM before), 'nothing was written');

-- a: 50 at the café (2x: 100 points), 50 at the bookshop (50), 30 with no partner (30)
SELECT is((SELECT points FROM loyalty.earn(pg_temp.m('a'), 50, 'a1', '2026-03-02 10:00+00', '{"partner": "cafe"}')), 100::bigint,
          'earn at the café: 2x');
SELECT is((SELECT detail ->> 'partner' || ' ' || (detail ->> 'partner_price') FROM loyalty.entry WHERE idempotency_key = 'a1'),
          'cafe 0.01', 'the entry records the partner and its price');
SELECT is((SELECT points FROM loyalty.earn(pg_temp.m('a'), 50, 'a2', '2026-03-02 11:00+00', '{"partner": "books"}')), 50::bigint,
          'earn at the bookshop');
SELECT is((SELECT points FROM loyalty.earn(pg_temp.m('a'), 30, 'a3', '2026-03-02 12:00+00')), 30::bigint, 'earn with no partner');
-- a refund of 10 of the café purchase: floor(100 x 10/50) = 20 back, the café issued 80
SELECT is((SELECT points FROM loyalty.reverse(pg_temp.m('a'), 'a1', 10, 'a1r', '2026-03-03 10:00+00')), -20::bigint,
          'a refund of a café purchase');
SELECT is((SELECT detail ->> 'partner' FROM loyalty.entry WHERE idempotency_key = 'a1r'), 'cafe', 'is the café''s too');
SELECT is((SELECT format('%s/%s', points, available) FROM loyalty.partner_redeem(pg_temp.m('a'), 40, 'cafe', 'a4', '2026-03-04')),
          '-40/120', 'redeem 40 at the café');
SELECT is((SELECT format('%s/%s', points, replayed) FROM loyalty.partner_redeem(pg_temp.m('a'), 40, 'cafe', 'a4', '2026-03-05')),
          '-40/t', 'a replay');
SELECT throws_ok($$SELECT * FROM loyalty.redeem(pg_temp.m('a'), 40, 'a4', '2026-03-05')$$, 'LY020', NULL,
                 'the same key as a plain redeem -> LY020');
SELECT throws_ok($$SELECT * FROM loyalty.partner_redeem(pg_temp.m('a'), 1000, 'cafe', 'a5', '2026-03-05')$$, 'LY010', NULL,
                 'more than available -> LY010');
SELECT is((SELECT points FROM loyalty.earn(pg_temp.m('b'), 25, 'b1', '2026-03-06 10:00+00', '{"partner": "books"}')), 25::bigint,
          'b earns 25 at the bookshop');
SELECT is((SELECT points FROM loyalty.partner_redeem(pg_temp.m('b'), 10, 'books', 'b2', '2026-03-07')), -10::bigint,
          'and redeems 10 there');
-- outside the period: an earn at the café in April
SELECT is((SELECT points FROM loyalty.earn(pg_temp.m('b'), 5, 'b3', '2026-04-01 00:00+00', '{"partner": "cafe"}')), 10::bigint,
          'an April café earn');

-- March by hand:
--   cafe:  issued 100 - 20 = 80 (0.80), redeemed 40 (0.40): owes 0.40
--   books: issued 50 + 25 = 75 (1.50), redeemed 10 (0.20): owes 1.30
--   total: 155, 50, 2.30, 0.60, 1.70
SELECT results_eq($$SELECT * FROM pg_temp.settle('2026-03-01', '2026-04-01')$$,
                  ARRAY['books|75|10|1.50|0.20|1.30', 'cafe|80|40|0.80|0.40|0.40', '*|155|50|2.30|0.60|1.70'],
                  'March settlement, per partner and in total');
SELECT results_eq($$SELECT * FROM pg_temp.settle('2026-04-01', '2026-05-01')$$,
                  ARRAY['books|0|0|0|0|0', 'cafe|10|0|0.10|0|0.10', '*|10|0|0.10|0|0.10'],
                  'April: only the April earn');
SELECT throws_ok($$SELECT * FROM loyalty.partner_settlement('p42', '2026-04-01', '2026-04-01')$$, 'LY038', NULL,
                 'an empty period -> LY038');

-- liability now: the café lot of a1 has 100 - 20 (refund) - 40 (redeemed, oldest lot first) = 40 left,
-- b3 10; the bookshop lots 50 (a2) and 25 - 10 (b1, b2) = 15
SELECT results_eq($$SELECT format('%s|%s|%s', partner, outstanding_points, outstanding_value)
                      FROM loyalty.partner_liability WHERE program = 'p42' ORDER BY partner$$,
                  ARRAY['books|65|1.30', 'cafe|50|0.50'], 'partner_liability: what is left of each partner''s lots');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');
SELECT * FROM finish();
ROLLBACK;
