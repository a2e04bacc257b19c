-- 62_set_based_expiry: run_maintenance's set-based expiry pass (src/expiry_batch.c) gives
-- exactly what the per-member sweep gives. The same scenario is built twice (twin programs
-- tap62*_on and tap62*_off) and maintained with loyalty.set_based_expiry on and off, in the
-- same calls (same times, same batch sizes); then entries, lots, draws, member rows, tier
-- changes, outbox events and the calls' counts are compared, with ids replaced by each
-- row's position within its member.
--
-- The scenario mixes members the pass takes (several expiry instants, two lots at one
-- instant, partly spent lots, lots still pending, a lot expiring exactly at `now`, rolling
-- and end_of_period policies in three time zones) with members it must leave to the
-- per-member sweep (a debt from a reversal under negative_balance = allow, a pending lot
-- released by `now`, a tier review due, the inactivity policy).
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(13);

CREATE FUNCTION pg_temp.m(prog text, ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code = prog AND m.external_ref = ref $$;

CREATE FUNCTION pg_temp.build(s text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    a text := 'tap62a_' || s;   -- rolling 1 month, New York, debts allowed
    b text := 'tap62b_' || s;   -- end of month + 1, Tokyo, 2 pending days
    c text := 'tap62c_' || s;   -- tiers reviewed at the end of the calendar year, Berlin
    d text := 'tap62d_' || s;   -- inactivity
BEGIN
    PERFORM loyalty.create_program(a, 'A', '{"timezone": "America/New_York", "negative_balance": "allow",
                                              "expiry": {"policy": "rolling", "months": 1}}');
    PERFORM loyalty.add_tier(a, 'base', 'Base', 0);
    PERFORM loyalty.create_program(b, 'B', '{"timezone": "Asia/Tokyo", "pending_days": 2,
                                              "expiry": {"policy": "end_of_period", "months": 1, "period": "month"}}');
    PERFORM loyalty.add_tier(b, 'base', 'Base', 0);
    PERFORM loyalty.create_program(c, 'C', '{"timezone": "Europe/Berlin", "tier_basis": "points",
                                              "tier_window": "calendar_year", "downgrade": "period_end",
                                              "expiry": {"policy": "rolling", "months": 2}}');
    PERFORM loyalty.add_tier(c, 'base', 'Base', 0);
    PERFORM loyalty.add_tier(c, 'silver', 'Silver', 100);
    PERFORM loyalty.create_program(d, 'D', '{"expiry": {"policy": "inactivity", "months": 1}}');
    PERFORM loyalty.add_tier(d, 'base', 'Base', 0);

    -- a1: four lots, three expiry instants (two lots at 2026-02-10 09:00 local), 25 spent
    PERFORM loyalty.enroll(a, 'a1', '2025-12-01 00:00-05');
    PERFORM loyalty.award(pg_temp.m(a, 'a1'), 30, 'x', 'k1', '2026-01-05 10:00-05');
    PERFORM loyalty.award(pg_temp.m(a, 'a1'), 40, 'x', 'k2', '2026-01-10 09:00-05');
    PERFORM loyalty.award(pg_temp.m(a, 'a1'), 5, 'x', 'k3', '2026-01-10 09:00-05');
    PERFORM loyalty.award(pg_temp.m(a, 'a1'), 60, 'x', 'k4', '2026-01-20 00:00-05');
    PERFORM loyalty.redeem(pg_temp.m(a, 'a1'), 25, 'r1', '2026-01-21 00:00-05');
    -- a2: a debt (earn 100, redeem 80, the purchase reversed), then an award that expires
    PERFORM loyalty.enroll(a, 'a2', '2025-12-01 00:00-05');
    PERFORM loyalty.earn(pg_temp.m(a, 'a2'), 100, 'e1', '2026-01-02 00:00-05');
    PERFORM loyalty.redeem(pg_temp.m(a, 'a2'), 80, 'r1', '2026-01-03 00:00-05');
    PERFORM loyalty.reverse(pg_temp.m(a, 'a2'), 'e1', 100, 'v1', '2026-01-04 00:00-05');
    PERFORM loyalty.award(pg_temp.m(a, 'a2'), 50, 'x', 'k1', '2026-01-06 00:00-05');
    -- a3: a lot expiring exactly at the second maintenance time, another one later
    PERFORM loyalty.enroll(a, 'a3', '2025-12-01 00:00-05');
    PERFORM loyalty.award(pg_temp.m(a, 'a3'), 7, 'x', 'k1', '2026-01-25 12:00-05');
    PERFORM loyalty.award(pg_temp.m(a, 'a3'), 8, 'x', 'k2', '2026-02-20 12:00-05');
    -- a4..a6: plain members, one instant each, in the same batch
    PERFORM loyalty.enroll(a, r, '2025-12-01 00:00-05') FROM unnest(ARRAY['a4', 'a5', 'a6']) r;
    PERFORM loyalty.award(pg_temp.m(a, r), 10 * i, 'x', 'k1', ('2026-01-0' || i || ' 08:00-05')::timestamptz)
       FROM unnest(ARRAY['a4', 'a5', 'a6']) WITH ORDINALITY AS u(r, i);

    -- b1: purchases in January (available 2 days later, expiring 2026-03-01 00:00 Tokyo)
    --     and in February (expiring 2026-04-01): one entry for the three January lots
    PERFORM loyalty.enroll(b, 'b1', '2025-12-01 00:00+09');
    PERFORM loyalty.earn(pg_temp.m(b, 'b1'), 11, 'e1', '2026-01-03 00:00+09');
    PERFORM loyalty.earn(pg_temp.m(b, 'b1'), 12, 'e2', '2026-01-15 00:00+09');
    PERFORM loyalty.earn(pg_temp.m(b, 'b1'), 13, 'e3', '2026-01-28 00:00+09');
    PERFORM loyalty.earn(pg_temp.m(b, 'b1'), 14, 'e4', '2026-02-10 00:00+09');
    PERFORM loyalty.redeem(pg_temp.m(b, 'b1'), 5, 'r1', '2026-02-20 00:00+09');
    -- b2: a lot expiring 03-01 00:00 and a lot still pending when maintenance expires it
    PERFORM loyalty.enroll(b, 'b2', '2025-12-01 00:00+09');
    PERFORM loyalty.earn(pg_temp.m(b, 'b2'), 20, 'e1', '2026-01-10 00:00+09');
    PERFORM loyalty.earn(pg_temp.m(b, 'b2'), 21, 'e2', '2026-02-28 12:00+09');
    -- b3: a lot expiring and a pending lot released by the first maintenance time
    PERFORM loyalty.enroll(b, 'b3', '2025-12-01 00:00+09');
    PERFORM loyalty.earn(pg_temp.m(b, 'b3'), 30, 'e1', '2026-01-12 00:00+09');
    PERFORM loyalty.earn(pg_temp.m(b, 'b3'), 31, 'e2', '2026-02-27 00:00+09');

    -- c1: silver since 2025-12-20, review due 2026-01-01 (keeps silver), lots expiring later
    PERFORM loyalty.enroll(c, 'c1', '2025-06-01 00:00+02');
    PERFORM loyalty.earn(pg_temp.m(c, 'c1'), 150, 'e1', '2025-12-20 00:00+01');
    PERFORM loyalty.earn(pg_temp.m(c, 'c1'), 10, 'e2', '2025-12-28 00:00+01');
    -- c3: silver since 2024, 20 in 2025: the review due 2026-01-01 drops it to base
    PERFORM loyalty.enroll(c, 'c3', '2024-06-01 00:00+02');
    PERFORM loyalty.earn(pg_temp.m(c, 'c3'), 100, 'e1', '2024-12-20 00:00+01');
    PERFORM loyalty.earn(pg_temp.m(c, 'c3'), 20, 'e2', '2025-12-30 00:00+01');
    -- c2: base, no review, lots expiring
    PERFORM loyalty.enroll(c, 'c2', '2025-06-01 00:00+02');
    PERFORM loyalty.earn(pg_temp.m(c, 'c2'), 50, 'e1', '2025-12-22 00:00+01');
    PERFORM loyalty.earn(pg_temp.m(c, 'c2'), 20, 'e2', '2026-01-06 00:00+01');

    -- d1: inactive since January
    PERFORM loyalty.enroll(d, 'd1', '2025-12-01 00:00Z');
    PERFORM loyalty.award(pg_temp.m(d, 'd1'), 90, 'x', 'k1', '2026-01-03 00:00Z');
END $$;

-- Every call of the run: four times, batches of 2 members, then one unlimited call.
CREATE TEMP TABLE runs (twin text, n int, r jsonb);
CREATE FUNCTION pg_temp.maintain(twin text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz;
    r jsonb;
    n int := 0;
BEGIN
    FOREACH t IN ARRAY ARRAY['2026-02-10 09:00-05', '2026-02-25 12:00-05', '2026-03-01 06:00+09', '2026-03-20 00:00Z']::timestamptz[] LOOP
        LOOP
            r := loyalty.run_maintenance(t, 2);
            n := n + 1;
            INSERT INTO runs VALUES (twin, n, r);
            EXIT WHEN (r ->> 'members')::int < 2;
        END LOOP;
    END LOOP;
    n := n + 1;
    INSERT INTO runs VALUES (twin, n, loyalty.run_maintenance('2026-06-01 00:00Z'));
END $$;

-- How many rows each INSERT into the ledger wrote: the pass writes a batch's entries at once.
CREATE TEMP TABLE entry_statements (twin text, expire_rows bigint);
CREATE FUNCTION public.tap62_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO entry_statements
    SELECT current_setting('tap62.twin'), count(*) FROM new_rows WHERE kind = 'expire' HAVING count(*) > 0;
    RETURN NULL;
END $$;
CREATE TRIGGER tap62_count AFTER INSERT ON loyalty.entry REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.tap62_count();

-- The twin 'on' is built and maintained first: at the times 'off' runs later, every
-- member of 'on' is already swept (not due), so each run only sees its own twin.
SET LOCAL tap62.twin = 'build';
SELECT pg_temp.build('on');
SET LOCAL loyalty.set_based_expiry = on;
SET LOCAL tap62.twin = 'on';
SELECT pg_temp.maintain('on');
SET LOCAL tap62.twin = 'build';
SELECT pg_temp.build('off');
SET LOCAL loyalty.set_based_expiry = off;
SET LOCAL tap62.twin = 'off';
SELECT pg_temp.maintain('off');
SET LOCAL loyalty.set_based_expiry = on;
DROP TRIGGER tap62_count ON loyalty.entry;

-- A twin's rows, ids replaced by positions within the member (entries and lots are
-- numbered in id order, which both runs write in the same order per member).
CREATE FUNCTION pg_temp.members(tw text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT concat_ws(' ', p.code, m.external_ref, m.available, m.pending, m.lifetime_earned, m.redeemed,
                     m.expired, m.qualifying, m.lifetime_spend, m.lifetime_visits, m.last_activity_at,
                     m.last_entry_at, m.next_transition_at, m.q_start, m.q_oldest, m.q_asof,
                     m.tier_review_at, m.grace_until, m.pinned_until, m.granted_until, m.tier_since,
                     t.code, et.code, gt.code)
      FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
      JOIN loyalty.tier t ON t.id = m.tier_id
      LEFT JOIN loyalty.tier et ON et.id = m.earned_tier_id
      LEFT JOIN loyalty.tier gt ON gt.id = m.grace_tier_id
     WHERE p.code LIKE 'tap62%\_' || tw
     ORDER BY p.code, m.external_ref $$;
CREATE VIEW pg_temp.entries AS
    SELECT split_part(p.code, '_', 2) AS twin, split_part(p.code, '_', 1) AS prog, m.external_ref AS ref, e.id,
           row_number() OVER (PARTITION BY e.member_id ORDER BY e.id) AS pos, e.kind, e.points, e.at,
           e.idempotency_key, e.request, e.amount, e.reason, e.qualifying, e.qualifying_at,
           e.detail - 'original_entry' AS detail, e.available_after, e.pending_after, e.tier_after, e.ref_entry_id IS NULL AS no_ref
      FROM loyalty.entry e JOIN loyalty.member m ON m.id = e.member_id JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code LIKE 'tap62%';
CREATE VIEW pg_temp.lots AS
    SELECT split_part(p.code, '_', 2) AS twin, split_part(p.code, '_', 1) AS prog, m.external_ref AS ref, l.id,
           row_number() OVER (PARTITION BY l.member_id ORDER BY l.id) AS pos, l.entry_id, l.at, l.points,
           l.remaining, l.available_at, l.expires_at, l.state
      FROM loyalty.lot l JOIN loyalty.member m ON m.id = l.member_id JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code LIKE 'tap62%';

CREATE FUNCTION pg_temp.ledger(tw text) RETURNS SETOF text LANGUAGE sql AS $$
    SELECT concat_ws(' ', 'entry', e.prog, e.ref, e.pos, e.kind, e.points, e.at, e.idempotency_key, e.request,
                     e.amount, e.reason, e.qualifying, e.qualifying_at, e.detail, e.available_after,
                     e.pending_after, e.tier_after, e.no_ref)
      FROM pg_temp.entries e WHERE e.twin = tw
    UNION ALL
    SELECT concat_ws(' ', 'lot', l.prog, l.ref, l.pos, e.pos, l.at, l.points, l.remaining, l.available_at,
                     l.expires_at, l.state)
      FROM pg_temp.lots l JOIN pg_temp.entries e ON e.id = l.entry_id WHERE l.twin = tw
    UNION ALL
    SELECT concat_ws(' ', 'draw', l.prog, l.ref, e.pos, l.pos, d.at, d.points)
      FROM loyalty.lot_draw d JOIN pg_temp.lots l ON l.id = d.lot_id JOIN pg_temp.entries e ON e.id = d.entry_id
     WHERE l.twin = tw
    UNION ALL
    SELECT concat_ws(' ', 'tier', p.code, m.external_ref, c.at, c.from_tier, c.to_tier, c.reason, c.qualifying, c.detail)
      FROM loyalty.tier_change c JOIN loyalty.member m ON m.id = c.member_id JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code LIKE 'tap62%\_' || tw
    UNION ALL
    SELECT concat_ws(' ', 'event', p.code, m.external_ref, o.kind, o.at,
                     (SELECT jsonb_object_agg(k, v) FROM jsonb_each(o.payload) AS j(k, v) WHERE k NOT LIKE '%id'))
      FROM loyalty.outbox o JOIN loyalty.member m ON m.id = o.member_id JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code LIKE 'tap62%\_' || tw
    ORDER BY 1 $$;

CREATE TEMP TABLE got AS
SELECT twin,
       (SELECT array_agg(x) FROM pg_temp.members(twin) x) AS members,
       (SELECT array_agg(replace(x, '_' || twin || ' ', ' ')) FROM pg_temp.ledger(twin) x) AS ledger,
       (SELECT array_agg(r ORDER BY n) FROM runs WHERE runs.twin = t.twin) AS runs
  FROM unnest(ARRAY['on', 'off']) AS t(twin);
UPDATE got SET members = (SELECT array_agg(replace(x, '_' || got.twin || ' ', ' ')) FROM unnest(members) x);

SELECT is((SELECT members FROM got WHERE twin = 'on'), (SELECT members FROM got WHERE twin = 'off'),
          'member rows: the same balances, dates, next transitions and tiers both ways');
SELECT is((SELECT ledger FROM got WHERE twin = 'on'), (SELECT ledger FROM got WHERE twin = 'off'),
          'entries, lots, draws, tier changes and outbox events: the same both ways');
SELECT is((SELECT runs FROM got WHERE twin = 'on'), (SELECT runs FROM got WHERE twin = 'off'),
          'every run_maintenance call returned the same counts both ways');

-- The scenario's outcome, by hand (not only "both the same").
SELECT is((SELECT string_agg(concat_ws(' ', e.ref, to_char(e.at AT TIME ZONE 'UTC', 'MM-DD HH24:MI'), e.points), ', ' ORDER BY e.ref, e.at)
             FROM pg_temp.entries e WHERE e.twin = 'on' AND e.prog = 'tap62a' AND e.kind = 'expire'),
          'a1 02-05 15:00 -5, a1 02-10 14:00 -45, a1 02-20 05:00 -60, a2 02-06 05:00 0, '
          'a3 02-25 17:00 -7, a3 03-20 16:00 -8, a4 02-01 13:00 -10, a5 02-02 13:00 -20, a6 02-03 13:00 -30',
          'program A: one expire entry per member and instant (a1: two lots at 02-10), spent points '
          'not expired (a1: 25 of the first lot), a2''s 50 settle debt: 0 lost');
SELECT is((SELECT string_agg(concat_ws(' ', e.ref, to_char(e.at AT TIME ZONE 'Asia/Tokyo', 'MM-DD HH24:MI'), e.points), ', ' ORDER BY e.ref, e.at)
             FROM pg_temp.entries e WHERE e.twin = 'on' AND e.prog = 'tap62b' AND e.kind = 'expire'),
          'b1 03-01 00:00 -31, b1 04-01 00:00 -14, b2 03-01 00:00 -20, b2 05-01 00:00 -21, '
          'b3 03-01 00:00 -30, b3 05-01 00:00 -31',
          'program B: lots expire at the end of the month after they became available, Tokyo time');
SELECT is((SELECT detail FROM pg_temp.entries WHERE twin = 'on' AND prog = 'tap62a' AND ref = 'a2' AND kind = 'expire'),
          '{"settled_debt": 50}'::jsonb, 'a2: the 50 expiring settle 50 of the 80 owed, nothing is lost');
SELECT is((SELECT string_agg(concat_ws(' ', m.external_ref, m.available, m.expired, m.next_transition_at), ', ' ORDER BY m.external_ref)
             FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id WHERE p.code = 'tap62a_on'),
          'a1 0 110 infinity, a2 -30 0 infinity, a3 0 15 infinity, a4 0 10 infinity, a5 0 20 infinity, a6 0 30 infinity',
          'program A after the run: balances, expired totals, nothing left due');
SELECT is((SELECT string_agg(concat_ws(' ', e.ref, to_char(e.at AT TIME ZONE 'Europe/Berlin', 'YYYY-MM-DD HH24:MI'), e.points), ', ' ORDER BY e.ref, e.at)
             FROM pg_temp.entries e WHERE e.twin = 'on' AND e.prog = 'tap62c' AND e.kind = 'expire'),
          'c1 2026-02-20 00:00 -150, c1 2026-02-28 00:00 -10, c2 2026-02-22 00:00 -50, c2 2026-03-06 00:00 -20, '
          'c3 2025-02-20 00:00 -100, c3 2026-02-28 00:00 -20',
          'program C: rolling two months, Berlin time');
SELECT is((SELECT string_agg(concat_ws(' ', c.at, c.from_tier, c.to_tier, c.reason), ', ' ORDER BY c.id)
             FROM loyalty.tier_change c WHERE c.member_id = pg_temp.m('tap62c_on', 'c3') AND c.at >= '2026-01-01 00:00+01'),
          '2025-12-31 23:00:00+00 silver base downgrade'::text,
          'c3: the review due 2026-01-01 drops it to base (maintenance, per-member sweep)');
SELECT is((SELECT points FROM pg_temp.entries WHERE twin = 'on' AND prog = 'tap62d' AND kind = 'expire'),
          -90::bigint, 'program D (inactivity): everything expires at the deadline, by the per-member sweep');

-- The pass did run: with the switch on, some INSERT wrote several expire entries at once;
-- off, every expire entry came alone.
SELECT ok((SELECT max(expire_rows) FROM entry_statements WHERE twin = 'on') > 1,
          'switch on: expire entries of a batch written by one statement');
SELECT is((SELECT max(expire_rows) FROM entry_statements WHERE twin = 'off'), 1::bigint,
          'switch off: one expire entry per statement (the per-member sweep)');

SELECT is((SELECT count(*) FROM loyalty.check_invariants())::int, 0, 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
