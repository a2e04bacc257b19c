-- 20_reports: the reporting views and functions (issue 7), each figure checked
-- against small programs computed by hand.
--   tap20k   explicit 2025 timestamps: program_kpis, cohort_retention, member_value
--   tap20tz  cohort boundaries in the program's time zone
--   tap20n   data placed relative to now() (now() is fixed for the transaction):
--            member_summary, liability, expiring_points, tier_distribution, program_kpis_30d
--   tap20p   pending points (one lot due for release but not yet released)
--   tap20i   inactivity expiry (deadline from the last activity)
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(78);

CREATE FUNCTION pg_temp.m(prog text, ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code = prog AND m.external_ref = ref $$;
-- member_summary balances as text
CREATE FUNCTION pg_temp.ms(prog text, ref text) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s/%s/%s/%s/%s', available, pending, lifetime_earned, redeemed, expired,
                  next_expiry_points, debt)
      FROM loyalty.member_summary WHERE member_id = pg_temp.m(prog, ref) $$;
CREATE FUNCTION pg_temp.kpi(prog text, f timestamptz, t timestamptz) RETURNS text LANGUAGE sql AS $$
    SELECT format('members %s new %s active %s issued %s redeemed %s expired %s purchasers %s repeaters %s '
                  'purchases %s spend %s reversed %s adjusted_out %s',
                  members, new_members, active_members, points_issued, points_redeemed, points_expired,
                  purchasers, repeat_purchasers, purchases, spend, points_reversed, points_adjusted_out)
      FROM loyalty.program_kpis(prog, f, t) $$;
CREATE FUNCTION pg_temp.liab(prog text) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s %s | %s/%s/%s | debt %s', available_points, pending_points, outstanding_points,
                  outstanding_value, expiring_30d, expiring_60d, expiring_90d, debt_points)
      FROM loyalty.liability WHERE program = prog $$;

-- ===========================================================================
-- tap20k: rolling 1-month expiry, UTC, explicit times in 2025
-- ===========================================================================
DO $$BEGIN
    PERFORM loyalty.create_program('tap20k', 'KPIs',
            '{"expiry": {"policy": "rolling", "months": 1}, "cost_per_point": 0.01}');
    PERFORM loyalty.add_tier('tap20k', 'base', 'Base', 0);
    PERFORM loyalty.add_tier('tap20k', 'gold', 'Gold', 100000, 2);
    PERFORM loyalty.enroll('tap20k', 'a', '2025-01-05 00:00:00+00');
    PERFORM loyalty.enroll('tap20k', 'b', '2025-01-20 00:00:00+00');
    PERFORM loyalty.enroll('tap20k', 'c', '2025-02-10 00:00:00+00');
    PERFORM loyalty.enroll('tap20k', 'd', '2025-03-03 00:00:00+00');
    -- a: 100 (expires 02-10, outside March), 50 and 30 in March, redeem 20 in March
    PERFORM loyalty.earn(pg_temp.m('tap20k', 'a'), 100, 'a1', '2025-01-10 00:00:00+00');
    PERFORM loyalty.earn(pg_temp.m('tap20k', 'a'), 50, 'a2', '2025-03-05 00:00:00+00');
    PERFORM loyalty.earn(pg_temp.m('tap20k', 'a'), 30, 'a3', '2025-03-20 00:00:00+00');
    PERFORM loyalty.redeem(pg_temp.m('tap20k', 'a'), 20, 'a4', '2025-03-25 00:00:00+00');
    -- b: 40 in February, 10 redeemed, the other 30 expire 2025-03-15 (never swept here)
    PERFORM loyalty.earn(pg_temp.m('tap20k', 'b'), 40, 'b1', '2025-02-15 00:00:00+00');
    PERFORM loyalty.redeem(pg_temp.m('tap20k', 'b'), 10, 'b2', '2025-02-20 00:00:00+00');
    -- c: award 25, earn 60, refund $30 of it (30 points), adjust -5, transfer 10 to d
    PERFORM loyalty.award(pg_temp.m('tap20k', 'c'), 25, 'welcome', 'c1', '2025-03-02 00:00:00+00');
    PERFORM loyalty.earn(pg_temp.m('tap20k', 'c'), 60, 'c2', '2025-03-10 00:00:00+00');
    PERFORM loyalty.reverse(pg_temp.m('tap20k', 'c'), 'c2', 30, 'c3', '2025-03-12 00:00:00+00');
    PERFORM loyalty.adjust(pg_temp.m('tap20k', 'c'), -5, 'typo', 'c4', '2025-03-13 00:00:00+00');
    PERFORM loyalty.transfer(pg_temp.m('tap20k', 'c'), pg_temp.m('tap20k', 'd'), 10, 'c5', '2025-03-14 00:00:00+00');
    -- d: one earn on the last second of March, one on the first instant of April
    PERFORM loyalty.earn(pg_temp.m('tap20k', 'd'), 20, 'd1', '2025-03-31 23:59:59+00');
    PERFORM loyalty.earn(pg_temp.m('tap20k', 'd'), 10, 'd2', '2025-04-01 00:00:00+00');
END$$;

-- ---------------------------------------------------------------------------
-- program_kpis
-- ---------------------------------------------------------------------------
-- March: members a b c d (4), new d; active a (earn, redeem), c (earn), d (earn); b only
-- expired. Issued: a 50+30, c 25+60, d 20 = 185. Redeemed: a 20. Expired: b 30 (03-15).
-- Purchases a 2, c 1, d 1 = 4; spend 50+30+60+20-30 = 130. Reversed 30, adjusted out 5.
SELECT is(pg_temp.kpi('tap20k', '2025-03-01 00:00:00+00', '2025-04-01 00:00:00+00'),
          'members 4 new 1 active 3 issued 185 redeemed 20 expired 30 purchasers 3 repeaters 1 '
          'purchases 4 spend 130 reversed 30 adjusted_out 5',
          'program_kpis: March counts (unswept expiry included)');
SELECT is((SELECT round(redemption_rate, 6) FROM loyalty.program_kpis('tap20k', '2025-03-01', '2025-04-01')),
          round(20 / 185.0, 6), 'redemption rate = redeemed / issued');
SELECT is((SELECT round(breakage_rate, 6) FROM loyalty.program_kpis('tap20k', '2025-03-01', '2025-04-01')),
          round(30 / 185.0, 6), 'breakage rate = expired / issued');
SELECT is((SELECT round(avg_points_per_member, 6) FROM loyalty.program_kpis('tap20k', '2025-03-01', '2025-04-01')),
          round(185 / 3.0, 6), 'avg points per member = issued / active members');
SELECT is((SELECT round(repeat_purchase_rate, 6) FROM loyalty.program_kpis('tap20k', '2025-03-01', '2025-04-01')),
          round(1 / 3.0, 6), 'repeat purchase rate = 2+ purchasers / 1+ purchasers');
-- The period is half-open: d's earn at 2025-04-01 00:00 belongs to April only.
SELECT is(pg_temp.kpi('tap20k', '2025-04-01 00:00:00+00', '2025-04-01 00:00:01+00'),
          'members 4 new 0 active 1 issued 10 redeemed 0 expired 0 purchasers 1 repeaters 0 '
          'purchases 1 spend 10 reversed 0 adjusted_out 0',
          'program_kpis: an entry at from_at is in the period');
SELECT is(pg_temp.kpi('tap20k', '2025-03-31 23:59:59+00', '2025-04-01 00:00:00+00'),
          'members 4 new 0 active 1 issued 20 redeemed 0 expired 0 purchasers 1 repeaters 0 '
          'purchases 1 spend 20 reversed 0 adjusted_out 0',
          'program_kpis: an entry at to_at is not');
-- January: a's earn; a and b enrolled; nothing expired.
SELECT is(pg_temp.kpi('tap20k', '2025-01-01', '2025-02-01'),
          'members 2 new 2 active 1 issued 100 redeemed 0 expired 0 purchasers 1 repeaters 0 '
          'purchases 1 spend 100 reversed 0 adjusted_out 0', 'program_kpis: January');
-- February: b earns 40 and redeems 10; a's 100 expired 02-10 (written when a earned in March).
SELECT is(pg_temp.kpi('tap20k', '2025-02-01', '2025-03-01'),
          'members 3 new 1 active 1 issued 40 redeemed 10 expired 100 purchasers 1 repeaters 0 '
          'purchases 1 spend 40 reversed 0 adjusted_out 0', 'program_kpis: February (swept expiry)');
SELECT is((SELECT breakage_rate FROM loyalty.program_kpis('tap20k', '2025-02-01', '2025-03-01')), 2.5,
          'breakage above 1 when more expires than is issued');
-- April: everything left expires (none of it swept): a 30 (04-05) + 30 (04-20), c 10 award
-- lot (04-02) + 30 earn lot (04-10), d 10 transferred (04-02) + 20 (04-30 23:59:59); d2's
-- 10 expires 05-01. Issued: d2 10.
SELECT is((SELECT points_expired FROM loyalty.program_kpis('tap20k', '2025-04-01', '2025-05-01')), 130::bigint,
          'program_kpis: April expiry (lots past expiry, not yet swept)');
SELECT is((SELECT breakage_rate FROM loyalty.program_kpis('tap20k', '2025-04-01', '2025-05-01')), 13::numeric,
          'program_kpis: April breakage');
SELECT is((SELECT (redemption_rate, breakage_rate, avg_points_per_member, repeat_purchase_rate)::text
             FROM loyalty.program_kpis('tap20k', '2024-01-01', '2024-12-01')), '(,,,)',
          'ratios are NULL when nothing happened');
SELECT is((SELECT members FROM loyalty.program_kpis('tap20k', '2024-01-01', '2024-12-01')), 0::bigint,
          'no members before the first enrolment');

SELECT throws_ok($$SELECT * FROM loyalty.program_kpis('nope', '2025-01-01', '2025-02-01')$$, 'LY001',
                 'program "nope" does not exist', 'program_kpis: unknown program');
SELECT throws_ok($$SELECT * FROM loyalty.program_kpis(NULL, '2025-01-01', '2025-02-01')$$, 'LY034',
                 NULL, 'program_kpis: NULL program');
SELECT throws_ok($$SELECT * FROM loyalty.program_kpis('tap20k', NULL, '2025-02-01')$$, 'LY034',
                 NULL, 'program_kpis: NULL from_at');
SELECT throws_ok($$SELECT * FROM loyalty.program_kpis('tap20k', '2025-02-01', '2025-02-01')$$, 'LY038',
                 NULL, 'program_kpis: empty period');
SELECT throws_ok($$SELECT * FROM loyalty.program_kpis('tap20k', '2025-03-01', '2025-02-01')$$, 'LY038',
                 NULL, 'program_kpis: reversed period');
SELECT is((SELECT points_issued FROM loyalty.program_kpis('tap20k', '-infinity', 'infinity')), 335::bigint,
          'program_kpis: all time (-infinity to infinity)');

-- ---------------------------------------------------------------------------
-- cohort_retention
-- ---------------------------------------------------------------------------
-- cohorts: 2025-01 a b (2), 2025-02 c (1), 2025-03 d (1). Earn/redeem months:
-- a Jan, Mar; b Feb; c Mar; d Mar, Apr.
CREATE TEMP TABLE coh AS SELECT * FROM loyalty.cohort_retention('tap20k');
SELECT results_eq(
    $$SELECT cohort::text, period_offset, cohort_members, active_members, retention
        FROM coh WHERE period_offset <= 3 ORDER BY 1, 2$$,
    $$VALUES ('2025-01-01', 0, 2::bigint, 1::bigint, 0.5),
             ('2025-01-01', 1, 2, 1, 0.5),
             ('2025-01-01', 2, 2, 1, 0.5),
             ('2025-01-01', 3, 2, 0, 0),
             ('2025-02-01', 0, 1, 0, 0),
             ('2025-02-01', 1, 1, 1, 1),
             ('2025-02-01', 2, 1, 0, 0),
             ('2025-02-01', 3, 1, 0, 0),
             ('2025-03-01', 0, 1, 1, 1),
             ('2025-03-01', 1, 1, 1, 1),
             ('2025-03-01', 2, 1, 0, 0),
             ('2025-03-01', 3, 1, 0, 0)$$,
    'cohort_retention by month: the triangle''s first four periods');
-- every cohort runs up to the current month
SELECT is((SELECT max(period_offset) FROM coh WHERE cohort = '2025-01-01'),
          ((extract(year FROM now())::int - 2025) * 12 + extract(month FROM now())::int - 1),
          'the 2025-01 cohort reaches the current month');
SELECT is((SELECT count(*)::int FROM coh), (SELECT 3 * (max(period_offset) + 1) - 3 FROM coh WHERE cohort = '2025-01-01'),
          'a triangle: each later cohort has one period less');
SELECT results_eq(
    $$SELECT cohort::text, period_offset, cohort_members, active_members, retention
        FROM loyalty.cohort_retention('tap20k', 'quarter') WHERE period_offset <= 1$$,
    $$VALUES ('2025-01-01', 0, 4::bigint, 4::bigint, 1::numeric), ('2025-01-01', 1, 4, 1, 0.25)$$,
    'cohort_retention by quarter');
SELECT results_eq(
    $$SELECT cohort::text, period_offset, active_members
        FROM loyalty.cohort_retention('tap20k', 'year') WHERE period_offset = 0$$,
    $$VALUES ('2025-01-01', 0, 4::bigint)$$, 'cohort_retention by year');
SELECT throws_ok($$SELECT * FROM loyalty.cohort_retention('tap20k', 'day')$$, 'LY038',
                 'invalid period "day"', 'cohort_retention: unknown period');
SELECT throws_ok($$SELECT * FROM loyalty.cohort_retention('tap20k', NULL)$$, 'LY034', NULL,
                 'cohort_retention: NULL period');
SELECT throws_ok($$SELECT * FROM loyalty.cohort_retention('nope')$$, 'LY001', NULL,
                 'cohort_retention: unknown program');

-- tap20tz: months are local months
DO $$BEGIN
    PERFORM loyalty.create_program('tap20tz', 'TZ', '{"timezone": "America/New_York"}');
    PERFORM loyalty.add_tier('tap20tz', 'base', 'Base', 0);
    -- 2025-01-31 23:30 in New York
    PERFORM loyalty.enroll('tap20tz', 'e', '2025-02-01 04:30:00+00');
    -- 2025-02-28 23:59:59 in New York: still February there
    PERFORM loyalty.earn(pg_temp.m('tap20tz', 'e'), 5, 'e1', '2025-03-01 04:59:59+00');
END$$;
SELECT results_eq(
    $$SELECT cohort::text, period_offset, active_members FROM loyalty.cohort_retention('tap20tz')
       WHERE period_offset <= 2$$,
    $$VALUES ('2025-01-01', 0, 0::bigint), ('2025-01-01', 1, 1), ('2025-01-01', 2, 0)$$,
    'cohort_retention: cohorts and activity in the program''s time zone');

-- ---------------------------------------------------------------------------
-- member_value (tenure from now())
-- ---------------------------------------------------------------------------
-- a: 3 visits, $180; c: 1 visit (partly refunded), $30, lifetime_earned 25 + 60 - 30 = 55
SELECT results_eq(
    $$SELECT external_ref, visits, spend, avg_order_value, points_earned, points_cost
        FROM loyalty.member_value('tap20k') ORDER BY member_id$$,
    $$VALUES ('a', 3::bigint, 180::numeric, 60::numeric, 180::bigint, 1.80),
             ('b', 1, 40, 40, 40, 0.40),
             ('c', 1, 30, 30, 55, 0.55),
             ('d', 2, 30, 15, 40, 0.40)$$,
    'member_value: visits, spend, average order value, points cost');
SELECT is((SELECT round(tenure_days, 6) FROM loyalty.member_value('tap20k') WHERE external_ref = 'a'),
          round((extract(epoch FROM now() - '2025-01-05 00:00:00+00'::timestamptz) / 86400)::numeric, 6),
          'member_value: tenure in days since enrolment');

-- ===========================================================================
-- tap20n: rolling 12 months, cost 0.01, data relative to now()
-- ===========================================================================
DO $$BEGIN
    PERFORM loyalty.create_program('tap20n', 'Now', '{"expiry": {"policy": "rolling", "months": 12},
                                                       "cost_per_point": 0.01, "negative_balance": "allow"}');
    PERFORM loyalty.add_tier('tap20n', 'base', 'Base', 0);
    PERFORM loyalty.add_tier('tap20n', 'silver', 'Silver', 500);
    PERFORM loyalty.add_tier('tap20n', 'gold', 'Gold', 100000);
    PERFORM loyalty.enroll('tap20n', 'n1', now() - interval '400 days');
    PERFORM loyalty.enroll('tap20n', 'n2', now() - interval '15 months');
    PERFORM loyalty.enroll('tap20n', 'n3', now() - interval '5 days');
    PERFORM loyalty.enroll('tap20n', 'n4', now() - interval '60 days');
    -- n1: lots expiring in about 10, 45, 75 days and 11 months; redeem 50 from the first
    PERFORM loyalty.earn(pg_temp.m('tap20n', 'n1'), 100, 'n1a', now() - interval '12 months' + interval '10 days');
    PERFORM loyalty.earn(pg_temp.m('tap20n', 'n1'), 200, 'n1b', now() - interval '12 months' + interval '45 days');
    PERFORM loyalty.earn(pg_temp.m('tap20n', 'n1'), 300, 'n1c', now() - interval '12 months' + interval '75 days');
    PERFORM loyalty.earn(pg_temp.m('tap20n', 'n1'), 400, 'n1d', now() - interval '30 days');
    PERFORM loyalty.redeem(pg_temp.m('tap20n', 'n1'), 50, 'n1r', now() - interval '20 days');
    -- n2: 70 expired about two months ago (not swept), 30 expire in about 6 months
    PERFORM loyalty.award(pg_temp.m('tap20n', 'n2'), 70, 'old', 'n2a', now() - interval '14 months');
    PERFORM loyalty.earn(pg_temp.m('tap20n', 'n2'), 30, 'n2b', now() - interval '6 months');
    -- n4: earns 80, spends them, refunds the purchase: owes 80
    PERFORM loyalty.earn(pg_temp.m('tap20n', 'n4'), 80, 'n4e', now() - interval '50 days');
    PERFORM loyalty.redeem(pg_temp.m('tap20n', 'n4'), 80, 'n4r', now() - interval '40 days');
    PERFORM loyalty.reverse(pg_temp.m('tap20n', 'n4'), 'n4e', NULL, 'n4v', now() - interval '30 days');
END$$;

-- ---------------------------------------------------------------------------
-- member_summary
-- ---------------------------------------------------------------------------
-- available/pending/lifetime_earned/redeemed/expired/next_expiry_points/debt
SELECT is(pg_temp.ms('tap20n', 'n1'), '950/0/1000/50/0/50/0', 'member_summary: n1');
SELECT is((SELECT next_expiry FROM loyalty.member_summary WHERE member_id = pg_temp.m('tap20n', 'n1')),
          loyalty.add_months_local(now() - interval '12 months' + interval '10 days', 12, 'UTC'),
          'member_summary: n1''s next expiry is its oldest lot''s');
SELECT is(pg_temp.ms('tap20n', 'n2'), '30/0/100/0/70/30/0',
          'member_summary: expired lots count as expired before maintenance runs');
SELECT is((SELECT (available, expired) FROM loyalty.member WHERE id = pg_temp.m('tap20n', 'n2')), (100::bigint, 0::bigint),
          '(the member row has not been swept yet)');
SELECT is(pg_temp.ms('tap20n', 'n3'), '0/0/0/0/0/0/0', 'member_summary: a member without entries');
SELECT is((SELECT next_expiry FROM loyalty.member_summary WHERE member_id = pg_temp.m('tap20n', 'n3')), NULL,
          'member_summary: no next expiry without points');
SELECT is(pg_temp.ms('tap20n', 'n4'), '-80/0/0/80/0/0/80', 'member_summary: a debt is negative available');
SELECT is((SELECT format('%s %s %s %s %s', program, external_ref, tier, lifetime_spend, lifetime_visits)
             FROM loyalty.member_summary WHERE member_id = pg_temp.m('tap20n', 'n1')),
          'tap20n n1 silver 1000 4', 'member_summary: program, ref, tier, spend, visits');
SELECT is((SELECT format('%s %s', lifetime_spend, lifetime_visits)
             FROM loyalty.member_summary WHERE member_id = pg_temp.m('tap20n', 'n4')),
          '0 0', 'member_summary: a fully refunded purchase is no spend and no visit');
SELECT is((SELECT last_activity_at FROM loyalty.member_summary WHERE member_id = pg_temp.m('tap20n', 'n4')),
          now() - interval '40 days', 'member_summary: last activity (a refund is not activity)');
SELECT is((SELECT enrolled_at FROM loyalty.member_summary WHERE member_id = pg_temp.m('tap20n', 'n3')),
          now() - interval '5 days', 'member_summary: enrolled_at');

-- ---------------------------------------------------------------------------
-- liability
-- ---------------------------------------------------------------------------
-- available 950 + 30 - 80 = 900; expiring: 50 (~10 d), +200 (~45 d), +300 (~75 d)
SELECT is(pg_temp.liab('tap20n'), '900/0/900 9.00 | 50/250/550 | debt 80', 'liability: tap20n');
SELECT is((SELECT (available_value, pending_value, cost_per_point)::text FROM loyalty.liability WHERE program = 'tap20n'),
          '(9.00,0.00,0.01)', 'liability: values at cost_per_point');

-- ---------------------------------------------------------------------------
-- expiring_points
-- ---------------------------------------------------------------------------
SELECT results_eq(
    $$SELECT external_ref, points FROM loyalty.expiring_points('30 days', 'tap20n')$$,
    $$VALUES ('n1', 50::bigint)$$, 'expiring_points: 30 days');
SELECT results_eq(
    $$SELECT external_ref, points, expires_at FROM loyalty.expiring_points('90 days', 'tap20n')$$,
    $$VALUES ('n1', 50::bigint, loyalty.add_months_local(now() - interval '12 months' + interval '10 days', 12, 'UTC')),
             ('n1', 200, loyalty.add_months_local(now() - interval '12 months' + interval '45 days', 12, 'UTC')),
             ('n1', 300, loyalty.add_months_local(now() - interval '12 months' + interval '75 days', 12, 'UTC'))$$,
    'expiring_points: one row per member and expiry instant, soonest first');
SELECT is((SELECT sum(points) FROM loyalty.expiring_points('1 year', 'tap20n')), 980::numeric,
          'expiring_points: n1''s 950 and n2''s 30 within a year');
SELECT throws_ok($$SELECT * FROM loyalty.expiring_points(NULL)$$, 'LY034', NULL, 'expiring_points: NULL');
SELECT throws_ok($$SELECT * FROM loyalty.expiring_points('0 days')$$, 'LY038', NULL, 'expiring_points: zero');
SELECT throws_ok($$SELECT * FROM loyalty.expiring_points('-1 day')$$, 'LY038', NULL, 'expiring_points: negative');
SELECT throws_ok($$SELECT * FROM loyalty.expiring_points('1 day', 'nope')$$, 'LY001', NULL,
                 'expiring_points: unknown program');

-- ---------------------------------------------------------------------------
-- tier_distribution
-- ---------------------------------------------------------------------------
SELECT results_eq(
    $$SELECT tier, members, share FROM loyalty.tier_distribution WHERE program = 'tap20n' ORDER BY threshold$$,
    $$VALUES ('base', 3::bigint, 0.75), ('silver', 1, 0.25), ('gold', 0, 0)$$,
    'tier_distribution: every tier, with the share of members');

-- ---------------------------------------------------------------------------
-- program_kpis_30d: now() - 30 days <= at < now()
-- ---------------------------------------------------------------------------
-- n1d (exactly 30 days ago: in), n1r; n4's refund of $80 (in) but not its earn or redeem.
SELECT is((SELECT format('%s %s %s %s %s %s %s %s %s %s', members, new_members, active_members, points_issued,
                         points_redeemed, points_expired, redemption_rate, repeat_purchase_rate, spend,
                         points_reversed)
             FROM loyalty.program_kpis_30d WHERE program = 'tap20n'),
          '4 1 1 400 50 0 0.12500000000000000000 0.00000000000000000000 320 80', 'program_kpis_30d');
SELECT is((SELECT (from_at, to_at) FROM loyalty.program_kpis_30d WHERE program = 'tap20n'),
          (now() - interval '30 days', now()), 'program_kpis_30d: its period');

-- ===========================================================================
-- tap20p: pending points; tap20i: inactivity expiry
-- ===========================================================================
DO $$BEGIN
    PERFORM loyalty.create_program('tap20p', 'Pending', '{"pending_days": 5, "cost_per_point": 0.02}');
    PERFORM loyalty.add_tier('tap20p', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tap20p', r, now() - interval '30 days') FROM unnest(ARRAY['p1', 'p2']) r;
    PERFORM loyalty.earn(pg_temp.m('tap20p', 'p1'), 100, 'p1', now() - interval '10 days');  -- available since 5 days
    PERFORM loyalty.earn(pg_temp.m('tap20p', 'p2'), 40, 'p2', now() - interval '2 days');    -- pending 3 more days
    PERFORM loyalty.create_program('tap20i', 'Inactivity', '{"expiry": {"policy": "inactivity", "months": 1}}');
    PERFORM loyalty.add_tier('tap20i', 'base', 'Base', 0);
    PERFORM loyalty.enroll('tap20i', r, now() - interval '90 days') FROM unnest(ARRAY['i1', 'i2']) r;
    PERFORM loyalty.earn(pg_temp.m('tap20i', 'i1'), 60, 'i1', now() - interval '70 days');   -- deadline passed
    PERFORM loyalty.earn(pg_temp.m('tap20i', 'i2'), 25, 'i2', now() - interval '20 days');   -- deadline in ~10 days
END$$;
SELECT is(pg_temp.ms('tap20p', 'p1'), '100/0/100/0/0/0/0', 'member_summary: a lot past its pending period is available');
SELECT is(pg_temp.ms('tap20p', 'p2'), '0/40/40/0/0/0/0', 'member_summary: pending');
SELECT is(pg_temp.liab('tap20p'), '100/40/140 2.80 | 0/0/0 | debt 0', 'liability: pending points, no expiry');
SELECT is(pg_temp.ms('tap20i', 'i1'), '0/0/60/0/60/0/0', 'member_summary: inactivity deadline passed');
SELECT is(pg_temp.ms('tap20i', 'i2'), '25/0/25/0/0/25/0', 'member_summary: inactivity deadline ahead');
SELECT is((SELECT next_expiry FROM loyalty.member_summary WHERE member_id = pg_temp.m('tap20i', 'i2')),
          loyalty.add_months_local(now() - interval '20 days', 1, 'UTC'), 'member_summary: the inactivity deadline');
SELECT is(pg_temp.liab('tap20i'), '25/0/25 0 | 25/25/25 | debt 0', 'liability: inactivity');
SELECT results_eq(
    $$SELECT program_code, external_ref, points FROM loyalty.expiring_points('30 days') ORDER BY 1$$,
    $$VALUES ('tap20i', 'i2', 25::bigint), ('tap20n', 'n1', 50)$$,
    'expiring_points: all programs (inactivity deadlines included)');
SELECT results_eq(
    $$SELECT external_ref, points, expires_at FROM loyalty.expiring_points('30 days', 'tap20i')$$,
    $$VALUES ('i2', 25::bigint, loyalty.add_months_local(now() - interval '20 days', 1, 'UTC'))$$,
    'expiring_points: one inactivity program, the deadline as the expiry instant');
SELECT is_empty($$SELECT * FROM loyalty.expiring_points('5 days', 'tap20i')$$,
                'expiring_points: an inactivity deadline after the window is not listed');
SELECT is((SELECT count(*) FROM loyalty.liability WHERE program LIKE 'tap20%'), 5::bigint,
          'liability: one row per program');

-- ---------------------------------------------------------------------------
-- The reports agree with balance(member, now()) for every member
-- ---------------------------------------------------------------------------
CREATE FUNCTION pg_temp.disagree() RETURNS SETOF text LANGUAGE sql AS $$
    SELECT s.external_ref
      FROM loyalty.member_summary s CROSS JOIN LATERAL loyalty.balance(s.member_id, now()) b
     WHERE (s.available, s.pending, s.lifetime_earned, s.redeemed, s.expired, s.next_expiry_points)
           IS DISTINCT FROM (b.available, b.pending, b.lifetime_earned, b.redeemed, b.expired, b.next_expiry_points)
        OR s.next_expiry IS DISTINCT FROM b.next_expiry $$;
SELECT is_empty('SELECT * FROM pg_temp.disagree()', 'member_summary equals balance(member, now()) for every member');
SELECT is((SELECT sum(available_points) FROM loyalty.liability),
          (SELECT sum(b.available) FROM loyalty.member m CROSS JOIN LATERAL loyalty.balance(m.id, now()) b),
          'liability''s available is the sum of the members'' balances');

-- ---------------------------------------------------------------------------
-- A reporting role reads the reports and nothing else
-- ---------------------------------------------------------------------------
-- (the views and report functions run with the caller's rights, so that row-level
-- security keeps a tenant to its programs: loyalty_report holds what they need)
CREATE ROLE tap20_reporting NOLOGIN IN ROLE loyalty_report;
SET LOCAL ROLE tap20_reporting;
CREATE TEMP TABLE tap20_seen AS
SELECT (SELECT count(*) FROM loyalty.member_summary WHERE program = 'tap20n') AS summary,
       (SELECT available_points FROM loyalty.liability WHERE program = 'tap20n') AS liability,
       (SELECT points_issued FROM loyalty.program_kpis_30d WHERE program = 'tap20n') AS kpis30,
       (SELECT sum(members) FROM loyalty.tier_distribution WHERE program = 'tap20n') AS tiers,
       (SELECT points_issued FROM loyalty.program_kpis('tap20k', '2025-03-01', '2025-04-01')) AS kpis,
       (SELECT count(*) FROM loyalty.cohort_retention('tap20k')) AS cohorts,
       (SELECT sum(visits) FROM loyalty.member_value('tap20k')) AS visits,
       (SELECT sum(points) FROM loyalty.expiring_points('30 days')) AS expiring;
RESET ROLE;
SELECT is((SELECT (summary, liability, kpis30, tiers, kpis, visits, expiring)::text FROM tap20_seen),
          '(4,900,400,4,185,7,75)', 'the reporting role reads every view and function');
SELECT ok(NOT has_table_privilege('tap20_reporting', 'loyalty.member', 'INSERT, UPDATE, DELETE, TRUNCATE')
          AND NOT has_table_privilege('tap20_reporting', 'loyalty.entry', 'INSERT, UPDATE, DELETE, TRUNCATE')
          AND NOT has_table_privilege('tap20_reporting', 'loyalty.voucher', 'SELECT')
          AND NOT has_table_privilege('tap20_reporting', 'loyalty.voucher_key', 'SELECT'),
          'the reporting role cannot write the tables nor read vouchers and keys');
SELECT ok(NOT has_function_privilege('public', 'loyalty.program_kpis(text, timestamptz, timestamptz)', 'EXECUTE')
          AND NOT has_function_privilege('public', 'loyalty.expiring_points(interval, text)', 'EXECUTE'),
          'the report functions are not executable by PUBLIC');
SET LOCAL ROLE tap20_reporting;
SELECT throws_ok($$SELECT count(*) FROM loyalty.voucher$$, '42501', NULL, 'the reporting role cannot read vouchers');
RESET ROLE;

-- ---------------------------------------------------------------------------
-- Maintenance changes no figure
-- ---------------------------------------------------------------------------
CREATE TEMP TABLE before_maint AS
SELECT (SELECT string_agg(format('%s', l), ';' ORDER BY l.program) FROM loyalty.liability l) AS liab,
       (SELECT string_agg(format('%s', s), ';' ORDER BY s.member_id) FROM loyalty.member_summary s) AS summ,
       (SELECT format('%s', k) FROM loyalty.program_kpis('tap20k', '2025-03-01', '2025-04-01') k) AS march,
       (SELECT format('%s', k) FROM loyalty.program_kpis('tap20k', '2025-04-01', '2025-05-01') k) AS april;
SELECT ok((loyalty.run_maintenance(now())->>'expire_entries')::int > 0, 'maintenance writes the expire entries');
SELECT is((SELECT liab FROM before_maint),
          (SELECT string_agg(format('%s', l), ';' ORDER BY l.program) FROM loyalty.liability l),
          'liability is the same after maintenance');
SELECT is((SELECT summ FROM before_maint),
          (SELECT string_agg(format('%s', s), ';' ORDER BY s.member_id) FROM loyalty.member_summary s),
          'member_summary is the same after maintenance');
SELECT is((SELECT march FROM before_maint),
          (SELECT format('%s', k) FROM loyalty.program_kpis('tap20k', '2025-03-01', '2025-04-01') k),
          'program_kpis (March) is the same after maintenance');
SELECT is((SELECT april FROM before_maint),
          (SELECT format('%s', k) FROM loyalty.program_kpis('tap20k', '2025-04-01', '2025-05-01') k),
          'program_kpis (April) is the same after maintenance');
SELECT is_empty('SELECT * FROM pg_temp.disagree()', 'member_summary still equals balance() after maintenance');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
