-- 13_review_regressions: scenarios from the code review, each once a bug.
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(11);

-- A benefits-only plan ending never lowers a tier the member earned.
DO $$BEGIN
    PERFORM loyalty.create_program('rr_plan', 'plan', '{"tier_window": "calendar_year"}');
    PERFORM loyalty.add_tier('rr_plan', 'base', 'Base', 0);
    PERFORM loyalty.add_tier('rr_plan', 'gold', 'Gold', 500);
    PERFORM loyalty.add_plan('rr_plan', 'perks', 'Perks', 5, 1, benefits => '{"free_coffee": true}');
    PERFORM loyalty.enroll('rr_plan', 'a', '2024-01-01 00:00:00+00');
END$$;
SELECT is((loyalty.earn(loyalty.member_id('rr_plan', 'a'), 600, 'b1', '2024-12-15 00:00:00+00')).tier, 'gold',
          'earned gold in 2024');
SELECT is((loyalty.subscribe(loyalty.member_id('rr_plan', 'a'), 'perks', 's1', '2025-01-20 00:00:00+00')).tier, 'gold',
          'a perks plan keeps gold');
SELECT is((loyalty.earn(loyalty.member_id('rr_plan', 'a'), 1, 'b2', '2025-02-25 00:00:00+00')).tier, 'gold',
          'after the perks plan ended: still gold (kept by the 2025-01-01 review until 2026-01-01)');
SELECT is((SELECT string_agg(reason, ',' ORDER BY id) FROM loyalty.tier_change WHERE member_id = loyalty.member_id('rr_plan', 'a')),
          'enroll,promotion', 'no subscription_end drop in the history');

-- subscribe and renew are activity: they push the inactivity deadline.
DO $$BEGIN
    PERFORM loyalty.create_program('rr_inact', 'inact', '{"expiry": {"policy": "inactivity", "months": 1}}');
    PERFORM loyalty.add_tier('rr_inact', 'base', 'Base', 0);
    PERFORM loyalty.add_plan('rr_inact', 'club', 'Club', 10, 12, signup_bonus_points => 100);
    PERFORM loyalty.enroll('rr_inact', 'a', '2025-01-01 00:00:00+00');
    PERFORM loyalty.earn(loyalty.member_id('rr_inact', 'a'), 50, 'e1', '2025-01-01 00:00:00+00');
    PERFORM loyalty.subscribe(loyalty.member_id('rr_inact', 'a'), 'club', 's1', '2025-01-20 00:00:00+00');
    PERFORM loyalty.run_maintenance('2025-02-05 00:00:00+00');
END$$;
SELECT is((SELECT format('%s/%s', available, expired) FROM loyalty.balance(loyalty.member_id('rr_inact', 'a'), '2025-02-05 00:00:00+00')),
          '150/0', 'the subscription on 20 Jan kept the points alive past 1 Feb');
SELECT is((SELECT format('%s/%s', available, expired) FROM loyalty.balance(loyalty.member_id('rr_inact', 'a'), '2025-02-20 00:00:00+00')),
          '0/150', 'they expire one month after the subscription');

-- A late-arriving purchase never writes tier history behind a later review.
DO $$BEGIN
    PERFORM loyalty.create_program('rr_late', 'late', '{"tier_window": {"rolling_months": 1}}');
    PERFORM loyalty.add_tier('rr_late', 'base', 'Base', 0);
    PERFORM loyalty.add_tier('rr_late', 'silver', 'Silver', 100);
    PERFORM loyalty.enroll('rr_late', 'a', '2025-01-01 00:00:00+00');
    PERFORM loyalty.earn(loyalty.member_id('rr_late', 'a'), 150, 'e1', '2025-01-10 00:00:00+00');
    PERFORM loyalty.earn(loyalty.member_id('rr_late', 'a'), 1, 'e2', '2025-02-15 00:00:00+00');
    PERFORM loyalty.earn(loyalty.member_id('rr_late', 'a'), 1, 'e3', '2025-03-20 00:00:00+00');
END$$;
SELECT is((loyalty.earn(loyalty.member_id('rr_late', 'a'), 150, 'e4', '2025-03-05 00:00:00+00')).tier, 'silver',
          'the late purchase promotes');
SELECT is((SELECT string_agg(format('%s %s %s', to_tier, reason, at), ' | ' ORDER BY id)
             FROM loyalty.tier_change WHERE member_id = loyalty.member_id('rr_late', 'a')),
          'base enroll 2025-01-01 00:00:00+00 | silver promotion 2025-01-10 00:00:00+00 | base downgrade 2025-03-10 00:00:00+00 | silver promotion 2025-03-10 00:00:00+00',
          'the late promotion is dated at the last change, not before it');
SELECT is((SELECT tier FROM loyalty.balance(loyalty.member_id('rr_late', 'a'), '2025-03-21 00:00:00+00')),
          (SELECT t.code FROM loyalty.member m JOIN loyalty.tier t ON t.id = m.tier_id
            WHERE m.id = loyalty.member_id('rr_late', 'a')),
          'balance() and the member row agree on the tier');

-- A lazy sweep applies a review before an expiry that falls after it.
DO $$BEGIN
    PERFORM loyalty.create_program('rr_order', 'order', '{"expiry": {"policy": "rolling", "months": 25}}');
    PERFORM loyalty.add_tier('rr_order', 'base', 'Base', 0);
    PERFORM loyalty.add_tier('rr_order', 'gold', 'Gold', 100);
    PERFORM loyalty.enroll('rr_order', 'a', '2024-01-01 00:00:00+00');
    PERFORM loyalty.earn(loyalty.member_id('rr_order', 'a'), 150, 'e1', '2024-03-01 00:00:00+00');
    PERFORM loyalty.award(loyalty.member_id('rr_order', 'a'), 5, 'later', 'a1', '2026-06-01 00:00:00+00');
END$$;
SELECT is((SELECT format('%s %s %s', e.at, e.points, e.tier_after) FROM loyalty.entry e
            WHERE e.member_id = loyalty.member_id('rr_order', 'a') AND e.kind = 'expire'),
          '2026-04-01 00:00:00+00 -150 base',
          'the 2026-03-01 review (to base) comes before the 2026-04-01 expiry, as maintenance would do it');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');
SELECT * FROM finish();
ROLLBACK;
