-- 46_referrals: referral bonuses on the referee's first qualifying purchase, paid by
-- maintenance; abuse cases (self, loops, limit, refund-and-rebuy, replay), the hold
-- (refund window), hostile input.
BEGIN;
SELECT plan(50);

SELECT loyalty.create_program('rf', 'Referrals', '{"timezone": "Europe/Paris"}');
SELECT loyalty.add_tier('rf', 'base', 'Base', 0);
SELECT lives_ok($$SELECT loyalty.set_referral_terms('rf', 100, 50, 20, max_per_referrer => 2)$$,
                'terms: referrer 100, referee 50, on a first purchase of 20 or more, 2 per referrer');

CREATE TEMP TABLE m (name text PRIMARY KEY, id bigint, code text);
INSERT INTO m (name, id) VALUES ('a', loyalty.enroll('rf', 'a', '2026-03-01 10:00+01'));
UPDATE m SET code = (SELECT referral_code FROM loyalty.member WHERE id = m.id);
INSERT INTO m (name, id) SELECT x, loyalty.enroll('rf', x, '2026-03-01 11:00+01', (SELECT code FROM m WHERE name = 'a'))
  FROM unnest(ARRAY['b', 'c', 'd']) x;
UPDATE m SET code = (SELECT referral_code FROM loyalty.member WHERE id = m.id);
INSERT INTO m (name, id) VALUES ('e', loyalty.enroll('rf', 'e', '2026-03-01 12:00+01', (SELECT code FROM m WHERE name = 'b')));
CREATE FUNCTION pg_temp.id(text) RETURNS bigint LANGUAGE sql AS $$ SELECT id FROM m WHERE name = $1 $$;
CREATE FUNCTION pg_temp.code(text) RETURNS text LANGUAGE sql AS $$ SELECT referral_code FROM loyalty.member WHERE id = pg_temp.id($1) $$;
CREATE FUNCTION pg_temp.avail(text) RETURNS bigint LANGUAGE sql AS $$ SELECT available FROM loyalty.member WHERE id = pg_temp.id($1) $$;

SELECT is((SELECT string_agg(status, ',' ORDER BY referee_id) FROM loyalty.referral r
            WHERE referee_id IN (pg_temp.id('b'), pg_temp.id('c'), pg_temp.id('d'), pg_temp.id('e'))),
          'open,open,open,open', 'four referrals, open');

-- self-referral, loops and late referrers are refused; the same referrer replays
SELECT throws_ok($$SELECT loyalty.enroll('rf', 'b', '2026-03-02 10:00+01', pg_temp.code('b'))$$, 'LY132', NULL, 'own code -> LY132');
SELECT throws_ok($$SELECT loyalty.enroll('rf', 'a', '2026-03-02 10:00+01', pg_temp.code('b'))$$, 'LY133', NULL,
                 'a referred b: a with b''s code -> LY133 (loop)');
SELECT throws_ok($$SELECT loyalty.enroll('rf', 'a', '2026-03-02 10:00+01', pg_temp.code('e'))$$, 'LY133', NULL,
                 'a referred b who referred e: a with e''s code -> LY133 (longer loop)');
SELECT throws_ok($$SELECT loyalty.enroll('rf', 'c', '2026-03-02 10:00+01', pg_temp.code('e'))$$, 'LY134', NULL,
                 'an enrolled member cannot take another referrer -> LY134');
SELECT is(loyalty.enroll('rf', 'c', '2026-03-02 10:00+01', pg_temp.code('a')), pg_temp.id('c'), 'the same referrer again: same member');
SELECT throws_ok($$SELECT loyalty.enroll('rf', 'zz', '2026-03-02 10:00+01', 'NOSUCH22')$$, 'LY004', NULL, 'unknown code -> LY004');

-- b: 19.99 does not qualify; 20 does (the referral is qualified, nothing paid inside the earn)
SELECT is((SELECT points FROM loyalty.earn(pg_temp.id('b'), 19.99, 'b-1', '2026-03-02 10:00+01')), 19::bigint, 'b buys 19.99: 19 points');
SELECT is((SELECT status FROM loyalty.referral WHERE referee_id = pg_temp.id('b')), 'open', 'below min_purchase: still open');
SELECT is((SELECT (points, available) FROM loyalty.earn(pg_temp.id('b'), 20, 'b-2', '2026-03-02 11:00+01')), (20::bigint, 39::bigint),
          'b buys 20: 20 points, the receipt is the earn''s alone');
SELECT is((SELECT (status, pay_at) FROM loyalty.referral WHERE referee_id = pg_temp.id('b')),
          ('qualified'::text, '2026-03-02 11:00+01'::timestamptz), 'qualified, payable at once');
SELECT is(loyalty.run_maintenance('2026-03-02 12:00+01') ->> 'referrals', '1', 'maintenance pays one referral');
SELECT is((pg_temp.avail('b'), pg_temp.avail('a')), (89::bigint, 100::bigint), 'b 39 + 50, a 100');
SELECT is((SELECT (points, at, idempotency_key) FROM loyalty.statement(pg_temp.id('a')) WHERE kind = 'award'),
          (100::bigint, '2026-03-02 11:00+01'::timestamptz, 'loyalty:referral:' || pg_temp.id('b')),
          'a''s bonus: an award dated at the qualifying purchase, keyed by the referee');
SELECT is((SELECT status FROM loyalty.referral WHERE referee_id = pg_temp.id('b')), 'paid', 'paid');
-- replay of the qualifying purchase: same receipt, nothing more
SELECT is((SELECT (points, available, replayed) FROM loyalty.earn(pg_temp.id('b'), 20, 'b-2', '2026-03-02 11:00+01')),
          (20::bigint, 39::bigint, true), 'replay of the qualifying purchase: the original receipt');
SELECT is(loyalty.run_maintenance('2026-03-03 12:00+01') ->> 'referrals', NULL, 'maintenance again: nothing');
-- refund-and-rebuy: no clawback after payment, and no second bonus
SELECT is((SELECT points FROM loyalty.reverse(pg_temp.id('b'), 'b-2', NULL, 'b-r', '2026-03-04 10:00+01')), -20::bigint, 'b refunds the qualifying purchase');
SELECT is((SELECT points FROM loyalty.earn(pg_temp.id('b'), 20, 'b-3', '2026-03-05 10:00+01')), 20::bigint, 'and buys again');
SELECT is(loyalty.run_maintenance('2026-03-06 12:00+01') ->> 'referrals', NULL, 'no referral due');
SELECT is((pg_temp.avail('b'), pg_temp.avail('a')), (89::bigint, 100::bigint), 'b 89 - 20 + 20, a 100: bonuses kept, not paid twice');

-- the limit: a gets 2 bonuses, the third referee's purchase pays only the referee
SELECT lives_ok($$SELECT loyalty.earn(pg_temp.id('c'), 30, 'c-1', '2026-03-07 10:00+01');
                  SELECT loyalty.earn(pg_temp.id('d'), 25, 'd-1', '2026-03-07 11:00+01')$$, 'c and d qualify');
SELECT is(loyalty.run_maintenance('2026-03-07 12:00+01') ->> 'referrals', '2', 'two referrals handled');
SELECT is((pg_temp.avail('a'), pg_temp.avail('c'), pg_temp.avail('d')), (200::bigint, 80::bigint, 75::bigint),
          'a 100 + 100 (second and last), c 30 + 50, d 25 + 50');
SELECT is((SELECT string_agg(external_ref || ':' || status || ':' || referrer_outcome, ',' ORDER BY referee_id)
             FROM loyalty.referrals(pg_temp.id('a'))),
          'b:paid:paid,c:paid:paid,d:paid:limit_reached', 'referrals(a): the third is past the limit');
-- a referral chain pays the direct referrer only
SELECT lives_ok($$SELECT loyalty.earn(pg_temp.id('e'), 40, 'e-1', '2026-03-08 10:00+01')$$, 'e (referred by b) qualifies');
SELECT is(loyalty.run_maintenance('2026-03-08 12:00+01') ->> 'referrals', '1', 'one referral');
SELECT is((pg_temp.avail('e'), pg_temp.avail('b'), pg_temp.avail('a')), (90::bigint, 189::bigint, 200::bigint),
          'e 40 + 50, b 89 + 100, a unchanged');

-- hold_days: bonuses after the refund window; a refund inside it reopens the referral
SELECT loyalty.create_program('rh', 'Hold', '{"timezone": "America/New_York"}');
SELECT loyalty.add_tier('rh', 'base', 'Base', 0);
SELECT loyalty.set_referral_terms('rh', 100, 50, 20, hold_days => 14);
INSERT INTO m (name, id) VALUES ('x', loyalty.enroll('rh', 'x', '2026-03-01 10:00-05'));
INSERT INTO m (name, id) VALUES ('y', loyalty.enroll('rh', 'y', '2026-03-01 10:00-05', pg_temp.code('x')));
SELECT lives_ok($$SELECT loyalty.earn(pg_temp.id('y'), 50, 'y-1', '2026-03-02 10:00-05')$$, 'y buys 50');
SELECT is((SELECT pay_at FROM loyalty.referral WHERE referee_id = pg_temp.id('y')), '2026-03-16 10:00-04'::timestamptz,
          'payable 14 local days later, across the DST change: 16 March 10:00 EDT');
SELECT is(loyalty.run_maintenance('2026-03-16 09:59:59-04') ->> 'referrals', NULL, 'one second before: nothing');
SELECT lives_ok($$SELECT loyalty.reverse(pg_temp.id('y'), 'y-1', 20, 'y-r1', '2026-03-10 10:00-04')$$, 'refund 20 of 50: 30 left, still qualifying');
SELECT is((SELECT status FROM loyalty.referral WHERE referee_id = pg_temp.id('y')), 'qualified', 'still qualified');
SELECT lives_ok($$SELECT loyalty.reverse(pg_temp.id('y'), 'y-1', 15, 'y-r2', '2026-03-11 10:00-04')$$, 'refund 15 more: 15 left, below 20');
SELECT is((SELECT (status, cancellations) FROM loyalty.referral WHERE referee_id = pg_temp.id('y')), ('open'::text, 1),
          'reopened before anything was paid');
SELECT is(loyalty.run_maintenance('2026-03-17 10:00-04') ->> 'referrals', NULL, 'nothing to pay on 17 March');
SELECT lives_ok($$SELECT loyalty.earn(pg_temp.id('y'), 30, 'y-2', '2026-03-20 10:00-04')$$, 'y buys 30: qualifies again');
SELECT is(loyalty.run_maintenance('2026-04-03 10:00-04') ->> 'referrals', '1', 'paid 14 days later');
SELECT is((pg_temp.avail('y'), pg_temp.avail('x')), (95::bigint, 100::bigint), 'y 50 - 20 - 15 + 30 + 50 = 95, x 100: one bonus each');

-- hostile input: SQLSTATEs, nothing written
SELECT throws_ok($$SELECT loyalty.set_referral_terms('rf', -1, 50, 20)$$, 'LY135', NULL, 'negative points -> LY135');
SELECT throws_ok($$SELECT loyalty.set_referral_terms('rf', 0, 0, 20)$$, 'LY135', NULL, 'both 0 -> LY135');
SELECT throws_ok($$SELECT loyalty.set_referral_terms('rf', 1, 1, 'NaN')$$, 'LY135', NULL, 'NaN min_purchase -> LY135');
SELECT throws_ok($$SELECT loyalty.set_referral_terms('rf', 1, 1, 0, 0)$$, 'LY135', NULL, 'max_per_referrer 0 -> LY135');
SELECT throws_ok($$SELECT loyalty.set_referral_terms('rf', 1, 1, 0, NULL, 3651)$$, 'LY135', NULL, 'hold_days 3651 -> LY135');
SELECT throws_ok($$SELECT loyalty.set_referral_terms(NULL, 1, 1)$$, 'LY034', NULL, 'NULL program -> LY034');
SELECT throws_ok($$SELECT loyalty.set_referral_terms('nosuch', 1, 1)$$, 'LY001', NULL, 'unknown program -> LY001');
SELECT throws_ok($$SELECT * FROM loyalty.referrals(-1)$$, 'LY002', NULL, 'referrals of an unknown member -> LY002');
SELECT is((SELECT (referrer_points, referee_points, min_purchase, max_per_referrer) FROM loyalty.referral_terms
            WHERE program_id = (SELECT id FROM loyalty.program WHERE code = 'rf')),
          (100::bigint, 50::bigint, 20::numeric, 2), 'the terms are unchanged');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');
SELECT * FROM finish();
ROLLBACK;
