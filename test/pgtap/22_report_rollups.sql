-- 22_report_rollups: the rollup path of the reports (92_rollups.sql) gives exactly what
-- the ledger gives (loyalty.reports_direct = on reads the ledger only): program_kpis over
-- aligned, unaligned, partial-day, DST-day and unbounded periods, cohort_retention by week,
-- month, quarter and year, liability and expiring_points; before any roll-up, after it,
-- after late-dated operations into days already rolled up (then in the tail), and after
-- rolling those up too. Also: run_maintenance rolls up, a second run changes nothing.
--
-- Not one transaction: the high-water mark only moves once no transaction that was running
-- at the previous run is still running, so each step commits (the database is fresh for
-- this file and dropped after it).
SET timezone = 'UTC';
SELECT plan(27);

CREATE FUNCTION pg_temp.m(ref text) RETURNS bigint LANGUAGE sql AS $$
    SELECT m.id FROM loyalty.member m JOIN loyalty.program p ON p.id = m.program_id
     WHERE p.code = 'ru' AND m.external_ref = ref $$;

-- Every report of program ru as one text, by the rollup path or the ledger only.
CREATE FUNCTION pg_temp.reports(direct boolean) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r text := '';
    per record;
BEGIN
    PERFORM set_config('loyalty.reports_direct', CASE WHEN direct THEN 'on' ELSE 'off' END, true);
    FOR per IN SELECT * FROM (VALUES
            ('all', '-infinity'::timestamptz, 'infinity'::timestamptz),
            ('Q1 local', '2026-01-01 00:00-05', '2026-04-01 00:00-04'),      -- local midnights (New York)
            ('partial edges', '2026-01-15 13:45+00', '2026-03-09 02:30+00'),
            ('DST day', '2026-03-08 00:00-05', '2026-03-09 00:00-04'),      -- 23 hours
            ('one hour', '2026-03-08 10:00+00', '2026-03-08 11:00+00'),
            ('from Feb', '2026-02-01 05:00+00', 'infinity'),
            ('to mid-Feb', '-infinity', '2026-02-15 05:00+00'),
            ('last 30 days', now() - interval '30 days', now()),
            -- the per-member year rows (rollup_member_year) and the mask of the period's days
            ('one local day', '2025-12-30 05:00+00', '2025-12-31 05:00+00'),
            ('across new year', '2025-12-30 05:00+00', '2026-01-03 05:00+00'),
            ('mid-month to mid-month', '2026-01-10 05:00+00', '2026-02-20 05:00+00'),
            ('mid-month, unaligned', '2026-01-10 17:00+00', '2026-02-20 09:00+00'),
            ('local year 2025', '2025-01-01 05:00+00', '2026-01-01 05:00+00'),
            ('to year end', '2026-02-01 05:00+00', '2027-01-01 05:00+00'),
            ('last day of Feb', '2026-02-28 05:00+00', '2026-03-01 05:00+00')) p(name, f, t)
    LOOP
        r := r || format(E'kpis %s: %s\n', per.name,
                         (SELECT row(k.*)::text FROM loyalty.program_kpis('ru', per.f, per.t) k));
    END LOOP;
    r := r || format(E'cohorts week %s\n', (SELECT string_agg(row(c.*)::text, ' ' ORDER BY c.cohort, c.period_offset)
                                               FROM loyalty.cohort_retention('ru', 'week') c));
    r := r || format(E'cohorts month %s\n', (SELECT string_agg(row(c.*)::text, ' ' ORDER BY c.cohort, c.period_offset)
                                                FROM loyalty.cohort_retention('ru', 'month') c));
    r := r || format(E'cohorts quarter %s\n', (SELECT string_agg(row(c.*)::text, ' ' ORDER BY c.cohort, c.period_offset)
                                                  FROM loyalty.cohort_retention('ru', 'quarter') c));
    r := r || format(E'cohorts year %s\n', (SELECT string_agg(row(c.*)::text, ' ' ORDER BY c.cohort, c.period_offset)
                                               FROM loyalty.cohort_retention('ru', 'year') c));
    r := r || format(E'liability %s\n', (SELECT row(l.*)::text FROM loyalty.liability l WHERE l.program = 'ru'));
    r := r || format(E'expiring %s\n', (SELECT string_agg(row(x.*)::text, ' ' ORDER BY x.expires_at, x.member_id)
                                           FROM loyalty.expiring_points('60 days', 'ru') x));
    PERFORM set_config('loyalty.reports_direct', 'off', true);
    RETURN r;
END $$;

-- Roll up everything written so far: run_rollups until the high-water mark passes it
-- (each call its own transaction; other sessions' transactions may delay it a little).
CREATE PROCEDURE pg_temp.roll(chunk integer DEFAULT NULL) LANGUAGE plpgsql AS $$
DECLARE
    target bigint := (SELECT coalesce(max(e.id), 0) FROM loyalty.entry e);
BEGIN
    FOR i IN 1..400 LOOP
        COMMIT;
        PERFORM loyalty.run_rollups(chunk);
        COMMIT;
        EXIT WHEN (SELECT s.hwm FROM loyalty.rollup_state s) >= target;
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;

CREATE FUNCTION pg_temp.rollup_md5() RETURNS text LANGUAGE sql AS $$
    SELECT md5(concat((SELECT string_agg(row(r.*)::text, ',' ORDER BY r.program_id, r.day) FROM loyalty.rollup_day r),
                      (SELECT string_agg(row(r.*)::text, ',' ORDER BY r.program_id, r.year, r.member_id) FROM loyalty.rollup_member_year r),
                      (SELECT string_agg(row(r.*)::text, ',' ORDER BY r.program_id, r.period, r.cohort, r.bucket) FROM loyalty.rollup_cohort r))) $$;

-- Program ru (New York, rolling 1-month expiry, debts allowed) and a second program whose
-- entries must never show in ru's figures.
DO $$
DECLARE
    t timestamptz;
    mid bigint;
    other bigint;
BEGIN
    PERFORM loyalty.create_program('ru', 'Rollups', '{"timezone": "America/New_York",
        "expiry": {"policy": "rolling", "months": 1}, "negative_balance": "allow", "pending_days": 2}');
    PERFORM loyalty.add_tier('ru', 'base', 'Base', 0);
    PERFORM loyalty.create_program('ru2', 'Other', '{"timezone": "Asia/Kolkata"}');
    PERFORM loyalty.add_tier('ru2', 'base', 'Base', 0);
    other := loyalty.enroll('ru2', 'z', '2026-01-01 00:00+00');
    FOR i IN 1..12 LOOP
        PERFORM loyalty.enroll('ru', 'm' || i, timestamptz '2025-12-20 00:00+00' + (i * 9) * interval '1 day'
                                               + (i * 3677) * interval '1 second');
    END LOOP;
    -- 400 operations spread over January to April 2026, deterministic; refused ones
    -- (insufficient points and the like) are skipped
    FOR i IN 1..400 LOOP
        mid := pg_temp.m('m' || (i % 12 + 1));
        t := timestamptz '2026-01-01 00:00+00' + ((i * 37) % 110) * interval '1 day'
             + ((i * 7919) % 86400) * interval '1 second';
        BEGIN
            CASE i % 8
                WHEN 0, 1, 2 THEN PERFORM loyalty.earn(mid, 5 + (i % 40), 'k' || i, t);
                WHEN 3 THEN PERFORM loyalty.redeem(mid, 1 + i % 15, 'k' || i, t);
                WHEN 4 THEN PERFORM loyalty.award(mid, 3 + i % 9, 'bonus', 'k' || i, t);
                WHEN 5 THEN PERFORM loyalty.reverse(mid, 'k' || (i - 5), 2, 'k' || i, t);
                WHEN 6 THEN PERFORM loyalty.adjust(mid, CASE WHEN i % 3 = 0 THEN -4 ELSE 6 END, 'fix', 'k' || i, t);
                ELSE PERFORM loyalty.transfer(mid, pg_temp.m('m' || ((i + 5) % 12 + 1)), 2, 'k' || i, t);
            END CASE;
        EXCEPTION WHEN SQLSTATE 'LY010' OR SQLSTATE 'LY005' OR SQLSTATE 'LY051' OR SQLSTATE 'LY061' THEN
            NULL;
        END;
        IF i % 50 = 0 THEN
            PERFORM loyalty.earn(other, 100, 'o' || i, t);
        END IF;
    END LOOP;
    -- December 2025 (m1 only): two purchases on the 31st, a redeem at 22:00 local on
    -- 1 January (the 2nd in UTC); the week of Monday 29 December runs into January
    PERFORM loyalty.earn(pg_temp.m('m1'), 10, 'dec1', '2025-12-30 15:00+00');
    PERFORM loyalty.earn(pg_temp.m('m1'), 10, 'dec2', '2025-12-31 15:00+00');
    PERFORM loyalty.earn(pg_temp.m('m1'), 10, 'dec3', '2025-12-31 18:00+00');
    PERFORM loyalty.redeem(pg_temp.m('m1'), 5, 'dec4', '2026-01-02 03:00+00');
    -- recent points, so that liability and expiring_points have something to show
    PERFORM loyalty.earn(pg_temp.m('m1'), 70, 'recent1', now() - interval '10 days');
    PERFORM loyalty.earn(pg_temp.m('m2'), 30, 'recent2', now() - interval '1 day');
    PERFORM loyalty.award(pg_temp.m('m3'), 12, 'bonus', 'recent3', now() - interval '20 days');
END $$;

CREATE TEMP TABLE snap (step text PRIMARY KEY, direct text, rolled text);
INSERT INTO snap SELECT 'before', pg_temp.reports(true), pg_temp.reports(false);
SELECT is((SELECT hwm FROM loyalty.rollup_state), 0::bigint, 'nothing is rolled up before the first run');
SELECT is((SELECT rolled FROM snap WHERE step = 'before'), (SELECT direct FROM snap WHERE step = 'before'),
          'before any roll-up both paths read the ledger: same reports');

CALL pg_temp.roll();
SELECT ok((SELECT hwm FROM loyalty.rollup_state) >= (SELECT max(id) FROM loyalty.entry),
          'run_rollups: the high-water mark reaches the last entry');
SELECT is((SELECT count(*)::int FROM loyalty.rollup_day WHERE program_id = (SELECT id FROM loyalty.program WHERE code = 'ru')),
          (SELECT count(DISTINCT (e.at AT TIME ZONE 'America/New_York')::date)::int
             FROM loyalty.entry e JOIN loyalty.member m ON m.id = e.member_id JOIN loyalty.program p ON p.id = m.program_id
            WHERE p.code = 'ru'),
          'one rollup_day row per local day with entries');
SELECT is((SELECT sum(issued)::bigint FROM loyalty.rollup_day r JOIN loyalty.program p ON p.id = r.program_id WHERE p.code = 'ru'),
          (SELECT sum(e.points)::bigint FROM loyalty.entry e JOIN loyalty.member m ON m.id = e.member_id
             JOIN loyalty.program p ON p.id = m.program_id
            WHERE p.code = 'ru' AND (e.kind IN ('earn', 'award') OR (e.kind = 'adjust' AND e.points > 0))),
          'issued points in the rollups equal the ledger''s');
INSERT INTO snap SELECT 'rolled', pg_temp.reports(true), pg_temp.reports(false);
SELECT is((SELECT direct FROM snap WHERE step = 'rolled'), (SELECT direct FROM snap WHERE step = 'before'),
          'rolling up changes no report (ledger path)');
SELECT is((SELECT rolled FROM snap WHERE step = 'rolled'), (SELECT direct FROM snap WHERE step = 'rolled'),
          'after the roll-up: rollup path = ledger path, every report');
SELECT is((SELECT format('%s %s %s %s', active_members, purchasers, repeat_purchasers, purchases)
             FROM loyalty.program_kpis('ru', '2025-12-30 05:00+00', '2025-12-31 05:00+00')), '1 1 0 1',
          'rolled up: 30 December local, one member with one purchase');
SELECT is((SELECT format('%s %s %s %s', active_members, purchasers, repeat_purchasers, purchases)
             FROM loyalty.program_kpis('ru', '2025-12-31 05:00+00', '2026-01-01 05:00+00')), '1 1 1 2',
          'rolled up: 31 December local, two purchases the same day make a repeat purchaser');
SELECT is((SELECT format('%s %s %s', cohort_members, active_members, retention)
             FROM loyalty.cohort_retention('ru', 'week') WHERE cohort = '2025-12-22' AND period_offset = 1),
          '1 1 1.00000000000000000000', 'rolled up: the week of 29 December, across the new year, counted once');

-- A second run with nothing new changes nothing.
CREATE TEMP TABLE md5s AS SELECT pg_temp.rollup_md5() AS before;
CALL pg_temp.roll();
SELECT is(pg_temp.rollup_md5(), (SELECT before FROM md5s), 'run_rollups again: the rollups are unchanged (idempotent)');

-- Late operations: dated in days already rolled up; a member enrolled now with activity
-- dated before enrolment (another cohort cell); a refund of a January purchase.
DO $$
DECLARE
    n bigint;
BEGIN
    PERFORM loyalty.earn(pg_temp.m('m4'), 44.5, 'late1', '2026-02-10 12:00+00');
    PERFORM loyalty.award(pg_temp.m('m4'), 3, 'late', 'late2', '2026-01-20 03:00+00');
    PERFORM loyalty.redeem(pg_temp.m('m1'), 3, 'late6', now() - interval '5 days');
    PERFORM loyalty.earn(pg_temp.m('m5'), 9, 'late3', '2026-03-08 05:30+00');        -- the DST day, before the switch
    PERFORM loyalty.reverse(pg_temp.m('m9'), 'k8', NULL, 'late4', '2026-04-02 10:00+00');
    n := loyalty.enroll('ru', 'newcomer', now());
    PERFORM loyalty.earn(n, 20, 'late5', '2026-02-11 15:00+00');
    PERFORM loyalty.earn(pg_temp.m('m1'), 10, 'late7', '2025-12-30 20:00+00');   -- a second purchase that day
END $$;
INSERT INTO snap SELECT 'late', pg_temp.reports(true), pg_temp.reports(false);
SELECT isnt((SELECT direct FROM snap WHERE step = 'late'), (SELECT direct FROM snap WHERE step = 'rolled'),
            'the late operations change the reports');
SELECT is((SELECT rolled FROM snap WHERE step = 'late'), (SELECT direct FROM snap WHERE step = 'late'),
          'late operations in the tail: rollup path = ledger path');
SELECT ok((SELECT hwm FROM loyalty.rollup_state) < (SELECT max(id) FROM loyalty.entry),
          'the late operations are above the high-water mark');

CALL pg_temp.roll();
INSERT INTO snap SELECT 'late rolled', pg_temp.reports(true), pg_temp.reports(false);
SELECT is((SELECT rolled FROM snap WHERE step = 'late rolled'), (SELECT direct FROM snap WHERE step = 'late'),
          'late operations rolled up into their own (closed) days: same reports');
SELECT is((SELECT purchases FROM loyalty.rollup_day r JOIN loyalty.program p ON p.id = r.program_id
            WHERE p.code = 'ru' AND r.day = '2026-02-10') -
          (SELECT count(*) FROM loyalty.entry e JOIN loyalty.member m ON m.id = e.member_id
             JOIN loyalty.program p ON p.id = m.program_id
            WHERE p.code = 'ru' AND e.kind = 'earn' AND (e.at AT TIME ZONE 'America/New_York')::date = '2026-02-10'
              AND e.idempotency_key <> 'late1'),
          1::bigint, 'the late earn of 10 February is in that day''s rollup');
SELECT is((SELECT format('%s %s %s %s', active_members, purchasers, repeat_purchasers, purchases)
             FROM loyalty.program_kpis('ru', '2025-12-30 05:00+00', '2025-12-31 05:00+00')), '1 1 1 2',
          'a late second purchase on 30 December, rolled up in another run: a repeat purchaser that day');

-- run_maintenance rolls up too (after it sweeps), and its expire entries land in the rollups.
SELECT ok((loyalty.run_maintenance(now()) ->> 'members')::int >= 1, 'maintenance sweeps the members with points due');
CALL pg_temp.roll();
SELECT ok((SELECT hwm FROM loyalty.rollup_state) >= (SELECT max(id) FROM loyalty.entry),
          'the expire entries maintenance wrote are rolled up');
INSERT INTO snap SELECT 'swept', pg_temp.reports(true), pg_temp.reports(false);
SELECT is((SELECT rolled FROM snap WHERE step = 'swept'), (SELECT direct FROM snap WHERE step = 'swept'),
          'after maintenance: rollup path = ledger path');
SELECT is((SELECT direct FROM snap WHERE step = 'swept'), (SELECT direct FROM snap WHERE step = 'late'),
          'sweeping changes no report (reports count unswept expiry by now())');

-- reset_rollups: everything back to the ledger, then rebuilt identically.
SELECT lives_ok('SELECT loyalty.reset_rollups()', 'reset_rollups');
SELECT is((SELECT hwm FROM loyalty.rollup_state), 0::bigint, 'reset: high-water mark 0');
CALL pg_temp.roll();
INSERT INTO snap SELECT 'rebuilt', pg_temp.reports(true), pg_temp.reports(false);
SELECT is((SELECT rolled FROM snap WHERE step = 'rebuilt'), (SELECT direct FROM snap WHERE step = 'swept'),
          'rebuilt rollups: same reports');

-- A run rolls its entries up in statements of at most chunk_entries (20000 by default) to
-- bound the backend's memory; one entry per statement must give the same rows.
UPDATE md5s SET before = pg_temp.rollup_md5();
SELECT lives_ok('SELECT loyalty.reset_rollups()', 'reset_rollups again');
CALL pg_temp.roll(1);
SELECT is(pg_temp.rollup_md5(), (SELECT before FROM md5s),
          'rolled up one entry per statement: the same rollup rows as in one statement');
INSERT INTO snap SELECT 'chunked', pg_temp.reports(true), pg_temp.reports(false);
SELECT is((SELECT rolled FROM snap WHERE step = 'chunked'), (SELECT direct FROM snap WHERE step = 'swept'),
          'rolled up one entry per statement: same reports');

SELECT * FROM finish();
