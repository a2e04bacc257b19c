-- 31_time: business time that misbehaves (issue 9), beyond 14_business_time: the clock going
-- backwards between calls (debits dated before the credits they draw from, maintenance run
-- at a later instant than an operation that arrives after it), operations dated before a
-- member enrolled, and far-future and infinite dates for every function that takes one.
-- The behaviour asserted here is the one documented in README "Business time": an
-- operation is applied to the member's current state and dated by its own `at`;
-- balance(m, t) reconstructs any instant; nothing but finite dates whose derived dates fit
-- PostgreSQL's range is accepted (LY033).
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(37);

CREATE FUNCTION pg_temp.m(ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code = 'tm' AND m.external_ref = ref $$;
CREATE FUNCTION pg_temp.bal(ref text, t timestamptz) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s/%s/%s', available, pending, lifetime_earned, redeemed, expired)
      FROM loyalty.balance(pg_temp.m(ref), t) $$;
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
SELECT is((loyalty.redeem(pg_temp.m('a'), 10, 'r0', '2026-06-05 00:00+00')).available, 90::bigint,
          'a redeem dated 5 June, before the credit it draws from, is applied to the current state: 90 left');
SELECT is((loyalty.redeem(pg_temp.m('a'), 10, 'r1', '2026-06-20 00:00+00')).available, 80::bigint,
          'redeem of 20 June: 80 left');
SELECT is((loyalty.redeem(pg_temp.m('a'), 10, 'r2', '2026-06-15 00:00+00')).available, 70::bigint,
          'then one dated 15 June: 70 left');
SELECT is((SELECT string_agg(idempotency_key, ',' ORDER BY at) FROM loyalty.statement(pg_temp.m('a'))),
          'r0,e1,r2,r1', 'the statement is in business-time order, not arrival order');
SELECT is(pg_temp.bal('a', '2026-06-16 00:00+00'), '80/0/100/20/0',
          'balance as of 16 June: the credit, and the debits dated 5 and 15 June');
SELECT is(pg_temp.bal('a', '2026-07-01 00:00+00'), '70/0/100/30/0', 'balance as of 1 July: all three debits');
SELECT is(pg_temp.bal('a', '2026-06-01 00:00+00'), '0/0/0/0/0', 'balance as of enrolment: nothing yet');
-- Between a back-dated debit and the credit it drew from, the instant's figures cannot
-- add up: 10 points were redeemed on 5 June that the member only earned on 10 June.
SELECT todo('balance() between a back-dated debit and its later-dated credit: redeemed counts the debit, '
            'available does not go below 0 (reported to the lead: refuse such debits, or report a debt)', 1);
SELECT is((SELECT lifetime_earned - redeemed - expired - available - pending
             FROM loyalty.balance(pg_temp.m('a'), '2026-06-06 00:00+00')), 0::bigint,
          'balance as of 6 June: earned - redeemed - expired = available + pending');

-- A refund cannot be dated before its purchase (the clock went back too far).
SELECT throws_ok($$SELECT loyalty.reverse(pg_temp.m('a'), 'e1', 10, 'v0', '2026-06-09 23:59:59+00')$$,
                 'LY033', NULL, 'a refund dated before the purchase it refunds is LY033');

-- ---------------------------------------------------------------------------
-- Before enrolment
-- ---------------------------------------------------------------------------
SELECT is((loyalty.award(pg_temp.m('b'), 7, 'welcome back', 'a0', '2026-01-01 00:00+00')).available, 7::bigint,
          'an award dated five months before enrolment is accepted');
SELECT is((loyalty.transfer(pg_temp.m('a'), pg_temp.m('b'), 5, 't1', '2026-05-01 00:00+00')).available, 65::bigint,
          'a transfer dated before either member enrolled is accepted (sender: 65 left)');
SELECT is(pg_temp.bal('b', '2025-12-31 00:00+00'), '0/0/0/0/0', 'b as of 31 December 2025: nothing');
SELECT is(pg_temp.bal('b', '2026-01-02 00:00+00'), '7/0/7/0/0', 'b as of 2 January: the award');
SELECT is(pg_temp.bal('b', '2026-06-02 00:00+00'), '12/0/12/0/0', 'b after both: award and transfer');
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
          'one expire entry per expiry instant: a on 10 June 2027, b on 1 January and 1 May 2027');
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

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');
SELECT * FROM finish();
ROLLBACK;
