-- 40_rules: earning rules. Each kind, matching (equals, in-list, line then purchase
-- attrs), stacking order and groups, caps exactly at their edge, days and hours in
-- a non-UTC zone (with the DST change), validity and end_rule, tiers, segments,
-- replay, refunds taking rule points and cap usage back, hostile definitions.
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(99);

CREATE FUNCTION pg_temp.m(ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT loyalty.member_id('r40', ref) $$;
-- points of an earn
CREATE FUNCTION pg_temp.earn(ref text, amount numeric, k text, t timestamptz, attrs jsonb DEFAULT '{}')
    RETURNS bigint LANGUAGE sql AS $$
    SELECT points FROM loyalty.earn(pg_temp.m(ref), amount, k, t, attrs) $$;
-- what each rule gave an entry: "code:points,code:points" in detail order
CREATE FUNCTION pg_temp.gave(k text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg((x ->> 'code') || ':' || (x ->> 'points'), ',' ORDER BY o), '')
      FROM loyalty.entry e CROSS JOIN LATERAL jsonb_array_elements(e.detail -> 'rules') WITH ORDINALITY AS r(x, o)
     WHERE e.idempotency_key = k $$;
CREATE FUNCTION pg_temp.why(k text) RETURNS text LANGUAGE sql AS $$
    SELECT detail ->> 'explanation' FROM loyalty.entry WHERE idempotency_key = k $$;
CREATE FUNCTION pg_temp.usage(code text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(u.points::text, ',' ORDER BY u.period_start), '')
      FROM loyalty.rule_usage u JOIN loyalty.rule r ON r.id = u.rule_id
     WHERE r.code = usage.code AND r.program_id = (SELECT id FROM loyalty.program WHERE code = 'r40') $$;
CREATE FUNCTION pg_temp.nrules() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM loyalty.rule $$;

-- New York: EST (-05) until 2026-03-08 02:00 local, then EDT (-04).
SELECT loyalty.create_program('r40', 'Rules', '{"timezone": "America/New_York", "tier_window": "lifetime"}');
SELECT loyalty.add_tier('r40', 'base', 'Base', 0);
SELECT loyalty.add_tier('r40', 'gold', 'Gold', 100000, 2);
SELECT loyalty.enroll('r40', ref, '2026-01-01') FROM unnest(ARRAY['a','b','c','d','e','f','g','h']) ref;

-- ---------------------------------------------------------------------------
-- Each kind on its own (member a, each rule on its own category)
-- ---------------------------------------------------------------------------
SELECT ok(loyalty.add_rule('r40', 'coffee2x', '{"kind": "multiplier", "multiplier": 2, "name": "Double coffee",
                                                "match": {"category": "coffee"}}') > 0, 'add_rule returns the id');
SELECT loyalty.add_rule('r40', 'giftcards', '{"kind": "exclude", "match": {"category": ["gift_card", "voucher"]}}');
SELECT loyalty.add_rule('r40', 'big', '{"kind": "bonus", "points": 50, "min_spend": 100, "match": {"category": "tv"}}');
SELECT loyalty.add_rule('r40', 'books', '{"kind": "per_unit", "points": 0.5, "match": {"category": "books"}}');
SELECT loyalty.add_rule('r40', 'pens', '{"kind": "per_unit", "points": 3, "per": "qty", "match": {"sku": "pen"}}');
SELECT loyalty.add_rule('r40', 'stores', '{"kind": "bonus", "points": 7, "match": {"store": ["s1", "s2"], "channel": "app"}}');

SELECT is(pg_temp.earn('a', 10, 'a1', '2026-02-02 15:00+00', '{"category": "coffee"}'), 20::bigint,
          'multiplier: 10 of coffee at 2x -> 20');
SELECT is(pg_temp.gave('a1'), 'coffee2x:10', 'the entry says the multiplier gave 10');
SELECT is(pg_temp.why('a1'), '20 points: 10 base; +10 Double coffee (x2)', 'the explanation reads as a receipt');
SELECT is(pg_temp.earn('a', 10, 'a2', '2026-02-02 15:00+00', '{"category": "tea"}'), 10::bigint,
          'no rule matches tea -> base 10');
SELECT is(pg_temp.gave('a2'), '', 'and no rule is listed');
SELECT is(pg_temp.earn('a', 10, 'a3', '2026-02-02 15:00+00', '{"category": "voucher"}'), 0::bigint,
          'exclusion (in-list): a voucher earns nothing');
SELECT is(pg_temp.why('a3'), '0 points: 0 base; earns nothing (giftcards)', 'the explanation names the exclusion');
SELECT is((SELECT amount FROM loyalty.entry WHERE idempotency_key = 'a3'), 10::numeric,
          'the excluded purchase is still recorded with its amount');
SELECT is(pg_temp.earn('a', 99.99, 'a4', '2026-02-02 15:00+00', '{"category": "tv"}'), 99::bigint,
          'bonus: 99.99 is below min_spend 100 -> base only');
SELECT is(pg_temp.earn('a', 100, 'a5', '2026-02-02 15:00+00', '{"category": "tv"}'), 150::bigint,
          'bonus: exactly min_spend 100 -> 100 + 50');
SELECT is(pg_temp.earn('a', 31, 'a6', '2026-02-02 15:00+00', '{"category": "books"}'), 46::bigint,
          'per_unit per amount: 31 + floor(31 x 0.5) = 46');
SELECT is(pg_temp.earn('a', 12, 'a7', '2026-02-02 15:00+00',
                       '{"lines": [{"sku": "pen", "amount": 12, "qty": 4}]}'), 24::bigint,
          'per_unit per qty: 12 + 4 x 3 = 24');
SELECT is(pg_temp.earn('a', 5, 'a8', '2026-02-02 15:00+00', '{"store": "s2", "channel": "app"}'), 12::bigint,
          'two match keys, one in-list: both hold -> 5 + 7');
SELECT is(pg_temp.earn('a', 5, 'a9', '2026-02-02 15:00+00', '{"store": "s2", "channel": "web"}'), 5::bigint,
          'one key fails -> no bonus');
SELECT is(pg_temp.earn('a', 5, 'a10', '2026-02-02 15:00+00', '{"store": 2, "channel": "app"}'), 5::bigint,
          'types are compared strictly: the number 2 is not "s2"');

-- Replay returns the original receipt, even after the rules change.
SELECT loyalty.end_rule('r40', 'coffee2x', '2026-01-01');
SELECT is((SELECT format('%s/%s', points, replayed) FROM loyalty.earn(pg_temp.m('a'), 10, 'a1', '2026-02-02 15:00+00',
                                                                       '{"category": "coffee"}')),
          '20/t', 'replay after the rule ended: the original 20 points, replayed');
SELECT is(pg_temp.earn('a', 10, 'a11', '2026-02-02 15:00+00', '{"category": "coffee"}'), 10::bigint,
          'a new purchase dated after end_rule gets no multiplier');
SELECT is(pg_temp.earn('a', 10, 'a12', '2025-12-31 23:59:59+00', '{"category": "coffee"}'), 20::bigint,
          'a late purchase dated before the end still gets it');
SELECT throws_ok($$SELECT loyalty.end_rule('r40', 'coffee2x')$$, 'LY106', NULL, 'ending an ended rule -> LY106');
SELECT throws_ok($$SELECT loyalty.end_rule('r40', 'nope')$$, 'LY101', NULL, 'ending an unknown rule -> LY101');
SELECT is((SELECT format('%s/%s/%s', kind, ended_at, active_now) FROM loyalty.rules WHERE code = 'coffee2x'),
          'multiplier/2026-01-01 00:00:00+00/f', 'loyalty.rules shows the end');

-- ---------------------------------------------------------------------------
-- Stacking (member b): multipliers multiply in priority order, groups keep the
-- best, additive points are not multiplied
-- ---------------------------------------------------------------------------
SELECT loyalty.add_rule('r40', 'm2', '{"kind": "multiplier", "multiplier": 2, "match": {"category": "shoes"}}');
SELECT loyalty.add_rule('r40', 'm15', '{"kind": "multiplier", "multiplier": 1.5, "priority": 5, "match": {"category": "shoes"}}');
SELECT loyalty.add_rule('r40', 'b10', '{"kind": "bonus", "points": 10, "match": {"category": "shoes"}}');
-- 10 -> x1.5 (priority 5 first) = 15 (+5) -> x2 = 30 (+15); + 10 bonus = 40
SELECT is(pg_temp.earn('b', 10, 'b1', '2026-02-03 15:00+00', '{"category": "shoes"}'), 40::bigint,
          'two multipliers multiply (10 x 1.5 x 2 = 30), then the bonus adds 10 unmultiplied');
SELECT is(pg_temp.gave('b1'), 'm15:5,m2:15,b10:10', 'higher priority first; each rule''s own points');
SELECT loyalty.add_rule('r40', 'g3', '{"kind": "multiplier", "multiplier": 3, "group": "promo", "match": {"category": "hats"}}');
SELECT loyalty.add_rule('r40', 'g2', '{"kind": "multiplier", "multiplier": 2, "group": "promo", "match": {"category": ["hats", "caps"]}}');
SELECT loyalty.add_rule('r40', 'g4', '{"kind": "multiplier", "multiplier": 4, "match": {"category": "caps"}}');
SELECT is(pg_temp.earn('b', 10, 'b2', '2026-02-03 15:00+00', '{"category": "hats"}'), 30::bigint,
          'a group keeps its best multiplier only: 3x, not 3 x 2');
SELECT is(pg_temp.gave('b2'), 'g3:20', 'the loser is not listed');
SELECT is(pg_temp.earn('b', 10, 'b3', '2026-02-03 15:00+00', '{"category": "caps"}'), 80::bigint,
          'outside its group a multiplier stacks: caps 2x (group) x 4x = 80');
SELECT loyalty.add_rule('r40', 'w100', '{"kind": "bonus", "points": 100, "group": "welcome", "match": {"category": "bags"}}');
SELECT loyalty.add_rule('r40', 'w30', '{"kind": "bonus", "points": 30, "group": "welcome", "match": {"category": "bags"}}');
SELECT loyalty.add_rule('r40', 'wpu', '{"kind": "per_unit", "points": 20, "group": "welcome", "match": {"category": "bags"}}');
SELECT is(pg_temp.earn('b', 4, 'b4', '2026-02-03 15:00+00', '{"category": "bags"}'), 104::bigint,
          'additive group: the most generous (100 > 4 x 20 = 80 > 30) only');
SELECT is(pg_temp.earn('b', 6, 'b5', '2026-02-03 15:00+00', '{"category": "bags"}'), 126::bigint,
          'additive group: 6 x 20 = 120 now beats 100');
SELECT is(pg_temp.gave('b5'), 'wpu:120', 'only the per-unit rule is listed');

-- ---------------------------------------------------------------------------
-- Caps at their edge (member c), periods in New York time
-- ---------------------------------------------------------------------------
SELECT loyalty.add_rule('r40', 'capday', '{"kind": "bonus", "points": 40, "match": {"category": "cap"},
                                           "cap": {"period": "day", "points": 100}}');
SELECT is(pg_temp.earn('c', 1, 'c1', '2026-02-10 15:00+00', '{"category": "cap"}'), 41::bigint, 'cap 100/day: 40 (40 used)');
SELECT is(pg_temp.earn('c', 1, 'c2', '2026-02-10 16:00+00', '{"category": "cap"}'), 41::bigint, '40 more (80 used)');
SELECT is(pg_temp.earn('c', 1, 'c3', '2026-02-10 17:00+00', '{"category": "cap"}'), 21::bigint,
          'the earn that crosses the cap gets the remainder: 20');
SELECT is(pg_temp.why('c3'), '21 points: 1 base; +20 capday (capped, 20 over the day limit)', 'and says so');
SELECT is(pg_temp.earn('c', 1, 'c4', '2026-02-11 04:59:59+00', '{"category": "cap"}'), 1::bigint,
          '23:59:59 New York time is still the same day: nothing left');
SELECT is(pg_temp.earn('c', 1, 'c5', '2026-02-11 05:00:00+00', '{"category": "cap"}'), 41::bigint,
          'midnight New York time (05:00 UTC) starts a new day: 40 again');
SELECT is(pg_temp.usage('capday'), '100,40', 'usage per local day: 100, then 40');
-- a refund gives cap usage back: all of c5's bonus
SELECT is((SELECT points FROM loyalty.reverse(pg_temp.m('c'), 'c5', NULL, 'c5r', '2026-02-11 06:00+00')), -41::bigint,
          'full refund takes base and bonus back');
SELECT is(pg_temp.gave('c5r'), 'capday:-40', 'the refund names the rule it takes from');
SELECT is(pg_temp.usage('capday'), '100,0', 'and its cap usage is returned');
SELECT is(pg_temp.earn('c', 1, 'c6', '2026-02-11 07:00:00+00', '{"category": "cap"}'), 41::bigint,
          'so the next purchase that day gets the whole bonus again');
-- a multiplier's extra points are capped per week (weeks start Monday 00:00 local)
SELECT loyalty.add_rule('r40', 'capweek', '{"kind": "multiplier", "multiplier": 3, "match": {"category": "wk"},
                                            "cap": {"period": "week", "points": 25}}');
SELECT is(pg_temp.earn('c', 10, 'c7', '2026-02-15 15:00+00', '{"category": "wk"}'), 30::bigint, 'Sunday: 10 + 20 (20 of 25)');
SELECT is(pg_temp.earn('c', 10, 'c8', '2026-02-16 04:59:59+00', '{"category": "wk"}'), 15::bigint,
          'Sunday 23:59:59 local: only 5 left of the week''s 25');
SELECT is(pg_temp.earn('c', 10, 'c9', '2026-02-16 05:00:00+00', '{"category": "wk"}'), 30::bigint,
          'Monday 00:00 local: a new week');
SELECT loyalty.add_rule('r40', 'capever', '{"kind": "bonus", "points": 500, "match": {"category": "first"},
                                            "cap": {"period": "ever", "points": 500}}');
SELECT is(pg_temp.earn('c', 1, 'c10', '2026-02-17 15:00+00', '{"category": "first"}'), 501::bigint, 'cap ever: once');
SELECT is(pg_temp.earn('c', 1, 'c11', '2027-06-17 15:00+00', '{"category": "first"}'), 1::bigint, 'and never again');

-- ---------------------------------------------------------------------------
-- Days and hours in New York, across the DST change (member d)
-- ---------------------------------------------------------------------------
SELECT loyalty.add_rule('r40', 'happy', '{"kind": "multiplier", "multiplier": 3, "days": ["fri"],
                                          "hours": {"from": "17:00", "to": "19:00"}, "match": {"category": "hh"}}');
-- Friday 2026-03-06 is EST: 17:00 local = 22:00 UTC
SELECT is(pg_temp.earn('d', 10, 'd1', '2026-03-06 21:59:59+00', '{"category": "hh"}'), 10::bigint, 'Friday 16:59:59 local: no');
SELECT is(pg_temp.earn('d', 10, 'd2', '2026-03-06 22:00:00+00', '{"category": "hh"}'), 30::bigint, 'Friday 17:00 local: 3x');
SELECT is(pg_temp.earn('d', 10, 'd3', '2026-03-06 23:59:59+00', '{"category": "hh"}'), 30::bigint, 'Friday 18:59:59 local: 3x');
SELECT is(pg_temp.earn('d', 10, 'd4', '2026-03-07 00:00:00+00', '{"category": "hh"}'), 10::bigint,
          'Friday 19:00 local (Saturday in UTC): no');
SELECT is(pg_temp.earn('d', 10, 'd5', '2026-03-13 21:00:00+00', '{"category": "hh"}'), 30::bigint,
          'the next Friday is EDT: 17:00 local is 21:00 UTC, 3x');
SELECT loyalty.add_rule('r40', 'night', '{"kind": "bonus", "points": 5, "days": ["sun"],
                                          "hours": {"from": "01:00", "to": "03:00"}, "match": {"category": "nt"}}');
-- Sunday 2026-03-08: 02:00 EST jumps to 03:00 EDT; the window 01:00-03:00 lasts one real hour
SELECT is(pg_temp.earn('d', 1, 'd6', '2026-03-08 06:00:00+00', '{"category": "nt"}'), 6::bigint, '01:00 EST: in');
SELECT is(pg_temp.earn('d', 1, 'd7', '2026-03-08 06:59:59+00', '{"category": "nt"}'), 6::bigint, '01:59:59 EST: in');
SELECT is(pg_temp.earn('d', 1, 'd8', '2026-03-08 07:00:00+00', '{"category": "nt"}'), 1::bigint,
          'one second later it is 03:00 EDT: out');
SELECT loyalty.add_rule('r40', 'nightly', '{"kind": "bonus", "points": 2, "hours": {"from": "22:00", "to": "02:00"},
                                            "match": {"category": "late"}}');
SELECT is(pg_temp.earn('d', 1, 'd9', '2026-03-10 05:30:00+00', '{"category": "late"}'), 3::bigint,
          'a window past midnight wraps: 01:30 EDT is in 22:00-02:00');
SELECT is(pg_temp.earn('d', 1, 'd10', '2026-03-10 14:00:00+00', '{"category": "late"}'), 1::bigint, '10:00 EDT is out');

-- valid_from / valid_to, half-open
SELECT loyalty.add_rule('r40', 'april', '{"kind": "bonus", "points": 9, "valid_from": "2026-04-01 00:00-04",
                                          "valid_to": "2026-04-02 00:00-04", "match": {"category": "apr"}}');
SELECT is((SELECT active_now FROM loyalty.rules WHERE code = 'april'), false, 'loyalty.rules: april is not active now');
SELECT loyalty.add_rule('r40', 'future', '{"kind": "bonus", "points": 1, "valid_from": "2999-01-01 00:00+00"}');
SELECT is((SELECT active_now FROM loyalty.rules WHERE code = 'future'), false, 'nor is a rule that starts in 2999');
SELECT loyalty.end_rule('r40', 'future');
SELECT is(pg_temp.earn('d', 1, 'd11', '2026-04-01 03:59:59+00', '{"category": "apr"}'), 1::bigint, 'before valid_from: no');
SELECT is(pg_temp.earn('d', 1, 'd12', '2026-04-01 04:00:00+00', '{"category": "apr"}'), 10::bigint, 'at valid_from: yes');
SELECT is(pg_temp.earn('d', 1, 'd13', '2026-04-02 03:59:59+00', '{"category": "apr"}'), 10::bigint, 'just before valid_to: yes');
SELECT is(pg_temp.earn('d', 1, 'd14', '2026-04-02 04:00:00+00', '{"category": "apr"}'), 1::bigint, 'at valid_to: no');

-- ---------------------------------------------------------------------------
-- Tiers and segments (members e, f)
-- ---------------------------------------------------------------------------
SELECT loyalty.add_rule('r40', 'goldonly', '{"kind": "bonus", "points": 1000, "tiers": ["gold"], "match": {"category": "vip"}}');
SELECT is(pg_temp.earn('e', 1, 'e1', '2026-02-01 15:00+00', '{"category": "vip"}'), 1::bigint, 'a base member: no gold bonus');
SELECT is(pg_temp.earn('e', 100000, 'e2', '2026-02-01 16:00+00'), 100000::bigint, 'this purchase promotes to gold');
SELECT is(pg_temp.earn('e', 1, 'e3', '2026-02-01 17:00+00', '{"category": "vip"}'), 1002::bigint,
          'a gold member: 1 x 2 (tier) + 1000');
SELECT loyalty.add_rule('r40', 'seg', '{"kind": "bonus", "points": 5, "segment_id": 987654321}');
SELECT is(pg_temp.earn('f', 1, 'f1', '2026-02-01 15:00+00'), 1::bigint, 'a member outside the segment gets no segment bonus');

-- ---------------------------------------------------------------------------
-- Refunds take rule points back in proportion (member g)
-- ---------------------------------------------------------------------------
SELECT loyalty.add_rule('r40', 'g5x', '{"kind": "multiplier", "multiplier": 5, "match": {"category": "g5"}}');
SELECT is(pg_temp.earn('g', 10, 'g1', '2026-02-01 15:00+00', '{"category": "g5"}'), 50::bigint, '10 at 5x = 50');
SELECT is((SELECT points FROM loyalty.reverse(pg_temp.m('g'), 'g1', 3, 'g1r1', '2026-02-02')), -15::bigint,
          'refund 3 of 10: 15 points back');
SELECT is(pg_temp.gave('g1r1'), 'g5x:-12', 'of which floor(40 x 3/10) = 12 from the multiplier');
SELECT is(pg_temp.why('g1r1'), '15 points back: 3 base; 12 g5x', 'the refund explains itself too');
SELECT is((SELECT points FROM loyalty.reverse(pg_temp.m('g'), 'g1', NULL, 'g1r2', '2026-02-03')), -35::bigint,
          'refund the rest: 35 back');
SELECT is(pg_temp.gave('g1r2'), 'g5x:-28', 'and the rest of the multiplier''s 40');

-- ---------------------------------------------------------------------------
-- Hostile definitions: each its SQLSTATE, nothing written
-- ---------------------------------------------------------------------------
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'x', '[]')$$, 'LY035', NULL, 'an array -> LY035');
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'x', NULL)$$, 'LY034', NULL, 'NULL -> LY034');
SELECT throws_ok($$SELECT loyalty.add_rule('nope', 'x', '{"kind": "exclude"}')$$, 'LY001', NULL, 'unknown program -> LY001');
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'big', '{"kind": "exclude"}')$$, 'LY041', NULL, 'duplicate code -> LY041');
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'x', '{}')$$, 'LY100',
                 'invalid rule definition: bad value for "kind"', 'no kind -> LY100 naming kind');
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'x', '{"kind": "double"}')$$, 'LY100', NULL, 'unknown kind');
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'x', '{"kind": "multiplier", "multiplier": 2, "colour": "red"}')$$,
                 'LY100', 'invalid rule definition: unknown key "colour"', 'unknown key, named');
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'x', '{"kind": "multiplier", "multiplier": "2"}')$$,
                 'LY100', 'invalid rule definition: bad value for "multiplier"', 'a string multiplier');
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'x', '{"kind": "multiplier", "multiplier": -2}')$$, 'LY100', NULL,
                 'a negative multiplier');
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'x', '{"kind": "multiplier", "multiplier": "NaN"}')$$, 'LY100', NULL,
                 'NaN (as a string: JSON has no NaN)');
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'x', '{"kind": "multiplier", "multiplier": 1e400}')$$, 'LY100', NULL,
                 'a huge multiplier');
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'x', '{"kind": "bonus", "points": 1.5}')$$, 'LY100', NULL,
                 'a fractional bonus');
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'x', '{"kind": "bonus", "points": 10, "multiplier": 2}')$$, 'LY100', NULL,
                 'a key of another kind');
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'x', '{"kind": "bonus", "points": 10, "cap": {"period": "fortnight", "points": 5}}')$$,
                 'LY100', 'invalid rule definition: bad value for "cap.period"', 'a bad cap period, named');
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'x', '{"kind": "bonus", "points": 10, "cap": {"period": "day", "points": -5}}')$$,
                 'LY100', NULL, 'a negative cap');
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'x', '{"kind": "bonus", "points": 10, "hours": {"from": "25:00", "to": "10:00"}}')$$,
                 'LY100', NULL, 'hour 25');
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'x', '{"kind": "bonus", "points": 10, "valid_from": "not a date"}')$$,
                 'LY100', 'invalid rule definition: bad value for "valid_from"', 'a bad date, named');
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'x', '{"kind": "bonus", "points": 10, "valid_to": "infinity"}')$$,
                 'LY100', NULL, 'an infinite date');
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'x', '{"kind": "bonus", "points": 10, "tiers": ["platinum"]}')$$,
                 'LY100', NULL, 'an unknown tier');
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'x', '{"kind": "bonus", "points": 10, "match": {"sku": {"a": 1}}}')$$,
                 'LY100', 'invalid rule definition: bad value for "match.sku"', 'an object as a match value, named');
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'x', '{"kind": "bonus", "points": 10, "days": ["funday"]}')$$,
                 'LY100', NULL, 'an unknown day');
SELECT throws_ok($$SELECT loyalty.add_rule('r40', 'x', '{"kind": "exclude", "cap": {"period": "day", "points": 5}}')$$,
                 'LY100', NULL, 'a capped exclusion');
SELECT is(pg_temp.nrules(), (SELECT count(*) FROM loyalty.rule WHERE code <> 'x'), 'no hostile definition was stored');

-- ---------------------------------------------------------------------------
-- rule_performance over February, by hand
--   capday: c1..c6 (c4 got 0: capped), 40+40+20+0+40+40 = 180, c5r took 40 back, spend 6 x 1
--   g5x: g1 gave 40, both refunds took it all back; coffee2x: a1 only (a11 after the end,
--   a12 dated December); giftcards: excluded a3
-- ---------------------------------------------------------------------------
SELECT results_eq($$SELECT format('%s|%s|%s|%s|%s|%s|%s', code, times_applied, points_given, points_reversed,
                                  net_points, spend, members_reached)
                      FROM loyalty.rule_performance('r40', '2026-02-01', '2026-03-01')
                     WHERE code IN ('capday', 'g5x', 'coffee2x', 'giftcards', 'april') ORDER BY code$$,
                  ARRAY['april|0|0|0|0|0|0', 'capday|6|180|40|140|6|1', 'coffee2x|1|10|0|10|10|1',
                        'g5x|1|40|40|0|10|1', 'giftcards|1|0|0|0|0|1'],
                  'rule_performance: times applied, points given and reversed, spend, members');
SELECT throws_ok($$SELECT * FROM loyalty.rule_performance('nope', '2026-01-01', '2026-02-01')$$, 'LY001', NULL,
                 'rule_performance: unknown program');
SELECT throws_ok($$SELECT * FROM loyalty.rule_performance('r40', '2026-02-01', '2026-02-01')$$, 'LY038', NULL,
                 'rule_performance: empty period');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');
SELECT * FROM finish();
ROLLBACK;
