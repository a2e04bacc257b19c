-- 52: the outbox. Every event kind is written in the transaction of its change (a
-- rolled-back change leaves no event, a replay writes none); expiry reminders are sent
-- once per lot and horizon however often maintenance runs; consumer cursors: the same
-- events until acknowledged, acks never move back, consumers are independent; purge
-- keeps what a consumer has not acknowledged. (Commit order across concurrent writers
-- and NOTIFY: test/specs/outbox_order.spec.)
BEGIN;
SET LOCAL timezone = 'UTC';
SET LOCAL datestyle = 'ISO';
SELECT plan(81);

CREATE FUNCTION pg_temp.m(ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code = 'tap52' AND m.external_ref = ref $$;
-- every event so far, as kind:member, in id order
CREATE FUNCTION pg_temp.ev() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(o.kind || ':' || coalesce(m.external_ref, '-'), ',' ORDER BY o.id), '')
      FROM loyalty.outbox o LEFT JOIN loyalty.member m ON m.id = o.member_id $$;
-- the n-th event (1-based, id order)
CREATE FUNCTION pg_temp.nth(n integer) RETURNS loyalty.outbox LANGUAGE sql AS $$
    SELECT o FROM loyalty.outbox o ORDER BY o.id OFFSET n - 1 LIMIT 1 $$;
-- what next_events hands out, as kind:member
CREATE FUNCTION pg_temp.nx(c text, n integer) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(e.kind || ':' || coalesce(m.external_ref, '-'), ',' ORDER BY ord), '')
      FROM loyalty.next_events(c, n) WITH ORDINALITY AS e(id, program_id, member_id, kind, at, payload, created_at, ord)
      LEFT JOIN loyalty.member m ON m.id = e.member_id $$;
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;
CREATE FUNCTION pg_temp.maint(t timestamptz) RETURNS jsonb LANGUAGE sql AS $$
    SELECT loyalty.run_maintenance(t) $$;

DO $$BEGIN
    PERFORM loyalty.create_program('tap52', 'Outbox', '{"expiry": {"policy": "rolling", "months": 12},
                                   "tier_window": "lifetime", "downgrade": "never"}');
    PERFORM loyalty.add_tier('tap52', 'base', 'Base', 0);
    PERFORM loyalty.add_tier('tap52', 'gold', 'Gold', 100);
    PERFORM loyalty.add_reward('tap52', 'cup', 'Cup', 50);
END$$;
SELECT is(pg_temp.ev(), '', 'a fresh install has no events');

-- ---------------------------------------------------------------------------
-- member_enrolled
-- ---------------------------------------------------------------------------
SELECT ok(loyalty.enroll('tap52', 'm1', '2026-01-01 00:00:00+00') > 0, 'enroll m1');
SELECT is(pg_temp.ev(), 'member_enrolled:m1', 'enroll writes member_enrolled');
SELECT is((pg_temp.nth(1)).payload, '{"external_ref": "m1", "tier": "base"}'::jsonb, 'member_enrolled payload');
SELECT is((pg_temp.nth(1)).at, '2026-01-01 00:00:00+00'::timestamptz, 'event at = business time of the enroll');
SELECT is((pg_temp.nth(1)).program_id, (SELECT id FROM loyalty.program WHERE code = 'tap52'), 'event program_id');
SELECT is((pg_temp.nth(1)).pos, NULL, 'not positioned before a consumer asks');
SELECT is(loyalty.enroll('tap52', 'm1', '2026-01-01 00:00:00+00'), pg_temp.m('m1'), 'enroll again: same member');
SELECT is(pg_temp.ev(), 'member_enrolled:m1', 'an idempotent re-enroll writes no event');
SAVEPOINT s;
DO $$BEGIN PERFORM loyalty.enroll('tap52', 'm2', '2026-01-01 00:00:00+00'); END$$;
ROLLBACK TO SAVEPOINT s;
SELECT is(pg_temp.m('m2'), NULL, 'rolled-back enroll: no member');
SELECT is(pg_temp.ev(), 'member_enrolled:m1', 'rolled-back enroll: no event');

-- ---------------------------------------------------------------------------
-- tier_changed (not for the enrolment itself: that is member_enrolled)
-- ---------------------------------------------------------------------------
SELECT is((loyalty.earn(pg_temp.m('m1'), 150, 'e1', '2026-01-02 00:00:00+00')).tier, 'gold', 'earn 150: gold');
SELECT is(pg_temp.ev(), 'member_enrolled:m1,tier_changed:m1', 'promotion writes tier_changed');
SELECT is((pg_temp.nth(2)).payload - 'reason', '{"from": "base", "to": "gold"}'::jsonb, 'tier_changed payload: from, to');
SELECT ok((pg_temp.nth(2)).payload ? 'reason', 'tier_changed payload: reason');
SELECT is((pg_temp.nth(2)).at, '2026-01-02 00:00:00+00'::timestamptz, 'tier_changed at the earn');
SELECT is((loyalty.earn(pg_temp.m('m1'), 150, 'e1', '2026-01-02 00:00:00+00')).replayed, true, 'earn replay');
SELECT is(pg_temp.ev(), 'member_enrolled:m1,tier_changed:m1', 'a replay writes no event');
SELECT ok(loyalty.enroll('tap52', 'm3', '2026-01-01 00:00:00+00') > 0, 'enroll m3');
SAVEPOINT s;
DO $$BEGIN PERFORM loyalty.earn(pg_temp.m('m3'), 200, 'e1', '2026-01-02 00:00:00+00'); END$$;
SELECT is(pg_temp.ev(), 'member_enrolled:m1,tier_changed:m1,member_enrolled:m3,tier_changed:m3',
          'inside the transaction the promotion of m3 has its event');
ROLLBACK TO SAVEPOINT s;
SELECT is(pg_temp.ev(), 'member_enrolled:m1,tier_changed:m1,member_enrolled:m3', 'rolled-back promotion: no event');

-- ---------------------------------------------------------------------------
-- voucher_issued, voucher_used
-- ---------------------------------------------------------------------------
CREATE TEMP TABLE vc AS SELECT * FROM loyalty.redeem_reward(pg_temp.m('m1'), 'cup', 'v1', '2026-01-03 00:00:00+00');
SELECT is((SELECT available FROM vc), 100::bigint, 'redeem_reward: 150 - 50');
SELECT is(pg_temp.ev(), 'member_enrolled:m1,tier_changed:m1,member_enrolled:m3,voucher_issued:m1', 'voucher_issued');
SELECT is((pg_temp.nth(4)).payload, jsonb_build_object('voucher_id', (SELECT voucher_id FROM vc), 'reward', 'cup', 'points', 50),
          'voucher_issued payload: voucher, reward, points (never the code)');
SELECT is((loyalty.redeem_reward(pg_temp.m('m1'), 'cup', 'v1', '2026-01-03 00:00:00+00')).replayed, true, 'redeem_reward replay');
SELECT is((SELECT count(*) FROM loyalty.outbox), 4::bigint, 'a redeem_reward replay writes no event');
SELECT is((SELECT replayed FROM loyalty.use_voucher((SELECT voucher_code FROM vc), 'u1', '2026-01-04 00:00:00+00')), false, 'use_voucher');
SELECT is((pg_temp.nth(5)).kind, 'voucher_used', 'voucher_used');
SELECT is((pg_temp.nth(5)).payload, jsonb_build_object('voucher_id', (SELECT voucher_id FROM vc), 'reward', 'cup'), 'voucher_used payload');
SELECT is((pg_temp.nth(5)).at, '2026-01-04 00:00:00+00'::timestamptz, 'voucher_used at the use');
SELECT is((SELECT replayed FROM loyalty.use_voucher((SELECT voucher_code FROM vc), 'u1', '2026-01-04 00:00:00+00')), true, 'use_voucher replay');
SELECT is((SELECT count(*) FROM loyalty.outbox), 5::bigint, 'a use_voucher replay writes no event');
SAVEPOINT s;
DO $$BEGIN
    PERFORM loyalty.use_voucher((SELECT voucher_code FROM loyalty.redeem_reward(pg_temp.m('m1'), 'cup', 'v2', '2026-01-05 00:00:00+00')),
                                'u2', '2026-01-05 00:00:00+00');
END$$;
SELECT is((SELECT count(*) FROM loyalty.outbox), 7::bigint, 'inside the transaction: issued and used');
ROLLBACK TO SAVEPOINT s;
SELECT is((SELECT count(*) FROM loyalty.outbox), 5::bigint, 'rolled-back redeem and use: no events');
SELECT is((SELECT count(*) FROM loyalty.voucher), 1::bigint, 'rolled-back redeem: no voucher');

-- ---------------------------------------------------------------------------
-- points_expiring: m1's lot (150 earned 2026-01-02, 100 left) expires 2027-01-02 00:00Z
-- ---------------------------------------------------------------------------
SELECT ok(loyalty.enroll('tap52', 'm5', '2026-01-01 00:00:00+00') > 0, 'enroll m5');
SELECT ok(NOT pg_temp.maint('2026-12-03 00:00:00+00') ? 'reminders', 'no program sets reminders: no reminders key');
SELECT is(pg_temp.err($$SELECT loyalty.set_expiry_reminders('tap52', '{0}')$$), 'LY162', 'horizon 0: LY162');
SELECT is(pg_temp.err($$SELECT loyalty.set_expiry_reminders('tap52', '{7,NULL}')$$), 'LY162', 'a NULL horizon: LY162');
SELECT is(pg_temp.err($$SELECT loyalty.set_expiry_reminders('tap52', '{1,2,3,4,5,6,7,8,9,10,11}')$$), 'LY162', '11 horizons: LY162');
SELECT is(pg_temp.err($$SELECT loyalty.set_expiry_reminders('nope', '{7}')$$), 'LY001', 'unknown program: LY001');
SELECT is(loyalty.set_expiry_reminders('tap52', '{7,30,7}'), '{30,7}'::integer[], 'horizons normalised: distinct, widest first');
SELECT is(pg_temp.maint('2026-12-01 00:00:00+00') -> 'reminders', '0', '32 days before: nothing yet');
SAVEPOINT s;
SELECT is(pg_temp.maint('2026-12-03 00:00:00+00') -> 'reminders', '1', 'inside a transaction that rolls back: 1 reminder');
ROLLBACK TO SAVEPOINT s;
SELECT is((SELECT count(*) FROM loyalty.outbox WHERE kind = 'points_expiring'), 0::bigint, 'rolled-back maintenance: no event');
SELECT is((SELECT count(*) FROM loyalty.expiry_reminder), 0::bigint, 'rolled-back maintenance: no reminder recorded');
SELECT is(pg_temp.maint('2026-12-03 00:00:00+00') -> 'reminders', '1', 'exactly 30 days before: the 30-day reminder');
SELECT is((pg_temp.nth(7)).kind || ':' || (pg_temp.nth(7)).member_id, 'points_expiring:' || pg_temp.m('m1'), 'points_expiring for m1');
SELECT is((pg_temp.nth(7)).payload - 'lot_id',
          '{"points": 100, "expires_at": "2027-01-02T00:00:00+00:00", "last_day": "2027-01-01", "days": 30}'::jsonb,
          'payload: 100 points, expire 2027-01-02 00:00, last day 2027-01-01, 30-day horizon');
SELECT is(((pg_temp.nth(7)).payload ->> 'lot_id')::bigint,
          (SELECT id FROM loyalty.lot WHERE member_id = pg_temp.m('m1')), 'payload: the lot');
SELECT is((pg_temp.nth(7)).at, '2026-12-03 00:00:00+00'::timestamptz, 'at = the maintenance run''s now');
SELECT is(pg_temp.maint('2026-12-03 00:00:00+00') -> 'reminders', '0', 'the same run again: no second reminder');
SELECT is(pg_temp.maint('2026-12-20 00:00:00+00') -> 'reminders', '0', '13 days before: 30 already sent, 7 not due');
-- m5 receives 40 of m1's points on 2026-12-26: its lot keeps the 2027-01-02 expiry
SELECT is((loyalty.transfer(pg_temp.m('m1'), pg_temp.m('m5'), 40, 't1', '2026-12-26 12:00:00+00')).available, 60::bigint, 'transfer 40');
SELECT is(pg_temp.maint('2026-12-27 00:00:00+00') -> 'reminders', '2', '6 days before: the 7-day reminder for m1 and m5');
SELECT is(pg_temp.ev(), 'member_enrolled:m1,tier_changed:m1,member_enrolled:m3,voucher_issued:m1,voucher_used:m1,'
          'member_enrolled:m5,points_expiring:m1,points_expiring:m1,points_expiring:m5', 'all events so far');
SELECT is(((pg_temp.nth(8)).payload ->> 'points') || '/' || ((pg_temp.nth(8)).payload ->> 'days')
          || ' ' || ((pg_temp.nth(9)).payload ->> 'points') || '/' || ((pg_temp.nth(9)).payload ->> 'days'),
          '60/7 40/7', 'm1: 60 left, 7 days; m5 (never sent the 30-day one): 40, 7 days');
SELECT is(pg_temp.maint('2026-12-28 00:00:00+00') -> 'reminders', '0', 're-run: nothing more');
SELECT is(pg_temp.maint('2027-01-02 00:00:00+00') ->> 'expired_points', '100', 'the lots expire');
SELECT is(pg_temp.maint('2027-01-02 00:00:00+00') -> 'reminders', '0', 'expired lots get no reminder');

-- ---------------------------------------------------------------------------
-- Consumers: at-least-once with a cursor per consumer
-- ---------------------------------------------------------------------------
SELECT is(pg_temp.nx('crm', 3), 'member_enrolled:m1,tier_changed:m1,member_enrolled:m3', 'next_events: the first 3');
SELECT is(pg_temp.nx('crm', 3), 'member_enrolled:m1,tier_changed:m1,member_enrolled:m3', 'not acknowledged: the same 3 again');
SELECT is(loyalty.ack_events('crm', (pg_temp.nth(3)).id), 3::bigint, 'ack up to the 3rd: 3 acknowledged');
SELECT is(pg_temp.nx('crm', 2), 'voucher_issued:m1,voucher_used:m1', 'then the next ones');
SELECT is(loyalty.ack_events('crm', (pg_temp.nth(1)).id), 0::bigint, 'an older ack: nothing, the cursor stays');
SELECT is(pg_temp.nx('crm', 1), 'voucher_issued:m1', 'still after the 3rd');
SELECT is(pg_temp.nx('mail', 1), 'member_enrolled:m1', 'another consumer starts from the beginning');
SELECT is(loyalty.ack_events('mail', (pg_temp.nth(1)).id), 1::bigint, 'mail acks 1');
SELECT is(loyalty.ack_events('crm', (pg_temp.nth(9)).id), 6::bigint, 'crm acks all: 6 more');
SELECT is(pg_temp.nx('crm', 10), '', 'crm: nothing left');
SELECT is(pg_temp.err($$SELECT loyalty.ack_events('crm', -1)$$), 'LY160', 'ack an unknown event: LY160');
SELECT is(pg_temp.err($$SELECT loyalty.ack_events('nobody', (pg_temp.nth(1)).id)$$), 'LY161', 'ack for an unknown consumer: LY161');
SELECT is(pg_temp.err($$SELECT * FROM loyalty.next_events('crm', 0)$$), 'LY038', 'max_events 0: LY038');
SELECT is(pg_temp.err($$SELECT * FROM loyalty.next_events(NULL, 1)$$), 'LY034', 'consumer NULL: LY034');
SELECT is(pg_temp.err($$SELECT * FROM loyalty.next_events('', 1)$$), 'LY037', 'consumer empty: LY037');

-- purge: only what every consumer acknowledged
SELECT is(loyalty.purge_events('infinity'), 1::bigint, 'purge: mail acknowledged only the first');
SELECT is(pg_temp.nx('mail', 1), 'tier_changed:m1', 'mail still gets the rest');
SELECT ok(loyalty.enroll('tap52', 'm6', '2027-01-03 00:00:00+00') > 0, 'enroll m6');
SELECT is(pg_temp.nx('crm', 10), 'member_enrolled:m6', 'a new event reaches crm');
SELECT is(loyalty.purge_events('-infinity'), 0::bigint, 'purge before -infinity: nothing');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');
SELECT * FROM finish();
ROLLBACK;
