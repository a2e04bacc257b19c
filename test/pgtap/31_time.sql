-- 31_time: business time that misbehaves (issue 9), beyond 14_business_time: the clock going
-- backwards between calls (debits dated before the credits they draw from, maintenance run
-- at a later instant than an operation that arrives after it), operations dated before a
-- member enrolled, and far-future and infinite dates for every function that takes one.
-- The behaviour asserted here is the one documented in README "Business time": an
-- operation is applied to the member's current state and dated by its own `at`, but a debit
-- can only use points that were available at its `at` (LY010 otherwise, nothing written);
-- balance(m, t) reconstructs any instant and its identity holds at every one; nothing but
-- finite dates whose derived dates fit PostgreSQL's range is accepted (LY033).
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(80);

CREATE FUNCTION pg_temp.m(ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code = 'tm' AND m.external_ref = ref $$;
CREATE FUNCTION pg_temp.bal(ref text, t timestamptz) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s/%s/%s', available, pending, lifetime_earned, redeemed, expired)
      FROM loyalty.balance(pg_temp.m(ref), t) $$;
-- instants where available + pending <> lifetime_earned - redeemed - expired, for every member
-- of a program, every 6 hours from..to and at every entry's own instant (and 1 us before it)
CREATE FUNCTION pg_temp.broken(prog text, from_at timestamptz, to_at timestamptz) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(format('%s@%s', m.external_ref, t.t), ', ' ORDER BY m.external_ref, t.t)
      FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     CROSS JOIN LATERAL (SELECT g AS t FROM generate_series(from_at, to_at, '6 hours') g
                         UNION SELECT e.at FROM loyalty.entry e WHERE e.member_id = m.id
                         UNION SELECT e.at - interval '1 microsecond' FROM loyalty.entry e WHERE e.member_id = m.id) t
     CROSS JOIN LATERAL loyalty.balance(m.id, t.t) b
     WHERE p.code = prog
       AND (b.available + b.pending <> b.lifetime_earned - b.redeemed - b.expired
            OR (p.negative_balance <> 'allow' AND b.available < 0)) $$;
-- SQLSTATE and message detail of a refused call
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE d text;
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ' ' || SQLERRM || ': ' || d;
END $$;
CREATE FUNCTION pg_temp.rows() RETURNS text LANGUAGE sql AS $$
    SELECT format('%s %s %s %s %s', (SELECT count(*) FROM loyalty.entry), (SELECT count(*) FROM loyalty.lot),
                  (SELECT count(*) FROM loyalty.lot_draw), (SELECT count(*) FROM loyalty.member),
                  (SELECT count(*) FROM loyalty.tier_change)) $$;

DO $$BEGIN
    PERFORM loyalty.create_program('tm', 'Time', '{"expiry": {"policy": "rolling", "months": 12}}');
    PERFORM loyalty.add_tier('tm', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tm', 'a', '2026-06-01 00:00+00');
    PERFORM loyalty.enroll('tm', 'b', '2026-06-01 00:00+00');
END$$;

-- ---------------------------------------------------------------------------
-- The clock goes backwards between calls
-- ---------------------------------------------------------------------------
SELECT is((loyalty.earn(pg_temp.m('a'), 100, 'e1', '2026-06-10 00:00+00')).available, 100::bigint,
          'earn of 10 June: 100 available');
CREATE TEMP TABLE r1 AS SELECT pg_temp.rows() AS r;
SELECT is(pg_temp.err($$SELECT loyalty.redeem(pg_temp.m('a'), 10, 'r0', '2026-06-05 00:00+00')$$),
          'LY010 insufficient points at 2026-06-05 00:00:00+00: Requested: 10 points. '
          'Available at that time: 0 points (100 now).',
          'a redeem dated 5 June, before the only credit (10 June), is LY010: 0 points at that time');
SELECT is(pg_temp.rows(), (SELECT r FROM r1), 'nothing was written by the refused redeem');
SELECT is((loyalty.redeem(pg_temp.m('a'), 10, 'r0', '2026-06-11 00:00+00')).available, 90::bigint,
          'its key is free: the same redeem dated 11 June is accepted, 90 left');
SELECT is((loyalty.redeem(pg_temp.m('a'), 10, 'r1', '2026-06-20 00:00+00')).available, 80::bigint,
          'redeem of 20 June: 80 left');
SELECT is((loyalty.redeem(pg_temp.m('a'), 10, 'r2', '2026-06-15 00:00+00')).available, 70::bigint,
          'then one dated 15 June: 70 left');
SELECT is((SELECT string_agg(idempotency_key, ',' ORDER BY at) FROM loyalty.statement(pg_temp.m('a'))),
          'e1,r0,r2,r1', 'the statement is in business-time order, not arrival order');
SELECT is(pg_temp.bal('a', '2026-06-16 00:00+00'), '80/0/100/20/0',
          'balance as of 16 June: the credit, and the debits dated 11 and 15 June');
SELECT is(pg_temp.bal('a', '2026-07-01 00:00+00'), '70/0/100/30/0', 'balance as of 1 July: all three debits');
SELECT is(pg_temp.bal('a', '2026-06-01 00:00+00'), '0/0/0/0/0', 'balance as of enrolment: nothing yet');
-- A debit never draws from a credit dated after it, so every instant's figures add up.
SELECT is((SELECT lifetime_earned - redeemed - expired - available - pending
             FROM loyalty.balance(pg_temp.m('a'), '2026-06-06 00:00+00')), 0::bigint,
          'balance as of 6 June: earned - redeemed - expired = available + pending');
SELECT is(pg_temp.broken('tm', '2026-06-01', '2026-07-01'), NULL,
          'the identity holds for every member at every instant of June (and at each entry)');

-- A refund cannot be dated before its purchase (the clock went back too far).
SELECT throws_ok($$SELECT loyalty.reverse(pg_temp.m('a'), 'e1', 10, 'v0', '2026-06-09 23:59:59+00')$$,
                 'LY033', NULL, 'a refund dated before the purchase it refunds is LY033');

-- ---------------------------------------------------------------------------
-- Before enrolment
-- ---------------------------------------------------------------------------
SELECT is((loyalty.award(pg_temp.m('b'), 7, 'welcome back', 'a0', '2026-01-01 00:00+00')).available, 7::bigint,
          'an award dated five months before enrolment is accepted');
SELECT throws_ok($$SELECT loyalty.transfer(pg_temp.m('a'), pg_temp.m('b'), 5, 't1', '2026-05-01 00:00+00')$$,
                 'LY010', 'insufficient points at 2026-05-01 00:00:00+00',
                 'a transfer dated before the sender had any points (its only credit is of 10 June) is LY010');
SELECT is((loyalty.transfer(pg_temp.m('a'), pg_temp.m('b'), 5, 't1', '2026-06-12 00:00+00')).available, 65::bigint,
          'dated 12 June it is accepted (sender: 65 left)');
SELECT is(pg_temp.bal('b', '2025-12-31 00:00+00'), '0/0/0/0/0', 'b as of 31 December 2025: nothing');
SELECT is(pg_temp.bal('b', '2026-01-02 00:00+00'), '7/0/7/0/0', 'b as of 2 January: the award');
SELECT is(pg_temp.bal('b', '2026-06-13 00:00+00'), '12/0/12/0/0', 'b after both: award and transfer');
SELECT is((SELECT expires_at FROM loyalty.lot l JOIN loyalty.entry e ON e.member_id = l.member_id AND e.id = l.entry_id
            WHERE e.idempotency_key = 'a0'),
          '2027-01-01 00:00+00'::timestamptz, 'the pre-enrolment award expires 12 months after its own date');

-- ---------------------------------------------------------------------------
-- Maintenance at a later instant than an operation that arrives after it
-- ---------------------------------------------------------------------------
SELECT is(loyalty.run_maintenance('2028-01-01 00:00+00') ->> 'expired_points', '77',
          'maintenance as of 2028 expires a''s 65 (10 June 2027) and b''s 12');
SELECT is(loyalty.run_maintenance('2027-01-01 00:00+00') ->> 'members', '0',
          'maintenance dated earlier afterwards finds nothing due: nothing expires twice');
SELECT is((SELECT count(*)::int FROM loyalty.entry WHERE kind = 'expire'), 3,
          'one expire entry per member and expiry instant: a on 10 June 2027, b on 1 January and 10 June 2027 '
          '(the transferred lot keeps the expiry of a''s lot)');
SELECT is(pg_temp.bal('a', '2026-12-01 00:00+00'), '65/0/100/35/0',
          'balance as of December 2026 still shows a''s 65 points (expired only in June 2027)');
SELECT is(pg_temp.bal('a', '2027-06-10 00:00+00'), '0/0/100/35/65', 'and as of 10 June 2027: expired');
-- An earn dated December 2026 arrives after the 2028 sweep: its lot expires in December
-- 2027, before the instant the member was swept to; it is due at once (next transition),
-- and the next sweep past it writes its expire entry at its own expiry instant.
SELECT is((loyalty.earn(pg_temp.m('a'), 50, 'e2', '2026-12-01 00:00+00')).points, 50::bigint,
          'an earn dated before the member''s last sweep is accepted');
SELECT is((SELECT next_transition_at FROM loyalty.member WHERE id = pg_temp.m('a')), '2027-12-01 00:00+00'::timestamptz,
          'its expiry is the member''s next transition');
SELECT is(pg_temp.bal('a', '2027-01-01 00:00+00'), '115/0/150/35/0',
          'balance as of January 2027: the late lot is there, with a''s 65');
SELECT is(pg_temp.bal('a', '2028-01-01 00:00+00'), '0/0/150/35/115', 'as of 2028: both expired');
SELECT is(loyalty.run_maintenance('2028-01-01 00:00+00') ->> 'expired_points', '50',
          'maintenance as of 2028 again: only the late lot expires now');
SELECT is((SELECT string_agg(format('%s %s', points, at), ', ' ORDER BY at) FROM loyalty.entry
            WHERE member_id = pg_temp.m('a') AND kind = 'expire'),
          '-65 2027-06-10 00:00:00+00, -50 2027-12-01 00:00:00+00', 'each expire entry at its own instant');

-- ---------------------------------------------------------------------------
-- Far future and infinity
-- ---------------------------------------------------------------------------
SELECT is((loyalty.earn(pg_temp.m('b'), 20, 'f1', '9999-12-31 00:00+00')).points, 20::bigint,
          'an earn dated 9999-12-31 is accepted');
SELECT is((SELECT expires_at FROM loyalty.lot l JOIN loyalty.entry e ON e.member_id = l.member_id AND e.id = l.entry_id
            WHERE e.idempotency_key = 'f1'),
          '10000-12-31 00:00+00'::timestamptz, 'its lot expires in the year 10000');
SELECT is(pg_temp.bal('b', '9999-12-31 00:00+00'), '20/0/32/0/12', 'balance as of 9999-12-31');
CREATE TEMP TABLE r0 AS SELECT pg_temp.rows() AS r;
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('b'), 20, 'f2', '294276-12-30 00:00+00')$$, 'LY033', NULL,
                 'an earn whose expiry would be past PostgreSQL''s last timestamp is LY033');
SELECT throws_ok($$SELECT loyalty.earn(pg_temp.m('b'), 20, 'f3', '4714-11-24 00:00+00 BC')$$, 'LY033', NULL,
                 'an earn at PostgreSQL''s first timestamp (its window edge is before it) is LY033');

-- infinity and -infinity: LY033 from every function that takes a business time
CREATE TEMP TABLE inf (q text);
INSERT INTO inf SELECT format(q, t) FROM unnest(ARRAY[
    'SELECT loyalty.enroll(''tm'', ''z'', %L)',
    'SELECT loyalty.earn(pg_temp.m(''b''), 1, ''i1'', %L)',
    'SELECT loyalty.award(pg_temp.m(''b''), 1, ''x'', ''i2'', %L)',
    'SELECT loyalty.redeem(pg_temp.m(''b''), 1, ''i3'', %L)',
    'SELECT loyalty.adjust(pg_temp.m(''b''), 1, ''x'', ''i4'', %L)',
    'SELECT loyalty.transfer(pg_temp.m(''b''), pg_temp.m(''a''), 1, ''i5'', %L)',
    'SELECT loyalty.reverse(pg_temp.m(''a''), ''e1'', 1, ''i6'', %L)',
    'SELECT loyalty.balance(pg_temp.m(''b''), %L)',
    'SELECT loyalty.run_maintenance(%L)']) q
 CROSS JOIN unnest(ARRAY['infinity', '-infinity']) t;
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;
SELECT is((SELECT string_agg(q, '; ') FROM inf WHERE pg_temp.sqlstate_of(q) <> 'LY033'), NULL,
          'infinity and -infinity are LY033 for enroll, earn, award, redeem, adjust, transfer, reverse, '
          'balance and run_maintenance');
SELECT is(pg_temp.rows(), (SELECT r FROM r0), 'nothing was written by the refused calls');
SELECT is((SELECT count(*)::int FROM loyalty.program_kpis('tm', '-infinity', 'infinity')), 1,
          'program_kpis takes -infinity..infinity (all time)');
SELECT is((SELECT points_issued FROM loyalty.program_kpis('tm', '9999-01-01', 'infinity')), 20::bigint,
          'program_kpis over the far future sees the 9999 earn');

-- ---------------------------------------------------------------------------
-- Debits only spend points that were available at their own business time
-- ---------------------------------------------------------------------------
-- tn: 10 pending days, deny; ta: no pending, allow. Every member enrolled 1 January 2026.
DO $$BEGIN
    PERFORM loyalty.create_program('tn', 'Time n', '{"expiry": {"policy": "rolling", "months": 12}, '
                                                   '"pending_days": 10, "negative_balance": "deny"}');
    PERFORM loyalty.add_tier('tn', 'base', 'Base', 0);
    PERFORM loyalty.add_reward('tn', 'gift', 'Gift', 30);
    PERFORM loyalty.add_partner('tn', 'px', 'Partner X', 0.01);
    PERFORM loyalty.create_program('ta', 'Time a', '{"expiry": {"policy": "rolling", "months": 12}, '
                                                   '"negative_balance": "allow"}');
    PERFORM loyalty.add_tier('ta', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tn', 'c', '2026-01-01 00:00+00');
    PERFORM loyalty.enroll('tn', 'd', '2026-01-01 00:00+00');
    PERFORM loyalty.enroll('tn', 'e', '2026-01-01 00:00+00');
    PERFORM loyalty.enroll('ta', 'f', '2026-01-01 00:00+00');
END$$;
CREATE FUNCTION pg_temp.n(prog text, ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code = prog AND m.external_ref = ref $$;
-- remaining points of the lot an entry created (for a transfer: the receiver's lot)
CREATE FUNCTION pg_temp.rem(prog text, ref text, key text) RETURNS bigint LANGUAGE sql AS $$
    SELECT l.remaining FROM loyalty.lot l JOIN loyalty.entry e ON e.member_id = l.member_id AND e.id = l.entry_id
     WHERE e.member_id = pg_temp.n(prog, ref)
       AND (e.idempotency_key = key
            OR e.ref_entry_id IN (SELECT o.id FROM loyalty.entry o WHERE o.idempotency_key = key
                                     AND o.kind = 'transfer_out')) $$;

-- c: credits of 10 and 20 March; debits dated before, between and after
SELECT is((loyalty.award(pg_temp.n('tn', 'c'), 50, 'x', 'c_a1', '2026-03-10 00:00+00')).available, 50::bigint,
          'c: award of 50 on 10 March');
CREATE TEMP TABLE r2 AS SELECT pg_temp.rows() AS r;
SELECT is(pg_temp.err($$SELECT loyalty.redeem(pg_temp.n('tn', 'c'), 10, 'c_r0', '2026-03-01 00:00+00')$$),
          'LY010 insufficient points at 2026-03-01 00:00:00+00: Requested: 10 points. '
          'Available at that time: 0 points (50 now).', 'a redeem dated before any credit is LY010');
SELECT is(pg_temp.rows(), (SELECT r FROM r2), 'nothing was written by the refused redeem');
SELECT is((loyalty.award(pg_temp.n('tn', 'c'), 30, 'x', 'c_a2', '2026-03-20 00:00+00')).available, 80::bigint,
          'c: award of 30 on 20 March: 80 available');
SELECT is(pg_temp.err($$SELECT loyalty.redeem(pg_temp.n('tn', 'c'), 60, 'c_r1', '2026-03-15 00:00+00')$$),
          'LY010 insufficient points at 2026-03-15 00:00:00+00: Requested: 60 points. '
          'Available at that time: 50 points (80 now).',
          'a redeem of 60 dated 15 March, between the credits, is LY010: only the first 50 existed');
SELECT is((loyalty.redeem(pg_temp.n('tn', 'c'), 40, 'c_r2', '2026-03-15 00:00+00')).available, 40::bigint,
          'a redeem of 40 dated 15 March is accepted: 40 left');
SELECT is(format('%s/%s', pg_temp.rem('tn', 'c', 'c_a1'), pg_temp.rem('tn', 'c', 'c_a2')), '10/30',
          'it drew only from the 10 March lot');
-- d gives c 20 points on 25 March in a lot that keeps d's expiry (5 January 2027): the
-- soonest-expiring lot c has, but not one c had on 22 March.
SELECT is((loyalty.award(pg_temp.n('tn', 'd'), 20, 'x', 'd_a1', '2026-01-05 00:00+00')).available, 20::bigint,
          'd: award of 20 on 5 January');
SELECT is((loyalty.award(pg_temp.n('tn', 'd'), 10, 'x', 'd_a2', '2026-04-01 00:00+00')).available, 30::bigint,
          'd: award of 10 on 1 April: 30 available');
SELECT throws_ok($$SELECT loyalty.transfer(pg_temp.n('tn', 'd'), pg_temp.n('tn', 'c'), 5, 'd_t0', '2026-01-02 00:00+00')$$,
                 'LY010', 'insufficient points at 2026-01-02 00:00:00+00',
                 'a transfer dated before the sender''s first credit is LY010');
SELECT is(pg_temp.err($$SELECT loyalty.transfer(pg_temp.n('tn', 'd'), pg_temp.n('tn', 'c'), 25, 'd_t1', '2026-03-25 00:00+00')$$),
          'LY010 insufficient points at 2026-03-25 00:00:00+00: Requested: 25 points. '
          'Available at that time: 20 points (30 now).',
          'a transfer of 25 dated between d''s credits is LY010: only 20 existed');
SELECT is((loyalty.transfer(pg_temp.n('tn', 'd'), pg_temp.n('tn', 'c'), 20, 'd_t1', '2026-03-25 00:00+00')).available,
          10::bigint, 'a transfer of 20 dated 25 March is accepted: d keeps the 10 of 1 April');
SELECT is(format('%s/%s', pg_temp.rem('tn', 'd', 'd_a1'), pg_temp.rem('tn', 'd', 'd_a2')), '0/10',
          'd''s transfer drew only from the 5 January lot');
SELECT is((loyalty.redeem(pg_temp.n('tn', 'c'), 15, 'c_r3', '2026-03-22 00:00+00')).available, 45::bigint,
          'c redeems 15 dated 22 March: 45 left');
SELECT is(format('%s/%s/%s', pg_temp.rem('tn', 'c', 'c_a1'), pg_temp.rem('tn', 'c', 'c_a2'), pg_temp.rem('tn', 'c', 'd_t1')),
          '0/25/20', 'from the lots of 10 and 20 March, not from the sooner-expiring one received on 25 March');
SELECT is((loyalty.redeem(pg_temp.n('tn', 'c'), 5, 'c_r4', '2026-03-26 00:00+00')).available, 40::bigint,
          'dated 26 March, a redeem takes the received lot first (it expires soonest)');
SELECT is(pg_temp.rem('tn', 'c', 'd_t1'), 15::bigint, 'the received lot gave 5');

-- e: a purchase of 1 May is pending until 11 May; other debits dated in between
SELECT is((loyalty.earn(pg_temp.n('tn', 'e'), 100, 'e_e1', '2026-05-01 00:00+00')).pending, 100::bigint,
          'e: earn of 100 on 1 May, pending until 11 May');
SELECT is((loyalty.award(pg_temp.n('tn', 'e'), 10, 'x', 'e_a1', '2026-05-20 00:00+00')).available, 110::bigint,
          'e: award of 10 on 20 May: 110 available');
SELECT is(pg_temp.err($$SELECT loyalty.redeem(pg_temp.n('tn', 'e'), 50, 'e_r0', '2026-05-05 00:00+00')$$),
          'LY010 insufficient points at 2026-05-05 00:00:00+00: Requested: 50 points. '
          'Available at that time: 0 points (110 now).',
          'a redeem dated 5 May, while the purchase was pending, is LY010');
SELECT throws_ok($$SELECT loyalty.partner_redeem(pg_temp.n('tn', 'e'), 10, 'px', 'e_p0', '2026-05-10 23:59:59+00')$$,
                 'LY010', 'insufficient points at 2026-05-10 23:59:59+00',
                 'partner_redeem dated one second before the release is LY010');
SELECT throws_ok($$SELECT loyalty.redeem_reward(pg_temp.n('tn', 'e'), 'gift', 'e_v0', '2026-05-08 00:00+00')$$,
                 'LY010', 'insufficient points at 2026-05-08 00:00:00+00',
                 'redeem_reward dated 8 May is LY010');
SELECT throws_ok($$SELECT loyalty.adjust(pg_temp.n('tn', 'e'), -40, 'fix', 'e_j0', '2026-05-05 00:00+00')$$,
                 'LY011', 'this adjustment would make the balance negative at 2026-05-05 00:00:00+00',
                 'a negative adjustment dated 5 May finds nothing to take then: LY011 under deny');
SELECT is((loyalty.redeem(pg_temp.n('tn', 'e'), 50, 'e_r1', '2026-05-11 00:00+00')).available, 60::bigint,
          'a redeem dated at the release instant is accepted: 60 left');
SELECT is((loyalty.redeem_reward(pg_temp.n('tn', 'e'), 'gift', 'e_v1', '2026-05-12 00:00+00')).points, -30::bigint,
          'redeem_reward dated 12 May is accepted');
SELECT is((loyalty.adjust(pg_temp.n('tn', 'e'), -20, 'fix', 'e_j1', '2026-05-12 00:00+00')).available, 10::bigint,
          'a negative adjustment dated 12 May takes the purchase''s last 20: 10 left (the award of 20 May)');
SELECT is(format('%s/%s', pg_temp.rem('tn', 'e', 'e_e1'), pg_temp.rem('tn', 'e', 'e_a1')), '0/10',
          'the award of 20 May was not touched by the debits dated before it');

-- f (negative_balance allow): a refund dated before a later credit does not take that credit
SELECT is((loyalty.earn(pg_temp.n('ta', 'f'), 100, 'f_e1', '2026-06-01 00:00+00')).available, 100::bigint,
          'f: earn of 100 on 1 June');
SELECT is((loyalty.redeem(pg_temp.n('ta', 'f'), 100, 'f_r1', '2026-06-02 00:00+00')).available, 0::bigint,
          'f spends it all on 2 June');
SELECT is((loyalty.award(pg_temp.n('ta', 'f'), 50, 'x', 'f_a1', '2026-06-20 00:00+00')).available, 50::bigint,
          'f: award of 50 on 20 June');
SELECT is((loyalty.reverse(pg_temp.n('ta', 'f'), 'f_e1', NULL, 'f_v1', '2026-06-10 00:00+00')).available, -50::bigint,
          'the purchase is refunded on 10 June: nothing was there to take then, a debt of 100 (50 - 100 now)');
SELECT is(format('%s/%s', pg_temp.rem('ta', 'f', 'f_a1'), pg_temp.rem('ta', 'f', 'f_v1')), '50/-100',
          'the award of 20 June is untouched; the debt lot is dated 10 June');
SELECT is((SELECT format('%s/%s/%s/%s/%s', available, pending, lifetime_earned, redeemed, expired)
             FROM loyalty.balance(pg_temp.n('ta', 'f'), '2026-06-15 00:00+00')), '-100/0/0/100/0',
          'f as of 15 June: earned 100 net of the refund of 100, redeemed 100, owes 100');

SELECT is(pg_temp.broken('tn', '2026-01-01', '2026-07-01'), NULL,
          'tn: the identity holds (and available >= 0) for every member every 6 hours and at each entry');
SELECT is(pg_temp.broken('ta', '2026-05-25', '2026-07-01'), NULL,
          'ta: the identity holds for every member every 6 hours and at each entry');

-- challenge_progress at PostgreSQL's first and last instants: the month that contains them
-- does not fit its range
SELECT lives_ok($$SELECT loyalty.add_challenge('tn', 'c3', '{"goal": "purchases", "target": 3, "period": "month", '
                                                           '"reward": {"points": 10}}', NULL)$$, 'a monthly challenge');
SELECT throws_ok($$SELECT * FROM loyalty.challenge_progress(pg_temp.n('tn', 'c'), '4714-11-24 00:00+00 BC')$$,
                 'LY033', 'timestamp out of range', 'challenge_progress at the first timestamp is LY033');
SELECT throws_ok($$SELECT * FROM loyalty.challenge_progress(pg_temp.n('tn', 'c'), '294276-12-31 23:59:59.999999+00')$$,
                 'LY033', 'timestamp out of range', 'challenge_progress at the last timestamp is LY033');
SELECT is((SELECT format('%s %s %s', challenge, period_start, period_end)
             FROM loyalty.challenge_progress(pg_temp.n('tn', 'c'), '2026-03-15 00:00+00')),
          'c3 2026-03-01 00:00:00+00 2026-04-01 00:00:00+00', 'and an ordinary date gives its month');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');
SELECT * FROM finish();
ROLLBACK;
