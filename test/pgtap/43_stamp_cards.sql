-- 43: stamp cards: a card fills at exactly N and pays once, overflow stamps carry to
-- the next card, per purchase / per line / per qty counting, min_amount, rewards as
-- points (award entries with derived keys) and as free vouchers (stock, deferral while
-- out of stock), replays, refunds across a completed card (debt), partial refunds,
-- the per-purchase cap, the definition cache, hostile definitions.
BEGIN;
SET LOCAL timezone = 'UTC';
SET LOCAL datestyle = 'ISO';
SELECT plan(108);

CREATE FUNCTION pg_temp.m(ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code LIKE 'tap43%' AND m.external_ref = ref $$;
CREATE FUNCTION pg_temp.rc(r loyalty.receipt) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s/%s/%s', r.points, r.available, r.pending, r.tier, r.replayed) $$;
-- stamps in hand / needed / completed / reward_pending / total
CREATE FUNCTION pg_temp.card(mid bigint, c text) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s/%s/%s', stamps, needed, completed, reward_pending, total_stamps)
      FROM loyalty.stamp_cards(mid) WHERE card = c $$;
CREATE FUNCTION pg_temp.stock(c text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(r.stock::text, 'unlimited') FROM loyalty.reward r JOIN loyalty.program p ON p.id = r.program_id
     WHERE p.code = 'tap43' AND r.code = c $$;

SELECT loyalty.create_program('tap43', 'Stamps', '{"timezone": "Europe/Berlin"}');
SELECT loyalty.add_tier('tap43', 'base', 'Base', 0);
SELECT loyalty.add_reward('tap43', 'free-latte', 'Free latte', 100, stock => 2, voucher_valid_days => 30);

SELECT ok(loyalty.add_stamp_card('tap43', 'coffee', 3, '{"attrs": {"category": "coffee"}}', '{"points": 50}', 'Coffee card') > 0,
          'add_stamp_card: a coffee card, 3 stamps, 50 points');
SELECT ok(loyalty.add_stamp_card('tap43', 'cups', 4, '{"per": "qty", "line": {"category": "coffee"}}',
                                 '{"reward": "free-latte"}') > 0,
          'add_stamp_card: one stamp per coffee cup, 4 for a free latte');
SELECT ok(loyalty.add_stamp_card('tap43', 'pastry', 2, '{"per": "line", "line": {"category": "pastry"}, "min_amount": 5}',
                                 '{"points": 10}') > 0,
          'add_stamp_card: one stamp per pastry line on purchases of 5 or more');
SELECT is((SELECT match FROM loyalty.stamp_card WHERE code = 'cups'),
          '{"per": "qty", "line": {"category": "coffee"}, "min_amount": 0}'::jsonb, 'the stored match is normalised');

SELECT loyalty.enroll('tap43', 'ann', '2026-03-01');
SELECT loyalty.enroll('tap43', 'bob', '2026-03-01');
SELECT loyalty.enroll('tap43', 'dan', '2026-03-01');

-- ---- a card fills at exactly N, pays once, in points ----
SELECT is(pg_temp.card(pg_temp.m('ann'), 'coffee'), '0/3/0/0/0', 'a new member shows every active card, empty');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('ann'), 4, 'a1', '2026-03-02 09:00+01', '{"category": "coffee"}')),
          '4/4/0/base/f', 'a1: first coffee');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('ann'), 4, 'a2', '2026-03-02 10:00+01', '{"category": "coffee"}')),
          '4/8/0/base/f', 'a2: second coffee, no reward yet');
SELECT is(pg_temp.card(pg_temp.m('ann'), 'coffee'), '2/3/0/0/2', 'two stamps of three');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('ann'), 4, 'a3', '2026-03-02 11:00+01', '{"category": "coffee"}')),
          '4/62/0/base/f', 'a3: the third stamp fills the card: 4 + 50 points in the receipt');
SELECT is(pg_temp.card(pg_temp.m('ann'), 'coffee'), '0/3/1/0/3', 'a new card starts empty, one completed');
SELECT results_eq($$SELECT kind::text, points, reason, ref_entry_id = (SELECT id FROM loyalty.entry WHERE idempotency_key = 'a3')
                      FROM loyalty.entry WHERE member_id = pg_temp.m('ann') AND idempotency_key = 'a3/stamp-card/coffee'$$,
                  $$VALUES ('award', 50::bigint, 'stamp card coffee', true)$$,
                  'the reward is an award entry keyed from the purchase key, pointing at the purchase');
SELECT is((SELECT count(*) FROM loyalty.entry WHERE member_id = pg_temp.m('ann') AND kind = 'award'), 1::bigint,
          'exactly one award so far');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('ann'), 4, 'a3', '2026-03-02 11:00+01', '{"category": "coffee"}')),
          '4/62/0/base/t', 'a3 again is a replay with the same receipt, the card''s points included');
SELECT is((SELECT count(*) FROM loyalty.entry WHERE member_id = pg_temp.m('ann') AND kind = 'award'), 1::bigint,
          'still one award after the replay');

-- ---- per qty, overflow, vouchers, out of stock ----
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('ann'), 10, 'a4', '2026-03-03 09:00+01',
                                  '{"lines": [{"sku": "c1", "category": "coffee", "qty": 3, "amount": 3}, {"sku": "t1", "category": "tea", "qty": 5, "amount": 7}]}')),
          '10/72/0/base/f', 'a4: three coffees and five teas');
SELECT is(pg_temp.card(pg_temp.m('ann'), 'cups'), '3/4/0/0/3', 'only the coffee line counts: 3 stamps');
SELECT is(pg_temp.card(pg_temp.m('ann'), 'coffee'), '0/3/1/0/3', 'attrs without category coffee: no coffee stamp');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('ann'), 10, 'a5', '2026-03-03 10:00+01',
                                  '{"lines": [{"category": "coffee", "qty": 6, "amount": 10}]}')),
          '10/82/0/base/f', 'a5: six more cups');
SELECT is(pg_temp.card(pg_temp.m('ann'), 'cups'), '1/4/2/0/9', '9 stamps: two cards filled, one stamp carried over');
SELECT is((SELECT count(*) FROM loyalty.voucher v JOIN loyalty.entry e ON e.member_id = v.member_id AND e.id = v.redeem_entry_id
            WHERE v.member_id = pg_temp.m('ann') AND e.idempotency_key = 'a5/stamp-card/cups' AND e.points = 0
              AND v.issued_at = '2026-03-03 10:00+01' AND v.expires_at = '2026-04-02 10:00+02'),
          2::bigint, 'two free vouchers against one 0-point award entry, valid 30 local days (across DST)');
SELECT is(pg_temp.stock('free-latte'), '0', 'the vouchers took the stock');
SELECT is((SELECT status FROM loyalty.check_voucher((SELECT min(code) FROM loyalty.voucher WHERE member_id = pg_temp.m('ann')),
                                                   '2026-03-04')),
          'valid', 'a stamp card voucher is a genuine, valid voucher');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('ann'), 10, 'a6', '2026-03-04 09:00+01',
                                  '{"lines": [{"category": "coffee", "qty": 3, "amount": 10}]}')),
          '10/92/0/base/f', 'a6: the card fills again, but the reward is out of stock');
SELECT is(pg_temp.card(pg_temp.m('ann'), 'cups'), '0/4/2/1/12', 'a full card waits for its reward: pending 1, nothing lost');
UPDATE loyalty.reward SET stock = 1 WHERE code = 'free-latte';
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('ann'), 10, 'a7', '2026-03-04 10:00+01', '{"lines": [{"category": "coffee", "amount": 10}]}')),
          '10/102/0/base/f', 'a7: one cup (no qty counts 1); back in stock');
SELECT is(pg_temp.card(pg_temp.m('ann'), 'cups'), '1/4/3/0/13', 'the waiting card is paid on the next stamp');
SELECT is((SELECT count(*) FROM loyalty.voucher WHERE member_id = pg_temp.m('ann')), 3::bigint, 'three vouchers in all');
SELECT is((SELECT format('%s/%s', r.points, r.replayed) FROM loyalty.earn(pg_temp.m('ann'), 10, 'a5', '2026-03-03 10:00+01',
                                  '{"lines": [{"category": "coffee", "qty": 6, "amount": 10}]}') r),
          '10/t', 'a5 again is a replay');
SELECT is((SELECT count(*) FROM loyalty.voucher WHERE member_id = pg_temp.m('ann')), 3::bigint,
          'and issues no voucher again');
SELECT is(pg_temp.rc(loyalty.cancel_voucher((SELECT min(code) FROM loyalty.voucher WHERE member_id = pg_temp.m('ann')),
                                            'cancel-1', '2026-03-05')),
          '0/102/0/base/f', 'cancelling a free voucher gives back no points');
SELECT is(pg_temp.stock('free-latte'), '1', 'but gives back the stock');

-- ---- a refund across a completed card leaves a debt; never paid twice ----
SELECT is(pg_temp.rc(loyalty.reverse(pg_temp.m('ann'), 'a3', NULL, 'r3', '2026-03-05 12:00+01')),
          '-4/98/0/base/f', 'refund a3 (it filled the first coffee card)');
SELECT is(pg_temp.card(pg_temp.m('ann'), 'coffee'), '-1/3/1/0/2', 'its stamp is taken back: the card in hand owes one');
SELECT is((SELECT points FROM loyalty.entry WHERE idempotency_key = 'a3/stamp-card/coffee'), 50::bigint,
          'the reward paid stays paid');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('ann'), 4, 'a8', '2026-03-06 09:00+01', '{"category": "coffee"}')), '4/102/0/base/f', 'a8');
SELECT is(pg_temp.card(pg_temp.m('ann'), 'coffee'), '0/3/1/0/3', 'a8 pays off the debt');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('ann'), 4, 'a9', '2026-03-06 10:00+01', '{"category": "coffee"}')), '4/106/0/base/f', 'a9');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('ann'), 4, 'a10', '2026-03-06 11:00+01', '{"category": "coffee"}')), '4/110/0/base/f', 'a10: no reward yet');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('ann'), 4, 'a11', '2026-03-06 12:00+01', '{"category": "coffee"}')),
          '4/164/0/base/f', 'a11: six purchases kept, two cards paid');
SELECT is(pg_temp.card(pg_temp.m('ann'), 'coffee'), '0/3/2/0/6', 'two completed, six stamps');
SELECT is((SELECT array_agg(idempotency_key ORDER BY id) FROM loyalty.entry WHERE member_id = pg_temp.m('ann') AND kind = 'award'
             AND reason = 'stamp card coffee'),
          ARRAY['a3/stamp-card/coffee', 'a11/stamp-card/coffee'], 'the coffee card paid exactly twice');

-- ---- per line, min_amount, partial refunds ----
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('bob'), 20, 'b1', '2026-03-02 09:00+01',
          '{"lines": [{"category": "pastry", "amount": 5}, {"category": "pastry", "amount": 5}, {"category": "pastry", "amount": 5}, {"category": "coffee", "qty": 2, "amount": 5}]}')),
          '20/30/0/base/f', 'b1: three pastry lines fill one card (10 points), one stamp over');
SELECT is(pg_temp.card(pg_temp.m('bob'), 'pastry'), '1/2/1/0/3', 'pastry card after b1');
SELECT is(pg_temp.card(pg_temp.m('bob'), 'cups'), '2/4/0/0/2', 'cups card after b1');
SELECT is(pg_temp.rc(loyalty.reverse(pg_temp.m('bob'), 'b1', 10, 'rb1', '2026-03-03')), '-10/20/0/base/f', 'refund half of b1');
SELECT is(pg_temp.card(pg_temp.m('bob'), 'pastry'), '0/2/1/0/2', 'half the money: floor(3 * 10/20) = 1 stamp back');
SELECT is(pg_temp.card(pg_temp.m('bob'), 'cups'), '1/4/0/0/1', 'floor(2 * 10/20) = 1 cup back');
SELECT is(pg_temp.rc(loyalty.reverse(pg_temp.m('bob'), 'b1', 6, 'rb2', '2026-03-03')), '-6/14/0/base/f', 'refund 6 more');
SELECT is(pg_temp.card(pg_temp.m('bob'), 'pastry'), '-2/2/1/0/0', '4 kept is below min_amount 5: every pastry stamp back');
SELECT is(pg_temp.card(pg_temp.m('bob'), 'cups'), '1/4/0/0/1', 'floor(2 * 16/20) = 1: no more cups back yet');
SELECT is(pg_temp.rc(loyalty.reverse(pg_temp.m('bob'), 'b1', NULL, 'rb3', '2026-03-03')), '-4/10/0/base/f', 'refund the rest');
SELECT is(pg_temp.card(pg_temp.m('bob'), 'cups'), '0/4/0/0/0', 'a full refund takes back every stamp');
SELECT results_eq($$SELECT c.code, sum(s.stamps)::int FROM loyalty.stamp s JOIN loyalty.stamp_card c ON c.id = s.card_id
                     WHERE s.member_id = pg_temp.m('bob') AND s.purchase_entry_id = (SELECT id FROM loyalty.entry WHERE idempotency_key = 'b1')
                     GROUP BY c.code ORDER BY c.code$$,
                  $$VALUES ('cups', 0), ('pastry', 0)$$, 'the stamp log of b1 nets to zero: never more taken than given');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('bob'), 4.99, 'b2', '2026-03-04', '{"lines": [{"category": "pastry", "amount": 4.99}]}')),
          '4/14/0/base/f', 'b2: a pastry under min_amount');
SELECT is(pg_temp.card(pg_temp.m('bob'), 'pastry'), '-2/2/1/0/0', 'no stamp below min_amount');

-- ---- hostile lines: the basket check (rules.c, LY102) refuses them before any stamp ----
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('dan'), 10, 'd1', '2026-03-02',
          '{"lines": [{"category": "coffee", "qty": 2, "amount": 10}]}')),
          '10/10/0/base/f', 'd1: two cups');
SELECT is(pg_temp.card(pg_temp.m('dan'), 'cups'), '2/4/0/0/2', 'two stamps');
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('dan'), 10, 'd2a', '2026-03-02', '{"lines": [{"category": "coffee", "qty": -1, "amount": 10}]}')$$,
                 'LY102', NULL, 'a negative qty is refused');
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('dan'), 10, 'd2b', '2026-03-02', '{"lines": [{"category": "coffee", "qty": 2.7, "amount": 10}]}')$$,
                 'LY102', NULL, 'a fractional qty is refused');
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('dan'), 10, 'd2c', '2026-03-02', '{"lines": ["coffee", 7]}')$$,
                 'LY102', NULL, 'lines that are not objects are refused');
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('dan'), 10, 'd2d', '2026-03-02', '{"lines": "junk"}')$$,
                 'LY102', NULL, 'lines that are not an array are refused');
SELECT is(pg_temp.card(pg_temp.m('dan'), 'cups'), '2/4/0/0/2', 'refused purchases stamp nothing');
UPDATE loyalty.reward SET stock = 0 WHERE code = 'free-latte';
SELECT lives_ok($$SELECT loyalty.earn(pg_temp.m('dan'), 10, 'd3', '2026-03-02', '{"lines": [{"category": "coffee", "qty": 1000000, "amount": 10}]}')$$,
                'd3: a million cups');
SELECT is(pg_temp.card(pg_temp.m('dan'), 'cups'), '2/4/0/250/1002', 'capped at 1000 stamps per purchase and card');

-- ---- an application role that cannot see keys, vouchers or rewards still fills a voucher card ----
UPDATE loyalty.reward SET stock = 1 WHERE code = 'free-latte';
SELECT loyalty.enroll('tap43', 'eve', '2026-03-01');
SELECT pg_temp.m('eve') AS mid_eve \gset
CREATE ROLE tap43_app NOLOGIN IN ROLE loyalty_app;   -- EXECUTE on the member operations (security issue)
GRANT USAGE ON SCHEMA loyalty TO tap43_app;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA loyalty TO tap43_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA loyalty TO tap43_app;
REVOKE ALL ON loyalty.voucher_key, loyalty.voucher, loyalty.reward FROM tap43_app;
REVOKE ALL ON SEQUENCE loyalty.voucher_id_seq FROM tap43_app;
SET LOCAL ROLE tap43_app;
SELECT throws_ok('SELECT * FROM loyalty.voucher', '42501', NULL, 'app role: SELECT on voucher -> 42501');
SELECT lives_ok(format($$SELECT loyalty.earn(%s, 10, 'e1', '2026-03-02', '{"lines": [{"category": "coffee", "qty": 4, "amount": 10}]}')$$, :mid_eve),
                'app role: a purchase that fills a voucher card');
SELECT is(current_user::text, 'tap43_app', 'the caller is still the app role afterwards');
RESET ROLE;
SELECT is((SELECT count(*) FROM loyalty.voucher WHERE member_id = pg_temp.m('eve')), 1::bigint, 'its voucher was issued');
SELECT is(pg_temp.card(pg_temp.m('eve'), 'cups'), '0/4/1/0/4', 'and its card completed');

-- ---- the definition cache follows new and deactivated cards ----
SELECT loyalty.create_program('tap43b', 'No cards yet', '{}');
SELECT loyalty.add_tier('tap43b', 'base', 'Base', 0);
SELECT loyalty.enroll('tap43b', 'cat', '2026-03-01');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('cat'), 10, 'c1', '2026-03-02')), '10/10/0/base/f', 'c1: no card');
SELECT loyalty.add_stamp_card('tap43b', 'every', 1, '{}', '{"points": 5}');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('cat'), 10, 'c2', '2026-03-02')), '10/25/0/base/f',
          'c2: a card added since is used at once (one stamp fills it)');
SELECT is(pg_temp.rc(loyalty.award(pg_temp.m('cat'), 1, 'squatter', 'c9/stamp-card/every', '2026-03-02')), '1/26/0/base/f',
          'the application happens to use the key a reward of purchase c9 would take');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('cat'), 10, 'c9', '2026-03-02')), '10/41/0/base/f', 'c9 still earns and fills the card');
SELECT is((SELECT idempotency_key FROM loyalty.entry WHERE member_id = pg_temp.m('cat') AND reason = 'stamp card every' ORDER BY id DESC LIMIT 1),
          'c9/stamp-card/every#2', 'its reward took the next free key');
UPDATE loyalty.stamp_card SET active = false WHERE code = 'every';
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('cat'), 10, 'c3', '2026-03-02')), '10/51/0/base/f', 'c3: a deactivated card stamps nothing');

-- ---- hostile definitions: each its SQLSTATE, nothing written ----
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', 0, '{}', '{"points": 1}')$$, 'LY121', NULL, 'zero stamps -> LY121');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', -3, '{}', '{"points": 1}')$$, 'LY121', NULL, 'negative stamps -> LY121');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', 10001, '{}', '{"points": 1}')$$, 'LY121', NULL, 'too many stamps -> LY121');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', 3, '{"per": "visit"}', '{"points": 1}')$$, 'LY120', NULL, 'unknown per -> LY120');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', 3, '{"colour": "red"}', '{"points": 1}')$$, 'LY120', NULL, 'unknown match key -> LY120');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', 3, '{"attrs": 5}', '{"points": 1}')$$, 'LY120', NULL, 'attrs not an object -> LY120');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', 3, '{"min_amount": -1}', '{"points": 1}')$$, 'LY120', NULL, 'negative min_amount -> LY120');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', 3, '[1, 2]', '{"points": 1}')$$, 'LY035', NULL, 'match not an object -> LY035');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', 3, '{bad json', '{"points": 1}')$$, '22P02', NULL, 'bad JSON -> 22P02');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', 3, '{}', '{"reward": "nope"}')$$, 'LY007', NULL, 'unknown reward -> LY007');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', 3, '{}', '{}')$$, 'LY122', NULL, 'no reward -> LY122');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', 3, '{}', '{"points": 5, "reward": "free-latte"}')$$, 'LY122', NULL, 'two rewards -> LY122');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', 3, '{}', '{"points": 0}')$$, 'LY122', NULL, 'zero points -> LY122');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', 3, '{}', '{"points": 1.5}')$$, 'LY122', NULL, 'fractional points -> LY122');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', 3, '{}', '{"points": "5"}')$$, 'LY122', NULL, 'points as a string -> LY122');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', 3, '{}', '{"badge": "b"}')$$, 'LY122', NULL, 'a badge is not a card reward -> LY122');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', 3, '{}', 'null')$$, 'LY035', NULL, 'reward JSON null -> LY035');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', 3, '{}', NULL)$$, 'LY034', NULL, 'reward NULL -> LY034');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('nope', 'x', 3, '{}', '{"points": 1}')$$, 'LY001', NULL, 'unknown program -> LY001');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', '', 3, '{}', '{"points": 1}')$$, 'LY037', NULL, 'empty code -> LY037');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'coffee', 3, '{}', '{"points": 1}')$$, 'LY041', NULL, 'duplicate code -> LY041');
SELECT throws_ok($$SELECT loyalty.stamp_cards(-1)$$, 'LY002', NULL, 'stamp_cards of an unknown member -> LY002');
SELECT is((SELECT count(*) FROM loyalty.stamp_card), 4::bigint, 'no hostile definition wrote anything');

UPDATE loyalty.member_stamp_card SET completed = completed + 1 WHERE member_id = pg_temp.m('bob') AND card_id = (SELECT id FROM loyalty.stamp_card WHERE code = 'pastry');
SELECT results_eq($$SELECT invariant FROM loyalty.check_engagement() ORDER BY 1$$, $$VALUES ('stamp_card_log'), ('stamp_card_paid')$$,
                  'check_engagement sees a completion without its log row and its reward');
UPDATE loyalty.member_stamp_card SET completed = completed - 1 WHERE member_id = pg_temp.m('bob') AND card_id = (SELECT id FROM loyalty.stamp_card WHERE code = 'pastry');
SELECT is_empty('SELECT * FROM loyalty.check_engagement()', 'engagement invariants hold');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', repeat('x', 100000), 3, '{}', '{"points": 1}')$$, 'LY037', NULL, 'a 100 000-byte code -> LY037');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', 3, '{}', '{"points": 1}', repeat('n', 513))$$, 'LY037', NULL, 'a 513-byte name -> LY037');
SELECT throws_ok($$SELECT loyalty.add_stamp_card(NULL, 'x', 3, '{}', '{"points": 1}')$$, 'LY034', NULL, 'program NULL -> LY034');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', NULL, '{}', '{"points": 1}')$$, 'LY034', NULL, 'stamps_needed NULL -> LY034');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', 3, NULL, '{"points": 1}')$$, 'LY034', NULL, 'match NULL -> LY034');
SELECT throws_ok($$SELECT loyalty.add_stamp_card('tap43', 'x', 3, '{}', '{"points": 1e400}')$$, 'LY122', NULL, 'points 1e400 -> LY122');
SELECT throws_ok($$SELECT * FROM loyalty.stamp_cards(NULL)$$, 'LY034', NULL, 'stamp_cards(NULL) -> LY034');
SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
