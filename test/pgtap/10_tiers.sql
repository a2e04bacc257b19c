-- 10_tiers: the tier model of issue 3 (qualifying windows, promotion,
-- period-end reviews, one_step, grace, retention, refunds, history, progress).
--
-- Every program but two runs in Europe/Paris: CET (UTC+1) in winter, CEST
-- (UTC+2) from 2026-03-29 01:00 UTC and 2027-03-28 01:00 UTC. Local
-- midnight on 1 January is 23:00 UTC the day before. All times below are
-- written in UTC; the local time is in the comments.
BEGIN;
SET LOCAL timezone = 'UTC';
SET LOCAL datestyle = 'ISO';
SELECT plan(109);

CREATE FUNCTION pg_temp.m(prog text, ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT loyalty.member_id(prog, ref) $$;
-- the qualifying figure (balance) at each of the given instants, joined by '/'
CREATE FUNCTION pg_temp.qs(mid bigint, VARIADIC ts timestamptz[]) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg((SELECT b.qualifying FROM loyalty.balance(mid, t) b)::text, '/' ORDER BY n)
      FROM unnest(ts) WITH ORDINALITY u(t, n) $$;
-- tier history as "to_tier reason at qQUALIFYING | ..."
CREATE FUNCTION pg_temp.hist(mid bigint) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(format('%s %s %s q%s', h.to_tier, h.reason, h.at, h.qualifying), ' | ' ORDER BY h.n)
      FROM loyalty.tier_history(mid) WITH ORDINALITY
           h(at, from_tier, to_tier, reason, qualifying, detail, recorded_at, n) $$;
CREATE FUNCTION pg_temp.tier(mid bigint) RETURNS text LANGUAGE sql AS $$
    SELECT tier FROM loyalty.member_tiers WHERE member_id = mid $$;

-- ===========================================================================
-- A. Window edges: calendar_year and rolling 3 months, for each basis.
-- ===========================================================================
-- silver needs 101 points / 101 money / 3 visits; every multiplier is 1, so
-- points = amount and the three bases only differ for visits.
DO $$
DECLARE b text; w text;
BEGIN
    FOREACH b IN ARRAY ARRAY['points', 'spend', 'visits'] LOOP
        FOREACH w IN ARRAY ARRAY['cy', 'rm'] LOOP
            PERFORM loyalty.create_program(format('tap10_%s_%s', w, b), 'edges',
                jsonb_build_object('timezone', 'Europe/Paris', 'tier_basis', b,
                                   'tier_window', CASE w WHEN 'cy' THEN '"calendar_year"'::jsonb
                                                         ELSE '{"rolling_months": 3}'::jsonb END));
            PERFORM loyalty.add_tier(format('tap10_%s_%s', w, b), 'base', 'Base', 0);
            PERFORM loyalty.add_tier(format('tap10_%s_%s', w, b), 'silver', 'Silver',
                                     CASE b WHEN 'visits' THEN 3 ELSE 101 END);
            PERFORM loyalty.enroll(format('tap10_%s_%s', w, b), r, '2025-12-01 00:00:00+00')
               FROM unnest(ARRAY['a', 'b', 'c', 'd']) r;
        END LOOP;
    END LOOP;
END$$;

-- Calendar year. a and b buy 20 at 21:00 and 20 at 22:00 local on
-- 31 Dec 2026; a buys 61 at 23:59:59 local (still 2026: 101 / 3 visits ->
-- silver), b at 00:00:00 local on 1 Jan 2027 (a new year: 61 / 1 visit).
DO $$
DECLARE b text;
BEGIN
    FOREACH b IN ARRAY ARRAY['points', 'spend', 'visits'] LOOP
        PERFORM loyalty.earn(loyalty.member_id('tap10_cy_' || b, r), 20, 'c1', '2026-12-31 20:00:00+00'),
                loyalty.earn(loyalty.member_id('tap10_cy_' || b, r), 20, 'c2', '2026-12-31 21:00:00+00')
           FROM unnest(ARRAY['a', 'b']) r;
    END LOOP;
END$$;
SELECT is((SELECT string_agg((loyalty.earn(pg_temp.m('tap10_cy_' || b, 'a'), 61, 'c3', '2026-12-31 22:59:59+00')).tier, ',' ORDER BY b)
             FROM unnest(ARRAY['points', 'spend', 'visits']) b),
          'silver,silver,silver', 'calendar_year: a purchase at 23:59:59 local on 31 Dec counts in that year and promotes');
SELECT is((SELECT string_agg((loyalty.earn(pg_temp.m('tap10_cy_' || b, 'b'), 61, 'c3', '2026-12-31 23:00:00+00')).tier, ',' ORDER BY b)
             FROM unnest(ARRAY['points', 'spend', 'visits']) b),
          'base,base,base', 'calendar_year: a purchase at 00:00:00 local on 1 Jan starts the new year (no promotion)');
SELECT is(pg_temp.qs(pg_temp.m('tap10_cy_points', 'a'), '2026-12-31 22:59:58+00', '2026-12-31 22:59:59+00',
                     '2026-12-31 23:00:00+00', '2026-12-31 23:00:01+00'),
          '40/101/0/0', 'calendar_year points, a: 40 / 101 / 0 at the local year end / 0');
SELECT is(pg_temp.qs(pg_temp.m('tap10_cy_points', 'b'), '2026-12-31 22:59:59+00', '2026-12-31 23:00:00+00',
                     '2026-12-31 23:00:01+00'),
          '40/61/61', 'calendar_year points, b: 40 / 61 / 61');
SELECT is(pg_temp.qs(pg_temp.m('tap10_cy_spend', 'a'), '2026-12-31 22:59:58+00', '2026-12-31 22:59:59+00',
                     '2026-12-31 23:00:00+00', '2026-12-31 23:00:01+00'),
          '40/101/0/0', 'calendar_year spend, a');
SELECT is(pg_temp.qs(pg_temp.m('tap10_cy_spend', 'b'), '2026-12-31 22:59:59+00', '2026-12-31 23:00:00+00',
                     '2026-12-31 23:00:01+00'),
          '40/61/61', 'calendar_year spend, b');
SELECT is(pg_temp.qs(pg_temp.m('tap10_cy_visits', 'a'), '2026-12-31 22:59:58+00', '2026-12-31 22:59:59+00',
                     '2026-12-31 23:00:00+00', '2026-12-31 23:00:01+00'),
          '2/3/0/0', 'calendar_year visits, a');
SELECT is(pg_temp.qs(pg_temp.m('tap10_cy_visits', 'b'), '2026-12-31 22:59:59+00', '2026-12-31 23:00:00+00',
                     '2026-12-31 23:00:01+00'),
          '2/1/1', 'calendar_year visits, b');

-- Rolling 3 months, (at - 3 local months, at]. a and b buy 20 at 00:30 local
-- on 1 Jan 2026 (2025-12-31 23:30 UTC, across the year end; it leaves the
-- window at 00:30 local on 1 Apr 2026, CEST: 2026-03-31 22:30 UTC, across
-- the DST change) and 20 at 12:00 CET on 15 Jan (11:00 UTC; leaves at 12:00
-- CEST on 15 Apr: 10:00 UTC). a buys 61 one second before the first one
-- leaves (101 / 3 visits: silver), b exactly when it leaves (81 / 2: base).
DO $$
DECLARE b text;
BEGIN
    FOREACH b IN ARRAY ARRAY['points', 'spend', 'visits'] LOOP
        PERFORM loyalty.earn(loyalty.member_id('tap10_rm_' || b, r), 20, 'r1', '2025-12-31 23:30:00+00'),
                loyalty.earn(loyalty.member_id('tap10_rm_' || b, r), 20, 'r2', '2026-01-15 11:00:00+00')
           FROM unnest(ARRAY['a', 'b']) r;
    END LOOP;
END$$;
SELECT is((SELECT string_agg((loyalty.earn(pg_temp.m('tap10_rm_' || b, 'a'), 61, 'r3', '2026-03-31 22:29:59+00')).tier, ',' ORDER BY b)
             FROM unnest(ARRAY['points', 'spend', 'visits']) b),
          'silver,silver,silver', 'rolling: one second before the oldest purchase leaves (across DST), it still counts');
SELECT is((SELECT string_agg((loyalty.earn(pg_temp.m('tap10_rm_' || b, 'b'), 61, 'r3', '2026-03-31 22:30:00+00')).tier, ',' ORDER BY b)
             FROM unnest(ARRAY['points', 'spend', 'visits']) b),
          'base,base,base', 'rolling: exactly 3 local months later it has left');
SELECT is(pg_temp.qs(pg_temp.m('tap10_rm_points', 'a'), '2026-03-31 22:29:58+00', '2026-03-31 22:29:59+00',
                     '2026-03-31 22:30:00+00', '2026-03-31 22:30:01+00',
                     '2026-04-15 09:59:59+00', '2026-04-15 10:00:00+00', '2026-04-15 10:00:01+00'),
          '40/101/81/81/81/61/61', 'rolling points, a: both edges one second either side');
SELECT is(pg_temp.qs(pg_temp.m('tap10_rm_points', 'b'), '2026-03-31 22:29:59+00', '2026-03-31 22:30:00+00',
                     '2026-04-15 09:59:59+00', '2026-04-15 10:00:00+00', '2026-04-15 10:00:01+00'),
          '40/81/81/61/61', 'rolling points, b');
SELECT is(pg_temp.qs(pg_temp.m('tap10_rm_spend', 'a'), '2026-03-31 22:29:58+00', '2026-03-31 22:29:59+00',
                     '2026-03-31 22:30:00+00', '2026-03-31 22:30:01+00',
                     '2026-04-15 09:59:59+00', '2026-04-15 10:00:00+00', '2026-04-15 10:00:01+00'),
          '40/101/81/81/81/61/61', 'rolling spend, a');
SELECT is(pg_temp.qs(pg_temp.m('tap10_rm_visits', 'a'), '2026-03-31 22:29:58+00', '2026-03-31 22:29:59+00',
                     '2026-03-31 22:30:00+00', '2026-03-31 22:30:01+00',
                     '2026-04-15 09:59:59+00', '2026-04-15 10:00:00+00', '2026-04-15 10:00:01+00'),
          '2/3/2/2/2/1/1', 'rolling visits, a');
SELECT is(pg_temp.qs(pg_temp.m('tap10_rm_visits', 'b'), '2026-03-31 22:29:59+00', '2026-03-31 22:30:00+00',
                     '2026-04-15 09:59:59+00', '2026-04-15 10:00:00+00', '2026-04-15 10:00:01+00'),
          '2/2/2/1/1', 'rolling visits, b');

-- The DST edge through earn's own (incremental) figure: c and d buy 20 on
-- 15 Jan 12:00 CET and 20 on 1 Feb; c buys 61 at 11:59:59 CEST on 15 Apr
-- (the 15 Jan purchase still counts: 101 / 3), d at 12:00:00 CEST (81 / 2).
DO $$
DECLARE b text;
BEGIN
    FOREACH b IN ARRAY ARRAY['points', 'spend', 'visits'] LOOP
        PERFORM loyalty.earn(loyalty.member_id('tap10_rm_' || b, r), 20, 'd1', '2026-01-15 11:00:00+00'),
                loyalty.earn(loyalty.member_id('tap10_rm_' || b, r), 20, 'd2', '2026-02-01 10:00:00+00')
           FROM unnest(ARRAY['c', 'd']) r;
    END LOOP;
END$$;
SELECT is((SELECT string_agg((loyalty.earn(pg_temp.m('tap10_rm_' || b, 'c'), 61, 'd3', '2026-04-15 09:59:59+00')).tier, ',' ORDER BY b)
             FROM unnest(ARRAY['points', 'spend', 'visits']) b),
          'silver,silver,silver', 'rolling, DST: 11:59:59 CEST on 15 Apr still counts 12:00 CET on 15 Jan');
SELECT is((SELECT string_agg((loyalty.earn(pg_temp.m('tap10_rm_' || b, 'd'), 61, 'd3', '2026-04-15 10:00:00+00')).tier, ',' ORDER BY b)
             FROM unnest(ARRAY['points', 'spend', 'visits']) b),
          'base,base,base', 'rolling, DST: at 12:00:00 CEST on 15 Apr the 15 Jan purchase has left');
SELECT is((SELECT qualifying FROM loyalty.member WHERE id = pg_temp.m('tap10_rm_spend', 'd')),
          81::numeric, 'the member row keeps the same figure as balance (81)');

-- Review dates: a calendar-year silver is reviewed at the local year end,
-- a rolling one 3 local months after it was reached (00:29:59 CEST on
-- 1 Apr -> 00:29:59 CEST on 1 Jul = 2026-06-30 22:29:59 UTC).
SELECT is((SELECT review_at FROM loyalty.member_tiers WHERE member_id = pg_temp.m('tap10_cy_points', 'a')),
          '2026-12-31 23:00:00+00'::timestamptz, 'calendar_year: review at local midnight, 1 Jan 2027');
SELECT is((SELECT review_at FROM loyalty.member_tiers WHERE member_id = pg_temp.m('tap10_rm_points', 'a')),
          '2026-06-30 22:29:59+00'::timestamptz, 'rolling 3: review 3 local months after the promotion');
-- At that review the window ending just before it, [31 Mar 22:29:59, 30 Jun
-- 22:29:59), holds only a's 61 (the crossing purchase; the two 20s have
-- left): 61 < 101, a drops to base, dated at the review. One second earlier
-- nothing happens.
SELECT lives_ok($$SELECT loyalty.run_maintenance('2026-06-30 22:29:58+00')$$, 'maintenance one second before the review');
SELECT is(pg_temp.hist(pg_temp.m('tap10_rm_points', 'a')),
          'base enroll 2025-12-01 00:00:00+00 q | silver promotion 2026-03-31 22:29:59+00 q101',
          'rolling: nothing before the review');
SELECT lives_ok($$SELECT loyalty.run_maintenance('2026-06-30 22:29:59+00')$$, 'maintenance at the review');
SELECT is(pg_temp.hist(pg_temp.m('tap10_rm_points', 'a')),
          'base enroll 2025-12-01 00:00:00+00 q | silver promotion 2026-03-31 22:29:59+00 q101 | base downgrade 2026-06-30 22:29:59+00 q61',
          'rolling: dropped at the review, 3 local months after the promotion (61 < 101)');

-- ===========================================================================
-- B. Downgrades: never / period_end / one_step x grace_days 0 / 30 x
--    tier_retention_periods 0 / 1, calendar year in Paris, points basis.
-- ===========================================================================
-- base 0, silver 100, gold 500, plat 1000, all multipliers 1. Each program has
-- a member l (only operations: lazy) and a member m (maintenance).
--   p1 earn 1200 on 2026-03-01 10:00: base -> plat at once (two tiers skipped)
--   r1 refund 700 of it on 2026-06-01: the 2026 figure drops to 500 (gold) at
--      once, the tier stays plat until a review
--   p2 earn 500 on 2027-01-10, p3 earn 500 on 2028-01-10; nothing after.
-- Figures: 2026 500, 2027 500, 2028 500, 2029 0, 2030 0; January 2027 and
-- January 2028 500, January 2030 and 2031 0.
-- Local year ends (UTC): E27 2026-12-31 23:00, E28 2027-12-31 23:00,
-- E29 2028-12-31 23:00, E30 2029-12-31 23:00, E31 2030-12-31 23:00.
-- Grace ends, 30 local days later: G27 2027-01-30 23:00, G28 2028-01-30 23:00,
-- G30 2030-01-30 23:00, G31 2031-01-30 23:00.
DO $$
DECLARE d text; g int; r int; code text;
BEGIN
    FOREACH d IN ARRAY ARRAY['never', 'period_end', 'one_step'] LOOP
        FOREACH g IN ARRAY ARRAY[0, 30] LOOP
            FOREACH r IN ARRAY ARRAY[0, 1] LOOP
                code := format('tap10_%s_g%s_r%s', CASE d WHEN 'never' THEN 'nv' WHEN 'period_end' THEN 'pe' ELSE 'os' END, g, r);
                PERFORM loyalty.create_program(code, code,
                    jsonb_build_object('timezone', 'Europe/Paris', 'tier_window', 'calendar_year',
                                       'downgrade', d, 'grace_days', g, 'tier_retention_periods', r));
                PERFORM loyalty.add_tier(code, 'base', 'Base', 0);
                PERFORM loyalty.add_tier(code, 'silver', 'Silver', 100);
                PERFORM loyalty.add_tier(code, 'gold', 'Gold', 500);
                PERFORM loyalty.add_tier(code, 'plat', 'Platinum', 1000);
                PERFORM loyalty.enroll(code, 'l', '2025-12-31 23:00:00+00');
                PERFORM loyalty.enroll(code, 'm', '2025-12-31 23:00:00+00');
            END LOOP;
        END LOOP;
    END LOOP;
END$$;
CREATE TEMP VIEW matrix AS
    SELECT code, pg_temp.m(code, 'l') AS l, pg_temp.m(code, 'm') AS m
      FROM loyalty.program WHERE code ~ '^tap10_(nv|pe|os)_g';

-- Lazy members: every operation first; the last one, in 2031, catches up.
SELECT is((SELECT string_agg((loyalty.earn(l, 1200, 'p1', '2026-03-01 10:00:00+00')).tier, ',') FROM matrix),
          'plat,plat,plat,plat,plat,plat,plat,plat,plat,plat,plat,plat', 'earn 1200: base -> plat at once');
SELECT is((SELECT string_agg(format('%s %s %s %s', from_tier, to_tier, reason, qualifying), ',')
             FROM matrix, loyalty.tier_change c WHERE c.member_id = l AND c.reason <> 'enroll'),
          trim(repeat('base plat promotion 1200,', 12), ','), 'one promotion row per member, base -> plat');
SELECT is((SELECT string_agg((loyalty.reverse(l, 'p1', 700, 'r1', '2026-06-01 10:00:00+00')).tier, ',') FROM matrix),
          'plat,plat,plat,plat,plat,plat,plat,plat,plat,plat,plat,plat', 'refund of 700: the tier stays plat for now');
SELECT is(pg_temp.qs(l, '2026-06-01 09:59:59+00', '2026-06-01 10:00:00+00'), '1200/500',
          'refund: the figure drops at once (1200 -> 500)') FROM matrix WHERE code = 'tap10_pe_g0_r0';
SELECT lives_ok($$SELECT loyalty.earn(l, 500, 'p2', '2027-01-10 10:00:00+00'),
                         loyalty.earn(l, 500, 'p3', '2028-01-10 10:00:00+00'),
                         loyalty.award(l, 1, 'catch up', 'late', '2031-06-01 00:00:00+00') FROM matrix$$,
                'lazy members: p2, p3 and an award in 2031');

-- Maintenance members.
SELECT lives_ok($$SELECT loyalty.earn(m, 1200, 'p1', '2026-03-01 10:00:00+00'),
                         loyalty.reverse(m, 'p1', 700, 'r1', '2026-06-01 10:00:00+00') FROM matrix$$,
                'maintenance members: p1 and r1');
-- tier_progress right after the refund: plat, 500, lapses at the review
-- (plus 30 days of grace).
SELECT is((SELECT string_agg(format('%s %s %s %s %s %s', t.tier, t.source, t.qualifying, t.threshold,
                                    t.review_at, t.lapses_at), ',' ORDER BY code)
             FROM matrix, loyalty.tier_progress(m, '2026-06-02 00:00:00+00') t
            WHERE code ~ '_(pe|os)_'),
          'plat qualified 500 1000 2026-12-31 23:00:00+00 2026-12-31 23:00:00+00,'
          'plat qualified 500 1000 2027-12-31 23:00:00+00 2027-12-31 23:00:00+00,'
          'plat qualified 500 1000 2026-12-31 23:00:00+00 2027-01-30 23:00:00+00,'
          'plat qualified 500 1000 2027-12-31 23:00:00+00 2028-01-30 23:00:00+00,'
          'plat qualified 500 1000 2026-12-31 23:00:00+00 2026-12-31 23:00:00+00,'
          'plat qualified 500 1000 2027-12-31 23:00:00+00 2027-12-31 23:00:00+00,'
          'plat qualified 500 1000 2026-12-31 23:00:00+00 2027-01-30 23:00:00+00,'
          'plat qualified 500 1000 2027-12-31 23:00:00+00 2028-01-30 23:00:00+00',
          'tier_progress after the refund: review_at E27 (retention 0) / E28 (retention 1), lapses_at + grace');
SELECT is((SELECT string_agg(coalesce(review_at::text, 'none'), ',' ORDER BY code) FROM matrix
             JOIN loyalty.member_tiers mt ON mt.member_id = m WHERE code ~ '_nv_'),
          'none,none,none,none', 'downgrade never: no review date');

SELECT lives_ok($$SELECT loyalty.run_maintenance('2026-12-31 22:59:59+00')$$, 'maintenance one second before E27');
SELECT is((SELECT string_agg(pg_temp.tier(m), ',' ORDER BY code) FROM matrix),
          'plat,plat,plat,plat,plat,plat,plat,plat,plat,plat,plat,plat', 'nothing changes before the year end');
SELECT lives_ok($$SELECT loyalty.run_maintenance('2026-12-31 23:00:00+00')$$, 'maintenance at E27 (local midnight)');
-- codes in order: nv_g0_r0 nv_g0_r1 nv_g30_r0 nv_g30_r1 os_g0_r0 os_g0_r1
-- os_g30_r0 os_g30_r1 pe_g0_r0 pe_g0_r1 pe_g30_r0 pe_g30_r1
SELECT is((SELECT string_agg(pg_temp.tier(m), ',' ORDER BY code) FROM matrix),
          'plat,plat,plat,plat,gold,plat,plat,plat,gold,plat,plat,plat',
          'at E27: retention 0 without grace drops to gold (2026 figure 500)');
SELECT is((SELECT string_agg(format('%s %s', t.source, t.grace_until), ',' ORDER BY code)
             FROM matrix JOIN loyalty.member_tiers t ON t.member_id = m WHERE code ~ '_(pe|os)_g30_r0'),
          'grace 2027-01-30 23:00:00+00,grace 2027-01-30 23:00:00+00',
          'at E27: retention 0 with grace: a grace of 30 local days starts, source grace');
SELECT is((SELECT lapses_at FROM matrix, loyalty.tier_progress(m, '2027-01-05 00:00:00+00') WHERE code = 'tap10_pe_g30_r0'),
          '2027-01-30 23:00:00+00'::timestamptz, 'tier_progress during grace: lapses at grace_until');
SELECT lives_ok($$SELECT loyalty.earn(m, 500, 'p2', '2027-01-10 10:00:00+00') FROM matrix$$, 'p2');
SELECT lives_ok($$SELECT loyalty.run_maintenance('2027-01-30 22:59:59+00')$$, 'maintenance one second before G27');
SELECT is((SELECT string_agg(pg_temp.tier(m), ',' ORDER BY code) FROM matrix WHERE code ~ '_g30_r0'),
          'plat,plat,plat', 'still plat one second before the grace ends');
SELECT lives_ok($$SELECT loyalty.run_maintenance('2027-01-30 23:00:00+00')$$, 'maintenance at G27');
SELECT is((SELECT string_agg(pg_temp.tier(m), ',' ORDER BY code) FROM matrix WHERE code ~ '_g30_r0'),
          'plat,gold,gold', 'at the grace end: gold (January 2027 figure 500)');
SELECT lives_ok($$SELECT loyalty.run_maintenance('2028-01-05 00:00:00+00');
                  SELECT loyalty.earn(m, 500, 'p3', '2028-01-10 10:00:00+00') FROM matrix;
                  SELECT loyalty.run_maintenance('2031-06-01 00:00:00+00');
                  SELECT loyalty.award(m, 1, 'catch up', 'late', '2031-06-01 00:00:00+00') FROM matrix$$,
                'maintenance through 2031');

-- The histories, worked out by hand (E = enroll row, P = promotion row).
CREATE TEMP TABLE want (code text PRIMARY KEY, h text);
INSERT INTO want
SELECT code, 'base enroll 2025-12-31 23:00:00+00 q | plat promotion 2026-03-01 10:00:00+00 q1200' || coalesce(' | ' || rest, '')
  FROM (VALUES
    ('tap10_nv_g0_r0', NULL), ('tap10_nv_g0_r1', NULL), ('tap10_nv_g30_r0', NULL), ('tap10_nv_g30_r1', NULL),
    -- E27: 500 -> gold; E28, E29: 500 keeps gold; E30: 0 -> base
    ('tap10_pe_g0_r0', 'gold downgrade 2026-12-31 23:00:00+00 q500 | base downgrade 2029-12-31 23:00:00+00 q0'),
    -- first review E28 (one more year): 2027 500 -> gold; E30 -> base
    ('tap10_pe_g0_r1', 'gold downgrade 2027-12-31 23:00:00+00 q500 | base downgrade 2029-12-31 23:00:00+00 q0'),
    -- one step a review: plat -> gold (E27), gold -> silver (E30), silver -> base (E31)
    ('tap10_os_g0_r0', 'gold downgrade 2026-12-31 23:00:00+00 q500 | silver downgrade 2029-12-31 23:00:00+00 q0 | base downgrade 2030-12-31 23:00:00+00 q0'),
    ('tap10_os_g0_r1', 'gold downgrade 2027-12-31 23:00:00+00 q500 | silver downgrade 2029-12-31 23:00:00+00 q0 | base downgrade 2030-12-31 23:00:00+00 q0'),
    -- grace: E27 starts a grace; at G27 January's 500 -> gold; E30 grace -> base at G30
    ('tap10_pe_g30_r0', 'gold grace_end 2027-01-30 23:00:00+00 q500 | base grace_end 2030-01-30 23:00:00+00 q0'),
    ('tap10_pe_g30_r1', 'gold grace_end 2028-01-30 23:00:00+00 q500 | base grace_end 2030-01-30 23:00:00+00 q0'),
    ('tap10_os_g30_r0', 'gold grace_end 2027-01-30 23:00:00+00 q500 | silver grace_end 2030-01-30 23:00:00+00 q0 | base grace_end 2031-01-30 23:00:00+00 q0'),
    ('tap10_os_g30_r1', 'gold grace_end 2028-01-30 23:00:00+00 q500 | silver grace_end 2030-01-30 23:00:00+00 q0 | base grace_end 2031-01-30 23:00:00+00 q0')
  ) v(code, rest);

SELECT is(pg_temp.hist(m), w.h, 'maintenance: ' || code || ' history') FROM matrix JOIN want w USING (code) ORDER BY code;
SELECT is(pg_temp.hist(l), pg_temp.hist(m), 'lazy = maintenance: ' || code) FROM matrix ORDER BY code;
SELECT is((SELECT string_agg(from_tier, ',' ORDER BY n) FROM loyalty.tier_history(m) WITH ORDINALITY
                h(at, from_tier, to_tier, reason, qualifying, detail, recorded_at, n)),
          'base,plat,gold,silver', 'tier_history: from_tier follows the previous row')
  FROM matrix WHERE code = 'tap10_os_g30_r1';
SELECT ok(bool_and(ok), 'tier_history is ordered by at') FROM (
    SELECT h.at >= lag(h.at, 1, '-infinity') OVER (PARTITION BY code ORDER BY n) AS ok
      FROM matrix, loyalty.tier_history(m) WITH ORDINALITY h(at, from_tier, to_tier, reason, qualifying, detail, recorded_at, n)) x;

-- ===========================================================================
-- C. Grace must not cost a member the tier they earned (issue: "a tier earned
--    in a period is kept for the rest of that period and the next").
-- ===========================================================================
-- Same as pe_g30_r0 without the January purchase: the 2026 figure (500)
-- reaches gold, so without grace the member drops plat -> gold at E27 and
-- keeps gold through 2027. With 30 days of grace the member keeps plat until
-- G27 and must then fall to gold, not to base (the figure of January 2027
-- alone is 0).
DO $$BEGIN
    PERFORM loyalty.create_program('tap10_gracecy', 'grace',
        '{"timezone": "Europe/Paris", "tier_window": "calendar_year", "downgrade": "period_end", "grace_days": 30}');
    PERFORM loyalty.add_tier('tap10_gracecy', c, c, t) FROM (VALUES ('base', 0), ('silver', 100), ('gold', 500), ('plat', 1000)) v(c, t);
    PERFORM loyalty.enroll('tap10_gracecy', 'g', '2025-12-31 23:00:00+00');
    PERFORM loyalty.earn(loyalty.member_id('tap10_gracecy', 'g'), 1200, 'p1', '2026-03-01 10:00:00+00');
    PERFORM loyalty.reverse(loyalty.member_id('tap10_gracecy', 'g'), 'p1', 700, 'r1', '2026-06-01 10:00:00+00');
    PERFORM loyalty.run_maintenance('2027-02-15 00:00:00+00');
END$$;
SELECT is(pg_temp.tier(pg_temp.m('tap10_gracecy', 'g')), 'gold',
          'calendar year + grace: after the grace the member holds the tier the 2026 figure earned (gold)');

-- ===========================================================================
-- D. Grace across a DST change: 90 local days from local midnight 1 Jan 2027
--    is local midnight 1 Apr 2027 (CEST) = 2027-03-31 22:00 UTC.
-- ===========================================================================
DO $$BEGIN
    PERFORM loyalty.create_program('tap10_dst', 'dst',
        '{"timezone": "Europe/Paris", "tier_window": "calendar_year", "downgrade": "period_end", "grace_days": 90}');
    PERFORM loyalty.add_tier('tap10_dst', c, c, t) FROM (VALUES ('base', 0), ('silver', 100), ('gold', 500)) v(c, t);
    PERFORM loyalty.enroll('tap10_dst', 'x', '2025-12-31 23:00:00+00');
    PERFORM loyalty.earn(loyalty.member_id('tap10_dst', 'x'), 600, 'p1', '2026-03-01 10:00:00+00');
    PERFORM loyalty.reverse(loyalty.member_id('tap10_dst', 'x'), 'p1', 550, 'r1', '2026-06-01 10:00:00+00');
END$$;
SELECT is((SELECT format('%s %s', review_at, lapses_at) FROM loyalty.tier_progress(pg_temp.m('tap10_dst', 'x'), '2026-07-01 00:00:00+00')),
          '2026-12-31 23:00:00+00 2027-03-31 22:00:00+00',
          'tier_progress lapses_at = review + 90 local days (across DST)');
SELECT lives_ok($$SELECT loyalty.run_maintenance('2027-03-31 21:59:59+00')$$, 'maintenance one second before the grace ends');
SELECT is((SELECT format('%s %s %s', tier, source, grace_until) FROM loyalty.member_tiers WHERE member_id = pg_temp.m('tap10_dst', 'x')),
          'gold grace 2027-03-31 22:00:00+00', 'in grace until local midnight 1 Apr (CEST)');
SELECT lives_ok($$SELECT loyalty.run_maintenance('2027-03-31 22:00:00+00')$$, 'maintenance when the grace ends');
SELECT is(pg_temp.hist(pg_temp.m('tap10_dst', 'x')),
          'base enroll 2025-12-31 23:00:00+00 q | gold promotion 2026-03-01 10:00:00+00 q600 | base grace_end 2027-03-31 22:00:00+00 q0',
          'grace end across DST: base, dated at local midnight');

-- ===========================================================================
-- E. The crossing earn uses the old multiplier; several tiers at once.
-- ===========================================================================
DO $$BEGIN
    PERFORM loyalty.create_program('tap10_mult', 'multipliers', '{"tier_window": "lifetime"}');
    PERFORM loyalty.add_tier('tap10_mult', 'base', 'Base', 0, 1);
    PERFORM loyalty.add_tier('tap10_mult', 'silver', 'Silver', 100, 2);
    PERFORM loyalty.add_tier('tap10_mult', 'gold', 'Gold', 300, 3);
    PERFORM loyalty.enroll('tap10_mult', r, '2026-01-01 00:00:00+00') FROM unnest(ARRAY['a', 'b']) r;
END$$;
CREATE FUNCTION pg_temp.rc(r loyalty.receipt) RETURNS text LANGUAGE sql AS $$
    SELECT format('%s/%s/%s', r.points, r.available, r.tier) $$;
-- a: 350 at x1 = 350 points, base -> gold in one step; then 10 at x3 = 30
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('tap10_mult', 'a'), 350, 'e1', '2026-02-01 10:00:00+00')),
          '350/350/gold', 'a: 350 at the base multiplier, promoted straight to gold');
SELECT is((SELECT s.detail - 'amount' - 'lots' FROM loyalty.statement(pg_temp.m('tap10_mult', 'a')) s
            WHERE s.idempotency_key = 'e1'),
          '{"tier": "base", "multiplier": 1, "promoted_to": "gold", "points_per_unit": 1}'::jsonb,
          'earn detail: the tier held before, its multiplier, promoted_to');
SELECT is(pg_temp.hist(pg_temp.m('tap10_mult', 'a')),
          'base enroll 2026-01-01 00:00:00+00 q | gold promotion 2026-02-01 10:00:00+00 q350',
          'a: one history row base -> gold (not two)');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('tap10_mult', 'a'), 10, 'e2', '2026-02-02 10:00:00+00')),
          '30/380/gold', 'a: the next earn at x3');
-- b: 99 + 1 (crossing at x1 -> silver, figure 100) + 10 at x2 (20, figure 120)
-- + 100 at x2 (200 points, figure 320: crossing into gold at silver's x2) + 10 at x3
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('tap10_mult', 'b'), 99, 'e1', '2026-02-01 10:00:00+00')), '99/99/base', 'b: 99');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('tap10_mult', 'b'), 1, 'e2', '2026-02-02 10:00:00+00')), '1/100/silver', 'b: crossing earn at x1');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('tap10_mult', 'b'), 10, 'e3', '2026-02-03 10:00:00+00')), '20/120/silver', 'b: x2');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('tap10_mult', 'b'), 100, 'e4', '2026-02-04 10:00:00+00')), '200/320/gold', 'b: crossing into gold at x2');
SELECT is(pg_temp.rc(loyalty.earn(pg_temp.m('tap10_mult', 'b'), 10, 'e5', '2026-02-05 10:00:00+00')), '30/350/gold', 'b: x3');
SELECT is((SELECT qualifying FROM loyalty.balance(pg_temp.m('tap10_mult', 'b'), '2026-03-01 00:00:00+00')),
          350::numeric, 'b: qualifying points are the points earned, multipliers included');
-- spending never lowers the figure
SELECT lives_ok($$SELECT loyalty.redeem(pg_temp.m('tap10_mult', 'b'), 300, 'x1', '2026-02-06 10:00:00+00')$$, 'b redeems 300');
SELECT is((SELECT format('%s %s', available, qualifying) FROM loyalty.balance(pg_temp.m('tap10_mult', 'b'), '2026-03-01 00:00:00+00')),
          '50 350', 'b: redeeming leaves the qualifying figure alone');

-- ===========================================================================
-- F. Refunds on spend and visits bases (lifetime window, UTC).
-- ===========================================================================
DO $$BEGIN
    PERFORM loyalty.create_program('tap10_rs', 'refund spend', '{"tier_basis": "spend", "tier_window": "lifetime"}');
    PERFORM loyalty.create_program('tap10_rv', 'refund visits', '{"tier_basis": "visits", "tier_window": "lifetime"}');
    PERFORM loyalty.add_tier(p, 'base', 'Base', 0) FROM unnest(ARRAY['tap10_rs', 'tap10_rv']) p;
    PERFORM loyalty.add_tier('tap10_rs', 'silver', 'Silver', 100);
    PERFORM loyalty.add_tier('tap10_rv', 'silver', 'Silver', 3);
    PERFORM loyalty.enroll(p, 'x', '2026-01-01 00:00:00+00') FROM unnest(ARRAY['tap10_rs', 'tap10_rv']) p;
END$$;
SELECT is((loyalty.earn(pg_temp.m('tap10_rs', 'x'), 150, 'p1', '2026-02-01 10:00:00+00')).tier, 'silver', 'spend 150 -> silver');
SELECT is((loyalty.reverse(pg_temp.m('tap10_rs', 'x'), 'p1', 60, 'r1', '2026-03-01 10:00:00+00')).tier, 'silver',
          'refund of 60: still silver');
SELECT is(pg_temp.qs(pg_temp.m('tap10_rs', 'x'), '2026-03-01 09:59:59+00', '2026-03-01 10:00:00+00'), '150/90',
          'spend: the refund takes the money off at once');
SELECT lives_ok($$SELECT loyalty.run_maintenance('2027-02-01 09:59:59+00')$$, 'one second before the lifetime review (12 months)');
SELECT is(pg_temp.tier(pg_temp.m('tap10_rs', 'x')), 'silver', 'still silver');
SELECT lives_ok($$SELECT loyalty.run_maintenance('2027-02-01 10:00:00+00')$$, 'at the review');
SELECT is(pg_temp.hist(pg_temp.m('tap10_rs', 'x')),
          'base enroll 2026-01-01 00:00:00+00 q | silver promotion 2026-02-01 10:00:00+00 q150 | base downgrade 2027-02-01 10:00:00+00 q90',
          'spend: dropped at the review (90 < 100)');
SELECT is((SELECT string_agg((loyalty.earn(pg_temp.m('tap10_rv', 'x'), 10, k, t)).tier, ',' ORDER BY t)
             FROM (VALUES ('v1', '2026-02-01 10:00:00+00'::timestamptz), ('v2', '2026-02-02 10:00:00+00'),
                          ('v3', '2026-02-03 10:00:00+00')) v(k, t)),
          'base,base,silver', 'visits: the third visit -> silver');
SELECT is((loyalty.reverse(pg_temp.m('tap10_rv', 'x'), 'v2', 5, 'r1', '2026-02-04 10:00:00+00')).tier, 'silver', 'partial refund of v2');
SELECT is(pg_temp.qs(pg_temp.m('tap10_rv', 'x'), '2026-02-04 10:00:00+00'), '3', 'visits: a partial refund keeps the visit');
SELECT is((loyalty.reverse(pg_temp.m('tap10_rv', 'x'), 'v1', NULL, 'r2', '2026-02-05 10:00:00+00')).tier, 'silver', 'full refund of v1');
SELECT is(pg_temp.qs(pg_temp.m('tap10_rv', 'x'), '2026-02-05 09:59:59+00', '2026-02-05 10:00:00+00'), '3/2', 'visits: a full refund takes the visit off at once');
SELECT lives_ok($$SELECT loyalty.run_maintenance('2027-02-03 10:00:00+00')$$, 'at the review');
SELECT is(pg_temp.hist(pg_temp.m('tap10_rv', 'x')),
          'base enroll 2026-01-01 00:00:00+00 q | silver promotion 2026-02-03 10:00:00+00 q3 | base downgrade 2027-02-03 10:00:00+00 q2',
          'visits: dropped at the review (2 < 3)');

-- ===========================================================================
-- G. tier_progress and member_tiers for a qualified member.
-- ===========================================================================
DO $$BEGIN
    PERFORM loyalty.create_program('tap10_prog', 'progress', '{"tier_window": {"rolling_months": 12}}');
    PERFORM loyalty.add_tier('tap10_prog', 'base', 'Base', 0, 1, '{"free_coffee": false}');
    PERFORM loyalty.add_tier('tap10_prog', 'silver', 'Silver', 100, 1, '{"free_coffee": true}');
    PERFORM loyalty.add_tier('tap10_prog', 'gold', 'Gold', 500, 1, '{"free_coffee": true, "lounge": true}');
    PERFORM loyalty.enroll('tap10_prog', r, '2026-01-01 00:00:00+00') FROM unnest(ARRAY['s', 'b']) r;
    PERFORM loyalty.earn(loyalty.member_id('tap10_prog', 's'), 150, 'p1', '2026-03-01 10:00:00+00');
    PERFORM loyalty.earn(loyalty.member_id('tap10_prog', 'b'), 30, 'p1', '2026-03-01 10:00:00+00');
END$$;
SELECT is((SELECT format('%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', tier, tier_name, source, qualifying, threshold,
                         next_tier, next_tier_name, next_threshold, needed, review_at, lapses_at, benefits)
             FROM loyalty.tier_progress(pg_temp.m('tap10_prog', 's'), '2026-04-01 00:00:00+00')),
          'silver|Silver|qualified|150|100|gold|Gold|500|350|2027-03-01 10:00:00+00||{"free_coffee": true}',
          'tier_progress of a silver member with 150');
SELECT is((SELECT format('%s|%s|%s', qualifying, needed, lapses_at)
             FROM loyalty.tier_progress(pg_temp.m('tap10_prog', 's'), '2027-03-01 10:00:00+00')),
          '0|500|2027-03-01 10:00:00+00', 'a year later the purchase has left: needed 500, lapses at the review');
SELECT is((SELECT format('%s|%s|%s|%s|%s|%s|%s', tier, source, qualifying, next_tier, needed, review_at, lapses_at)
             FROM loyalty.tier_progress(pg_temp.m('tap10_prog', 'b'), '2026-04-01 00:00:00+00')),
          'base|qualified|30|silver|70||', 'tier_progress of a base member: no review, no lapse');
SELECT is((SELECT format('%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', program, external_ref, tier, tier_name, benefits,
                         tier_since, source, review_at, grace_until, pinned_until, subscription_until, plan)
             FROM loyalty.member_tiers WHERE member_id = pg_temp.m('tap10_prog', 's')),
          'tap10_prog|s|silver|Silver|{"free_coffee": true}|2026-03-01 10:00:00+00|qualified|2027-03-01 10:00:00+00||||',
          'member_tiers row of a qualified member');
SELECT throws_ok($$SELECT loyalty.tier_history(-1)$$, 'LY002', NULL, 'tier_history of an unknown member -> LY002');
SELECT throws_ok($$SELECT loyalty.tier_history(NULL)$$, 'LY034', NULL, 'tier_history(NULL) -> LY034');

SELECT is_empty('SELECT * FROM loyalty.check_invariants()', 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
