-- tiers: the tier model, worked through on a small hotel program.
--
-- Times are shown in the program's time zone (Europe/Paris), so that the
-- year ends read as local midnight.
SET timezone = 'Europe/Paris';
SET datestyle = 'ISO';
\set SHOW_CONTEXT never

-- The program: a point per euro, tiers qualified on points earned in the
-- calendar year (local time), reviewed at each year end (period_end). Points
-- earned count with the tier's multiplier; spending them never lowers the
-- qualifying figure, refunds do.
SELECT loyalty.create_program('tiers_hotel', 'Hotel',
       '{"timezone": "Europe/Paris", "tier_basis": "points", "tier_window": "calendar_year",
         "downgrade": "period_end"}') IS NOT NULL AS created;
SELECT loyalty.add_tier('tiers_hotel', 'member', 'Member', 0) IS NOT NULL AS added;
SELECT loyalty.add_tier('tiers_hotel', 'silver', 'Silver', 1000, 1.25, '{"late_checkout": true}') IS NOT NULL AS added;
SELECT loyalty.add_tier('tiers_hotel', 'gold', 'Gold', 5000, 1.5, '{"late_checkout": true, "upgrade": true}') IS NOT NULL AS added;

SELECT loyalty.enroll('tiers_hotel', 'ana', '2026-01-05 09:00') AS ana \gset

-- Three stays in 2026. The second one crosses 1000 qualifying points: it
-- earns at the Member multiplier (500 points, 1100 in all) and promotes Ana
-- to Silver for the next one. The third earns 2000 x 1.25 = 2500 (3600).
SELECT points, available, tier FROM loyalty.earn(:ana, 600, 'stay-1', '2026-02-10 11:00');
SELECT points, available, tier FROM loyalty.earn(:ana, 500, 'stay-2', '2026-05-20 11:00');
SELECT points, available, tier FROM loyalty.earn(:ana, 2000, 'stay-3', '2026-09-01 11:00');

-- What her app shows: 1400 more points for Gold this year; Silver is next
-- reviewed at the end of the year; it would not lapse at the current figure.
SELECT tier, qualifying, threshold, next_tier, next_threshold, needed, review_at, lapses_at, benefits
  FROM loyalty.tier_progress(:ana, '2026-09-02 00:00');

-- She redeems 2000 points (the figure stays 3600), then half of stay-3 is
-- refunded: 1000 of 2000 euros takes back 1250 of its 2500 points, and the
-- figure drops at once to 2350. Her tier only changes at a review.
SELECT points, available, tier FROM loyalty.redeem(:ana, 2000, 'suite-night', '2026-09-05 18:00');
SELECT points, available, tier FROM loyalty.reverse(:ana, 'stay-3', 1000, 'refund-3', '2026-09-10 10:00');
SELECT available, lifetime_earned, redeemed, tier, qualifying FROM loyalty.balance(:ana, '2026-09-10 10:00');

-- One stay in 2027 (400 x 1.25 = 500 points). The operation first applies
-- the review due at local midnight on 1 January: 2026 ended at 2350, which
-- keeps Silver for 2027.
SELECT points, available, tier FROM loyalty.earn(:ana, 400, 'stay-4', '2027-03-01 11:00');
SELECT tier, source, review_at FROM loyalty.member_tiers WHERE member_id = :ana;

-- Maintenance (it runs over every member in the database). One second
-- before the end of 2027 nothing happens; at local midnight the review sees
-- 2027's 500 points and Ana goes back to Member.
SELECT loyalty.run_maintenance('2027-12-31 23:59:59') IS NOT NULL AS maintenance_ran;
SELECT tier FROM loyalty.member_tiers WHERE member_id = :ana;
SELECT loyalty.run_maintenance('2028-01-01 00:00:00') IS NOT NULL AS maintenance_ran;

-- Her whole tier history: every change, why, when, and the figure it used.
SELECT at, from_tier, to_tier, reason, qualifying FROM loyalty.tier_history(:ana);

-- A status match: Ben shows a Gold card from another chain and is pinned to
-- Gold until local midnight on 1 July. The pin is audited; while it holds he
-- earns at Gold's multiplier (200 x 1.5 = 300 points). When it ends, his
-- figure (300) decides: Member, reason override_end.
SELECT loyalty.enroll('tiers_hotel', 'ben', '2026-01-05 09:00') AS ben \gset
SELECT loyalty.set_tier(:ben, 'gold', '2026-07-01 00:00', 'status match: Gold elsewhere', '2026-03-01 09:00') AS tier;
SELECT tier, source, pinned_until, benefits FROM loyalty.member_tiers WHERE member_id = :ben;
SELECT points, available, tier FROM loyalty.earn(:ben, 200, 'stay-1', '2026-04-01 11:00');
\set VERBOSITY terse
SELECT loyalty.set_tier(:ben, 'diamond', '2026-07-01 00:00', 'typo', '2026-03-01 09:00');
\echo :LAST_ERROR_SQLSTATE
SELECT loyalty.set_tier(:ben, 'gold', '2026-07-01 00:00', '', '2026-03-01 09:00');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
SELECT loyalty.run_maintenance('2026-07-01 00:00') IS NOT NULL AS maintenance_ran;
SELECT at, from_tier, to_tier, reason, qualifying, detail ->> 'reason' AS why
  FROM loyalty.tier_history(:ben);

SELECT count(*) AS violations FROM loyalty.check_invariants();
