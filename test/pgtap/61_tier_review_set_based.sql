-- 61_tier_review_set_based: run_maintenance reviews the tiers of members with
-- nothing else due set-based (src/tier_review.c). The same scenario runs twice
-- from the same start: once with loyalty.set_based_tier_review off (every member
-- swept one at a time; then rolled back, its outcome kept in a psql variable) and
-- once on; member rows, tier_change rows, outbox events, ledger entries and the
-- jsonb of every run_maintenance call must be identical. The scenario covers
-- calendar-year (Paris time) and rolling windows, period_end and one_step
-- downgrades, grace_days, retention periods, pins and a subscription running
-- (and ending), members that stay, drop, and are promoted at a review (a tier
-- added above them), lots expiring (those members take the per-member path),
-- reviews several periods overdue, and batches cut by max_members.
BEGIN;
SET LOCAL timezone = 'UTC';
SELECT plan(11);

CREATE FUNCTION pg_temp.m(prog text, ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code = prog AND m.external_ref = ref $$;

-- everything the two runs must agree on, by program code and external_ref (ids differ:
-- sequences are not rolled back)
CREATE FUNCTION pg_temp.snapshot() RETURNS text LANGUAGE sql AS $$
    WITH mem AS (
        SELECT m.*, p.code AS prog FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
         WHERE p.code LIKE 'tr\_%'),
    tcode AS (SELECT id, code FROM loyalty.tier)
    SELECT concat_ws(E'\n',
      (SELECT string_agg(format('member %s/%s tier=%s since=%s earned=%s review=%s grace=%s/%s pin=%s/%s grant=%s/%s next=%s avail=%s pend=%s exp=%s q=%s qs=%s qo=%s qa=%s',
                                m.prog, m.external_ref, t.code, m.tier_since, e.code, m.tier_review_at,
                                m.grace_until, g.code, pt.code, m.pinned_until, gt.code, m.granted_until,
                                m.next_transition_at, m.available, m.pending, m.expired, m.qualifying,
                                m.q_start, m.q_oldest, m.q_asof), E'\n' ORDER BY m.prog, m.external_ref)
         FROM mem m JOIN tcode t ON t.id = m.tier_id LEFT JOIN tcode e ON e.id = m.earned_tier_id
         LEFT JOIN tcode g ON g.id = m.grace_tier_id LEFT JOIN tcode pt ON pt.id = m.pinned_tier_id
         LEFT JOIN tcode gt ON gt.id = m.granted_tier_id),
      (SELECT string_agg(format('change %s/%s %s %s>%s %s q=%s %s', m.prog, m.external_ref, c.at,
                                c.from_tier, c.to_tier, c.reason, c.qualifying, c.detail),
                         E'\n' ORDER BY m.prog, m.external_ref, c.id)
         FROM loyalty.tier_change c JOIN mem m ON m.id = c.member_id),
      (SELECT string_agg(format('event %s/%s %s %s %s', m.prog, m.external_ref, o.kind, o.at,
                                CASE WHEN o.kind IN ('tier_changed', 'member_enrolled') THEN o.payload::text END),
                         E'\n' ORDER BY m.prog, m.external_ref, o.id)
         FROM loyalty.outbox o JOIN mem m ON m.id = o.member_id),
      (SELECT string_agg(format('entry %s/%s %s %s %s', m.prog, m.external_ref, x.kind, x.points, x.at),
                         E'\n' ORDER BY m.prog, m.external_ref, x.id)
         FROM loyalty.entry x JOIN mem m ON m.id = x.member_id),
      (SELECT string_agg(format('lot %s/%s %s %s %s', m.prog, m.external_ref, l.state, l.remaining, l.expires_at),
                         E'\n' ORDER BY m.prog, m.external_ref, l.id)
         FROM loyalty.lot l JOIN mem m ON m.id = l.member_id))
$$;

-- runs maintenance at `now` in batches of `batch` members until nothing is due; the jsonb of each call
CREATE FUNCTION pg_temp.maintain(now timestamptz, batch int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r jsonb; out text := '';
BEGIN
    LOOP
        r := loyalty.run_maintenance(now, batch);
        out := out || format(E'maintain %s: %s\n', now, r);
        EXIT WHEN (r ->> 'members')::int = 0;
    END LOOP;
    RETURN out;
END $$;

CREATE FUNCTION pg_temp.earn(prog text, ref text, amount numeric, key text, at timestamptz) RETURNS void
LANGUAGE sql AS $$ SELECT loyalty.earn(pg_temp.m(prog, ref), amount, key, at) $$;

-- the whole scenario, from nothing; returns the calls' results and the snapshot
CREATE FUNCTION pg_temp.scenario() RETURNS text LANGUAGE plpgsql AS $$
DECLARE runs text := ''; p text; r text;
BEGIN
    PERFORM loyalty.create_program('tr_cal', 'calendar year, period end, Paris',
        '{"timezone": "Europe/Paris", "tier_basis": "spend", "tier_window": "calendar_year", "downgrade": "period_end"}');
    PERFORM loyalty.create_program('tr_roll', 'rolling 12 months, one step',
        '{"timezone": "UTC", "tier_window": {"rolling_months": 12}, "downgrade": "one_step"}');
    PERFORM loyalty.create_program('tr_grace', 'calendar year, grace 30 days',
        '{"timezone": "UTC", "tier_window": "calendar_year", "downgrade": "period_end", "grace_days": 30}');
    PERFORM loyalty.create_program('tr_ret', 'rolling 6 months, retention 1',
        '{"timezone": "UTC", "tier_window": {"rolling_months": 6}, "downgrade": "period_end", "tier_retention_periods": 1}');
    PERFORM loyalty.create_program('tr_one', 'calendar year, one step, grace',
        '{"timezone": "UTC", "tier_window": "calendar_year", "downgrade": "one_step", "grace_days": 10}');
    PERFORM loyalty.create_program('tr_exp', 'calendar year, lots expire',
        '{"timezone": "UTC", "tier_window": "calendar_year", "downgrade": "period_end", "expiry": {"policy": "rolling", "months": 12}}');
    FOR p IN SELECT unnest(ARRAY['tr_cal', 'tr_roll', 'tr_grace', 'tr_ret', 'tr_one', 'tr_exp']) LOOP
        PERFORM loyalty.add_tier(p, 'base', 'Base', 0);
        PERFORM loyalty.add_tier(p, 'silver', 'Silver', 100);
        PERFORM loyalty.add_tier(p, 'gold', 'Gold', 500);
        PERFORM loyalty.add_plan(p, 'vip', 'VIP', 0, 36, 'gold', '{}', false);
        FOREACH r IN ARRAY ARRAY['stay', 'drop', 'silver', 'promo', 'pin', 'pinend', 'sub', 'idle'] LOOP
            PERFORM loyalty.enroll(p, r, '2025-01-01 00:00:00+00');
        END LOOP;
        PERFORM pg_temp.earn(p, 'stay', 600, 's1', '2025-03-10 12:00:00+00');
        PERFORM pg_temp.earn(p, 'drop', 600, 'd1', '2025-03-10 12:00:00+00');
        PERFORM pg_temp.earn(p, 'silver', 150, 'v1', '2025-03-10 12:00:00+00');
        PERFORM pg_temp.earn(p, 'promo', 1200, 'p1', '2025-09-10 12:00:00+00');
        PERFORM pg_temp.earn(p, 'pin', 600, 'n1', '2025-03-10 12:00:00+00');
        PERFORM loyalty.set_tier(pg_temp.m(p, 'pin'), 'gold', '2031-01-01 00:00:00+00', 'status match', '2025-04-01 00:00:00+00');
        PERFORM pg_temp.earn(p, 'pinend', 150, 'e1', '2025-03-10 12:00:00+00');
        PERFORM loyalty.set_tier(pg_temp.m(p, 'pinend'), 'gold', '2027-06-01 00:00:00+00', 'trial', '2025-04-01 00:00:00+00');
        PERFORM pg_temp.earn(p, 'sub', 150, 'u1', '2025-03-10 12:00:00+00');
        PERFORM loyalty.subscribe(pg_temp.m(p, 'sub'), 'vip', 'sub1', '2025-02-01 00:00:00+00');
        -- a tier above everyone: 'promo' (1200) is promoted to it at a review, not at an earn
        PERFORM loyalty.add_tier(p, 'plat', 'Platinum', 1000);
    END LOOP;

    runs := runs || pg_temp.maintain('2026-01-02 00:00:00+00', 5);
    FOR p IN SELECT unnest(ARRAY['tr_cal', 'tr_roll', 'tr_grace', 'tr_ret', 'tr_one', 'tr_exp']) LOOP
        PERFORM pg_temp.earn(p, 'stay', 600, 's2', '2026-03-10 12:00:00+00');
        PERFORM pg_temp.earn(p, 'silver', 150, 'v2', '2026-05-01 12:00:00+00');
    END LOOP;
    runs := runs || pg_temp.maintain('2026-09-15 00:00:00+00', 3);
    runs := runs || pg_temp.maintain('2027-01-02 00:00:00+00', 4);
    runs := runs || pg_temp.maintain('2027-02-15 00:00:00+00', 100);
    FOR p IN SELECT unnest(ARRAY['tr_cal', 'tr_roll', 'tr_grace', 'tr_ret', 'tr_one', 'tr_exp']) LOOP
        PERFORM pg_temp.earn(p, 'stay', 600, 's3', '2027-03-10 12:00:00+00');
    END LOOP;
    runs := runs || pg_temp.maintain('2028-06-01 00:00:00+00', 7);
    -- several periods overdue at once, the subscription and a pin over
    runs := runs || pg_temp.maintain('2031-03-01 00:00:00+00', 1000);
    RETURN runs || pg_temp.snapshot();
END $$;

-- Which path wrote the reviews: member by member, each tier_change row is followed by its
-- outbox event before the next member's change; set-based, a chunk's changes are written
-- together, then their events. Counts consecutive review changes of two members with no
-- event written between them (clock_timestamp() stamps both tables).
CREATE FUNCTION pg_temp.batched_changes() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*)
      FROM (SELECT c.member_id, c.recorded_at,
                   lead(c.member_id) OVER (ORDER BY c.id) AS next_member,
                   lead(c.recorded_at) OVER (ORDER BY c.id) AS next_at
              FROM loyalty.tier_change c JOIN loyalty.member m ON m.id = c.member_id
              JOIN loyalty.program p ON p.id = m.program_id
             WHERE p.code LIKE 'tr\_%' AND c.reason IN ('downgrade', 'grace_end')) x
     WHERE x.next_member <> x.member_id
       AND NOT EXISTS (SELECT FROM loyalty.outbox o WHERE o.kind = 'tier_changed'
                          AND o.created_at > x.recorded_at AND o.created_at < x.next_at) $$;

SAVEPOINT per_member;
SET LOCAL loyalty.set_based_tier_review = off;
SELECT pg_temp.scenario() AS per_member, pg_temp.batched_changes() AS per_member_batched \gset
ROLLBACK TO SAVEPOINT per_member;

SET LOCAL loyalty.set_based_tier_review = on;
CREATE TEMP TABLE result AS SELECT pg_temp.scenario() AS set_based;

SELECT is(:'per_member_batched'::bigint, 0::bigint, 'off: every review change is followed by its event');
SELECT cmp_ok(pg_temp.batched_changes(), '>', 0::bigint, 'on: review changes were written set-based');

SELECT is((SELECT set_based FROM result), :'per_member',
          'set-based reviews: the same calls, member rows, tier changes, events, entries and lots as member by member');
SELECT ok((SELECT set_based FROM result) LIKE '%change tr\_grace/drop%grace\_end%'
          AND (SELECT set_based FROM result) LIKE '%promotion%' AND (SELECT set_based FROM result) LIKE '%expire%',
          'the scenario reaches grace ends, promotions at reviews and expiries');

-- a few outcomes worked out by hand, on the set-based run
CREATE FUNCTION pg_temp.hist(prog text, ref text) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(format('%s>%s %s %s', from_tier, to_tier, reason, at), ' | ' ORDER BY id)
      FROM loyalty.tier_change WHERE member_id = pg_temp.m(prog, ref) AND reason <> 'enroll' $$;
-- Paris calendar year: gold on the 2025 purchase; 2025 reviewed at its end (600: kept),
-- 2026 at its end (nothing: base), Paris midnight = 23:00 UTC
SELECT is(pg_temp.hist('tr_cal', 'drop'),
          'base>gold promotion 2025-03-10 12:00:00+00 | gold>base downgrade 2026-12-31 23:00:00+00',
          'calendar year, period_end: dropped at the end of the empty year');
-- promoted to plat (added later) by the review of 2025 (1200 of spend)
SELECT is(pg_temp.hist('tr_cal', 'promo'),
          'base>gold promotion 2025-09-10 12:00:00+00 | gold>plat promotion 2025-12-31 23:00:00+00 | plat>base downgrade 2026-12-31 23:00:00+00',
          'a review promotes to a tier added above the member, the next one drops them');
-- rolling 12 months, one step: reviewed on each anniversary of the promotion, against the
-- window that ends just before it (the first still holds the purchase, 12 months less 1 us old)
SELECT is(pg_temp.hist('tr_roll', 'drop'),
          'base>gold promotion 2025-03-10 12:00:00+00 | gold>silver downgrade 2027-03-10 12:00:00+00 | silver>base downgrade 2028-03-10 12:00:00+00',
          'rolling window, one_step: one tier per anniversary');
-- grace 30 days: the review at the end of 2026 starts the grace, its end drops to base
SELECT is(pg_temp.hist('tr_grace', 'drop'),
          'base>gold promotion 2025-03-10 12:00:00+00 | gold>base grace_end 2027-01-31 00:00:00+00',
          'grace_days: the drop waits for the grace to end');
-- retention 1 on a 6-month rolling window: first review two periods after the promotion
SELECT is(pg_temp.hist('tr_ret', 'drop'),
          'base>gold promotion 2025-03-10 12:00:00+00 | gold>base downgrade 2026-03-10 12:00:00+00',
          'tier_retention_periods: the first review comes a period later');
-- a pin keeps gold while the earned tier drops under it at the end of 2026 (no change of the
-- tier held), until the pin ends in 2031 (a per-member event)
SELECT is(pg_temp.hist('tr_cal', 'pin'),
          'base>gold promotion 2025-03-10 12:00:00+00 | gold>gold override 2025-04-01 00:00:00+00 | gold>base override_end 2031-01-01 00:00:00+00',
          'a running pin: the tier held does not change at the review');
SELECT is((SELECT e.code FROM loyalty.member m JOIN loyalty.tier e ON e.id = m.earned_tier_id
            WHERE m.id = pg_temp.m('tr_cal', 'pin')), 'base', 'under the pin, the earned tier dropped');
ROLLBACK;
