-- workload_1.sql: the part of the upgrade workload that runs BEFORE the upgrade, so it
-- may only use the 1.0 API (sql/loyalty--1.0.sql). Business times are fixed, so two
-- databases that run the same workload end with the same rows.
\set ON_ERROR_STOP 1
SET timezone = 'UTC';
SELECT loyalty.create_program('up', 'Upgrade', '{"pending_days": 3, "expiry": {"policy": "rolling", "months": 6},
                                                "tier_window": "lifetime", "downgrade": "never"}');
SELECT loyalty.add_tier('up', 'base', 'Base', 0);
SELECT loyalty.add_tier('up', 'silver', 'Silver', 300, 1.5);
SELECT loyalty.add_plan('up', 'club', 'Club', 10, 12, 'silver', '{}', true, 50, 20);
SELECT loyalty.add_reward('up', 'mug', 'Mug', 40, 10);
SELECT loyalty.enroll('up', 'm' || i, '2026-01-01 00:00:00+00') FROM generate_series(1, 6) AS i;
-- earn, pending then available, expiring 6 months after
SELECT (loyalty.earn(loyalty.member_id('up', 'm' || i), 100 * i, 'e1', '2026-01-05 00:00:00+00')).available
  FROM generate_series(1, 6) AS i;
SELECT loyalty.run_maintenance('2026-01-09 00:00:00+00');
SELECT (loyalty.redeem(loyalty.member_id('up', 'm2'), 50, 'r1', '2026-01-10 00:00:00+00')).available;
SELECT (loyalty.award(loyalty.member_id('up', 'm3'), 25, 'welcome', 'a1', '2026-01-11 00:00:00+00')).available;
SELECT (loyalty.reverse(loyalty.member_id('up', 'm4'), 'e1', 100, 'rv1', '2026-01-12 00:00:00+00')).available;
SELECT (loyalty.transfer(loyalty.member_id('up', 'm5'), loyalty.member_id('up', 'm1'), 60, 't1',
                         '2026-01-13 00:00:00+00')).available;
SELECT (loyalty.adjust(loyalty.member_id('up', 'm6'), -30, 'correction', 'j1', '2026-01-14 00:00:00+00')).available;
SELECT (loyalty.subscribe(loyalty.member_id('up', 'm1'), 'club', 's1', '2026-01-15 00:00:00+00')).tier;
SELECT (loyalty.redeem_reward(loyalty.member_id('up', 'm3'), 'mug', 'v1', '2026-01-16 00:00:00+00')).available;
-- a second batch still pending at the upgrade, and lots due to expire after it
SELECT (loyalty.earn(loyalty.member_id('up', 'm' || i), 10 * i, 'e2', '2026-03-01 00:00:00+00')).pending
  FROM generate_series(1, 6) AS i;
