-- 41_basket: earning on line items. Per-line points and rounding, rules per line,
-- validation of lines, reverse_lines (whole lines, part quantities, replays, errors),
-- and how line returns and refunds by amount share one purchase.
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(54);

CREATE FUNCTION pg_temp.m(ref text) RETURNS bigint LANGUAGE sql AS $$ SELECT loyalty.member_id('b41', ref) $$;
CREATE FUNCTION pg_temp.earn(ref text, amount numeric, k text, attrs jsonb) RETURNS bigint LANGUAGE sql AS $$
    SELECT points FROM loyalty.earn(pg_temp.m(ref), amount, k, '2026-02-02 12:00+00', attrs) $$;
CREATE FUNCTION pg_temp.ret(ref text, orig text, lines jsonb, k text) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s', points, replayed) FROM loyalty.reverse_lines(pg_temp.m(ref), orig, lines, k, '2026-02-03 12:00+00') $$;
-- the points of each line of an earn, "p1,p2,..."
CREATE FUNCTION pg_temp.lines(k text) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(x ->> 'points', ',' ORDER BY (x ->> 'line')::int)
      FROM loyalty.entry e CROSS JOIN LATERAL jsonb_array_elements(e.detail -> 'lines') x WHERE e.idempotency_key = k $$;
CREATE FUNCTION pg_temp.amount(k text) RETURNS numeric LANGUAGE sql AS $$
    SELECT amount FROM loyalty.entry WHERE idempotency_key = k $$;
CREATE FUNCTION pg_temp.nentries() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM loyalty.entry $$;

SELECT loyalty.create_program('b41', 'Basket', '{"timezone": "Europe/Paris"}');
SELECT loyalty.add_tier('b41', 'base', 'Base', 0);
SELECT loyalty.enroll('b41', ref, '2026-01-01') FROM unnest(ARRAY['a', 'b', 'c', 'd']) ref;
SELECT loyalty.add_rule('b41', 'coffee2x', '{"kind": "multiplier", "multiplier": 2, "match": {"category": "coffee"}}');
SELECT loyalty.add_rule('b41', 'giftcards', '{"kind": "exclude", "match": {"category": "gift_card"}}');
SELECT loyalty.add_rule('b41', 'pens', '{"kind": "per_unit", "points": 3, "per": "qty", "match": {"sku": "pen"}}');
SELECT loyalty.add_rule('b41', 'bakery20', '{"kind": "bonus", "points": 25, "min_spend": 20, "match": {"category": "bakery"}}');
SELECT loyalty.add_rule('b41', 'app', '{"kind": "multiplier", "multiplier": 1.5, "match": {"channel": "app"}}');

-- ---------------------------------------------------------------------------
-- Earning per line
-- ---------------------------------------------------------------------------
-- coffee 10.50: floor(10.5) = 10, x2 = floor(21) = 21; pens 5.99 x 2: 5 + 2 x 3 = 11; gift card 100: 0
SELECT is(pg_temp.earn('a', 116.49, 'a1', '{"store": "s1", "lines": [
            {"sku": "latte", "category": "coffee", "amount": 10.50},
            {"sku": "pen", "category": "office", "amount": 5.99, "qty": 2},
            {"sku": "gc50", "category": "gift_card", "amount": 100}]}'), 32::bigint,
          'coffee 21 + pens 11 + gift card 0 = 32');
SELECT is(pg_temp.lines('a1'), '21,11,0', 'each line''s points are recorded');
SELECT is((SELECT detail -> 'lines' -> 0 -> 'rules' FROM loyalty.entry WHERE idempotency_key = 'a1'),
          (SELECT jsonb_build_object(id::text, 11) FROM loyalty.rule WHERE code = 'coffee2x'),
          'and what each rule gave each line');
SELECT is(pg_temp.earn('a', 1, 'a2', '{"lines": [{"amount": 0.5}, {"amount": 0.5}]}'), 0::bigint,
          'points are rounded per line: two lines of 0.50 earn 0 (floor each)');
SELECT is(pg_temp.earn('a', 1, 'a3', '{}'), 1::bigint, 'while one purchase of 1.00 earns 1');
-- min_spend counts the matching lines only: 15 + 4.99 bakery < 20; with 5.01 = 20
SELECT is(pg_temp.earn('a', 119.99, 'a4', '{"lines": [{"category": "bakery", "amount": 15}, {"category": "bakery", "amount": 4.99},
            {"category": "gift_card", "amount": 100}]}'), 19::bigint,
          'min_spend over matching lines: 19.99 of bakery is not 20 (the gift card does not count)');
SELECT is(pg_temp.earn('a', 20.01, 'a5', '{"lines": [{"category": "bakery", "amount": 15}, {"category": "bakery", "amount": 5.01}]}'),
          45::bigint, 'bakery 15 + 5 + a bonus of 25, once per purchase');
SELECT is(pg_temp.lines('a5'), '15,5', 'a fixed bonus belongs to the purchase, not to a line');
-- a purchase attribute (channel) applies to every line; line attributes win over purchase ones
SELECT is(pg_temp.earn('a', 20, 'a6', '{"channel": "app", "lines": [{"category": "coffee", "amount": 10},
            {"category": "tea", "amount": 10, "channel": "store"}]}'), 40::bigint,
          'coffee line: 10 x 2 x 1.5 = 30; tea line says channel store: 10');

-- ---------------------------------------------------------------------------
-- Bad lines: LY102, nothing written
-- ---------------------------------------------------------------------------
CREATE TEMP TABLE before AS SELECT pg_temp.nentries() AS n;
SELECT throws_ok($$SELECT pg_temp.earn('a', 10, 'x1', '{"lines": [{"amount": 4}, {"amount": 5}]}')$$, 'LY102',
                 'the lines add up to 9, not to the purchase amount 10', 'lines must add up to the amount');
SELECT throws_ok($$SELECT pg_temp.earn('a', 10, 'x2', '{"lines": {"amount": 10}}')$$, 'LY102', NULL, 'lines not an array');
SELECT throws_ok($$SELECT pg_temp.earn('a', 10, 'x3', '{"lines": []}')$$, 'LY102', NULL, 'no lines');
SELECT throws_ok($$SELECT pg_temp.earn('a', 10, 'x4', '{"lines": [10]}')$$, 'LY102', NULL, 'a line that is not an object');
SELECT throws_ok($$SELECT pg_temp.earn('a', 10, 'x5', '{"lines": [{"amount": -5}, {"amount": 15}]}')$$, 'LY102', NULL,
                 'a negative line amount');
SELECT throws_ok($$SELECT pg_temp.earn('a', 10, 'x6', '{"lines": [{"amount": "10"}]}')$$, 'LY102', NULL, 'a string amount');
SELECT throws_ok($$SELECT pg_temp.earn('a', 10, 'x7', '{"lines": [{"amount": 10, "qty": 1.5}]}')$$, 'LY102', NULL,
                 'a fractional qty');
SELECT throws_ok($$SELECT pg_temp.earn('a', 10, 'x8', '{"lines": [{"amount": 10, "qty": 0}]}')$$, 'LY102', NULL, 'qty 0');
SELECT is(pg_temp.nentries(), (SELECT n FROM before), 'nothing was written');

-- ---------------------------------------------------------------------------
-- Returning lines
-- ---------------------------------------------------------------------------
SELECT is(pg_temp.ret('a', 'a1', '[{"line": 1}]', 'a1r1'), '-21/f', 'returning the coffee line takes exactly its 21 points');
SELECT is(pg_temp.amount('a1r1'), 10.50, 'and refunds its 10.50');
SELECT is(pg_temp.ret('a', 'a1', '[{"line": 1}]', 'a1r1'), '-21/t', 'a replay returns the same receipt');
SELECT throws_ok($$SELECT pg_temp.ret('a', 'a1', '[{"line": 2}]', 'a1r1')$$, 'LY020', NULL, 'same key, other lines -> LY020');
SELECT throws_ok($$SELECT pg_temp.ret('a', 'a1', '[{"line": 1}]', 'a1r2')$$, 'LY105', NULL, 'a line already returned -> LY105');
SELECT throws_ok($$SELECT pg_temp.ret('a', 'a1', '[{"line": 4}]', 'a1r2')$$, 'LY105', 'the purchase has no line 4',
                 'an unknown line -> LY105');
SELECT throws_ok($$SELECT pg_temp.ret('a', 'a1', '[{"line": 2}, {"line": 2}]', 'a1r2')$$, 'LY105', NULL, 'a line named twice');
SELECT throws_ok($$SELECT pg_temp.ret('a', 'a1', '[{"line": 2, "qty": 3}]', 'a1r2')$$, 'LY105', NULL, 'more items than the line has');
SELECT throws_ok($$SELECT pg_temp.ret('a', 'a3', '[{"line": 1}]', 'a1r2')$$, 'LY105', 'the purchase has no lines',
                 'a purchase without lines');
SELECT throws_ok($$SELECT pg_temp.ret('a', 'a1', '{"line": 1}', 'a1r2')$$, 'LY105', NULL, 'lines not an array');
SELECT throws_ok($$SELECT pg_temp.ret('a', 'a1', '[{"line": 1.5}]', 'a1r2')$$, 'LY105', NULL, 'a fractional line number');
SELECT throws_ok($$SELECT pg_temp.ret('a', 'a1', '[{"line": 2, "qty": 1e30}]', 'a1r2')$$, 'LY105', NULL, 'a huge qty');
SELECT throws_ok($$SELECT pg_temp.ret('a', 'a1', '[{"line": "2"}]', 'a1r2')$$, 'LY105', NULL, 'a line number as a string');
SELECT throws_ok($$SELECT pg_temp.ret('a', 'a1', '[{"line": 2, "qty": 0}]', 'a1r2')$$, 'LY105', NULL, 'qty 0');
SELECT throws_ok($$SELECT * FROM loyalty.reverse_lines(NULL, 'a1', '[{"line": 2}]', 'a1r2')$$, 'LY034', NULL, 'NULL member');
SELECT throws_ok($$SELECT * FROM loyalty.reverse_lines(pg_temp.m('a'), 'a1', NULL, 'a1r2')$$, 'LY034', NULL, 'NULL lines');
SELECT throws_ok($$SELECT * FROM loyalty.reverse_lines(pg_temp.m('a'), 'zz', '[{"line": 2}]', 'a1r2')$$, 'LY005', NULL,
                 'an unknown purchase');
-- pens: 2 items, 11 points, 5.99: one item = floor(11 x 1/2) = 5 points, 3.00 (2.995 rounded to cents)
SELECT is(pg_temp.ret('a', 'a1', '[{"line": 2, "qty": 1}]', 'a1r3'), '-5/f', 'one pen of two: floor(11 / 2) = 5 points');
SELECT is(pg_temp.amount('a1r3'), 3.00, 'and 5.99 / 2 rounded to cents');
SELECT is(pg_temp.ret('a', 'a1', '[{"line": 2}, {"line": 3}]', 'a1r4'), '-6/f',
          'the other pen and the gift card: the rest of the purchase, 11 - 5 = 6 points');
SELECT is(pg_temp.amount('a1r4'), 102.99, 'money: 2.99 + 100: the lines add up to the purchase');
SELECT is((SELECT sum(points) FROM loyalty.entry WHERE ref_entry_id = (SELECT id FROM loyalty.entry WHERE idempotency_key = 'a1')),
          -32::numeric, 'all lines returned: exactly the 32 points earned');
SELECT throws_ok($$SELECT * FROM loyalty.reverse(pg_temp.m('a'), 'a1', NULL, 'a1r5', '2026-02-04')$$, 'LY051', NULL,
                 'nothing left to refund');

-- ---------------------------------------------------------------------------
-- Line returns and refunds by amount on one purchase
-- ---------------------------------------------------------------------------
-- b: coffee 10 (20 points) + tea 10 (10 points) = 30 points for 20
SELECT is(pg_temp.earn('b', 20, 'b1', '{"lines": [{"category": "coffee", "amount": 10}, {"category": "tea", "amount": 10}]}'),
          30::bigint, 'coffee 20 + tea 10');
SELECT is((SELECT points FROM loyalty.reverse(pg_temp.m('b'), 'b1', 10, 'b1r1', '2026-02-03')), -15::bigint,
          'a refund of 10 by amount is proportional over the purchase: 15');
SELECT is(pg_temp.ret('b', 'b1', '[{"line": 2}]', 'b1r2'), '-15/f',
          'returning the tea line then refunds the last 10: the rest, 15 (not the line''s 10)');
-- c: the same purchase, a refund of 15 by amount, then a line of 10: more money than is left
SELECT is(pg_temp.earn('c', 20, 'c1', '{"lines": [{"category": "coffee", "amount": 10}, {"category": "tea", "amount": 10}]}'),
          30::bigint, 'the same purchase');
SELECT is((SELECT points FROM loyalty.reverse(pg_temp.m('c'), 'c1', 15, 'c1r1', '2026-02-03')), -22::bigint,
          'refund 15 of 20: floor(30 x 3/4) = 22');
SELECT throws_ok($$SELECT pg_temp.ret('c', 'c1', '[{"line": 1}]', 'c1r2')$$, 'LY051', NULL,
                 'a line worth more than the money left -> LY051');

-- ---------------------------------------------------------------------------
-- Groups are per line; caps cut from the last line (member d)
-- ---------------------------------------------------------------------------
SELECT loyalty.add_rule('b41', 'hat3', '{"kind": "multiplier", "multiplier": 3, "group": "promo", "match": {"category": "hats"}}');
SELECT loyalty.add_rule('b41', 'cap2', '{"kind": "multiplier", "multiplier": 2, "group": "promo", "match": {"category": ["hats", "caps"]}}');
SELECT is(pg_temp.earn('d', 20, 'd1', '{"lines": [{"category": "hats", "amount": 10}, {"category": "caps", "amount": 10}]}'),
          50::bigint, 'the hat line takes its group''s best (3x: 30), the cap line the only one that matches (2x: 20)');
SELECT is(pg_temp.lines('d1'), '30,20', 'per line');
SELECT loyalty.add_rule('b41', 'sock5', '{"kind": "multiplier", "multiplier": 5, "match": {"category": "socks"},
                                          "cap": {"period": "day", "points": 30}}');
-- uncapped each line would get +40 (80 in all); the cap leaves 30: the last line loses its 40, the first 10
SELECT is(pg_temp.earn('d', 20, 'd2', '{"lines": [{"category": "socks", "amount": 10}, {"category": "socks", "amount": 10}]}'),
          50::bigint, 'two lines at 5x capped at 30: 20 base + 30');
SELECT is(pg_temp.lines('d2'), '40,10', 'the cut comes off the last line first');
SELECT is(pg_temp.ret('d', 'd2', '[{"line": 1}]', 'd2r1'), '-40/f', 'returning the first line takes its 40');
SELECT is((SELECT u.points FROM loyalty.rule_usage u JOIN loyalty.rule r ON r.id = u.rule_id WHERE r.code = 'sock5'),
          0::bigint, 'and gives the 30 of cap usage back');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');
SELECT * FROM finish();
ROLLBACK;
