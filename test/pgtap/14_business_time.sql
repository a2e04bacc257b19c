-- 14_business_time: what happens when business time misbehaves (README "Business time").
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(16);

DO $$BEGIN
    PERFORM loyalty.create_program('bt', 'time', '{"expiry": {"policy": "rolling", "months": 12}, "pending_days": 2}');
    PERFORM loyalty.add_tier('bt', 'base', 'Base', 0);
    PERFORM loyalty.enroll('bt', 'a', '2026-06-01 00:00:00+00');
END$$;

-- The clock goes backwards between calls: a later call dated earlier is applied
-- to the member's current state; its own lot is dated from its own `at`.
SELECT is((SELECT format('%s/%s/%s', points, available, pending)
             FROM loyalty.earn(loyalty.member_id('bt', 'a'), 100, 'k1', '2026-06-10 12:00:00+00')),
          '100/0/100', 'earn on 10 June: pending for 2 days');
SELECT is((SELECT format('%s/%s/%s', points, available, pending)
             FROM loyalty.earn(loyalty.member_id('bt', 'a'), 50, 'k2', '2026-06-05 12:00:00+00')),
          '50/0/150', 'a call dated 5 June arriving later: its own lot, pending as the member''s state was');
SELECT is((SELECT available_at::text || ' ' || expires_at::text FROM loyalty.lot l
             JOIN loyalty.entry e ON e.member_id = l.member_id AND e.id = l.entry_id
            WHERE e.idempotency_key = 'k2'),
          '2026-06-07 12:00:00+00 2027-06-07 12:00:00+00', 'its dates follow its own at');
SELECT is((SELECT format('%s/%s', available, pending) FROM loyalty.balance(loyalty.member_id('bt', 'a'), '2026-06-08 00:00:00+00')),
          '50/0', 'balance as of 8 June: the 5 June lot is available, the 10 June purchase has not happened yet');
SELECT is((SELECT format('%s/%s', available, pending) FROM loyalty.balance(loyalty.member_id('bt', 'a'), '2026-06-06 00:00:00+00')),
          '0/50', 'balance as of 6 June: only the 5 June purchase exists, still pending');
SELECT is((SELECT string_agg(idempotency_key, ',' ORDER BY at) FROM loyalty.statement(loyalty.member_id('bt', 'a'))),
          'k2,k1', 'the statement is in business-time order, not arrival order');

-- Operations dated before the member enrolled are accepted (a receipt claimed
-- after joining) and count from their own date.
SELECT is((loyalty.earn(loyalty.member_id('bt', 'a'), 10, 'k0', '2026-05-01 00:00:00+00')).points, 10::bigint,
          'a purchase dated before enrolment is accepted');
SELECT is((SELECT expired FROM loyalty.balance(loyalty.member_id('bt', 'a'), '2027-05-03 00:00:00+00')),
          10::bigint, 'and expires 12 months after it became available (3 May 2027)');

-- Far-future dates work as long as the dates computed from them fit.
SELECT is((loyalty.award(loyalty.member_id('bt', 'a'), 5, 'future', 'f1', '9999-12-31 00:00:00+00')).points, 5::bigint,
          'an award dated 9999-12-31 is accepted');
SELECT throws_ok($$SELECT loyalty.earn(loyalty.member_id('bt', 'a'), 10, 'f2', '294276-12-30 00:00:00+00')$$,
                 'LY033', NULL, 'an earn whose expiry would fall outside PostgreSQL''s range is LY033, nothing written');
SELECT throws_ok($$SELECT loyalty.earn(loyalty.member_id('bt', 'a'), 10, 'f3', 'infinity')$$,
                 'LY033', NULL, 'infinity is refused');

-- Late purchases and the qualifying window (rolling 3 months, gold at 300 points):
-- a purchase dated before the member's latest operation is judged on the window
-- ending at its own date: what came after it does not count, what had left the
-- member's window by then but was still inside its own does.
DO $$BEGIN
    PERFORM loyalty.create_program('btq', 'late window', '{"tier_window": {"rolling_months": 3}}');
    PERFORM loyalty.add_tier('btq', 'base', 'Base', 0);
    PERFORM loyalty.add_tier('btq', 'gold', 'Gold', 300);
    PERFORM loyalty.enroll('btq', 'x', '2026-01-01 00:00:00+00');
    PERFORM loyalty.enroll('btq', 'y', '2026-01-01 00:00:00+00');
    PERFORM loyalty.earn(loyalty.member_id('btq', 'x'), 100, 'x1', '2026-01-10 00:00:00+00');
    PERFORM loyalty.earn(loyalty.member_id('btq', 'x'), 150, 'x2', '2026-03-20 00:00:00+00');
    PERFORM loyalty.earn(loyalty.member_id('btq', 'y'), 120, 'y1', '2025-12-25 00:00:00+00');
    PERFORM loyalty.earn(loyalty.member_id('btq', 'y'), 10, 'y2', '2026-03-30 00:00:00+00');
END$$;
SELECT is((loyalty.earn(loyalty.member_id('btq', 'x'), 100, 'x3', '2026-03-01 00:00:00+00')).tier, 'base',
          'late purchase on 1 March: 100 + 100 in its window, the 20 March purchase after it does not count');
SELECT is((loyalty.earn(loyalty.member_id('btq', 'x'), 1, 'x4', '2026-03-21 00:00:00+00')).tier, 'gold',
          'the next purchase in order: 100 + 150 + 100 + 1 in the window, gold');
SELECT is((loyalty.earn(loyalty.member_id('btq', 'y'), 180, 'y3', '2026-03-20 00:00:00+00')).tier, 'gold',
          'late purchase on 20 March: the 25 December purchase had left the member''s window (30 March) but is inside its own: 120 + 180');
SELECT is((SELECT qualifying FROM loyalty.member WHERE id = loyalty.member_id('btq', 'y')), 190::numeric,
          'the member''s own window (to 30 March) still counts 10 + 180');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');
SELECT * FROM finish();
ROLLBACK;
