-- 04: award, redeem (soonest-expiring first), adjust under each
-- negative_balance policy, transfer (lots keep their expiry), replays.
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(75);

CREATE FUNCTION pg_temp.m(ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code LIKE 'tap04%' AND m.external_ref = ref $$;
CREATE FUNCTION pg_temp.rc(r loyalty.receipt) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s/%s/%s', r.points, r.available, r.pending, r.tier, r.replayed) $$;
CREATE FUNCTION pg_temp.bal(mid bigint, t timestamptz) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s/%s/%s/%s', available, pending, lifetime_earned, redeemed, expired, tier)
      FROM loyalty.balance(mid, t) $$;
CREATE FUNCTION pg_temp.nentries(mid bigint) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM loyalty.entry WHERE member_id = mid $$;
-- SQLSTATE raised by a statement, NULL if none
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;

-- true when the statement detail of the entry with key k lists every lot it
-- drew from (lot id and points), under "lots" or "drawn"
CREATE FUNCTION pg_temp.detail_lists_draws(mid bigint, k text) RETURNS boolean LANGUAGE sql AS $$
    SELECT count(*) > 0 AND bool_and(EXISTS (
               SELECT FROM loyalty.statement(mid) s,
                      jsonb_array_elements(coalesce(s.detail->'drawn', s.detail->'lots')) x
                WHERE s.entry_id = d.entry_id
                  AND (x->>'lot')::bigint = d.lot_id AND (x->>'points')::bigint = d.points))
      FROM loyalty.lot_draw d JOIN loyalty.entry e ON e.member_id = d.member_id AND e.id = d.entry_id
     WHERE e.member_id = mid AND e.idempotency_key = k $$;

-- ---------------------------------------------------------------------------
-- Award and redeem: pending 30 days, rolling 12-month expiry, UTC.
-- ---------------------------------------------------------------------------
DO $$BEGIN
    PERFORM loyalty.create_program('tap04_main', 'Main',
            '{"pending_days": 30, "expiry": {"policy": "rolling", "months": 12}}');
    PERFORM loyalty.add_tier('tap04_main', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tap04_main', 'a', '2026-01-01 00:00:00+00');
END$$;

-- Earn lot E: 100 pending until 2026-02-09, expires 2027-02-09 (created first).
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('a'), 100, 'e1', '2026-01-10 00:00:00+00')),
          '100/0/100/base/f', 'earn 100: pending');
-- Award lot W: 100 available at once, expires 2027-01-15 (created later, expires sooner).
SELECT is(pg_temp.rc(loyalty.award(pg_temp.m('a'), 100, 'welcome', 'aw1', '2026-01-15 00:00:00+00')),
          '100/100/100/base/f', 'award 100: available immediately');
-- Redeem 150 on 2026-02-10 (E is available since 02-09): W first (100), then E (50).
SELECT is(pg_temp.rc(loyalty.redeem(pg_temp.m('a'), 150, 'r1', '2026-02-10 00:00:00+00')),
          '-150/50/0/base/f', 'redeem 150 of 200');
SELECT is((SELECT string_agg(d.points::text || '@' || to_char(l.expires_at, 'YYYY-MM-DD'), ',' ORDER BY l.expires_at)
             FROM loyalty.lot_draw d
             JOIN loyalty.lot l ON l.member_id = d.member_id AND l.id = d.lot_id
             JOIN loyalty.entry e ON e.member_id = d.member_id AND e.id = d.entry_id
            WHERE e.member_id = pg_temp.m('a') AND e.idempotency_key = 'r1'),
          '100@2027-01-15,50@2027-02-09', 'redeem drew the soonest-expiring lot first');
SELECT ok(pg_temp.detail_lists_draws(pg_temp.m('a'), 'r1'),
          'statement detail of the redeem lists the lots');
-- At 2027-01-15 W expires with 0 left: nothing expires. (Oldest-first would expire 50.)
SELECT is(pg_temp.bal(pg_temp.m('a'), '2027-01-15 00:00:00+00'), '50/0/200/150/0/base',
          'the spent award lot expires nothing');
-- At 2027-02-09 the 50 left of E expire: 200 - 150 - 50 = 0
SELECT is(pg_temp.bal(pg_temp.m('a'), '2027-02-09 00:00:00+00'), '0/0/200/150/50/base',
          'the rest of the earn lot expires on its date');

-- Insufficient points: LY010, nothing written.
SELECT throws_ok($$SELECT loyalty.redeem(pg_temp.m('a'), 51, 'r2', '2026-03-01 00:00:00+00')$$,
                 'LY010', NULL, 'redeem 51 of 50 -> LY010');
SELECT is(pg_temp.nentries(pg_temp.m('a')), 3::bigint, 'failed redeem wrote no entry');
SELECT is(pg_temp.bal(pg_temp.m('a'), '2026-03-01 00:00:00+00'), '50/0/200/150/0/base',
          'failed redeem left the balance unchanged');
SELECT throws_ok($$SELECT loyalty.redeem(pg_temp.m('a'), 0, 'r2', '2026-03-01 00:00:00+00')$$,
                 'LY032', NULL, 'redeem 0 -> LY032');
SELECT throws_ok($$SELECT loyalty.redeem(pg_temp.m('a'), -5, 'r2', '2026-03-01 00:00:00+00')$$,
                 'LY032', NULL, 'redeem negative -> LY032');
SELECT throws_ok($$SELECT loyalty.redeem(pg_temp.m('a'), NULL, 'r2', '2026-03-01 00:00:00+00')$$,
                 'LY034', NULL, 'redeem NULL points -> LY034');
SELECT throws_ok($$SELECT loyalty.redeem(pg_temp.m('a'), 5, NULL, '2026-03-01 00:00:00+00')$$,
                 'LY021', NULL, 'redeem without key -> LY021');
SELECT throws_ok($$SELECT loyalty.redeem(-1, 5, 'r2', '2026-03-01 00:00:00+00')$$,
                 'LY002', NULL, 'redeem for unknown member -> LY002');
SELECT throws_ok($$SELECT loyalty.redeem(pg_temp.m('a'), 5, 'r2', 'infinity')$$,
                 'LY033', NULL, 'redeem at infinity -> LY033');

-- Replays: original receipt even though 150 > 50 available now.
SELECT is(pg_temp.rc(loyalty.redeem(pg_temp.m('a'), 150, 'r1', '2026-03-01 00:00:00+00')),
          '-150/50/0/base/t', 'redeem replay returns the original receipt');
SELECT throws_ok($$SELECT loyalty.redeem(pg_temp.m('a'), 149, 'r1', '2026-03-01 00:00:00+00')$$,
                 'LY020', NULL, 'redeem key reused with other points -> LY020');
SELECT throws_ok($$SELECT loyalty.redeem(pg_temp.m('a'), 150, 'r1', '2026-03-01 00:00:00+00', 'gift')$$,
                 'LY020', NULL, 'redeem key reused with another reason -> LY020');
SELECT is(pg_temp.rc(loyalty.award(pg_temp.m('a'), 100, 'welcome', 'aw1', '2026-03-01 00:00:00+00')),
          '100/100/100/base/t', 'award replay returns the original receipt');
SELECT throws_ok($$SELECT loyalty.award(pg_temp.m('a'), 100, 'other reason', 'aw1', '2026-03-01 00:00:00+00')$$,
                 'LY020', NULL, 'award key reused with another reason -> LY020');
SELECT is(pg_temp.nentries(pg_temp.m('a')), 3::bigint, 'replays wrote nothing');

-- Award errors.
SELECT throws_ok($$SELECT loyalty.award(pg_temp.m('a'), 0, 'x', 'aw2', '2026-03-01 00:00:00+00')$$,
                 'LY032', NULL, 'award 0 -> LY032');
SELECT throws_ok($$SELECT loyalty.award(pg_temp.m('a'), -10, 'x', 'aw2', '2026-03-01 00:00:00+00')$$,
                 'LY032', NULL, 'award negative -> LY032');
SELECT throws_ok($$SELECT loyalty.award(pg_temp.m('a'), 10, '', 'aw2', '2026-03-01 00:00:00+00')$$,
                 'LY036', NULL, 'award with empty reason -> LY036');
SELECT throws_ok($$SELECT loyalty.award(pg_temp.m('a'), 10, NULL, 'aw2', '2026-03-01 00:00:00+00')$$,
                 'LY034', NULL, 'award with NULL reason -> LY034');
SELECT throws_ok($$SELECT loyalty.award(pg_temp.m('a'), NULL, 'x', 'aw2', '2026-03-01 00:00:00+00')$$,
                 'LY034', NULL, 'award NULL points -> LY034');
SELECT throws_ok($$SELECT loyalty.award(pg_temp.m('a'), 10, 'x', '', '2026-03-01 00:00:00+00')$$,
                 'LY021', NULL, 'award with empty key -> LY021');
-- A failed call leaves its key unused: 'r2' (LY010 above) can still be used.
SELECT is(pg_temp.rc(loyalty.redeem(pg_temp.m('a'), 50, 'r2', '2026-03-01 00:00:00+00')),
          '-50/0/0/base/f', 'the key of a failed call is free for a new call');

-- Award does not count for tiers.
DO $$BEGIN
    PERFORM loyalty.create_program('tap04_q', 'Qualifying', '{"tier_window": "lifetime"}');
    PERFORM loyalty.add_tier('tap04_q', 'base', 'Base', 0);
    PERFORM loyalty.add_tier('tap04_q', 'silver', 'Silver', 100);
    PERFORM loyalty.enroll('tap04_q', 'q', '2026-01-01 00:00:00+00');
END$$;
SELECT is(pg_temp.rc(loyalty.award(pg_temp.m('q'), 500, 'goodwill', 'k1', '2026-01-10 00:00:00+00')),
          '500/500/0/base/f', 'award 500 does not promote');
SELECT is((SELECT qualifying FROM loyalty.balance(pg_temp.m('q'), '2026-01-11 00:00:00+00')),
          0::numeric, 'award is not qualifying');

-- ---------------------------------------------------------------------------
-- Adjust under each negative_balance policy
-- ---------------------------------------------------------------------------
DO $$BEGIN
    PERFORM loyalty.create_program('tap04_' || p, p, jsonb_build_object('negative_balance', p))
       FROM unnest(ARRAY['allow', 'deny', 'clamp']) p;
    PERFORM loyalty.add_tier('tap04_' || p, 'base', 'Base', 0) FROM unnest(ARRAY['allow', 'deny', 'clamp']) p;
    PERFORM loyalty.enroll('tap04_' || p, 'adj_' || p, '2026-01-01 00:00:00+00')
       FROM unnest(ARRAY['allow', 'deny', 'clamp']) p;
    PERFORM loyalty.award(pg_temp.m('adj_' || p), 100, 'start', 'start', '2026-01-10 00:00:00+00')
       FROM unnest(ARRAY['allow', 'deny', 'clamp']) p;
END$$;

-- allow member: 100 + 20 = 120
SELECT is(pg_temp.rc(loyalty.adjust(pg_temp.m('adj_allow'), 20, 'missing stamp', 'ad1', '2026-01-11 00:00:00+00')),
          '20/120/0/base/f', 'positive adjust: available at once');
-- 120 - 30 = 90
SELECT is(pg_temp.rc(loyalty.adjust(pg_temp.m('adj_allow'), -30, 'double credit', 'ad2', '2026-01-12 00:00:00+00')),
          '-30/90/0/base/f', 'negative adjust within the balance');
SELECT throws_ok($$SELECT loyalty.adjust(pg_temp.m('adj_allow'), 0, 'x', 'ad3', '2026-01-13 00:00:00+00')$$,
                 'LY032', NULL, 'adjust 0 -> LY032');
SELECT throws_ok($$SELECT loyalty.adjust(pg_temp.m('adj_allow'), 5, '', 'ad3', '2026-01-13 00:00:00+00')$$,
                 'LY036', NULL, 'adjust with empty reason -> LY036');
SELECT ok(pg_temp.err($$SELECT loyalty.adjust(pg_temp.m('adj_allow'), 5, NULL, 'ad3', '2026-01-13 00:00:00+00')$$)
          IN ('LY034', 'LY036'), 'adjust with NULL reason -> LY034/LY036');
SELECT throws_ok($$SELECT loyalty.adjust(pg_temp.m('adj_allow'), 5, 'x', NULL, '2026-01-13 00:00:00+00')$$,
                 'LY021', NULL, 'adjust without key -> LY021');
-- allow: 90 - 150 = -60
SELECT is(pg_temp.rc(loyalty.adjust(pg_temp.m('adj_allow'), -150, 'fraud', 'ad3', '2026-01-13 00:00:00+00')),
          '-150/-60/0/base/f', 'allow: negative adjust beyond the balance goes negative');
-- lifetime 100 + 20 = 120, redeemed 30 + 150 = 180; 120 - 180 - 0 = -60
SELECT is(pg_temp.bal(pg_temp.m('adj_allow'), '2026-01-14 00:00:00+00'), '-60/0/120/180/0/base',
          'allow: balance columns after going negative');
SELECT is(pg_temp.rc(loyalty.adjust(pg_temp.m('adj_allow'), 20, 'missing stamp', 'ad1', '2026-02-01 00:00:00+00')),
          '20/120/0/base/t', 'adjust replay returns the original receipt');
SELECT throws_ok($$SELECT loyalty.adjust(pg_temp.m('adj_allow'), 20, 'another reason', 'ad1', '2026-01-11 00:00:00+00')$$,
                 'LY020', NULL, 'adjust key reused with another reason -> LY020');

-- deny: beyond available -> LY011, nothing written.
SELECT throws_ok($$SELECT loyalty.adjust(pg_temp.m('adj_deny'), -150, 'fraud', 'ad1', '2026-01-13 00:00:00+00')$$,
                 'LY011', NULL, 'deny: negative adjust beyond the balance -> LY011');
SELECT is(pg_temp.nentries(pg_temp.m('adj_deny')), 1::bigint, 'deny: nothing written');
SELECT is(pg_temp.bal(pg_temp.m('adj_deny'), '2026-01-14 00:00:00+00'), '100/0/100/0/0/base',
          'deny: balance unchanged');
SELECT is(pg_temp.rc(loyalty.adjust(pg_temp.m('adj_deny'), -100, 'fraud', 'ad2', '2026-01-13 00:00:00+00')),
          '-100/0/0/base/f', 'deny: adjust down to exactly 0 is fine');

-- clamp: takes only what is there.
SELECT is(pg_temp.rc(loyalty.adjust(pg_temp.m('adj_clamp'), -150, 'fraud', 'ad1', '2026-01-13 00:00:00+00')),
          '-100/0/0/base/f', 'clamp: negative adjust takes only the 100 available');
SELECT is(pg_temp.bal(pg_temp.m('adj_clamp'), '2026-01-14 00:00:00+00'), '0/0/100/100/0/base',
          'clamp: balance columns');

-- ---------------------------------------------------------------------------
-- Transfer (rolling 12 months): lots keep their expiry
-- ---------------------------------------------------------------------------
DO $$BEGIN
    PERFORM loyalty.create_program('tap04_tx', 'Transfers', '{"expiry": {"policy": "rolling", "months": 12}}');
    PERFORM loyalty.add_tier('tap04_tx', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tap04_tx', r, '2026-01-01 00:00:00+00') FROM unnest(ARRAY['x', 'y', 'z']) r;
    PERFORM loyalty.create_program('tap04_other', 'Other');
    PERFORM loyalty.add_tier('tap04_other', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tap04_other', 'o', '2026-01-01 00:00:00+00');
END$$;

-- x: lot of 100 expiring 2027-01-10.
SELECT is(pg_temp.rc(loyalty.award(pg_temp.m('x'), 100, 'start', 'x1', '2026-01-10 00:00:00+00')),
          '100/100/0/base/f', 'x: award 100');
-- y: own lot of 100 expiring 2027-02-01.
SELECT is(pg_temp.rc(loyalty.award(pg_temp.m('y'), 100, 'start', 'y1', '2026-02-01 00:00:00+00')),
          '100/100/0/base/f', 'y: award 100');
SELECT is(pg_temp.rc(loyalty.transfer(pg_temp.m('x'), pg_temp.m('z'), 30, 'tz1', '2026-02-15 00:00:00+00')),
          '-30/70/0/base/f', 'transfer 30 x -> z: sender receipt');
SELECT is(pg_temp.rc(loyalty.transfer(pg_temp.m('x'), pg_temp.m('y'), 60, 'tx1', '2026-03-01 00:00:00+00')),
          '-60/10/0/base/f', 'transfer 60 x -> y: sender receipt');
SELECT is((SELECT string_agg(kind || ':' || points, ',' ORDER BY at, entry_id) FROM loyalty.statement(pg_temp.m('x'))),
          'award:100,transfer_out:-30,transfer_out:-60', 'sender statement: transfer_out entries');
SELECT is((SELECT string_agg(kind || ':' || points, ',' ORDER BY at, entry_id) FROM loyalty.statement(pg_temp.m('z'))),
          'transfer_in:30', 'receiver statement: transfer_in entry');
SELECT is((SELECT string_agg(expires_at::text, ',') FROM loyalty.lot WHERE member_id = pg_temp.m('z')),
          '2027-01-10 00:00:00+00', 'receiver lot has the sender''s expiry');
-- z: 30 received, expiring with x's lot at 2027-01-10 (not 2027-02-15).
SELECT is(pg_temp.bal(pg_temp.m('z'), '2027-01-09 23:59:59+00'), '30/0/30/0/0/base',
          'receiver: available one second before the sender''s expiry');
SELECT is(pg_temp.bal(pg_temp.m('z'), '2027-01-10 00:00:00+00'), '0/0/30/0/30/base',
          'receiver: expired at the sender''s expiry');
-- x: 100 - 90 = 10 left, expire 2027-01-10.
SELECT is(pg_temp.bal(pg_temp.m('x'), '2027-01-10 00:00:00+00'), '0/0/100/90/10/base',
          'sender: transfers count as redeemed, the rest expires');

-- Errors, nothing written.
SELECT throws_ok($$SELECT loyalty.transfer(pg_temp.m('x'), pg_temp.m('y'), 11, 'tx2', '2026-03-02 00:00:00+00')$$,
                 'LY010', NULL, 'transfer more than available -> LY010');
SELECT throws_ok($$SELECT loyalty.transfer(pg_temp.m('x'), pg_temp.m('x'), 5, 'tx2', '2026-03-02 00:00:00+00')$$,
                 'LY061', NULL, 'transfer to self -> LY061');
SELECT throws_ok($$SELECT loyalty.transfer(pg_temp.m('x'), pg_temp.m('o'), 5, 'tx2', '2026-03-02 00:00:00+00')$$,
                 'LY061', NULL, 'transfer to another program -> LY061');
SELECT throws_ok($$SELECT loyalty.transfer(pg_temp.m('x'), pg_temp.m('y'), 0, 'tx2', '2026-03-02 00:00:00+00')$$,
                 'LY032', NULL, 'transfer 0 -> LY032');
SELECT throws_ok($$SELECT loyalty.transfer(pg_temp.m('x'), -1, 5, 'tx2', '2026-03-02 00:00:00+00')$$,
                 'LY002', NULL, 'transfer to unknown member -> LY002');
SELECT throws_ok($$SELECT loyalty.transfer(NULL, pg_temp.m('y'), 5, 'tx2', '2026-03-02 00:00:00+00')$$,
                 'LY034', NULL, 'transfer from NULL -> LY034');
SELECT throws_ok($$SELECT loyalty.transfer(pg_temp.m('x'), NULL, 5, 'tx2', '2026-03-02 00:00:00+00')$$,
                 'LY034', NULL, 'transfer to NULL -> LY034');
SELECT throws_ok($$SELECT loyalty.transfer(pg_temp.m('x'), pg_temp.m('y'), 5, '', '2026-03-02 00:00:00+00')$$,
                 'LY021', NULL, 'transfer with empty key -> LY021');
SELECT is(pg_temp.nentries(pg_temp.m('x')) || '/' || pg_temp.nentries(pg_temp.m('y')) || '/' || pg_temp.nentries(pg_temp.m('o')),
          '3/2/0', 'failed transfers wrote nothing');

-- Replays.
SELECT is(pg_temp.rc(loyalty.transfer(pg_temp.m('x'), pg_temp.m('y'), 60, 'tx1', '2026-04-01 00:00:00+00')),
          '-60/10/0/base/t', 'transfer replay returns the original sender receipt');
SELECT throws_ok($$SELECT loyalty.transfer(pg_temp.m('x'), pg_temp.m('z'), 60, 'tx1', '2026-03-01 00:00:00+00')$$,
                 'LY020', NULL, 'transfer key reused for another receiver -> LY020');
SELECT throws_ok($$SELECT loyalty.transfer(pg_temp.m('x'), pg_temp.m('y'), 50, 'tx1', '2026-03-01 00:00:00+00')$$,
                 'LY020', NULL, 'transfer key reused with other points -> LY020');
SELECT is(pg_temp.nentries(pg_temp.m('x')) || '/' || pg_temp.nentries(pg_temp.m('y')),
          '3/2', 'transfer replay wrote nothing');

-- The transfer key belongs to the sender: y may use 'tx1' for its own operation.
-- y: lot of 5 expiring 2027-03-03.
SELECT is(pg_temp.rc(loyalty.award(pg_temp.m('y'), 5, 'bonus', 'tx1', '2026-03-03 00:00:00+00')),
          '5/165/0/base/f', 'the receiver can use the sender''s transfer key');

-- y redeems 70: the received lot (expires 2027-01-10) goes first although y's own
-- award lot (expires 2027-02-01) is older: 60 from it, 10 from y's own.
SELECT is(pg_temp.rc(loyalty.redeem(pg_temp.m('y'), 70, 'yr1', '2026-04-01 00:00:00+00')),
          '-70/95/0/base/f', 'y: redeem 70');
-- lifetime 100 + 60 + 5 = 165; nothing left of the received lot -> nothing expires
SELECT is(pg_temp.bal(pg_temp.m('y'), '2027-01-10 00:00:00+00'), '95/0/165/70/0/base',
          'y: the received lot was spent first, nothing expires with it');
-- 2027-02-01: 90 of y's own lot expire; 165 - 70 - 90 = 5
SELECT is(pg_temp.bal(pg_temp.m('y'), '2027-02-01 00:00:00+00'), '5/0/165/70/90/base',
          'y: then its own lot expires');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
