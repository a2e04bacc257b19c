-- 47_segments_offers: each segment criterion at its edge in a non-UTC zone (local days
-- in Asia/Tokyo), the rollup filled from history and kept by purchases and refunds,
-- offers_for, hostile input.
BEGIN;
SELECT plan(76);

SELECT loyalty.create_program('sg', 'Segments', '{"timezone": "Asia/Tokyo"}');
SELECT loyalty.add_tier('sg', 'base', 'Base', 0);
SELECT loyalty.add_tier('sg', 'gold', 'Gold', 100);
SELECT loyalty.add_reward('sg', 'latte', 'Latte', 50);
CREATE TEMP TABLE m AS
SELECT loyalty.enroll('sg', 'p', '2026-01-01 10:00+09') AS p,
       loyalty.enroll('sg', 'q', '2026-03-01 10:00+09') AS q,
       loyalty.enroll('sg', 'r', '2026-01-01 10:00+09') AS r;
-- history before any segment exists (add_segment fills the rollup from the ledger)
SELECT loyalty.earn((SELECT p FROM m), 30, 'p1', '2026-03-01 10:00+09', '{"category": "coffee"}');
SELECT loyalty.earn((SELECT p FROM m), 10, 'p2', '2026-03-10 23:30+09', '{"category": "tea"}');
SELECT loyalty.earn((SELECT p FROM m), 20, 'p3', '2026-03-10 15:30+00', '{"category": "coffee"}');   -- 11 March 00:30 in Tokyo
SELECT loyalty.earn((SELECT r FROM m), 150, 'r1', '2026-02-01 10:00+09', '{"category": "bakery"}');

SELECT ok(loyalty.add_segment('sg', 'recent7', '{"recency": {"max_days": 7}}') > 0, 'recent7: bought in the last 7 days');
SELECT loyalty.add_segment('sg', 'lapsed30', '{"recency": {"min_days": 30}}');
SELECT loyalty.add_segment('sg', 'frequent', '{"frequency": {"days": 11, "min": 3}}');
SELECT loyalty.add_segment('sg', 'big', '{"spend": {"min": 60}}');
SELECT loyalty.add_segment('sg', 'spend30', '{"spend": {"days": 30, "min": 50}}');
SELECT loyalty.add_segment('sg', 'coffee', '{"favourite_category": {"in": ["coffee"]}}');
SELECT loyalty.add_segment('sg', 'gold', '{"tiers": ["gold"]}');
SELECT loyalty.add_segment('sg', 'new', '{"tenure": {"max_days": 30}}');
SELECT loyalty.add_segment('sg', 'regular', '{"visits": {"min": 3}}');
SELECT loyalty.add_segment('sg', 'everyone', '{}');

SELECT is((SELECT array_agg(day || ':' || category || ':' || purchases || ':' || spend ORDER BY day, category)
             FROM loyalty.purchase_day WHERE member_id = (SELECT p FROM m)),
          ARRAY['2026-03-01:coffee:1:30', '2026-03-10:tea:1:10', '2026-03-11:coffee:1:20'],
          'the rollup was filled from history, by Tokyo day');
CREATE FUNCTION pg_temp.segs(bigint, timestamptz) RETURNS text LANGUAGE sql AS
    $$ SELECT string_agg(segment, ',' ORDER BY segment) FROM loyalty.member_segments($1, $2) $$;
CREATE FUNCTION pg_temp.seg(text) RETURNS bigint LANGUAGE sql AS $$ SELECT id FROM loyalty.segment WHERE code = $1 $$;

-- recency in local days: p's last purchase is on 11 March (Tokyo)
SELECT is(loyalty.in_segment((SELECT p FROM m), pg_temp.seg('recent7'), '2026-03-18 23:59:59+09'), true, 'recency: 7 days on 18 March: recent');
SELECT is(loyalty.in_segment((SELECT p FROM m), pg_temp.seg('recent7'), '2026-03-19 00:00:00+09'), false, 'recency: 8 days on 19 March 00:00 Tokyo: not recent');
SELECT is(loyalty.in_segment((SELECT p FROM m), pg_temp.seg('recent7'), '2026-03-18 15:00:00+00'), false, '18 March 15:00 UTC is already 19 March in Tokyo');
SELECT is(loyalty.in_segment((SELECT q FROM m), pg_temp.seg('recent7'), '2026-03-18 12:00+09'), false, 'never bought: not recent');
SELECT is(loyalty.in_segment((SELECT q FROM m), pg_temp.seg('lapsed30'), '2026-03-18 12:00+09'), true, 'never bought: lapsed');
SELECT is(loyalty.in_segment((SELECT r FROM m), pg_temp.seg('lapsed30'), '2026-03-02 23:59:59+09'), false, 'r bought 1 February: 29 days on 2 March');
SELECT is(loyalty.in_segment((SELECT r FROM m), pg_temp.seg('lapsed30'), '2026-03-03 00:00:00+09'), true, '30 days on 3 March 00:00: lapsed');
-- frequency: 3 purchases in the last 11 local days (today and the 10 before)
SELECT is(loyalty.in_segment((SELECT p FROM m), pg_temp.seg('frequent'), '2026-03-11 23:59:59+09'), true, 'frequency: 1, 10 and 11 March inside on 11 March');
SELECT is(loyalty.in_segment((SELECT p FROM m), pg_temp.seg('frequent'), '2026-03-12 00:00:00+09'), false, 'on 12 March, 1 March has left the window');
SELECT is(loyalty.in_segment((SELECT p FROM m), pg_temp.seg('frequent'), '2026-03-10 23:59:59+09'), false, 'on 10 March, 11 March has not happened');
-- spend: lifetime (member row) and windowed
SELECT is(loyalty.in_segment((SELECT p FROM m), pg_temp.seg('big'), '2026-03-18 12:00+09'), true, 'lifetime spend 60 >= 60');
SELECT is(loyalty.in_segment((SELECT p FROM m), pg_temp.seg('spend30'), '2026-03-30 23:59:59+09'), true, 'spend in 30 days on 30 March: 60');
SELECT is(loyalty.in_segment((SELECT p FROM m), pg_temp.seg('spend30'), '2026-03-31 00:00:00+09'), false, 'on 31 March 1 March has left: 30 < 50');
SELECT is(loyalty.in_segment((SELECT r FROM m), pg_temp.seg('spend30'), '2026-03-02 23:59:59+09'), true, 'r''s 150 of 1 February is inside the 30 days up to 2 March');
SELECT is(loyalty.in_segment((SELECT r FROM m), pg_temp.seg('spend30'), '2026-03-03 00:00:00+09'), false, 'and has left on 3 March');
-- favourite category, tier, tenure, visits
SELECT is(loyalty.in_segment((SELECT p FROM m), pg_temp.seg('coffee'), '2026-03-18 12:00+09'), true, 'p: coffee 50, tea 10: favourite coffee');
SELECT is(loyalty.in_segment((SELECT r FROM m), pg_temp.seg('coffee'), '2026-03-18 12:00+09'), false, 'r: bakery');
SELECT is(loyalty.in_segment((SELECT q FROM m), pg_temp.seg('coffee'), '2026-03-18 12:00+09'), false, 'q: no favourite');
SELECT is(loyalty.in_segment((SELECT r FROM m), pg_temp.seg('gold'), '2026-03-18 12:00+09'), true, 'r earned 150: gold');
SELECT is(loyalty.in_segment((SELECT p FROM m), pg_temp.seg('gold'), '2026-03-18 12:00+09'), false, 'p: base');
SELECT is(loyalty.in_segment((SELECT q FROM m), pg_temp.seg('new'), '2026-03-31 23:59:59+09'), true, 'q enrolled 1 March: 30 days on 31 March');
SELECT is(loyalty.in_segment((SELECT q FROM m), pg_temp.seg('new'), '2026-04-01 00:00:00+09'), false, '31 days on 1 April');
SELECT is(loyalty.in_segment((SELECT p FROM m), pg_temp.seg('regular'), '2026-03-18 12:00+09'), true, 'p: 3 visits');
SELECT loyalty.create_program('other', 'Other');
SELECT loyalty.add_tier('other', 'base', 'Base', 0);
SELECT is(loyalty.in_segment(loyalty.enroll('other', 'o', '2026-01-01'), pg_temp.seg('everyone'), '2026-03-18 12:00+09'), false,
          'a segment of another program: not a member of it');
SELECT is(pg_temp.segs((SELECT p FROM m), '2026-03-18 12:00+09'), 'big,coffee,everyone,recent7,regular,spend30', 'member_segments(p)');
SELECT is(pg_temp.segs((SELECT q FROM m), '2026-03-18 12:00+09'), 'everyone,lapsed30,new', 'member_segments(q)');
SELECT is(pg_temp.segs((SELECT r FROM m), '2026-03-18 12:00+09'), 'big,everyone,gold,lapsed30', 'member_segments(r)');

-- purchases and refunds after the segments exist keep the rollup
SELECT loyalty.earn((SELECT p FROM m), 100, 'p4', '2026-03-20 12:00+09', '{"category": "tea"}');
SELECT is(loyalty.in_segment((SELECT p FROM m), pg_temp.seg('coffee'), '2026-03-20 13:00+09'), false, 'tea 110 now beats coffee 50');
SELECT loyalty.reverse((SELECT p FROM m), 'p4', NULL, 'p4-refund', '2026-03-21 12:00+09');
SELECT is((SELECT (purchases, spend) FROM loyalty.purchase_day WHERE member_id = (SELECT p FROM m) AND day = '2026-03-20'),
          (0, 0::numeric), 'a full refund takes the purchase and its spend off its day');
SELECT is(loyalty.in_segment((SELECT p FROM m), pg_temp.seg('coffee'), '2026-03-21 13:00+09'), true, 'coffee is the favourite again');
SELECT is(loyalty.in_segment((SELECT p FROM m), pg_temp.seg('recent7'), '2026-03-27 12:00+09'), false,
          'recency ignores the refunded purchase: 16 days since 11 March');
SELECT loyalty.reverse((SELECT p FROM m), 'p3', 1, 'p3-refund', '2026-03-21 12:00+09');
SELECT is(loyalty.in_segment((SELECT p FROM m), pg_temp.seg('big'), '2026-03-21 13:00+09'), false, 'refund 1 of 60: lifetime spend 59 < 60');

-- offers
SELECT ok(loyalty.add_offer('sg', 'winback', '{"name": "We miss you", "segments": ["lapsed30"], "bonus": {"points": 100},
                                               "valid_from": "2026-03-01T00:00:00+09:00", "valid_until": "2026-04-01T00:00:00+09:00"}') > 0,
          'winback: lapsed members, March');
SELECT loyalty.add_offer('sg', 'gold-gift', '{"tiers": ["gold"], "reward": "latte"}');
SELECT loyalty.add_offer('sg', 'coffee-promo', '{"segments": ["coffee", "new"], "bonus": {"multiplier": 2}, "valid_from": "2026-03-15T00:00:00+09:00"}');
SELECT loyalty.add_offer('sg', 'old', '{"bonus": {"points": 5}, "valid_until": "2026-03-10T00:00:00+09:00"}');
CREATE FUNCTION pg_temp.offers(bigint, timestamptz) RETURNS text LANGUAGE sql AS
    $$ SELECT string_agg(offer || coalesce(':' || reward, ''), ',' ORDER BY offer) FROM loyalty.offers_for($1, $2) $$;
SELECT is(pg_temp.offers((SELECT q FROM m), '2026-03-18 12:00+09'), 'coffee-promo,winback', 'q: lapsed and new');
SELECT is(pg_temp.offers((SELECT r FROM m), '2026-03-18 12:00+09'), 'gold-gift:latte,winback', 'r: gold and lapsed');
SELECT is(pg_temp.offers((SELECT p FROM m), '2026-03-22 12:00+09'), 'coffee-promo,gold-gift:latte',
          'p: a coffee lover, and gold since the 100 purchase (the refund does not lower a tier before its review)');
SELECT is(pg_temp.offers((SELECT q FROM m), '2026-03-09 12:00+09'), 'old,winback', 'q on 9 March: the promo has not started, the old offer has not ended');
SELECT is(pg_temp.offers((SELECT r FROM m), '2026-04-01 00:00:00+09'), 'gold-gift:latte', 'winback ends at 1 April 00:00 (exclusive)');

-- a reward for a segment: only its members can redeem it
SELECT loyalty.rotate_voucher_key();
SELECT lives_ok($$SELECT loyalty.set_reward_segment('sg', 'latte', 'lapsed30')$$, 'latte only for lapsed members');
SELECT throws_ok($$SELECT loyalty.redeem_reward((SELECT p FROM m), 'latte', 'p-latte', '2026-03-22 12:00+09')$$,
                 'LY140', NULL, 'p is not lapsed: LY140');
SELECT is((SELECT points FROM loyalty.redeem_reward((SELECT r FROM m), 'latte', 'r-latte', '2026-03-22 12:00+09')), -50::bigint,
          'r is lapsed: redeemed for 50 points');
SELECT lives_ok($$SELECT loyalty.set_reward_segment('sg', 'latte', NULL)$$, 'latte for everyone again');
SELECT is((SELECT points FROM loyalty.redeem_reward((SELECT p FROM m), 'latte', 'p-latte', '2026-03-22 12:00+09')), -50::bigint,
          'p can redeem it now');
SELECT throws_ok($$SELECT loyalty.set_reward_segment('sg', 'latte', 'nosuch')$$, 'LY136', NULL, 'unknown segment -> LY136');
SELECT throws_ok($$SELECT loyalty.set_reward_segment('sg', 'nosuch', 'gold')$$, 'LY007', NULL, 'unknown reward -> LY007');

-- an earning rule targeted at a segment (rules.c calls ly_member_in_segment during the earn,
-- on the history before that purchase): r is lapsed on 22 March, p is not
SELECT loyalty.add_rule('sg', 'winback-bonus', format('{"kind": "bonus", "points": 5, "segment_id": %s}', pg_temp.seg('lapsed30'))::jsonb);
SELECT is((SELECT points FROM loyalty.earn((SELECT r FROM m), 10, 'r-2', '2026-03-23 12:00+09')), 15::bigint,
          'lapsed r: 10 + the segment''s bonus 5');
SELECT is((SELECT points FROM loyalty.earn((SELECT p FROM m), 10, 'p-5', '2026-03-23 12:00+09')), 10::bigint, 'p, not lapsed: 10');
SELECT is((SELECT points FROM loyalty.earn((SELECT r FROM m), 10, 'r-3', '2026-03-23 13:00+09')), 10::bigint,
          'r bought today: no longer lapsed, no bonus');

-- hostile input: SQLSTATEs, nothing written
CREATE TEMP TABLE before AS SELECT (SELECT count(*) FROM loyalty.segment) AS s, (SELECT count(*) FROM loyalty.offer) AS o;
SELECT throws_ok($$SELECT loyalty.add_segment('sg', 'x', '{"age": 3}')$$, 'LY137', NULL, 'unknown criterion -> LY137');
SELECT throws_ok($$SELECT loyalty.add_segment('sg', 'x', '{"tiers": ["platinum"]}')$$, 'LY137', NULL, 'unknown tier -> LY137');
SELECT throws_ok($$SELECT loyalty.add_segment('sg', 'x', '{"spend": {"min": 10, "max": 5}}')$$, 'LY137', NULL, 'min above max -> LY137');
SELECT throws_ok($$SELECT loyalty.add_segment('sg', 'x', '{"frequency": {"min": 2}}')$$, 'LY137', NULL, 'frequency without days -> LY137');
SELECT throws_ok($$SELECT loyalty.add_segment('sg', 'x', '{"recency": {"max_days": -1}}')$$, 'LY137', NULL, 'negative days -> LY137');
SELECT throws_ok($$SELECT loyalty.add_segment('sg', 'x', '[]')$$, 'LY035', NULL, 'criteria not an object -> LY035');
SELECT throws_ok($$SELECT loyalty.add_segment('sg', 'recent7', '{}')$$, 'LY041', NULL, 'duplicate segment -> LY041');
SELECT throws_ok($$SELECT loyalty.add_offer('sg', 'x', '{"segments": ["nosuch"], "bonus": {}}')$$, 'LY136', NULL, 'unknown segment -> LY136');
SELECT throws_ok($$SELECT loyalty.add_offer('sg', 'x', '{"name": "no reward, no bonus"}')$$, 'LY138', NULL, 'neither reward nor bonus -> LY138');
SELECT throws_ok($$SELECT loyalty.add_offer('sg', 'x', '{"reward": "nosuch"}')$$, 'LY007', NULL, 'unknown reward -> LY007');
SELECT throws_ok($$SELECT loyalty.add_offer('sg', 'x', '{"bonus": {}, "valid_from": "2026-05-01", "valid_until": "2026-04-01"}')$$, 'LY138', NULL, 'empty window -> LY138');
SELECT throws_ok($$SELECT loyalty.add_offer('sg', 'x', '{"bonus": {}, "valid_from": "soon"}')$$, 'LY138', NULL, 'not a timestamp -> LY138');
SELECT throws_ok($$SELECT loyalty.in_segment((SELECT p FROM m), -1, '2026-03-18 12:00+09')$$, 'LY136', NULL, 'in_segment of an unknown segment -> LY136');
SELECT throws_ok($$SELECT * FROM loyalty.member_segments(-1)$$, 'LY002', NULL, 'member_segments of an unknown member -> LY002');
SELECT throws_ok($$SELECT * FROM loyalty.offers_for((SELECT p FROM m), 'infinity')$$, 'LY033', NULL, 'offers_for at infinity -> LY033');
SELECT throws_ok($$SELECT loyalty.add_segment('sg', 'x', NULL)$$, 'LY034', NULL, 'NULL criteria -> LY034');
SELECT throws_ok($$SELECT loyalty.add_segment('nosuch', 'x', '{}')$$, 'LY001', NULL, 'unknown program -> LY001');
SELECT throws_ok($$SELECT loyalty.add_segment('sg', repeat('x', 100000), '{}')$$, 'LY037', NULL, '100 000-byte code -> LY037');
SELECT throws_ok($$SELECT loyalty.add_offer('sg', 'winback', '{"bonus": {}}')$$, 'LY041', NULL, 'duplicate offer -> LY041');
SELECT throws_ok($$SELECT loyalty.add_offer('sg', 'x', '{"bonus": {}, "colour": "red"}')$$, 'LY138', NULL, 'unknown offer key -> LY138');
SELECT throws_ok($$SELECT loyalty.add_offer('sg', 'x', '{"tiers": ["platinum"], "bonus": {}}')$$, 'LY003', NULL, 'unknown tier -> LY003');
SELECT throws_ok($$SELECT loyalty.in_segment(NULL, 1)$$, 'LY034', NULL, 'in_segment(NULL) -> LY034');
SELECT throws_ok($$SELECT * FROM loyalty.member_segments(NULL)$$, 'LY034', NULL, 'member_segments(NULL) -> LY034');
SELECT throws_ok($$SELECT * FROM loyalty.offers_for(-1)$$, 'LY002', NULL, 'offers_for of an unknown member -> LY002');
SELECT is((SELECT (count(*), (SELECT count(*) FROM loyalty.offer)) FROM loyalty.segment), (SELECT (s, o) FROM before), 'nothing written');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');
SELECT * FROM finish();
ROLLBACK;
