-- 11_memberships: tiers that are granted rather than qualified for:
-- set_tier overrides (pins) and paid membership plans (subscribe, renew,
-- cancel_subscription, lapse).
--
-- The program runs in Europe/Paris (CET = UTC+1; CEST = UTC+2 from
-- 2026-03-29), calendar_year window, period_end, no grace, points basis:
-- base 0, silver 100, gold 500 (lounge), plat 1000 (lounge, suite), all x1.
-- Local year ends: E27 = 2026-12-31 23:00 UTC, E28 = 2027-12-31 23:00 UTC.
BEGIN;
SET LOCAL timezone = 'UTC';
SET LOCAL datestyle = 'ISO';
SELECT plan(87);

CREATE FUNCTION pg_temp.m(ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT loyalty.member_id('tap11', ref) $$;
CREATE FUNCTION pg_temp.rc(r loyalty.receipt) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s/%s/%s', r.points, r.available, r.pending, r.tier, r.replayed) $$;
CREATE FUNCTION pg_temp.hist(mid bigint) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(format('%s %s %s q%s', h.to_tier, h.reason, h.at, h.qualifying), ' | ' ORDER BY h.n)
      FROM loyalty.tier_history(mid) WITH ORDINALITY
           h(at, from_tier, to_tier, reason, qualifying, detail, recorded_at, n) $$;
-- the history rows after enroll
CREATE FUNCTION pg_temp.changes(mid bigint) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(format('%s>%s %s %s q%s', h.from_tier, h.to_tier, h.reason, h.at, h.qualifying), ' | ' ORDER BY h.n)
      FROM loyalty.tier_history(mid) WITH ORDINALITY
           h(at, from_tier, to_tier, reason, qualifying, detail, recorded_at, n)
     WHERE h.reason <> 'enroll' $$;
CREATE FUNCTION pg_temp.mt(mid bigint) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s|%s|%s|%s|%s|%s', tier, source, benefits, pinned_until, subscription_until, plan)
      FROM loyalty.member_tiers WHERE member_id = mid $$;

DO $$BEGIN
    PERFORM loyalty.create_program('tap11', 'memberships',
        '{"timezone": "Europe/Paris", "tier_window": "calendar_year", "downgrade": "period_end"}');
    PERFORM loyalty.add_tier('tap11', 'base', 'Base', 0);
    PERFORM loyalty.add_tier('tap11', 'silver', 'Silver', 100);
    PERFORM loyalty.add_tier('tap11', 'gold', 'Gold', 500, 1, '{"lounge": true}');
    PERFORM loyalty.add_tier('tap11', 'plat', 'Platinum', 1000, 1, '{"lounge": true, "suite": true}');
    PERFORM loyalty.enroll('tap11', r, '2025-12-31 23:00:00+00')
       FROM unnest(ARRAY['up', 'down', 'inf', 'same', 's1', 's2', 's3', 's4']) r;
END$$;

-- ===========================================================================
-- set_tier
-- ===========================================================================
SELECT throws_ok($$SELECT loyalty.set_tier(pg_temp.m('up'), 'diamond', '2027-01-01 00:00:00+00', 'x', '2026-03-01 10:00:00+00')$$,
                 'LY003', NULL, 'unknown tier -> LY003');
SELECT throws_ok($$SELECT loyalty.set_tier(pg_temp.m('up'), 'gold', '2026-03-01 10:00:00+00', 'x', '2026-03-01 10:00:00+00')$$,
                 'LY033', NULL, 'until = at -> LY033');
SELECT throws_ok($$SELECT loyalty.set_tier(pg_temp.m('up'), 'gold', '2026-02-01 10:00:00+00', 'x', '2026-03-01 10:00:00+00')$$,
                 'LY033', NULL, 'until before at -> LY033');
SELECT throws_ok($$SELECT loyalty.set_tier(pg_temp.m('up'), 'gold', '2027-01-01 00:00:00+00', 'x', 'infinity')$$,
                 'LY033', NULL, 'at infinity -> LY033');
SELECT throws_ok($$SELECT loyalty.set_tier(pg_temp.m('up'), 'gold', NULL, 'x', '2026-03-01 10:00:00+00')$$,
                 'LY034', NULL, 'until NULL -> LY034');
SELECT throws_ok($$SELECT loyalty.set_tier(pg_temp.m('up'), 'gold', '2027-01-01 00:00:00+00', '', '2026-03-01 10:00:00+00')$$,
                 'LY036', NULL, 'empty reason -> LY036');
SELECT throws_ok($$SELECT loyalty.set_tier(pg_temp.m('up'), 'gold', '2027-01-01 00:00:00+00', '  ', '2026-03-01 10:00:00+00')$$,
                 'LY036', NULL, 'blank reason -> LY036');
SELECT throws_ok($$SELECT loyalty.set_tier(-1, 'gold', '2027-01-01 00:00:00+00', 'x', '2026-03-01 10:00:00+00')$$,
                 'LY002', NULL, 'unknown member -> LY002');
SELECT is(pg_temp.hist(pg_temp.m('up')), 'base enroll 2025-12-31 23:00:00+00 q', 'the errors wrote nothing');

-- Pin above: up has 50 (base) and is matched to gold until local midnight
-- 1 Jul 2027 (CEST: 2027-06-30 22:00 UTC).
SELECT is((loyalty.earn(pg_temp.m('up'), 50, 'p1', '2026-02-01 10:00:00+00')).tier, 'base', 'up: 50 -> base');
SELECT is(loyalty.set_tier(pg_temp.m('up'), 'gold', '2027-06-30 22:00:00+00', 'status match', '2026-03-01 10:00:00+00'),
          'gold', 'set_tier returns the tier');
SELECT is(pg_temp.changes(pg_temp.m('up')), 'base>gold override 2026-03-01 10:00:00+00 q', 'override row base -> gold');
SELECT is((SELECT detail FROM loyalty.tier_history(pg_temp.m('up')) WHERE reason = 'override'),
          jsonb_build_object('reason', 'status match', 'until', '2027-06-30 22:00:00+00',
                             'session_user', session_user, 'current_user', current_user),
          'audit detail: reason, until, session_user, current_user');
SELECT is(pg_temp.mt(pg_temp.m('up')), 'gold|override|{"lounge": true}|2027-06-30 22:00:00+00||',
          'member_tiers: source override, pinned_until');
-- The review at E27 sees 2026's 50 (base) but may not go below the pin; an
-- earn of 150 in 2027 (processing that review lazily) leaves gold.
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('up'), 150, 'p2', '2027-02-01 10:00:00+00')), '150/200/0/gold/f',
          'up: after the E27 review, still gold (pinned)');
SELECT lives_ok($$SELECT loyalty.run_maintenance('2027-06-30 21:59:59+00')$$, 'maintenance one second before until');
SELECT is(pg_temp.mt(pg_temp.m('up')), 'gold|override|{"lounge": true}|2027-06-30 22:00:00+00||', 'still pinned gold');
SELECT lives_ok($$SELECT loyalty.run_maintenance('2027-06-30 22:00:00+00')$$, 'maintenance at until');
-- at until the figure of 2027 so far (150) decides: silver, reason override_end
SELECT is(pg_temp.changes(pg_temp.m('up')),
          'base>gold override 2026-03-01 10:00:00+00 q | gold>silver override_end 2027-06-30 22:00:00+00 q150',
          'the pin ends: down to what the figure reaches (silver), reason override_end, dated at until');
SELECT is((SELECT format('%s|%s|%s', source, pinned_until, review_at) FROM loyalty.member_tiers WHERE member_id = pg_temp.m('up')),
          'qualified||2027-12-31 23:00:00+00', 'after the pin: qualified, next review at the local year end');

-- Pin below: down is gold (600) and set to silver until local midnight
-- 1 Sep 2026 (2026-08-31 22:00 UTC); at until the figure (600) puts them
-- back in gold.
SELECT is((loyalty.earn(pg_temp.m('down'), 600, 'p1', '2026-02-01 10:00:00+00')).tier, 'gold', 'down: 600 -> gold');
SELECT is(loyalty.set_tier(pg_temp.m('down'), 'silver', '2026-08-31 22:00:00+00', 'suspected fraud', '2026-03-01 10:00:00+00'),
          'silver', 'pin below the qualified tier');
SELECT is(pg_temp.mt(pg_temp.m('down')), 'silver|override|{}|2026-08-31 22:00:00+00||', 'down: silver now, pinned');
SELECT lives_ok($$SELECT loyalty.run_maintenance('2026-08-31 22:00:00+00')$$, 'maintenance at until');
SELECT is(pg_temp.changes(pg_temp.m('down')),
          'base>gold promotion 2026-02-01 10:00:00+00 q600 | gold>silver override 2026-03-01 10:00:00+00 q | silver>gold override_end 2026-08-31 22:00:00+00 q600',
          'down: re-evaluated at until: the figure (600) brings gold back, reason override_end');

-- A pin with no end.
SELECT is(loyalty.set_tier(pg_temp.m('inf'), 'plat', 'infinity', 'VIP', '2026-03-01 10:00:00+00'), 'plat', 'pin until infinity');
SELECT lives_ok($$SELECT loyalty.run_maintenance('2030-01-05 00:00:00+00')$$, 'maintenance years later');
SELECT is(pg_temp.changes(pg_temp.m('inf')), 'base>plat override 2026-03-01 10:00:00+00 q', 'inf: no review lowers a pin with no end');
SELECT is((SELECT detail ->> 'until' FROM loyalty.tier_history(pg_temp.m('inf')) WHERE reason = 'override'),
          'infinity', 'audit detail until = infinity');
-- Pinning the tier the member holds still records the override.
SELECT is((loyalty.earn(pg_temp.m('same'), 150, 'p1', '2026-02-01 10:00:00+00')).tier, 'silver', 'same: silver');
SELECT is(loyalty.set_tier(pg_temp.m('same'), 'silver', '2027-01-31 23:00:00+00', 'keep', '2026-03-01 10:00:00+00'), 'silver', 'pin the same tier');
SELECT is(pg_temp.changes(pg_temp.m('same')),
          'base>silver promotion 2026-02-01 10:00:00+00 q150 | silver>silver override 2026-03-01 10:00:00+00 q',
          'same: an override row silver -> silver');

-- ===========================================================================
-- Plans
-- ===========================================================================
SELECT throws_ok($$SELECT loyalty.add_plan('nope', 'p', 'P', 10, 1)$$, 'LY001', NULL, 'add_plan: unknown program -> LY001');
SELECT throws_ok($$SELECT loyalty.add_plan('tap11', 'p', 'P', 10, 1, 'diamond')$$, 'LY003', NULL, 'add_plan: unknown tier -> LY003');
SELECT throws_ok($$SELECT loyalty.add_plan('tap11', 'p', 'P', -1, 1)$$, 'LY031', NULL, 'add_plan: negative price -> LY031');
SELECT throws_ok($$SELECT loyalty.add_plan('tap11', 'p', 'P', 'NaN', 1)$$, 'LY031', NULL, 'add_plan: NaN price -> LY031');
SELECT throws_ok($$SELECT loyalty.add_plan('tap11', 'p', 'P', 10, 0)$$, 'LY038', NULL, 'add_plan: period 0 -> LY038');
SELECT throws_ok($$SELECT loyalty.add_plan('tap11', 'p', 'P', 10, 121)$$, 'LY038', NULL, 'add_plan: period 121 -> LY038');
SELECT throws_ok($$SELECT loyalty.add_plan('tap11', 'p', 'P', 10, 1, NULL, '{}', true, -1)$$, 'LY032', NULL, 'add_plan: negative bonus -> LY032');
SELECT throws_ok($$SELECT loyalty.add_plan('tap11', 'p', 'P', 10, 1, NULL, '[]')$$, 'LY035', NULL, 'add_plan: benefits not an object -> LY035');
SELECT throws_ok($$SELECT loyalty.add_plan('tap11', 'p', 'P', NULL, 1)$$, 'LY034', NULL, 'add_plan: NULL price -> LY034');
SELECT throws_ok($$SELECT loyalty.add_plan('tap11', '', 'P', 10, 1)$$, 'LY037', NULL, 'add_plan: empty code -> LY037');
SELECT lives_ok($$SELECT loyalty.add_plan('tap11', 'vip_m', 'VIP monthly', 9.99, 1, 'gold', '{"free_shipping": true}', true, 100, 20)$$,
                'plan vip_m: 9.99 a month, gold, 100 points on signup, 20 on renewal');
SELECT lives_ok($$SELECT loyalty.add_plan('tap11', 'vip_y', 'VIP yearly', 99, 12, 'gold', '{"free_shipping": true}', true, 300, 50)$$,
                'plan vip_y: 99 a year, gold, 300 on signup, 50 on renewal');
SELECT lives_ok($$SELECT loyalty.add_plan('tap11', 'box', 'Member prices', 5, 1, NULL, '{"member_price": true}')$$,
                'plan box: benefits only, no tier');
SELECT is((SELECT string_agg(format('%s %s %s %s %s %s %s %s %s', pl.code, pl.name, pl.price, pl.period_months, t.code,
                                    pl.benefits, pl.renews, pl.signup_bonus_points, pl.renewal_bonus_points), ' / ' ORDER BY pl.code)
             FROM loyalty.plan pl JOIN loyalty.program p ON p.id = pl.program_id LEFT JOIN loyalty.tier t ON t.id = pl.tier_id
            WHERE p.code = 'tap11'),
          'box Member prices 5 1  {"member_price": true} t 0 0 / '
          'vip_m VIP monthly 9.99 1 gold {"free_shipping": true} t 100 20 / '
          'vip_y VIP yearly 99 12 gold {"free_shipping": true} t 300 50',
          'add_plan stored the three plans');
-- (If add_plan failed above, write the plans directly so that the rest of
-- this file still tests subscriptions; nothing is inserted when it worked.)
INSERT INTO loyalty.plan (program_id, code, name, price, period_months, tier_id, benefits, renews,
                          signup_bonus_points, renewal_bonus_points)
SELECT p.id, v.code, v.name, v.price, v.months, t.id, v.benefits::jsonb, true, v.bonus, v.renewal
  FROM (VALUES ('vip_m', 'VIP monthly', 9.99, 1, 'gold', '{"free_shipping": true}', 100, 20),
               ('vip_y', 'VIP yearly', 99, 12, 'gold', '{"free_shipping": true}', 300, 50),
               ('box', 'Member prices', 5, 1, NULL, '{"member_price": true}', 0, 0))
       v(code, name, price, months, tier, benefits, bonus, renewal)
  JOIN loyalty.program p ON p.code = 'tap11'
  LEFT JOIN loyalty.tier t ON t.program_id = p.id AND t.code = v.tier
 WHERE NOT EXISTS (SELECT FROM loyalty.plan x WHERE x.program_id = p.id AND x.code = v.code);
SELECT throws_ok($$SELECT loyalty.add_plan('tap11', 'vip_m', 'again', 1, 1)$$, 'LY041', NULL, 'add_plan: duplicate code -> LY041');

-- s1 subscribes monthly at 11:00 CET on 31 Jan: the period ends at 11:00 on
-- 28 Feb (day clamped) = 2026-02-28 10:00 UTC. Gold at once, 100 points.
SELECT is(pg_temp.rc(loyalty.subscribe(pg_temp.m('s1'), 'vip_m', 'sub1', '2026-01-31 10:00:00+00')),
          '100/100/0/gold/f', 'subscribe: gold at once, 100 bonus points available');
SELECT is(pg_temp.changes(pg_temp.m('s1')), 'base>gold subscription 2026-01-31 10:00:00+00 q', 'history: subscription row');
SELECT is((SELECT detail FROM loyalty.tier_history(pg_temp.m('s1')) WHERE reason = 'subscription'),
          '{"plan": "vip_m"}'::jsonb, 'subscription row names the plan');
SELECT is((SELECT format('%s %s %s', kind, points, amount) FROM loyalty.entry WHERE member_id = pg_temp.m('s1')),
          'subscribe 100 9.99', 'ledger: one subscribe entry, 100 points, amount = price');
SELECT is(pg_temp.mt(pg_temp.m('s1')), 'gold|subscription|{"lounge": true, "free_shipping": true}||2026-02-28 10:00:00+00|vip_m',
          'member_tiers: source subscription, benefits of tier and plan merged');
SELECT is((SELECT format('%s|%s|%s|%s|%s|%s|%s', tier, source, qualifying, next_tier, needed, lapses_at, benefits)
             FROM loyalty.tier_progress(pg_temp.m('s1'), '2026-02-10 00:00:00+00')),
          'gold|subscription|0|plat|1000|2026-02-28 10:00:00+00|{"lounge": true, "free_shipping": true}',
          'tier_progress: lapses at the end of the paid period; benefits merged');
SELECT is(pg_temp.rc(loyalty.subscribe(pg_temp.m('s1'), 'vip_m', 'sub1', '2026-02-05 10:00:00+00')),
          '100/100/0/gold/t', 'subscribe replay: the original receipt');
SELECT throws_ok($$SELECT loyalty.subscribe(pg_temp.m('s1'), 'vip_y', 'sub1', '2026-02-05 10:00:00+00')$$,
                 'LY020', NULL, 'same key, another plan -> LY020');
SELECT throws_ok($$SELECT loyalty.subscribe(pg_temp.m('s1'), 'vip_y', 'sub2', '2026-02-10 10:00:00+00')$$,
                 'LY071', NULL, 'a second subscription while one runs -> LY071');
-- renew from the end: 28 Feb 11:00 CET -> 28 Mar 11:00 CET (10:00 UTC), then
-- -> 28 Apr 11:00 CEST (09:00 UTC, across the DST change)
SELECT is(pg_temp.rc(loyalty.renew(pg_temp.m('s1'), 'ren1', '2026-02-20 10:00:00+00')), '20/120/0/gold/f', 'renew: 20 bonus points');
SELECT is((SELECT subscription_until FROM loyalty.member_tiers WHERE member_id = pg_temp.m('s1')),
          '2026-03-28 10:00:00+00'::timestamptz, 'renew extends from the end of the period, not from at');
SELECT is(pg_temp.rc(loyalty.renew(pg_temp.m('s1'), 'ren2', '2026-03-01 10:00:00+00')), '20/140/0/gold/f', 'renew again');
SELECT is((SELECT format('%s %s %s', ends_at, periods, lapsed_at) FROM loyalty.subscription WHERE member_id = pg_temp.m('s1')),
          '2026-04-28 09:00:00+00 3 ', 'three periods, to 28 Apr 11:00 CEST');
SELECT is(loyalty.cancel_subscription(pg_temp.m('s1'), '2026-03-05 10:00:00+00'),
          '2026-04-28 09:00:00+00'::timestamptz, 'cancel_subscription returns the end of the paid period');
SELECT lives_ok($$SELECT loyalty.run_maintenance('2026-04-28 08:59:59+00')$$, 'maintenance one second before the end');
SELECT is(pg_temp.mt(pg_temp.m('s1')), 'gold|subscription|{"lounge": true, "free_shipping": true}||2026-04-28 09:00:00+00|vip_m',
          'cancelled: the tier holds until the end');
SELECT lives_ok($$SELECT loyalty.run_maintenance('2026-04-28 09:00:00+00')$$, 'maintenance at the end');
SELECT is(pg_temp.changes(pg_temp.m('s1')),
          'base>gold subscription 2026-01-31 10:00:00+00 q | gold>base subscription_end 2026-04-28 09:00:00+00 q0',
          'the subscription lapses: down to what the figure reaches (0: base), reason subscription_end');
SELECT is(pg_temp.mt(pg_temp.m('s1')), 'base|qualified|{}|||', 'member_tiers after the lapse: no plan, no plan benefits');
SELECT throws_ok($$SELECT loyalty.cancel_subscription(pg_temp.m('s1'), '2026-05-01 10:00:00+00')$$,
                 'LY070', NULL, 'cancel after the lapse -> LY070');
-- renew after the lapse: a new period from at (12:00 CEST 10 May -> 10 Jun)
SELECT is(pg_temp.rc(loyalty.renew(pg_temp.m('s1'), 'ren3', '2026-05-10 10:00:00+00')), '20/160/0/gold/f', 'renew after the lapse');
SELECT is((SELECT string_agg(format('%s %s %s', started_at, ends_at, lapsed_at), ' / ' ORDER BY id)
             FROM loyalty.subscription WHERE member_id = pg_temp.m('s1')),
          '2026-01-31 10:00:00+00 2026-04-28 09:00:00+00 2026-04-28 09:00:00+00 / 2026-05-10 10:00:00+00 2026-06-10 10:00:00+00 ',
          'renew after the lapse starts a new period at at');
SELECT is((SELECT format('%s %s', lifetime_earned, qualifying) FROM loyalty.balance(pg_temp.m('s1'), '2026-05-11 00:00:00+00')),
          '160 0', 'bonus points count in lifetime_earned, not in the qualifying figure');

-- Errors: no subscription, unknown plan, unknown member.
SELECT throws_ok($$SELECT loyalty.renew(pg_temp.m('s4'), 'ren1', '2026-05-01 10:00:00+00')$$, 'LY070', NULL, 'renew without a subscription -> LY070');
SELECT throws_ok($$SELECT loyalty.cancel_subscription(pg_temp.m('s4'), '2026-05-01 10:00:00+00')$$, 'LY070', NULL, 'cancel without a subscription -> LY070');
SELECT throws_ok($$SELECT loyalty.subscribe(pg_temp.m('s4'), 'nope', 'sub1', '2026-05-01 10:00:00+00')$$, 'LY006', NULL, 'unknown plan -> LY006');
SELECT throws_ok($$SELECT loyalty.subscribe(-1, 'vip_m', 'sub1', '2026-05-01 10:00:00+00')$$, 'LY002', NULL, 'unknown member -> LY002');

-- The granted tier is a floor: s2 qualifies for plat (1200), buys the
-- yearly plan (gold, until 2027-12-01 10:00 UTC: no change now), then a
-- refund of 900 leaves 2026 at 300 (silver). At E27 the review lowers what
-- s2 earned to silver, but the plan holds gold; when the plan ends s2 holds the
-- silver earned by 2026's figure, until the next review (the end of 2027).
SELECT is((loyalty.earn(pg_temp.m('s2'), 1200, 'p1', '2026-03-01 10:00:00+00')).tier, 'plat', 's2: plat');
SELECT is(pg_temp.rc(loyalty.subscribe(pg_temp.m('s2'), 'vip_y', 'sub1', '2026-12-01 10:00:00+00')),
          '300/1500/0/plat/f', 'subscribing to a lower tier: plat stays, 300 points');
SELECT is(pg_temp.rc(loyalty.reverse(pg_temp.m('s2'), 'p1', 900, 'r1', '2026-12-05 10:00:00+00')),
          '-900/600/0/plat/f', 'refund 900');
SELECT lives_ok($$SELECT loyalty.run_maintenance('2027-12-01 09:59:59+00')$$, 'maintenance through E27');
SELECT is(pg_temp.changes(pg_temp.m('s2')),
          'base>plat promotion 2026-03-01 10:00:00+00 q1200 | plat>gold downgrade 2026-12-31 23:00:00+00 q300',
          'the review stops at the plan''s tier (gold), not silver');
SELECT lives_ok($$SELECT loyalty.run_maintenance('2027-12-01 10:00:00+00')$$, 'maintenance at the end of the plan');
SELECT is(pg_temp.changes(pg_temp.m('s2')),
          'base>plat promotion 2026-03-01 10:00:00+00 q1200 | plat>gold downgrade 2026-12-31 23:00:00+00 q300 | gold>silver subscription_end 2027-12-01 10:00:00+00 q0',
          'the plan ends: back to the earned tier (silver), not below it');

-- A plan of benefits only (no tier): its benefits last for the paid period
-- (11:00 CET 10 Mar -> 11:00 CEST 10 Apr = 09:00 UTC), then it lapses.
SELECT is(pg_temp.rc(loyalty.subscribe(pg_temp.m('s3'), 'box', 'b1', '2026-03-10 10:00:00+00')), '0/0/0/base/f', 'subscribe to box');
SELECT is(pg_temp.mt(pg_temp.m('s3')), 'base|qualified|{"member_price": true}||2026-04-10 09:00:00+00|box', 'box benefits while paid');
SELECT lives_ok($$SELECT loyalty.run_maintenance('2026-04-10 09:00:00+00')$$, 'maintenance at the end of the box period');
SELECT is(pg_temp.mt(pg_temp.m('s3')), 'base|qualified|{}|||', 'box: the plan has lapsed, its benefits are gone');
SELECT lives_ok($$SELECT loyalty.subscribe(pg_temp.m('s3'), 'box', 'b2', '2026-05-01 10:00:00+00')$$,
                'box: a new subscription after the lapse is allowed');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
